package openai

import (
	"bufio"
	"errors"
	"io"
	"math"
	"net/http"
	"net/textproto"
	"strconv"

	"github.com/open-autoglm/autoglm/internal/httphead"
)

// readResponse reads an answer's status line and header from br for the direct path. It gives
// what http.ReadResponse gives for the answers it accepts — the same status, header map,
// content length, chunking and Close, with the same framing rules (FuzzReadResponse holds it
// to them) — and refuses a few that http.ReadResponse takes leniently: an HTTP version other
// than 1.0 and 1.1, a status code that is not three digits, a header line folded over two
// lines or a field name with a space in it.
//
// Why: http.ReadResponse goes through net/textproto, which makes a string and a slice for
// every field and canonicalises every name. An answer's head is read on the way from the
// upstream to the client, so its cost is latency added to every request. Here the head is
// copied into one string, the values share one slice, and the names upstreams send are matched
// to their canonical forms without allocating.
//
// The body's framing comes back in f; the caller reads the body from br through it.
func readResponse(br *bufio.Reader, method string) (resp *http.Response, f framing, err error) {
	var stack [1024]byte
	head := stack[:0]
	head, err = appendLine(head, br)
	if err != nil {
		return nil, f, headErr(err)
	}
	statusEnd := len(head)
	// Each field's name and value, as offsets into head.
	type field struct{ name, colon, value, end int }
	var fieldsStack [16]field
	fields := fieldsStack[:0]
	for {
		start := len(head)
		head, err = appendLine(head, br)
		if err != nil {
			return nil, f, headErr(err)
		}
		if len(head) == start {
			break
		}
		if len(fields) == maxResponseFields {
			return nil, f, errors.New("upstream answer has too many header fields")
		}
		colon, v, e, ok := httphead.SplitField(head[start:])
		if !ok {
			return nil, f, errors.New("malformed upstream header line")
		}
		fields = append(fields, field{start, start + colon, start + v, start + e})
	}
	text := string(head) // one string: the status line and every value are parts of it

	resp = &http.Response{Header: make(http.Header, len(fields))}
	line := text[:statusEnd]
	switch {
	case len(line) >= 9 && line[:9] == "HTTP/1.1 ":
		resp.Proto, resp.ProtoMajor, resp.ProtoMinor = "HTTP/1.1", 1, 1
	case len(line) >= 9 && line[:9] == "HTTP/1.0 ":
		resp.Proto, resp.ProtoMajor, resp.ProtoMinor = "HTTP/1.0", 1, 0
	default:
		return nil, f, errors.New("malformed upstream status line")
	}
	status := line[9:]
	for len(status) > 0 && status[0] == ' ' {
		status = status[1:]
	}
	if len(status) < 3 || len(status) > 3 && status[3] != ' ' ||
		!digit(status[0]) || !digit(status[1]) || !digit(status[2]) {
		return nil, f, errors.New("malformed upstream status code")
	}
	resp.Status = status
	resp.StatusCode = int(status[0]-'0')*100 + int(status[1]-'0')*10 + int(status[2]-'0')

	values := make([]string, len(fields))
	for i, fl := range fields {
		key := canonicalKey(head[fl.name:fl.colon], text[fl.name:fl.colon])
		values[i] = text[fl.value:fl.end]
		if vs, ok := resp.Header[key]; ok {
			resp.Header[key] = append(vs, values[i])
		} else {
			resp.Header[key] = values[i : i+1 : i+1]
		}
	}
	h := resp.Header
	if _, ok := h["Pragma"]; ok {
		if _, ok := h["Cache-Control"]; !ok && h.Get("Pragma") == "no-cache" {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}

	// Framing, by net/http's rules for answers (transfer.go: readTransfer, fixLength).
	resp.Close = closeAfter(resp.ProtoMinor, h)
	if te, ok := h["Transfer-Encoding"]; ok {
		delete(h, "Transfer-Encoding")
		if resp.ProtoMinor == 1 {
			if len(te) != 1 || !httphead.EqualFold(te[0], "chunked") {
				return nil, f, errors.New("upstream answer has an unsupported Transfer-Encoding")
			}
			f.chunked = true
		}
	}
	cls := h["Content-Length"]
	if len(cls) > 1 {
		first := textproto.TrimString(cls[0])
		for _, cl := range cls[1:] {
			if textproto.TrimString(cl) != first {
				return nil, f, errors.New("upstream answer has differing Content-Length fields")
			}
		}
		cls = []string{first}
		h["Content-Length"] = cls
	}
	var declared int64 = -1
	if len(cls) > 0 {
		if declared, err = contentLength(cls[0]); err != nil {
			return nil, f, err
		}
	}
	bodyAllowed := resp.StatusCode/100 != 1 && resp.StatusCode != http.StatusNoContent &&
		resp.StatusCode != http.StatusNotModified
	var length int64 // as net/http's fixLength: 0 none, -1 chunked or to the end
	switch {
	case method == http.MethodHead || !bodyAllowed:
	case f.chunked:
		delete(h, "Content-Length") // the chunking overrides it
		length = -1
	case len(cls) > 0:
		length = declared
	default:
		length = -1
	}
	resp.ContentLength = length
	if method == http.MethodHead {
		resp.ContentLength = declared
	}
	if tr, ok := h["Trailer"]; ok && f.chunked {
		// As net/http does (fixTrailer): the announcement is dropped, and one naming a field
		// that frames the message is refused.
		delete(h, "Trailer")
		if httphead.HasToken(tr, "Transfer-Encoding") || httphead.HasToken(tr, "Trailer") ||
			httphead.HasToken(tr, "Content-Length") {
			return nil, f, errors.New("upstream answer announces a bad trailer field")
		}
	}
	if f.chunked {
		resp.TransferEncoding = []string{"chunked"}
	}
	if length == -1 && !f.chunked && bodyAllowed {
		resp.Close = true // the body runs to the connection's end
	}
	switch {
	case f.chunked:
		f.none = method == http.MethodHead || !bodyAllowed
		f.length = -1
	case length > 0:
		f.length = length
	case length == -1 && resp.Close:
		f.length = -1
	default:
		f.none = true
	}
	return resp, f, nil
}

// framing is how an answer's body is delimited.
type framing struct {
	none    bool  // no body
	chunked bool  // chunked (length is -1)
	length  int64 // the body's length; -1: chunked, or to the connection's end
}

// maxResponseFields bounds the header fields of one answer (the byte limit,
// Transport.MaxHeaderBytes, bounds the rest).
const maxResponseFields = 256

// maxTrailerBytes bounds the trailer after a chunked body (net/http looks no further than
// its read buffer for the trailer's end).
const maxTrailerBytes = 1 << 10

// appendLine appends the next line of br to dst without its line end (LF or CRLF).
func appendLine(dst []byte, br *bufio.Reader) ([]byte, error) {
	start := len(dst)
	dst, err := appendRawLine(dst, br)
	if err != nil {
		return dst, err
	}
	return dst[:start+len(httphead.TrimLineEnd(dst[start:]))], nil
}

// headErr is the error of a head that could not be read.
func headErr(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readTrailer reads what follows a chunked body's last chunk: trailer fields, which are
// dropped, up to the blank line that ends the answer. As net/http, it wants CRLF line ends
// here; it refuses a trailer longer than maxTrailerBytes and any line net/http would.
func readTrailer(br *bufio.Reader) error {
	var stack [256]byte
	total := 0
	for {
		raw, err := appendRawLine(stack[:0], br)
		if err != nil {
			return headErr(err)
		}
		if total += len(raw); total > maxTrailerBytes {
			return errors.New("upstream answer has too long a trailer")
		}
		if len(raw) < 2 || raw[len(raw)-2] != '\r' {
			return errors.New("malformed upstream trailer")
		}
		line := raw[:len(raw)-2]
		if len(line) == 0 {
			return nil
		}
		if _, _, _, ok := httphead.SplitField(line); !ok {
			return errors.New("malformed upstream trailer")
		}
	}
}

// appendRawLine appends the next line of br to dst, line end included. It sets no limit of its
// own: the connection's reader stops at Transport.MaxHeaderBytes.
func appendRawLine(dst []byte, br *bufio.Reader) ([]byte, error) {
	return httphead.AppendLine(dst, br, math.MaxInt)
}

// contentLength parses a Content-Length value as net/http does.
func contentLength(v string) (int64, error) {
	v = textproto.TrimString(v)
	n, err := strconv.ParseUint(v, 10, 63)
	if v == "" || err != nil {
		return 0, errors.New("upstream answer has a bad Content-Length")
	}
	return int64(n), nil
}

// closeAfter reports whether the connection ends after this answer (net/http's
// shouldClose); an HTTP/1.1 answer's "Connection: close" is removed, as net/http removes it.
func closeAfter(minor int, h http.Header) bool {
	conn := h["Connection"]
	hasClose := httphead.HasToken(conn, "close")
	if minor == 0 {
		return hasClose || !httphead.HasToken(conn, "keep-alive")
	}
	if hasClose {
		delete(h, "Connection")
	}
	return hasClose
}

// commonKeys are the canonical names of the fields upstreams send most, so that naming one
// costs no allocation, in whatever case the upstream writes it.
var commonKeys = []string{
	"Content-Type", "Content-Length", "Transfer-Encoding", "Connection", "Date", "Server",
	"Cache-Control", "X-Request-Id", "Openai-Processing-Ms", "Openai-Version", "Openai-Model",
	"Openai-Organization", "Retry-After", "Keep-Alive", "Vary", "Access-Control-Allow-Origin",
	"Strict-Transport-Security", "Set-Cookie", "X-Content-Type-Options", "Content-Encoding",
	"Pragma", "Trailer", "Location", "Alt-Svc", "Via", "Cf-Ray", "Cf-Cache-Status",
	"X-Ratelimit-Limit-Requests", "X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Requests",
	"X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Requests", "X-Ratelimit-Reset-Tokens",
}

// answerNames is the table of commonKeys.
var answerNames = httphead.NewNames(commonKeys...)

// canonicalKey is the canonical form of a field name (a token; b, and s holding the same
// bytes). One of commonKeys costs no allocation, and nor does another name already in
// canonical form, which comes back as s.
func canonicalKey(b []byte, s string) string {
	if k, ok := answerNames.Lookup(b); ok {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(s)
}

func digit(c byte) bool { return '0' <= c && c <= '9' }
