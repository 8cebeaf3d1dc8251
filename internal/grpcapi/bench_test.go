package grpcapi_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/open-autoglm/autoglm/internal/mockllm"
)

// BenchmarkChat measures one non-streamed chat call through the gateway to the mock upstream,
// as OpenAI JSON over HTTP and through the gRPC API over Connect and gRPC: the difference is
// what the gRPC layer (proto ↔ JSON and the in-process request) adds.
func BenchmarkChat(b *testing.B) {
	g := startGateway(b, mockllm.Options{Tokens: 12}, false)
	b.Run("http-json", func(b *testing.B) {
		body := `{"model":"glm-4-flash","messages":[{"role":"user","content":"Say hello"}],"max_tokens":12,"seed":7,"stream":false}`
		c := &http.Client{Transport: &http.Transport{}}
		b.ReportAllocs()
		for b.Loop() {
			resp, err := c.Post(g.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatal(resp.Status)
			}
		}
	})
	cs := clients(b, g.URL)
	for _, name := range []string{"connect", "grpc"} {
		b.Run(name, func(b *testing.B) {
			c := cs[name]
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Chat(context.Background(), connect.NewRequest(chatRequest())); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
