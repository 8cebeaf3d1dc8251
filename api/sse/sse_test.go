package sse

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
)

type event struct{ Type, ID, Data string }

// readAll reads every event of r with a Reader.
func readAll(t testing.TB, r io.Reader, max int) ([]event, error) {
	t.Helper()
	s := NewReader(r)
	s.SetMaxEventSize(max)
	var out []event
	for {
		ev, err := s.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, event{ev.Type, ev.ID, string(ev.Data)})
	}
}

// splitAll cuts in into events with a Splitter, handing it chunk bytes more
// at a time, and parses each with Parse, as a relay would.
func splitAll(in string, chunk int) []event {
	b := []byte(strings.TrimPrefix(in, "\uFEFF"))
	var out []event
	var sp Splitter
	var pending []byte
	lastID := ""
	emit := func(block []byte) {
		ev, ok := Parse(block)
		if idx := blockID(block); idx != nil {
			lastID = *idx
		}
		if ok {
			out = append(out, event{ev.Type, lastID, string(ev.Data)})
		}
	}
	for len(b) > 0 {
		n := min(chunk, len(b))
		pending = append(pending, b[:n]...)
		b = b[n:]
		for {
			end := sp.Cut(pending)
			if end < 0 {
				break
			}
			emit(pending[:end])
			pending = pending[end:]
		}
	}
	if len(pending) > 0 {
		emit(pending)
	}
	return out
}

// blockID is the id a block sets (the last valid "id" field before its
// dispatch), or nil.
func blockID(block []byte) *string {
	var id *string
	hasData := false
	for _, l := range referenceLines(string(block)) {
		if l == "" {
			if hasData {
				break
			}
			continue
		}
		f, v, ok := strings.Cut(l, ":")
		if ok {
			v = strings.TrimPrefix(v, " ")
		}
		switch {
		case f == "data":
			hasData = true
		case f == "id" && !strings.Contains(v, "\x00"):
			id = &v
		}
	}
	return id
}

func referenceLines(in string) []string {
	var lines []string
	for len(in) > 0 {
		i := strings.IndexAny(in, "\r\n")
		if i < 0 {
			lines = append(lines, in)
			break
		}
		lines = append(lines, in[:i])
		if strings.HasPrefix(in[i:], "\r\n") {
			in = in[i+2:]
		} else {
			in = in[i+1:]
		}
	}
	return lines
}

// reference parses a whole stream the simple way, straight from the
// standard's steps, to check the incremental readers against.
func reference(in string) []event {
	in = strings.TrimPrefix(in, "\uFEFF")
	var out []event
	var typ, idBuf, lastID string
	var data []string
	dispatch := func() {
		lastID = idBuf
		if data != nil {
			out = append(out, event{typ, lastID, strings.Join(data, "\n")})
		}
		typ, data = "", nil
	}
	for _, l := range referenceLines(in) {
		if l == "" {
			dispatch()
			continue
		}
		if l[0] == ':' {
			continue
		}
		field, value, ok := strings.Cut(l, ":")
		if ok {
			value = strings.TrimPrefix(value, " ")
		}
		switch field {
		case "data":
			data = append(data, value)
		case "event":
			typ = value
		case "id":
			if !strings.Contains(value, "\x00") {
				idBuf = value
			}
		}
	}
	if data != nil {
		dispatch()
	}
	return out
}

