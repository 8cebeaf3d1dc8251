package mockllm

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// discard is a ResponseWriter that keeps nothing, so that benchmarks of
// direct ServeHTTP calls measure the mock alone.
type discard struct {
	h http.Header
	n int
}

func (w *discard) Header() http.Header         { return w.h }
func (w *discard) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }
func (w *discard) WriteHeader(int)             {}
func (w *discard) Flush()                      {}

// body is a reusable request body.
type body struct{ bytes.Reader }

func (*body) Close() error { return nil }

// serveLoop calls ServeHTTP b.N times with the same request.
func serveLoop(b *testing.B, s *Server, path, payload string) {
	r := httptest.NewRequest("POST", path, nil)
	var rb body
	r.Body = &rb
	r.ContentLength = int64(len(payload))
	w := &discard{h: make(http.Header)}
	raw := []byte(payload)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rb.Reset(raw)
		clear(w.h)
		s.ServeHTTP(w, r)
	}
	b.SetBytes(int64(w.n / max(b.N, 1)))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// httpLoop sends b.N requests over loopback HTTP/1.1 with keep-alive from
// GOMAXPROCS goroutines; client and server share the machine.
func httpLoop(b *testing.B, s *Server, path, payload string) {
	ts := httptest.NewServer(s)
	defer ts.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(ts.URL+path, "application/json", strings.NewReader(payload))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

const benchChat = `{"model":"mock-model","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write a haiku about the sea, please."}],"max_tokens":16,"temperature":0.7}`

func BenchmarkChat(b *testing.B) {
	b.Run("direct", func(b *testing.B) { serveLoop(b, New(Options{}), "/v1/chat/completions", benchChat) })
	b.Run("http", func(b *testing.B) { httpLoop(b, New(Options{}), "/v1/chat/completions", benchChat) })
}

func BenchmarkChatStream(b *testing.B) {
	payload := strings.Replace(benchChat, `{`, `{"stream":true,"stream_options":{"include_usage":true},`, 1)
	b.Run("direct", func(b *testing.B) { serveLoop(b, New(Options{}), "/v1/chat/completions", payload) })
	b.Run("http", func(b *testing.B) { httpLoop(b, New(Options{}), "/v1/chat/completions", payload) })
}

func BenchmarkEmbeddings(b *testing.B) {
	serveLoop(b, New(Options{EmbeddingDim: 256}), "/v1/embeddings", `{"model":"e","input":["the quick brown fox","jumps over the lazy dog"]}`)
}

// BenchmarkDecode compares the scanner with decoding the same fields by
// encoding/json, the measurement behind choosing the scanner.
func BenchmarkDecode(b *testing.B) {
	payload := []byte(benchChat)
	b.Run("scanner", func(b *testing.B) {
		var p parser
		var req request
		b.ReportAllocs()
		for b.Loop() {
			req = request{inputs: req.inputs[:0]}
			if err := p.parse(kindChat, payload, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		type message struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		}
		var req struct {
			Model         string    `json:"model"`
			Stream        bool      `json:"stream"`
			MaxTokens     *int      `json:"max_tokens"`
			N             *int      `json:"n"`
			Seed          *int64    `json:"seed"`
			Messages      []message `json:"messages"`
			StreamOptions *struct {
				IncludeUsage bool `json:"include_usage"`
			} `json:"stream_options"`
		}
		b.ReportAllocs()
		for b.Loop() {
			req.Messages = req.Messages[:0]
			if err := json.Unmarshal(payload, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
