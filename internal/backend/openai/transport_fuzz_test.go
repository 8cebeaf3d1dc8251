package openai

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// FuzzDirectPathAnswer feeds arbitrary bytes to the direct path as an upstream's answer: it
// must return an error or a response whose body reads to an end, never panic or hang.
func FuzzDirectPathAnswer(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n6\r\ndata: \r\n0\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 500 Internal Server Error\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("h", 2048) + "\r\n\r\n",
		"garbage\r\n\r\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		tr := &Transport{
			Std:            &http.Transport{},
			MaxHeaderBytes: 1 << 10,
			Dial: func(context.Context, string, string) (net.Conn, error) {
				client, server := net.Pipe()
				go func() {
					defer server.Close()
					req, err := http.ReadRequest(bufio.NewReader(server))
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					_, _ = server.Write(answer)
				}()
				return client, nil
			},
		}
		req, _ := http.NewRequest(http.MethodPost, "http://upstream.test/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return
		}
		if resp.StatusCode < 200 || resp.StatusCode > 999 {
			t.Errorf("status %d handed out", resp.StatusCode)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		_ = resp.Body.Close()
		tr.CloseIdleConnections()
	})
}

// FuzzWriteHeader holds writeHeader to http.Header.Write: the same lines (in another order,
// less Host and Content-Length), for any field name and value a client could send, so a value
// can never start a field of its own.
func FuzzWriteHeader(f *testing.F) {
	f.Add("X-Custom", "plain")
	f.Add("X-Inject", "a\r\nEvil: yes")
	f.Add("Bad Name", "v")
	f.Add("X-Space", " \t padded \r\n")
	f.Add("", "empty name")
	f.Add("Content-Length", "0")
	f.Add("Host", "elsewhere.example")
	f.Add("X-Utf8", "h\u00e9\x00\x7f")
	f.Fuzz(func(t *testing.T, name, value string) {
		h := http.Header{"User-Agent": {"ua"}, "Accept": {"application/json", "text/plain"}}
		h[name] = append(h[name], value)
		// The transport frames the request itself: a Host or Content-Length field is dropped.
		hw := h.Clone()
		delete(hw, "Host")
		delete(hw, "Content-Length")
		var want strings.Builder
		if err := hw.Write(&want); err != nil {
			t.Fatal(err)
		}
		var got strings.Builder
		w := bufio.NewWriter(&got)
		writeHeader(w, h)
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		lines := func(s string) []string {
			l := strings.SplitAfter(s, "\r\n")
			slices.Sort(l)
			return l
		}
		if g, w := lines(got.String()), lines(want.String()); !slices.Equal(g, w) {
			t.Fatalf("writeHeader wrote\n%q\nHeader.Write\n%q", g, w)
		}
	})
}
