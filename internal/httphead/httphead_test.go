package httphead

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"
)

// tchar is every byte a token may hold (RFC 9110, section 5.6.2), written out here so that
// the tests do not take IsToken's table on trust.
const tchar = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// isTokenRef is IsToken by the RFC's definition.
func isTokenRef(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !strings.ContainsRune(tchar, rune(c)) || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func TestIsToken(t *testing.T) {
	for c := 0; c < 256; c++ {
		b := []byte{byte(c)}
		if got, want := IsToken(b), isTokenRef(b); got != want {
			t.Errorf("IsToken(%q) = %v, want %v", b, got, want)
		}
	}
	for s, want := range map[string]bool{"": false, "GET": true, "X-Request-Id": true,
		"Bad Name": false, "a:b": false, "h\u00e9": false, "~!": true} {
		if got := IsToken([]byte(s)); got != want {
			t.Errorf("IsToken(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestTrimLineEnd(t *testing.T) {
	for in, want := range map[string]string{"a\r\n": "a", "a\n": "a", "\r\n": "", "\n": "",
		"": "", "a": "a", "a\r": "a", "a\r\r\n": "a\r", "\r": ""} {
		if got := string(TrimLineEnd([]byte(in))); got != want {
			t.Errorf("TrimLineEnd(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAppendLine(t *testing.T) {
	long := strings.Repeat("x", 100) + "\r\n" // longer than the reader's buffer: several pieces
	in := "first\r\n" + long + "bare\n" + "cut short"
	br := bufio.NewReaderSize(strings.NewReader(in), 16)
	dst := []byte("kept:")
	var err error
	for _, want := range []string{"first\r\n", long, "bare\n"} {
		before := len(dst)
		if dst, err = AppendLine(dst, br, 1<<10); err != nil || string(dst[before:]) != want {
			t.Fatalf("AppendLine appended %q (%v), want %q", dst[before:], err, want)
		}
	}
	before := len(dst)
	dst, err = AppendLine(dst, br, 1<<10)
	if err != io.EOF || string(dst[before:]) != "cut short" {
		t.Fatalf("at the end: %q (%v), want %q and io.EOF", dst[before:], err, "cut short")
	}
	if !strings.HasPrefix(string(dst), "kept:first\r\n") {
		t.Fatalf("what dst held was lost: %q", dst)
	}

	// The limit counts what dst already holds, and dst never grows past it.
	br = bufio.NewReaderSize(strings.NewReader(long+long), 16)
	if dst, err := AppendLine([]byte("ab"), br, len(long)+2); err != nil || string(dst) != "ab"+long {
		t.Fatalf("a line exactly at the limit: %q (%v)", dst, err)
	}
	dst, err = AppendLine([]byte("abc"), br, len(long)+2)
	if err != ErrTooLong || len(dst) > len(long)+2 || !strings.HasPrefix("abc"+long, string(dst)) {
		t.Fatalf("a line one byte past the limit: %q (%v), want a prefix of it and ErrTooLong", dst, err)
	}
}

func TestSplitField(t *testing.T) {
	for _, c := range []struct {
		line, name, value string
		ok                bool
	}{
		{"Host: example.com", "Host", "example.com", true},
		{"X:v", "X", "v", true},
		{"X: \t padded \t ", "X", "padded", true},
		{"X:", "X", "", true},
		{"X:  \t ", "X", "", true},
		{"X: a\tb c", "X", "a\tb c", true},
		{"X: caf\xc3\xa9 \x80\xff", "X", "caf\xc3\xa9 \x80\xff", true},
		{"X: a:b", "X", "a:b", true},
		{" X: folded", "", "", false},
		{"\tX: folded", "", "", false},
		{"no colon", "", "", false},
		{": empty name", "", "", false},
		{"Bad Name: v", "", "", false},
		{"X : space before the colon", "", "", false},
		{"N\xc3\xa9: v", "", "", false},
		{"X: a\x00b", "", "", false},
		{"X: a\rb", "", "", false},
		{"X: a\nb", "", "", false},
		{"X: a\x7fb", "", "", false},
		{"X: a\x1f", "", "", false},
		{"", "", "", false},
	} {
		line := []byte(c.line)
		colon, v, e, ok := SplitField(line)
		if ok != c.ok {
			t.Errorf("SplitField(%q): ok %v, want %v", c.line, ok, c.ok)
			continue
		}
		if ok && (string(line[:colon]) != c.name || string(line[v:e]) != c.value) {
			t.Errorf("SplitField(%q) = %q, %q; want %q, %q", c.line, line[:colon], line[v:e], c.name, c.value)
		}
	}
}

func TestEqualFold(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"chunked", "chunked", true},
		{"CHUNKED", "chunked", true},
		{"ChUnKeD", "cHuNkEd", true},
		{"chunked ", "chunked", false},
		{"chun\u212aed", "chunked", false}, // the Kelvin sign folds to k in Unicode, not in ASCII
		{"", "", true},
		{"@", "`", false}, // one apart from 'A' and 'a', but not letters
		{"[", "{", false},
	} {
		if got := EqualFold(c.a, c.b); got != c.want {
			t.Errorf("EqualFold(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func TestHasToken(t *testing.T) {
	for _, c := range []struct {
		vs    []string
		token string
		want  bool
	}{
		{[]string{"close"}, "close", true},
		{[]string{"Close"}, "close", true},
		{[]string{"keep-alive, Upgrade"}, "upgrade", true},
		{[]string{"a", "b,\t close \t,c"}, "close", true},
		{[]string{",,close,,"}, "close", true},
		{[]string{"closed"}, "close", false},
		{[]string{"clo se"}, "close", false},
		{[]string{"close;q=1"}, "close", false},
		{[]string{""}, "close", false},
		{nil, "close", false},
		{[]string{"x, trailer"}, "Trailer", true},
	} {
		if got := HasToken(c.vs, c.token); got != c.want {
			t.Errorf("HasToken(%q, %q) = %v, want %v", c.vs, c.token, got, c.want)
		}
	}
}

func TestNames(t *testing.T) {
	n := NewNames("Content-Type", "X-Request-Id", "Te", "Www-Authenticate")
	for name, want := range map[string]string{
		"Content-Type":           "Content-Type",
		"content-type":           "Content-Type",
		"CONTENT-TYPE":           "Content-Type",
		"cOnTeNt-TyPe":           "Content-Type",
		"x-request-id":           "X-Request-Id",
		"TE":                     "Te",
		"WWW-Authenticate":       "Www-Authenticate",
		"Content-Types":          "",
		"Content-Typ":            "",
		"Content_Type":           "",
		"content type":           "",
		"Accept":                 "",
		"accept":                 "",
		"":                       "",
		strings.Repeat("a", 200): "",
	} {
		k, ok := n.Lookup([]byte(name))
		if k != want || ok != (want != "") {
			t.Errorf("Lookup(%q) = %q, %v; want %q", name, k, ok, want)
		}
	}
}

func TestNewNamesRefusesWrongNames(t *testing.T) {
	for _, name := range []string{"content-type", "X-REQUEST-ID", "Bad Name", "", "X:Y",
		"X-" + strings.Repeat("A", maxName)} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewNames(%q) did not panic", name)
				}
			}()
			NewNames(name)
		}()
	}
}

// TestNoAllocations: the parsers call these for every field of every head.
func TestNoAllocations(t *testing.T) {
	n := NewNames("Content-Type", "X-Request-Id")
	line := []byte("content-type: application/json ")
	conn := []string{"keep-alive, Upgrade", "close"}
	r := strings.NewReader("")
	br := bufio.NewReaderSize(r, 16)
	buf := make([]byte, 0, 64)
	other := []byte("x-other-name")
	allocs := testing.AllocsPerRun(100, func() {
		colon, _, _, ok := SplitField(line)
		if k, found := n.Lookup(line[:colon]); !ok || !found || k != "Content-Type" {
			t.Fatal("content-type not found")
		}
		if _, found := n.Lookup(other); found {
			t.Fatal("x-other-name found")
		}
		if !HasToken(conn, "close") || !EqualFold("Chunked", "chunked") {
			t.Fatal("token not found")
		}
		r.Reset("GET / HTTP/1.1\r\n")
		br.Reset(r)
		if _, err := AppendLine(buf[:0], br, 64); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations a run, want none", allocs)
	}
}

// FuzzLookup holds Lookup to textproto.CanonicalMIMEHeaderKey: a token finds the canonical
// form of its name when that is in the table, and nothing else is ever found.
func FuzzLookup(f *testing.F) {
	for _, s := range []string{"Content-Type", "content-type", "X-REQUEST-ID", "te", "Www-Authenticate",
		"x-", "-x", "--", "A-b-C", "Content Type", "content_type", "", "k\u212a", "X-Ratelimit-Remaining-Requests"} {
		f.Add(s)
	}
	fixed := []string{"Content-Type", "X-Request-Id", "Te", "Www-Authenticate", "A-B-C", "-X", "X-"}
	table := NewNames(fixed...)
	f.Fuzz(func(t *testing.T, name string) {
		want := textproto.CanonicalMIMEHeaderKey(name)
		token := isTokenRef([]byte(name))

		k, ok := table.Lookup([]byte(name))
		inFixed := false
		for _, c := range fixed {
			inFixed = inFixed || c == want
		}
		if ok != (token && inFixed) || ok && k != want {
			t.Fatalf("Lookup(%q) = %q, %v; canonical %q, token %v", name, k, ok, want, token)
		}

		// A table that holds this very name's canonical form finds it, in whatever case.
		if token && len(name) <= maxName {
			if k, ok := NewNames(want).Lookup([]byte(name)); !ok || k != want {
				t.Fatalf("Lookup(%q) in a table of %q = %q, %v", name, want, k, ok)
			}
		}
	})
}

// splitFieldRef is SplitField written plainly, as both parsers checked a field line before
// they shared it.
func splitFieldRef(line []byte) (name, value []byte, ok bool) {
	name, rest, found := bytes.Cut(line, []byte(":"))
	if !found || !isTokenRef(name) {
		return nil, nil, false
	}
	value = bytes.Trim(rest, " \t")
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return nil, nil, false
		}
	}
	return name, value, true
}

// FuzzSplitField holds SplitField to splitFieldRef, and a field it accepts to what net/http
// makes of it.
func FuzzSplitField(f *testing.F) {
	for _, s := range []string{"Host: h", "X:\t v \t", " X: folded", "X : v", ": v", "X: a\x00b",
		"X: caf\xc3\xa9", "no colon", "X: a:b", "X:", "X: \x7f"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		colon, v, e, ok := SplitField(line)
		name, value, refOK := splitFieldRef(line)
		if ok != refOK {
			t.Fatalf("SplitField(%q): ok %v, reference %v", line, ok, refOK)
		}
		if !ok {
			return
		}
		if !bytes.Equal(line[:colon], name) || !bytes.Equal(line[v:e], value) {
			t.Fatalf("SplitField(%q) = %q, %q; reference %q, %q", line, line[:colon], line[v:e], name, value)
		}
		r := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(append([]byte{}, line...), "\r\n\r\n"...))))
		h, err := r.ReadMIMEHeader()
		if err != nil {
			t.Fatalf("net/textproto refuses %q: %v", line, err)
		}
		key := textproto.CanonicalMIMEHeaderKey(string(name))
		if got := h[key]; len(got) != 1 || got[0] != string(value) {
			t.Fatalf("net/textproto read %q as %q, SplitField %q", line, got, value)
		}
	})
}