func TestRead(t *testing.T) {
	long := strings.Repeat("x", 20000)
	for _, tc := range []struct {
		name, in string
		want     []event
	}{
		{"one", "data: {}\n\n", []event{{"", "", "{}"}}},
		{"two", "data: a\n\ndata: b\n\n", []event{{"", "", "a"}, {"", "", "b"}}},
		{"multi-line", "data: a\ndata: b\ndata:c\n\n", []event{{"", "", "a\nb\nc"}}},
		{"comment", ": keep-alive\n\ndata: x\n: inside\n\n", []event{{"", "", "x"}}},
		{"event type", "event: error\ndata: {\"error\":{}}\n\n", []event{{"error", "", `{"error":{}}`}}},
		{"type resets", "event: ping\n\ndata: x\n\n", []event{{"", "", "x"}}},
		{"crlf", "data: a\r\ndata: b\r\n\r\n", []event{{"", "", "a\nb"}}},
		{"cr", "data: a\rdata: b\r\rdata: c\r\r", []event{{"", "", "a\nb"}, {"", "", "c"}}},
		{"mixed", "data: a\r\n\ndata: b\r\rdata: c\n\r\n", []event{{"", "", "a"}, {"", "", "b"}, {"", "", "c"}}},
		{"id", "id: 7\ndata: x\n\ndata: y\n\n", []event{{"", "7", "x"}, {"", "7", "y"}}},
		{"id without data", "id: 3\n\ndata: y\n\n", []event{{"", "3", "y"}}},
		{"id reset", "id: 3\ndata: x\n\nid\ndata: y\n\n", []event{{"", "3", "x"}, {"", "", "y"}}},
		{"id with NUL ignored", "id: 3\ndata: x\n\nid: 4\x005\ndata: y\n\n", []event{{"", "3", "x"}, {"", "3", "y"}}},
		{"retry is no data", "retry: 10\ndata: x\n\n", []event{{"", "", "x"}}},
		{"unknown field", "foo: bar\ndata: x\n\n", []event{{"", "", "x"}}},
		{"no space", "data:x\n\n", []event{{"", "", "x"}}},
		{"two spaces", "data:  x\n\n", []event{{"", "", " x"}}},
		{"empty data", "data\n\ndata:\n\n", []event{{"", "", ""}, {"", "", ""}}},
		{"bom", "\uFEFFdata: x\n\n", []event{{"", "", "x"}}},
		{"bom only first", "\uFEFF\uFEFFdata: x\n\ndata: y\n\n", []event{{"", "", "y"}}},
		{"unterminated", "data: a\n\ndata: [DONE]", []event{{"", "", "a"}, {"", "", "[DONE]"}}},
		{"long line", "data: " + long + "\n\n", []event{{"", "", long}}},
		{"blank lines only", "\n\n\n", nil},
		{"empty", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, reference(tc.in)); diff != "" {
				t.Fatalf("reference disagrees with the test (-want +got):\n%s", diff)
			}
			for name, r := range map[string]io.Reader{
				"whole":    strings.NewReader(tc.in),
				"one byte": iotest.OneByteReader(strings.NewReader(tc.in)),
			} {
				got, err := readAll(t, r, 0)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("%s (-want +got):\n%s", name, diff)
				}
			}
			for _, chunk := range []int{1, 3, 1 << 20} {
				if diff := cmp.Diff(tc.want, splitAll(tc.in, chunk)); diff != "" {
					t.Errorf("split %d (-want +got):\n%s", chunk, diff)
				}
			}
		})
	}
}

func TestRetry(t *testing.T) {
	r := NewReader(strings.NewReader("retry: 1500\ndata: a\n\nretry: x\ndata: b\n\n"))
	ev, err := r.Next()
	if err != nil || ev.Retry != 1500*time.Millisecond || r.Retry() != 1500*time.Millisecond {
		t.Fatalf("first event %+v, %v; retry %v: want 1.5s", ev, err, r.Retry())
	}
	ev, err = r.Next()
	if err != nil || ev.Retry != 0 || r.Retry() != 1500*time.Millisecond {
		t.Fatalf("second event %+v, %v; retry %v: a non-numeric retry must be ignored", ev, err, r.Retry())
	}
	if ev, _ := Parse([]byte("retry: 20\ndata: a\n\n")); ev.Retry != 20*time.Millisecond {
		t.Errorf("Parse retry = %v, want 20ms", ev.Retry)
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	got, err := readAll(t, io.MultiReader(strings.NewReader("data: a\n\ndata: b"), iotest.ErrReader(boom)), 0)
	if !errors.Is(err, boom) || len(got) != 1 {
		t.Errorf("got %v, %v; want one event and boom", got, err)
	}
}

func TestTooLarge(t *testing.T) {
	for name, in := range map[string]string{
		"many data lines": strings.Repeat("data: 0123456789\n", 20) + "\n",
		"one long line":   "data: " + strings.Repeat("y", 300) + "\n\n",
		"no line end":     strings.Repeat("z", 300),
		"long comment":    ":" + strings.Repeat("c", 300) + "\n\n",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := readAll(t, strings.NewReader("data: ok\n\n"+in), 100)
			if !errors.Is(err, ErrTooLarge) || len(got) != 1 {
				t.Errorf("got %v, %v; want the first event, then ErrTooLarge", got, err)
			}
		})
	}
	// Exactly the maximum is accepted.
	got, err := readAll(t, strings.NewReader("data: "+strings.Repeat("a", 100)+"\n\n"), 100)
	if err != nil || len(got) != 1 || len(got[0].Data) != 100 {
		t.Errorf("an event of the maximum size: %v, %v", got, err)
	}
}

