package h1

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"

	"github.com/open-autoglm/autoglm/internal/httphead"
)

// parseError is a request the server refuses before calling the handler: status is the
// answer (400, 431, 501, 505), msg its plain-text body.
type parseError struct {
	status int
	msg    string
}

func (e *parseError) Error() string { return e.msg }

var (
	errHeaderTooLarge = &parseError{http.StatusRequestHeaderFieldsTooLarge, "request header too large"}
	errTooManyHeaders = &parseError{http.StatusRequestHeaderFieldsTooLarge, "too many header fields"}
	errBadRequestLine = &parseError{http.StatusBadRequest, "malformed request line"}
	errBadHeader      = &parseError{http.StatusBadRequest, "malformed header field"}
	errBadVersion     = &parseError{http.StatusHTTPVersionNotSupported, "unsupported HTTP version"}
	errNoHost         = &parseError{http.StatusBadRequest, "missing Host header"}
	errBadLength      = &parseError{http.StatusBadRequest, "invalid Content-Length"}
	errBadEncoding    = &parseError{http.StatusNotImplemented, "unsupported Transfer-Encoding"}
	errLengthAndChunk = &parseError{http.StatusBadRequest, "both Content-Length and Transfer-Encoding"}
)

// head is a parsed request head: the request line and the header, before a body is attached.
type head struct {
	method, target, proto string
	major, minor          int
	header                http.Header
	contentLength         int64 // -1: chunked
	chunked               bool
	close                 bool // the client asked to close after this request (or is HTTP/1.0 without keep-alive)
	host                  string
	handOff               bool // Upgrade, Expect or the HTTP/2 preface: for the fallback server

	// seen is the previous request's target and field values on this connection, and spare
	// the list the next one is built in. A client sends most of its fields the same on every
	// request of a connection, and a value equal to the one before is taken from seen instead
	// of copied: strings do not change, and none leaves the connection they came on.
	seen, spare []field
}

// field is one header field of a request: its canonical name and its value. The request
// target is kept as a field with an empty name.
type field struct{ key, value string }

// again gives v as a string: the one in seen with the same name and value when there is one
// at index i, where a client that sends its fields in the same order has it, or next to it
// (a field added or left out before this one), else a copy. It looks no further, so that a
// head's cost stays linear in its fields however they change.
func again(seen []field, i int, key string, v []byte) string {
	for _, j := range [3]int{i, i - 1, i + 1} {
		if j >= 0 && j < len(seen) && seen[j].key == key && seen[j].value == string(v) {
			return seen[j].value
		}
	}
	return internValue(key, v)
}

// readHead reads one request head from br into h, copying its raw bytes into raw (for a hand-off
// to the fallback server), and refusing it — before allocating past the limit — when the head
// is longer than maxBytes or has more than maxFields fields.
func readHead(br *bufio.Reader, h *head, raw []byte, maxBytes, maxFields int) ([]byte, error) {
	raw = raw[:0]
	line, raw, err := readLine(br, raw, maxBytes)
	if err != nil {
		return raw, err
	}
	// Tolerate one empty line before the request line, as RFC 9112 section 2.2 asks.
	if len(line) == 0 {
		if line, raw, err = readLine(br, raw, maxBytes); err != nil {
			return raw, err
		}
	}
	seen, next := h.seen, h.spare[:0]
	*h = head{seen: seen, spare: next}
	if err := h.parseRequestLine(line); err != nil {
		return raw, err
	}
	next = append(next, field{value: h.target})
	if h.method == "PRI" && h.target == "*" && h.proto == "HTTP/2.0" {
		// The HTTP/2 connection preface: its "SM\r\n\r\n" follows; the fallback reads it.
		h.handOff = true
		return raw, nil
	}
	h.header = make(http.Header, 8)
	// The values' slices share one array: one allocation for the header instead of one per
	// field. Each is capped at its one value, so that a repeated field's append copies.
	values := make([]string, 0, max(len(seen), 8))
	fields := 0
	var lengths []byte
	sawLength := false
	for {
		line, raw, err = readLine(br, raw, maxBytes)
		if err != nil {
			return raw, err
		}
		if len(line) == 0 {
			break
		}
		if fields++; fields > maxFields {
			return raw, errTooManyHeaders
		}
		// A line folded onto the one before (obsolete) starts with a blank: SplitField refuses
		// it, as a name cannot hold one.
		colon, v, e, ok := httphead.SplitField(line)
		if !ok {
			return raw, errBadHeader
		}
		value := line[v:e]
		key := canonicalKey(line[:colon])
		val := again(seen, len(next), key, value)
		switch key {
		case "Content-Length":
			if sawLength && !bytes.Equal(lengths, value) {
				return raw, errBadLength
			}
			sawLength, lengths = true, value
		case "Host":
			if h.host != "" {
				return raw, &parseError{http.StatusBadRequest, "more than one Host header"}
			}
			h.host = val
			if h.host == "" {
				h.host = " " // present but empty: allowed, not "missing"
			}
		case "Upgrade", "Expect":
			h.handOff = true
		}
		next = append(next, field{key, val})
		if vs, ok := h.header[key]; ok {
			h.header[key] = append(vs, val)
		} else {
			values = append(values, val)
			n := len(values)
			h.header[key] = values[n-1 : n : n]
		}
	}
	h.seen, h.spare = next, seen[:0]
	if h.host == "" && h.minor >= 1 {
		return raw, errNoHost
	}
	if h.host == " " {
		h.host = ""
	}
	conn := h.header["Connection"]
	h.close = httphead.HasToken(conn, "close")
	if h.minor == 0 && !httphead.HasToken(conn, "keep-alive") {
		h.close = true
	}
	if te, ok := h.header["Transfer-Encoding"]; ok {
		if len(te) != 1 || !httphead.EqualFold(te[0], "chunked") || h.minor == 0 {
			return raw, errBadEncoding
		}
		if sawLength {
			return raw, errLengthAndChunk
		}
		h.chunked, h.contentLength = true, -1
		delete(h.header, "Transfer-Encoding")
	} else if sawLength {
		n, err := strconv.ParseInt(string(lengths), 10, 64)
		if err != nil || n < 0 || len(lengths) == 0 || lengths[0] == '+' {
			return raw, errBadLength
		}
		h.contentLength = n
	}
	return raw, nil
}