// hasTokenRef is HasToken as the request parser wrote it before: split each list at its
// commas, trim the blanks around each element, drop the empty ones and compare the rest,
// ignoring ASCII case only.
func hasTokenRef(vs []string, token string) bool {
	for _, v := range vs {
		for _, elem := range strings.Split(v, ",") {
			elem = strings.Trim(elem, " \t")
			if elem != "" && isASCII(elem) && strings.EqualFold(elem, token) {
				return true
			}
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// FuzzHasToken holds HasToken to httpguts.HeaderValuesContainsToken, which the answer reader
// used before, for any ASCII token, and to hasTokenRef for the non-empty ones the request
// parser looks for.
func FuzzHasToken(f *testing.F) {
	f.Add("keep-alive, close", "", "close")
	f.Add(" Close ,x", "y", "close")
	f.Add("chun\u212aed", "", "chunked")
	f.Add("a,,b", ",", "")
	f.Add("\tkeep-alive\t", "upgrade", "Keep-Alive")
	f.Fuzz(func(t *testing.T, a, b, token string) {
		if !isASCII(token) {
			return // HasToken wants an ASCII token
		}
		for _, vs := range [][]string{{a}, {a, b}, {b, a}, nil} {
			got := HasToken(vs, token)
			if ref := hasTokenRef(vs, token); got != ref && token != "" {
				t.Fatalf("HasToken(%q, %q) = %v, reference %v", vs, token, got, ref)
			}
			if std := httpguts.HeaderValuesContainsToken(vs, token); got != std {
				t.Fatalf("HasToken(%q, %q) = %v, httpguts %v", vs, token, got, std)
			}
		}
	})
}

// FuzzAppendLine reads lines from in through a small reader with AppendLine: each comes back
// whole, line end included, while it fits the limit, and a longer one is refused with
// ErrTooLong, the buffer holding no more than the limit.
func FuzzAppendLine(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), uint16(64))
	f.Add([]byte(strings.Repeat("x", 40)+"\nshort\n"), uint16(20))
	f.Add([]byte("no line end"), uint16(100))
	f.Fuzz(func(t *testing.T, in []byte, max uint16) {
		br := bufio.NewReaderSize(bytes.NewReader(in), 16)
		rest := in
		for {
			want := rest
			if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				want = rest[:i+1]
			}
			got, err := AppendLine([]byte("p"), br, int(max)+1)
			switch {
			case len(want) > int(max):
				if !errors.Is(err, ErrTooLong) || len(got) > int(max)+1 ||
					!bytes.HasPrefix(append([]byte("p"), want...), got) {
					t.Fatalf("a %d-byte line under a limit of %d: %q (%v)", len(want), max, got, err)
				}
				return
			case string(got[1:]) != string(want):
				t.Fatalf("read %q (%v), want %q", got[1:], err, want)
			case len(want) == len(rest) && (len(want) == 0 || want[len(want)-1] != '\n'):
				if err != io.EOF {
					t.Fatalf("the last, unended line %q: %v, want io.EOF", want, err)
				}
				return
			case err != nil:
				t.Fatalf("line %q: %v", want, err)
			}
			rest = rest[len(want):]
		}
	})
}

