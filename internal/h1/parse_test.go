package h1

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
)

// FuzzReadHead feeds arbitrary bytes to the request-head parser and the body reader: they must
// never panic, never keep more than the limit, and a head they accept must be well formed.
func FuzzReadHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /v1/chat/completions HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: v\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"\r\nGET http://h/x?y=1 HTTP/1.1\nHost: h\n\n",
		"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
		"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	const max, fields = 512, 16
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(in), 64)
		h := new(head)
		raw, err := readHead(br, h, nil, max, fields)
		if len(raw) > max {
			t.Fatalf("kept %d bytes of head, limit %d", len(raw), max)
		}
		if err != nil {
			return
		}
		if !bytes.HasPrefix(in, raw) {
			t.Fatalf("raw head %q is not what was read", raw)
		}
		if h.handOff {
			return
		}
		if h.major != 1 || h.minor > 1 || h.minor < 0 {
			t.Fatalf("accepted version %d.%d", h.major, h.minor)
		}
		if h.contentLength < -1 || h.chunked != (h.contentLength == -1) {
			t.Fatalf("length %d chunked %v", h.contentLength, h.chunked)
		}
		n := 0
		for k, vs := range h.header {
			n += len(vs)
			if strings.ContainsAny(k, " :\r\n") {
				t.Fatalf("field name %q", k)
			}
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n\x00") {
					t.Fatalf("field value %q", v)
				}
			}
		}
		if n > fields {
			t.Fatalf("%d fields accepted, limit %d", n, fields)
		}
		if _, err := parseTarget(h.method, h.target); err != nil {
			return
		}
		if h.contentLength != 0 {
			b := newBody(br, h, max)
			got, err := io.ReadAll(io.LimitReader(b, 1<<20))
			if err == nil && !h.chunked && int64(len(got)) != h.contentLength {
				t.Fatalf("read %d bytes of a %d-byte body without an error", len(got), h.contentLength)
			}
		}
	})
}

// BenchmarkReadHead parses one chat-completion request head as an SDK sends it, with its
// field names in canonical case and with the same names all in lower case, as some clients
// send them: the parser's own cost, without the socket.
func BenchmarkReadHead(b *testing.B) {
	fields := []string{"Host: 127.0.0.1:8080", "User-Agent: OpenAI/Python 1.40.0",
		"Accept: application/json", "Accept-Encoding: gzip, deflate", "Connection: keep-alive",
		"Content-Type: application/json", "Authorization: Bearer sk-x", "X-Stainless-Lang: python",
		"X-Stainless-Package-Version: 1.40.0", "Content-Length: 80"}
	for _, c := range []struct {
		name  string
		lower bool
	}{{"canonical", false}, {"lower", true}} {
		var req strings.Builder
		req.WriteString("POST /v1/chat/completions HTTP/1.1\r\n")
		for _, f := range fields {
			if c.lower {
				name, value, _ := strings.Cut(f, ":")
				f = strings.ToLower(name) + ":" + value
			}
			req.WriteString(f + "\r\n")
		}
		req.WriteString("\r\n")
		s := req.String()
		b.Run(c.name, func(b *testing.B) {
			r := strings.NewReader(s)
			br := bufio.NewReaderSize(r, 4<<10)
			h := new(head)
			var raw []byte
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(s)
				br.Reset(r)
				var err error
				if raw, err = readHead(br, h, raw, 64<<10, 128); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