// readLine reads one CRLF- (or LF-) terminated line, appending its bytes to raw and returning
// the line without its terminator. It fails once raw would grow past max.
func readLine(br *bufio.Reader, raw []byte, max int) ([]byte, []byte, error) {
	start := len(raw)
	raw, err := httphead.AppendLine(raw, br, max)
	if err == httphead.ErrTooLong {
		return nil, raw, errHeaderTooLarge
	}
	if err != nil {
		return nil, raw, err
	}
	return httphead.TrimLineEnd(raw[start:]), raw, nil
}

func (h *head) parseRequestLine(line []byte) error {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return errBadRequestLine
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return errBadRequestLine
	}
	method, target, proto := line[:sp1], rest[:sp2], rest[sp2+1:]
	if !httphead.IsToken(method) {
		return errBadRequestLine
	}
	for _, c := range target {
		if c <= ' ' || c == 0x7f {
			return errBadRequestLine
		}
	}
	switch string(proto) {
	case "HTTP/1.1":
		h.proto, h.major, h.minor = "HTTP/1.1", 1, 1
	case "HTTP/1.0":
		h.proto, h.major, h.minor = "HTTP/1.0", 1, 0
	case "HTTP/2.0":
		h.proto, h.major, h.minor = "HTTP/2.0", 2, 0
	default:
		if len(proto) > 5 && string(proto[:5]) == "HTTP/" {
			return errBadVersion
		}
		return errBadRequestLine
	}
	h.method = internMethod(method)
	h.target = again(h.seen, 0, "", target)
	if h.major == 2 && (h.method != "PRI" || h.target != "*") {
		return errBadVersion
	}
	return nil
}

// parseTarget turns the request target into a URL as net/http does: origin form
// ("/path?q"), absolute form ("http://host/path"), or "*" for OPTIONS.
func parseTarget(method, target string) (*url.URL, error) {
	if target == "*" && method == http.MethodOptions {
		return &url.URL{Path: "*"}, nil
	}
	if method == http.MethodConnect {
		return nil, errors.New("CONNECT is not served")
	}
	return url.ParseRequestURI(target)
}

var methods = []string{http.MethodGet, http.MethodPost, http.MethodHead, http.MethodPut,
	http.MethodDelete, http.MethodPatch, http.MethodOptions, http.MethodConnect, http.MethodTrace, "PRI"}

func internMethod(b []byte) string {
	for _, m := range methods {
		if string(b) == m {
			return m
		}
	}
	return string(b)
}

// requestNames are the canonical names of the header fields most requests carry, so that
// canonicalKey allocates nothing for them, in whatever case a client writes them.
var requestNames = httphead.NewNames("Accept", "Accept-Encoding", "Accept-Language",
	"Authorization", "Cache-Control", "Connection", "Content-Length", "Content-Type", "Cookie",
	"Expect", "Host", "Idempotency-Key", "Origin", "Referer", "Te", "Trailer", "Transfer-Encoding",
	"Upgrade", "User-Agent", "X-Api-Key", "X-Forwarded-For", "X-Request-Id", "X-Trace-Id",
	"Traceparent", "Tracestate", "Openai-Organization", "Openai-Project", "X-Stainless-Lang")

// canonicalKey is the canonical form of the field name name (a token), as
// textproto.CanonicalMIMEHeaderKey makes it; one of requestNames costs no allocation.
func canonicalKey(name []byte) string {
	if k, ok := requestNames.Lookup(name); ok {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(string(name))
}

// internValue avoids an allocation for the values a benchmark client and most SDKs send
// on every request.
func internValue(key string, v []byte) string {
	switch key {
	case "Content-Type":
		if string(v) == "application/json" {
			return "application/json"
		}
	case "Accept":
		if string(v) == "*/*" {
			return "*/*"
		}
		if string(v) == "text/event-stream" {
			return "text/event-stream"
		}
	case "Connection":
		if string(v) == "keep-alive" {
			return "keep-alive"
		}
	}
	return string(v)
}
