package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/telemetry"
	"github.com/open-autoglm/autoglm/internal/testenv"
)

// BenchmarkListener sends chats one at a time over one keep-alive connection to the whole
// gateway served on loopback, by each HTTP/1.1 server (server.http1), non-streamed and
// streamed: what the server side adds to a request with the chain in front
// (go test -run '^$' -bench Listener -benchmem ./internal/server; alternate with -count).
func BenchmarkListener(b *testing.B) {
	up := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 16}))
	defer up.Close()
	for _, mode := range []string{"lean", "net"} {
		for _, stream := range []bool{false, true} {
			name := mode
			if stream {
				name += "/stream"
			}
			b.Run(name, func(b *testing.B) {
				url := serveGateway(b, mode, up.URL)
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
				defer client.CloseIdleConnections()
				b.ReportAllocs()
				for b.Loop() {
					chat(b, client, url, stream)
				}
			})
		}
	}
}

// BenchmarkListenerCold measures what the gateway's own path costs when its code and data
// are cold, as they are at every request on a machine whose other processes run between two
// of the gateway's requests (docs/BENCHMARKS.md, "the rest of the gap is a cold path"). Each
// iteration sends one non-streamed chat to the mock directly and one through the whole
// gateway (the lean server), each over its own keep-alive connection; in "cold", a buffer
// larger than the last-level cache is written through before each of the two (outside the
// timing). It reports both times and, as own-µs/op, the median over the iterations of the
// gateway's time minus the direct one's: paired request by request, so that the host's drift
// during the run falls on both (go test -run '^$' -bench ListenerCold -benchtime 400x
// ./internal/server).
func BenchmarkListenerCold(b *testing.B) {
	up := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 16}))
	defer up.Close()
	direct := up.URL + "/v1/chat/completions"
	gateway := serveGateway(b, "lean", up.URL)
	evict := make([]byte, 64<<20)
	for _, cold := range []bool{false, true} {
		name := "warm"
		if cold {
			name = "cold"
		}
		b.Run(name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
			defer client.CloseIdleConnections()
			chat(b, client, direct, false) // both connections open before the first timed request
			chat(b, client, gateway, false)
			timed := func(url string) time.Duration {
				if cold {
					b.StopTimer()
					for j := 0; j < len(evict); j += 64 {
						evict[j]++
					}
					b.StartTimer()
				}
				start := time.Now()
				chat(b, client, url, false)
				return time.Since(start)
			}
			var sumDirect, sumGateway time.Duration
			own := make([]float64, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				d, g := timed(direct), timed(gateway)
				sumDirect += d
				sumGateway += g
				own = append(own, float64(g-d)/1e3)
			}
			slices.Sort(own)
			b.ReportMetric(float64(sumDirect)/1e3/float64(b.N), "direct-µs/op")
			b.ReportMetric(float64(sumGateway)/1e3/float64(b.N), "gateway-µs/op")
			b.ReportMetric(own[len(own)/2], "own-µs/op")
		})
	}
}

// serveGateway serves the whole gateway, with one model on the mock at mockURL, on a
// loopback port by the HTTP/1.1 server mode until b ends, and returns its chat URL.
func serveGateway(b *testing.B, mode, mockURL string) string {
	cfg, err := config.Parse([]byte("server: {http1: "+mode+"}\n"+oneModel(mockURL+"/v1", "")), func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	reg, err := router.New(cfg.Models)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = reg.Close() })
	log := telemetry.NewLogger(io.Discard, telemetry.ParseLevel("error"))
	srv := server.NewWith(cfg.Server, reg, log, server.Options{Routes: openai.New(reg, openai.Options{Logger: log}).Routes()})
	return "http://" + testenv.ServeLoopback(b, srv.Serve) + "/v1/chat/completions"
}

// chat posts one chat to url and reads the answer, failing b unless it is a 200.
func chat(b *testing.B, client *http.Client, url string, stream bool) {
	body := `{"model":"glm4","messages":[{"role":"user","content":"the quick brown fox"}],"max_tokens":16`
	if stream {
		body += `,"stream":true`
	}
	resp, err := client.Post(url, "application/json", strings.NewReader(body+"}"))
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatal(resp.Status)
	}
}
