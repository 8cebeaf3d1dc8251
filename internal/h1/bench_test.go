package h1_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/open-autoglm/autoglm/internal/h1"
)

// BenchmarkLoopback sends keep-alive requests one at a time over loopback to each server,
// the handler reading a small JSON body and answering a small JSON document: the server
// side's CPU and allocations per request (go test -run '^$' -bench Loopback -benchmem).
func BenchmarkLoopback(b *testing.B) {
	answer := []byte(`{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hello there"}}]}`)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	})
	body := `{"model":"bench","messages":[{"role":"user","content":"say something short"}]}`
	req := "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\nContent-Type: application/json\r\nAuthorization: Bearer sk-x\r\nContent-Length: " +
		itoa(len(body)) + "\r\n\r\n" + body
	run := func(b *testing.B, serve func(net.Listener) error, stop func() error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go serve(ln)
		defer stop()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := io.WriteString(c, req); err != nil {
				b.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	b.Run("lean", func(b *testing.B) {
		s := &h1.Server{Handler: h}
		run(b, s.Serve, s.Close)
	})
	b.Run("net", func(b *testing.B) {
		s := &http.Server{Handler: h}
		run(b, s.Serve, s.Close)
	})
}

func itoa(n int) string { return strconv.Itoa(n) }
