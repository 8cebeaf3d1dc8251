package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/internal/mockllm"
)

// BenchmarkGateway measures one client's full round trip through a real gateway listener to a
// real mock upstream listener, against the same request sent to the mock directly.
func BenchmarkGateway(b *testing.B) {
	_, mockURL := startMock(b, mockllm.Options{Tokens: 16})
	g := startGateway(b, oneModel(mockURL, "")+"log:\n  level: warn\n", nil)
	body := `{"model":"glm4","messages":[{"role":"user","content":"the quick brown fox jumps over a lazy dog"}],"max_tokens":16}`
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8, DisableCompression: true}}
	for _, tc := range []struct{ name, url string }{
		{"direct", mockURL + "/chat/completions"},
		{"gateway", g.URL + "/v1/chat/completions"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Post(tc.url, "application/json", strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatal(resp.Status)
				}
			}
		})
	}
}