func TestAddVary(t *testing.T) {
	for _, tc := range []struct {
		have  []string
		names []string
		want  []string
	}{
		{nil, []string{"Accept-Encoding"}, []string{"Accept-Encoding"}},
		{[]string{"Accept-Encoding"}, []string{"Accept-Encoding", "Sec-Fetch-Site"}, []string{"Accept-Encoding, Sec-Fetch-Site"}},
		{[]string{"accept-encoding"}, []string{"Accept-Encoding"}, []string{"accept-encoding"}},
		{[]string{"Accept-Encoding", "Origin, Accept-Encoding"}, nil, []string{"Accept-Encoding, Origin"}},
		{[]string{"Origin"}, []string{"Sec-Fetch-Mode", "Sec-Fetch-Mode"}, []string{"Origin, Sec-Fetch-Mode"}},
		{[]string{" Origin ,, Cookie"}, []string{"cookie"}, []string{" Origin ,, Cookie"}}, // nothing to add: left as it is
		{[]string{" Origin ,, Cookie"}, []string{"Accept"}, []string{"Origin, Cookie, Accept"}},
		{[]string{"*"}, []string{"Origin"}, []string{"*"}}, // already varies on everything
	} {
		h := http.Header{}
		for _, v := range tc.have {
			h.Add("Vary", v)
		}
		AddVary(h, tc.names...)
		if got := h.Values("Vary"); !slices.Equal(got, tc.want) {
			t.Errorf("Vary %q + %q = %q, want %q", tc.have, tc.names, got, tc.want)
		}
	}
}

// TestGet: the direct read gives what http.Header.Get gives for a canonical key.
func TestGet(t *testing.T) {
	h := http.Header{}
	h.Set("content-type", "application/json")
	h["X-Empty"] = []string{}
	h.Add("X-Two", "a")
	h.Add("X-Two", "b")
	for _, k := range []string{"Content-Type", "X-Empty", "X-Two", "X-Missing"} {
		if got, want := Get(h, k), h.Get(k); got != want {
			t.Errorf("Get(%q) = %q, want %q", k, got, want)
		}
	}
	if Get(nil, "Content-Type") != "" {
		t.Error("Get on a nil header")
	}
}
