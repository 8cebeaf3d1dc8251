package server_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/open-autoglm/autoglm/internal/mockllm"
)

// rawDo sends a request without the transport's transparent decompression.
func rawDo(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestCompressionNegotiation(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 400}) // a body well over 1 KiB
	g := startGateway(t, oneModel(mockURL, ""), nil)
	body := `{"model":"glm4","messages":[{"role":"user","content":"hi"}]}`
	for _, tc := range []struct {
		accept, want string
		decode       func([]byte) ([]byte, error)
	}{
		{"gzip", "gzip", func(b []byte) ([]byte, error) {
			r, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				return nil, err
			}
			return io.ReadAll(r)
		}},
		{"zstd", "zstd", func(b []byte) ([]byte, error) {
			d, err := zstd.NewReader(nil)
			if err != nil {
				return nil, err
			}
			defer d.Close()
			return d.DecodeAll(b, nil)
		}},
		{"identity", "", func(b []byte) ([]byte, error) { return b, nil }},
		// No Accept-Encoding at all: the answer skips the compressing writer, and still
		// says that it varies by Accept-Encoding, so that a cache does not serve it to a
		// client that asked for gzip.
		{"", "", func(b []byte) ([]byte, error) { return b, nil }},
	} {
		req, _ := http.NewRequest("POST", g.URL+"/v1/chat/completions", strings.NewReader(body))
		if tc.accept != "" {
			req.Header.Set("Accept-Encoding", tc.accept)
		}
		resp, raw := rawDo(t, req)
		if got := resp.Header.Get("Content-Encoding"); got != tc.want {
			t.Errorf("Accept-Encoding %s: Content-Encoding %q, want %q", tc.accept, got, tc.want)
		}
		if vary := resp.Header.Values("Vary"); !slices.Contains(vary, "Accept-Encoding") {
			t.Errorf("Accept-Encoding %q: Vary %q, want Accept-Encoding in it", tc.accept, vary)
		}
		plain, err := tc.decode(raw)
		if err != nil || !json.Valid(plain) || !bytes.Contains(plain, []byte(`"chat.completion"`)) {
			t.Errorf("Accept-Encoding %s: body does not decode to the answer: %v", tc.accept, err)
		}
	}

	// Streams are never compressed, even when the client would accept it.
	req, _ := http.NewRequest("POST", g.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"glm4","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Accept-Encoding", "gzip, zstd")
	resp, raw := rawDo(t, req)
	if resp.Header.Get("Content-Encoding") != "" || !bytes.HasPrefix(raw, []byte("data: ")) {
		t.Errorf("SSE was compressed: %q %q", resp.Header.Get("Content-Encoding"), raw[:min(20, len(raw))])
	}
}

func TestCompressedRequestBodies(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 3})
	g := startGateway(t, oneModel(mockURL, "")+"server:\n  max_body_bytes: 65536\n", nil)
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		_, _ = w.Write([]byte(s))
		_ = w.Close()
		return b.Bytes()
	}
	req, _ := http.NewRequest("POST", g.URL+"/v1/chat/completions",
		bytes.NewReader(gz(`{"model":"glm4","messages":[{"role":"user","content":"hi"}]}`)))
	req.Header.Set("Content-Encoding", "gzip")
	resp, b := rawDo(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("gzip request body: %d %s", resp.StatusCode, b)
	}
	// 1 MiB of JSON compresses to about 1 KiB; the limit applies to what it expands to.
	bomb := gz(`{"model":"glm4","messages":[{"role":"user","content":"` + strings.Repeat("a", 1<<20) + `"}]}`)
	req, _ = http.NewRequest("POST", g.URL+"/v1/chat/completions", bytes.NewReader(bomb))
	req.Header.Set("Content-Encoding", "gzip")
	resp, b = rawDo(t, req)
	if resp.StatusCode != 413 || len(bomb) > 65536 {
		t.Errorf("compressed body expanding past the limit: %d (%d bytes compressed) %s", resp.StatusCode, len(bomb), b)
	}
}
