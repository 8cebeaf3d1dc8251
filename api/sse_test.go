package api

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

type event struct{ Type, Data string }

func readAll(t testing.TB, r io.Reader) ([]event, error) {
	t.Helper()
	s := newSSEReader(r)
	var out []event
	for {
		typ, data, err := s.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, event{typ, string(data)})
	}
}

// reference parses a whole stream the simple way, to check the incremental
// reader against.
func reference(in string) []event {
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
	var out []event
	var typ string
	var data []string
	dispatch := func() {
		if data != nil {
			out = append(out, event{typ, strings.Join(data, "\n")})
		}
		typ, data = "", nil
	}
	for _, l := range lines {
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
		}
	}
	dispatch()
	return out
}

func TestSSE(t *testing.T) {
	long := strings.Repeat("x", 20000)
	for _, tc := range []struct {
		name, in string
		want     []event
	}{
		{"one", "data: {}\n\n", []event{{"", "{}"}}},
		{"two", "data: a\n\ndata: b\n\n", []event{{"", "a"}, {"", "b"}}},
		{"multi-line", "data: a\ndata: b\ndata:c\n\n", []event{{"", "a\nb\nc"}}},
		{"comment", ": keep-alive\n\ndata: x\n: inside\n\n", []event{{"", "x"}}},
		{"event type", "event: error\ndata: {\"error\":{}}\n\n", []event{{"error", `{"error":{}}`}}},
		{"type resets", "event: ping\n\ndata: x\n\n", []event{{"", "x"}}},
		{"crlf", "data: a\r\ndata: b\r\n\r\n", []event{{"", "a\nb"}}},
		{"cr", "data: a\rdata: b\r\rdata: c\r\r", []event{{"", "a\nb"}, {"", "c"}}},
		{"id and retry ignored", "id: 7\nretry: 10\ndata: x\n\n", []event{{"", "x"}}},
		{"no space", "data:x\n\n", []event{{"", "x"}}},
		{"two spaces", "data:  x\n\n", []event{{"", " x"}}},
		{"empty data", "data\n\ndata:\n\n", []event{{"", ""}, {"", ""}}},
		{"unterminated", "data: a\n\ndata: [DONE]", []event{{"", "a"}, {"", "[DONE]"}}},
		{"long line", "data: " + long + "\n\n", []event{{"", long}}},
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
				got, err := readAll(t, r)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("%s (-want +got):\n%s", name, diff)
				}
			}
		})
	}
}

func TestSSEReadError(t *testing.T) {
	boom := errors.New("boom")
	got, err := readAll(t, io.MultiReader(strings.NewReader("data: a\n\ndata: b"), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) || len(got) != 1 {
		t.Errorf("got %v, %v; want one event and boom", got, err)
	}
}

// FuzzSSE checks the incremental reader against the reference on any
// input, read whole and one byte at a time.
func FuzzSSE(f *testing.F) {
	for _, seed := range []string{
		"data: {}\n\n", "data: a\ndata: b\n\n", ": c\n\nevent: error\ndata: x\n\n",
		"data: a\r\n\r\n", "data: a\r\rdata: b", "data", "data:\n\n\n", "event: e\ndata: [DONE]",
		"data: a\r\r\n", "\r\n\r", ":\n:\ndata", "dat", "data: " + strings.Repeat("y", 9000) + "\r",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		want := reference(in)
		for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in)), iotest.HalfReader(strings.NewReader(in))} {
			got, err := readAll(t, r)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("%q (-reference +reader):\n%s", in, diff)
			}
		}
	})
}