func TestSplitterWaitsForLFAfterCR(t *testing.T) {
	var sp Splitter
	b := []byte("data: a\r")
	if n := sp.Cut(b); n != -1 {
		t.Fatalf("Cut(%q) = %d, want -1", b, n)
	}
	b = append(b, "\n\r\n"...)
	if n := sp.Cut(b); n != len(b) {
		t.Fatalf("Cut(%q) = %d, want %d", b, n, len(b))
	}
	// A blank line ending in CR at the end of the input ends the event at once.
	sp = Splitter{}
	b = []byte("data: a\r\r")
	if n := sp.Cut(b); n != len(b) {
		t.Fatalf("Cut(%q) = %d, want %d", b, n, len(b))
	}
}

func TestAppendEvent(t *testing.T) {
	for _, tc := range []struct {
		ev   Event
		want string
	}{
		{Event{Data: []byte(`{"a":1}`)}, "data: {\"a\":1}\n\n"},
		{Event{Type: "tokens", ID: "12", Data: []byte("x")}, "event: tokens\nid: 12\ndata: x\n\n"},
		{Event{Data: []byte("a\nb\r\nc\rd")}, "data: a\ndata: b\ndata: c\ndata: d\n\n"},
		{Event{Data: nil}, "data: \n\n"},
		{Event{Data: []byte(" lead")}, "data:  lead\n\n"},
		{Event{Retry: 3 * time.Second, Data: []byte("r")}, "retry: 3000\ndata: r\n\n"},
	} {
		got, err := AppendEvent(nil, tc.ev)
		if err != nil || string(got) != tc.want {
			t.Errorf("AppendEvent(%+v) = %q, %v; want %q", tc.ev, got, err, tc.want)
		}
	}
	for _, ev := range []Event{{Type: "a\nb"}, {ID: "1\r"}, {ID: "1\x002"}} {
		if _, err := AppendEvent(nil, ev); err == nil {
			t.Errorf("AppendEvent(%+v): want an error", ev)
		}
	}
	if got := string(AppendComment(nil, "keep-alive")); got != ": keep-alive\n" {
		t.Errorf("AppendComment = %q", got)
	}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.WriteComment("hi\nthere"); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteEvent(Event{Type: "status", Data: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, &buf, 0)
	if err != nil || !cmp.Equal(got, []event{{"status", "", "1"}}) {
		t.Errorf("read back %v, %v", got, err)
	}
}

// FuzzRead checks the Reader (read whole, one byte and half a read at a
// time) and the Splitter with Parse (fed in chunks of several sizes) against
// the reference on any input.
func FuzzRead(f *testing.F) {
	for _, seed := range []string{
		"data: {}\n\n", "data: a\ndata: b\n\n", ": c\n\nevent: error\ndata: x\n\n",
		"data: a\r\n\r\n", "data: a\r\rdata: b", "data", "data:\n\n\n", "event: e\ndata: [DONE]",
		"data: a\r\r\n", "\r\n\r", ":\n:\ndata", "dat", "data: " + strings.Repeat("y", 9000) + "\r",
		"id: 1\ndata: a\n\nid\n\ndata: b\n\n", "\uFEFFdata: x\r\n\r\n", "id: \x00\ndata: q\n\n",
		"retry: 5\r\nevent: t\r\ndata: x\r\n\r\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		want := reference(in)
		for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in)), iotest.HalfReader(strings.NewReader(in))} {
			got, err := readAll(t, r, 0)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("%q (-reference +reader):\n%s", in, diff)
			}
		}
		for _, chunk := range []int{1, 2, 7, len(in) + 1} {
			if diff := cmp.Diff(want, splitAll(in, chunk)); diff != "" {
				t.Fatalf("%q in chunks of %d (-reference +splitter):\n%s", in, chunk, diff)
			}
		}
	})
}

// FuzzWrite checks that what AppendEvent writes reads back as the event
// written, line breaks in the data normalised to LF.
func FuzzWrite(f *testing.F) {
	f.Add("tokens", "7", "a\nb")
	f.Add("", "", "")
	f.Add("x", "", "\r\n\r")
	f.Fuzz(func(t *testing.T, typ, id, data string) {
		b, err := AppendEvent(nil, Event{Type: typ, ID: id, Data: []byte(data)})
		if err != nil {
			if !strings.ContainsAny(typ, "\r\n") && !strings.ContainsAny(id, "\r\n\x00") {
				t.Fatalf("AppendEvent(%q, %q): %v", typ, id, err)
			}
			return
		}
		got, err := readAll(t, bytes.NewReader(b), 0)
		wantData := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(data)
		if err != nil || !cmp.Equal(got, []event{{typ, id, wantData}}) {
			t.Fatalf("wrote %q, read back %q, %v", b, got, err)
		}
	})
}
