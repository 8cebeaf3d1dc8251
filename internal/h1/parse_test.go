package h1

import (
	"bufio"
	"bytes"
	"io"
	"reflect"
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
		// The same head read after another on one connection (whose values a head may reuse),
		// and after itself, reads as it does alone.
		for _, before := range []string{sdkHead, string(in)} {
			again := new(head)
			_, _ = readHead(bufio.NewReader(strings.NewReader(before)), again, nil, max, fields)
			_, aerr := readHead(bufio.NewReaderSize(bytes.NewReader(in), 64), again, nil, max, fields)
			if (aerr == nil) != (err == nil) {
				t.Fatalf("alone: %v; after %q: %v", err, before, aerr)
			}
			if err == nil && !sameHead(h, again) {
				t.Fatalf("after %q read %+v, alone %+v", before, again, h)
			}
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

// sdkHead is a head as an SDK sends it, a field repeated.
const sdkHead = "POST /v1/chat/completions HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n" +
	"Authorization: Bearer k\r\nX-A: 1\r\nX-A: 2\r\nContent-Length: 2\r\n\r\n{}"

// sameHead reports whether a and b were read as the same request.
func sameHead(a, b *head) bool {
	return a.method == b.method && a.target == b.target && a.proto == b.proto && a.major == b.major &&
		a.minor == b.minor && reflect.DeepEqual(a.header, b.header) && a.contentLength == b.contentLength &&
		a.chunked == b.chunked && a.close == b.close && a.host == b.host && a.handOff == b.handOff
}

// TestReadHeadAgain reads several requests on one connection whose fields change, move and
// repeat between them: each reads as it would alone, and a head sent again as it was before
// does not copy its values again.
func TestReadHeadAgain(t *testing.T) {
	heads := []string{
		sdkHead,
		"POST /v1/chat/completions HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nAuthorization: Bearer other\r\nX-A: 2\r\nX-A: 1\r\nContent-Length: 2\r\n\r\n{}",
		"POST /v1/embeddings HTTP/1.1\r\nAuthorization: Bearer k\r\nHost: h2\r\nX-A: 1\r\nContent-Length: 2\r\n\r\n{}",
		"GET /v1/models HTTP/1.1\r\nHost: h2\r\n\r\n",
		sdkHead,
	}
	var all strings.Builder
	for _, s := range heads {
		all.WriteString(s)
	}
	br := bufio.NewReader(strings.NewReader(all.String()))
	h := new(head)
	for i, s := range heads {
		if _, err := readHead(br, h, nil, 64<<10, 128); err != nil {
			t.Fatalf("head %d: %v", i, err)
		}
		if h.contentLength > 0 {
			_, _ = io.CopyN(io.Discard, br, h.contentLength)
		}
		alone := new(head)
		if _, err := readHead(bufio.NewReader(strings.NewReader(s)), alone, nil, 64<<10, 128); err != nil {
			t.Fatal(err)
		}
		if !sameHead(h, alone) {
			t.Fatalf("head %d read after the others as %+v, alone as %+v", i, h, alone)
		}
	}
	// A value handed to one request is never changed by the next.
	first := new(head)
	br = bufio.NewReader(strings.NewReader(heads[0] + heads[1]))
	_, _ = readHead(br, first, nil, 64<<10, 128)
	auth := first.header["Authorization"]
	xa := first.header["X-A"]
	_, _ = io.CopyN(io.Discard, br, 2)
	_, _ = readHead(br, first, nil, 64<<10, 128)
	if auth[0] != "Bearer k" || len(xa) != 2 || xa[0] != "1" || xa[1] != "2" {
		t.Fatalf("the first request's values changed: %q %q", auth, xa)
	}

	r := strings.NewReader(sdkHead)
	br = bufio.NewReader(r)
	raw := make([]byte, 0, 4<<10) // the connection's, as the server keeps it
	fresh := testing.AllocsPerRun(50, func() {
		r.Reset(sdkHead)
		br.Reset(r)
		_, _ = readHead(br, new(head), raw, 64<<10, 128)
	})
	h = new(head)
	reused := testing.AllocsPerRun(50, func() {
		r.Reset(sdkHead)
		br.Reset(r)
		_, _ = readHead(br, h, raw, 64<<10, 128)
	})
	t.Logf("allocations: a first head %.0f, the same head again %.0f", fresh, reused)
	// Its target and six field values are not copied again (internValue spares the first
	// head only Content-Type's).
	if fresh-reused < 5 {
		t.Errorf("a head sent again allocated %.0f times, a first one %.0f", reused, fresh)
	}
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
