package server_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/admission"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/telemetry"
	"github.com/open-autoglm/autoglm/internal/testenv"
)

// heapLive is the live heap as of the last collection, from runtime/metrics.
func heapLive() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestBurstLeavesNothingBehind offers a server with a small admission limit many more
// connections at once than it serves, then lets every client leave. What a user watching the
// process would see: the excess is refused with 503 and Retry-After (never queued without
// bound), every connection of the departed clients is closed, the goroutines are back to
// their idle number, and once the server releases its memory the live heap is back near its
// idle size — the buffers pooled for the burst's connections included, which a single
// collection kept alive.
func TestBurstLeavesNothingBehind(t *testing.T) {
	const clients = 600
	// The upstream counts its open connections: each is a goroutine of the test's, kept while
	// the gateway keeps the connection in its pool.
	var upstreamConns atomic.Int64
	mock := httptest.NewUnstartedServer(mockllm.New(mockllm.Options{Tokens: 2}))
	mock.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			upstreamConns.Add(1)
		case http.StateClosed, http.StateHijacked:
			upstreamConns.Add(-1)
		}
	}
	mock.Start()
	t.Cleanup(mock.Close)
	mockURL := mock.URL + "/v1"
	cfg, err := config.Parse([]byte(oneModel(mockURL, "")), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry(t, cfg)
	lim := admission.New(admission.Config{MaxInFlight: 4, QueueDepth: 8, MaxWait: 25 * time.Millisecond})
	logs := &syncBuffer{}
	srv, _ := newServer(cfg.Server, reg, telemetry.NewLogger(logs, slog.LevelInfo), server.Options{Admission: lim}, openai.Options{})
	addr := testenv.ServeLoopback(t, srv.Serve)
	url := "http://" + addr + "/v1/chat/completions"
	const body = `{"model":"glm-4-flash","messages":[{"role":"user","content":"hi"}]}`

	// Idle: one request served (the upstream connection and lazily built state exist), its
	// client gone, memory released.
	if resp, b := post(t, url, body); resp.StatusCode != 200 {
		t.Fatalf("warm-up: %d %s", resp.StatusCode, b)
	}
	http.DefaultClient.CloseIdleConnections()
	waitFor(t, "the warm-up connection to close", func() bool { return srv.OpenConns() == 0 })
	// The runtime never frees a goroutine's descriptor, only reuses it: run as many goroutines
	// at once as the burst will (both ends of every connection live in this process), so that
	// the descriptors count in the idle heap as they do in the heap after the burst.
	park := make(chan struct{})
	var parked sync.WaitGroup
	for range 8 * clients {
		parked.Go(func() { <-park })
	}
	close(park)
	parked.Wait()
	server.ReleaseMemory()
	idleHeap, idleGoroutines, idleUpstream := heapLive(), runtime.NumGoroutine(), upstreamConns.Load()

	// The burst: every client opens its own connection and sends two requests on it.
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		bad      []string
		wg       sync.WaitGroup
		start    = make(chan struct{})
	)
	transports := make([]*http.Transport, clients)
	for i := range transports {
		transports[i] = &http.Transport{MaxConnsPerHost: 1}
	}
	for _, tr := range transports {
		wg.Go(func() {
			c := &http.Client{Transport: tr}
			<-start
			for range 2 {
				resp, err := c.Post(url, "application/json", strings.NewReader(body))
				if err != nil {
					mu.Lock()
					bad = append(bad, err.Error())
					mu.Unlock()
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				statuses[resp.StatusCode]++
				if resp.StatusCode == 503 && (resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(b), `"server_overloaded"`)) {
					bad = append(bad, "503 without Retry-After or the overload code: "+string(b))
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("%d failed requests, first: %s", len(bad), bad[0])
	}
	if statuses[200] == 0 || statuses[503] == 0 || statuses[200]+statuses[503] != 2*clients {
		t.Fatalf("answers %v: want both served (200) and refused (503) requests and nothing else", statuses)
	}
	// Refusals are cheap: no log line each (a line per refused request would cost more than
	// the refusal), but a summary that says the server is refusing.
	var perRequest, summaries int
	for line := range strings.Lines(logs.String()) {
		switch {
		case strings.Contains(line, `"status":503`) || strings.Contains(line, "server_overloaded"):
			perRequest++
		case strings.Contains(line, `"msg":"overloaded: refusing requests with 503"`):
			summaries++
		}
	}
	if perRequest != 0 || summaries == 0 {
		t.Errorf("log after %d refusals: %d lines about single refused requests, %d summaries (want none, and at least one)",
			statuses[503], perRequest, summaries)
	}
	// A slot is given back once its handler has returned, which can be just after the client
	// has read the answer.
	waitFor(t, "every admission slot back", func() bool { st := lim.Stats(); return st.InFlight == 0 && st.Waiting == 0 })
	if st := lim.Stats(); st.RefusedFull+st.RefusedWait != uint64(statuses[503]) {
		t.Errorf("admission after the burst: %+v, %d refusals seen", st, statuses[503])
	}

	// The clients leave.
	for _, tr := range transports {
		tr.CloseIdleConnections()
	}
	transports = nil
	waitFor(t, "the departed clients' connections to close", func() bool { return srv.OpenConns() == 0 })
	// The server's own goroutines of the burst end; a few of the test's own may be finishing.
	// The upstream's goroutines for the connections the gateway keeps idle in its pools are
	// the test's: one pool per event loop (server.http1 loop), each holding at most what its
	// loop had in flight, and admission lets 4 through at once.
	if n, most := upstreamConns.Load(), int64(4*runtime.GOMAXPROCS(0))+1; n > most {
		t.Errorf("%d upstream connections open after the burst, want at most %d", n, most)
	}
	waitFor(t, "goroutines back to idle", func() bool {
		return runtime.NumGoroutine() <= idleGoroutines+4+int(upstreamConns.Load()-idleUpstream)
	})

	server.ReleaseMemory()
	after := heapLive()
	// The burst's connections had 2 × 4 KiB of pooled buffers each (about 4.7 MiB for 600);
	// a heap that kept them, or anything else per connection or request, fails this.
	const slack = 1 << 20
	if after > idleHeap+slack {
		t.Errorf("live heap after the burst and ReleaseMemory: %.1f MiB, idle %.1f MiB (more than %.1f MiB over)",
			float64(after)/(1<<20), float64(idleHeap)/(1<<20), float64(slack)/(1<<20))
	}
	t.Logf("answers %v; live heap idle %.1f MiB, after %.1f MiB; goroutines idle %d, after %d",
		statuses, float64(idleHeap)/(1<<20), float64(after)/(1<<20), idleGoroutines, runtime.NumGoroutine())
}
