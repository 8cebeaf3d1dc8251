package openai

import (
	"bufio"
	"bytes"
	"io"
	"maps"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"slices"
	"strings"
	"testing"
)

// readBoth reads answer with readResponse, and with http.ReadResponse as the standard. A
// body is read to its end through the framing, as the direct path's body does.
func readBoth(answer []byte, method string) (mine *http.Response, mineBody []byte, mineErr error,
	std *http.Response, stdBody []byte, stdErr error) {
	br := bufio.NewReaderSize(bytes.NewReader(answer), 4<<10)
	mine, f, mineErr := readResponse(br, method)
	if mineErr == nil {
		b := &body{t: &Transport{}, c: &conn{br: br}, stop: func() bool { return false }, left: f.length}
		b.done.Store(true) // no connection to hand back
		if f.chunked {
			b.chunks = httputil.NewChunkedReader(br)
		}
		if !f.none {
			mineBody, mineErr = io.ReadAll(b)
		}
	}
	sbr := bufio.NewReaderSize(bytes.NewReader(answer), 4<<10)
	std, stdErr = http.ReadResponse(sbr, &http.Request{Method: method})
	if stdErr == nil {
		stdBody, stdErr = io.ReadAll(std.Body)
	}
	return
}

// FuzzReadResponse holds readResponse to http.ReadResponse: an answer it accepts is one
// net/http accepts, with the same status, header, length, chunking and Close, and a body
// that reads the same bytes and fails or ends where net/http's does. (It may refuse answers
// net/http takes leniently: see readResponse.)
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n6\r\ndata: \r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n1\r\nx\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n1\r\nx\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nraw to the end",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
		"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, close\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3 \r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
		"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n",
		"HTTP/1.1   200   spaced reason\r\nx-request-id: abc\r\nOPENAI-VERSION: 2020-10-01\r\n\r\n",
		"HTTP/1.1 200\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
		"HTTP/1.1 200 OK\r\nX-Fold: a\r\n b\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Ctl: a\x01b\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad Name: v\r\n\r\n",
		"HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Dup: 1\r\nx-dup: 2\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("h", 5000) + "\r\nContent-Length: 0\r\n\r\n",
		"HTTP/2.0 200 OK\r\n\r\n",
		"HTTP/1.1 +20 OK\r\n\r\n",
		"HTTP/1.1 2000 OK\r\n\r\n",
		"garbage\r\n\r\n",
		"",
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), true)
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, answer []byte, head bool) {
		method := http.MethodPost
		if head {
			method = http.MethodHead
		}
		mine, mineBody, mineErr, std, stdBody, stdErr := readBoth(answer, method)
		if mine == nil {
			return // refused: allowed, stricter than net/http
		}
		if std == nil {
			t.Fatalf("accepted an answer net/http refuses (%v): %q", stdErr, answer)
		}
		if mine.StatusCode != std.StatusCode || mine.Status != std.Status || mine.Proto != std.Proto ||
			mine.ProtoMajor != std.ProtoMajor || mine.ProtoMinor != std.ProtoMinor {
			t.Fatalf("status: %d %q %q, net/http %d %q %q", mine.StatusCode, mine.Status, mine.Proto, std.StatusCode, std.Status, std.Proto)
		}
		if !maps.EqualFunc(mine.Header, std.Header, slices.Equal) {
			t.Fatalf("header:\n%q\nnet/http:\n%q", mine.Header, std.Header)
		}
		if mine.ContentLength != std.ContentLength || mine.Close != std.Close ||
			!slices.Equal(mine.TransferEncoding, std.TransferEncoding) {
			t.Fatalf("framing: length %d close %v te %q, net/http: %d %v %q", mine.ContentLength, mine.Close,
				mine.TransferEncoding, std.ContentLength, std.Close, std.TransferEncoding)
		}
		if !bytes.Equal(mineBody, stdBody) || (mineErr == nil) != (stdErr == nil) {
			t.Fatalf("body %q (%v), net/http %q (%v)", mineBody, mineErr, stdBody, stdErr)
		}
	})
}

// TestReadResponseRefusals: the answers readResponse refuses where net/http is lenient, and
// the ones it must refuse as net/http does.
func TestReadResponseRefusals(t *testing.T) {
	for _, s := range []string{
		"HTTP/2.0 200 OK\r\n\r\n",
		"HTTP/1.1 +20 OK\r\n\r\n",
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/1.1 200\tOK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Fold: a\r\n b\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad Name: v\r\n\r\n",
		"HTTP/1.1 200 OK\r\n: v\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chun\u212aed\r\n\r\n0\r\n\r\n", // a Kelvin sign is no k: only ASCII letters fold
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: y\r\n", // cut short
		"HTTP/1.1 200 OK\r\n" + strings.Repeat("X: y\r\n", maxResponseFields+1) + "\r\n",
	} {
		if resp, _, err := readResponse(bufio.NewReader(strings.NewReader(s)), http.MethodPost); err == nil {
			t.Errorf("accepted %q: status %d", s, resp.StatusCode)
		}
	}
}

// TestCommonKeysAreCanonical: the names matched without allocating are the canonical ones.
func TestCommonKeysAreCanonical(t *testing.T) {
	for _, k := range commonKeys {
		if c := textproto.CanonicalMIMEHeaderKey(k); c != k {
			t.Errorf("%q is not canonical (%q)", k, c)
		}
	}
}

// BenchmarkReadHead reads the head of a streamed answer as an OpenAI-style upstream sends it,
// and its first event, with readResponse and with http.ReadResponse.
func BenchmarkReadHead(b *testing.B) {
	answer := []byte("HTTP/1.1 200 OK\r\nDate: Sun, 06 Dec 2026 09:00:00 GMT\r\nContent-Type: text/event-stream\r\n" +
		"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\nCache-Control: no-cache, must-revalidate\r\n" +
		"X-Request-Id: req_0123456789abcdef\r\nOpenai-Processing-Ms: 12\r\nOpenai-Version: 2020-10-01\r\n" +
		"Openai-Organization: org-x\r\nX-Ratelimit-Remaining-Requests: 4999\r\nX-Ratelimit-Remaining-Tokens: 159000\r\n" +
		"Strict-Transport-Security: max-age=31536000\r\nServer: upstream\r\n\r\n" +
		"f\r\ndata: {\"a\":1}\n\n\r\n0\r\n\r\n")
	r := bytes.NewReader(answer)
	br := bufio.NewReaderSize(r, 4<<10)
	buf := make([]byte, 256)
	b.Run("readResponse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.Reset(answer)
			br.Reset(r)
			resp, f, err := readResponse(br, http.MethodPost)
			if err != nil || !f.chunked || resp.Header.Get("X-Request-Id") == "" {
				b.Fatal(err)
			}
			if _, err := httputil.NewChunkedReader(br).Read(buf); err != nil && err != io.EOF {
				b.Fatal(err)
			}
		}
	})
	b.Run("http.ReadResponse", func(b *testing.B) {
		b.ReportAllocs()
		req := &http.Request{Method: http.MethodPost}
		for b.Loop() {
			r.Reset(answer)
			br.Reset(r)
			resp, err := http.ReadResponse(br, req)
			if err != nil || resp.Header.Get("X-Request-Id") == "" {
				b.Fatal(err)
			}
			if _, err := resp.Body.Read(buf); err != nil && err != io.EOF {
				b.Fatal(err)
			}
		}
	})
}
