package redact

import (
	"context"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/internal/plugin"
)

func scanner(t testing.TB) *Scanner {
	t.Helper()
	var p Plugin
	if err := p.configure(Config{}); err != nil {
		t.Fatal(err)
	}
	return &p.sc
}

func TestRedactDetectors(t *testing.T) {
	sc := scanner(t)
	for _, tc := range []struct{ in, want string }{
		{"write to a.b-c+tag@mail.example.org today", "write to [EMAIL] today"},
		{"card 4012-8888-8888-1881 ok", "card [CARD] ok"},
		{"card 4012888888881882 fails Luhn", "card 4012888888881882 fails Luhn"},
		// The last group of a longer number passes Luhn (13 zeros) but is not a card: the
		// check fails on the first groups, and the search must not then start again inside
		// the number (a stream that no longer holds its start would answer differently).
		{"ref 1 0000000000000 0000000000000 ok", "ref 1 0000000000000 0000000000000 ok"},
		{"ssn 078-05-1120", "ssn [SSN]"},
		{"ssn 000-12-3456 and 666-12-3456 and 900-12-3456 are never issued", "ssn 000-12-3456 and 666-12-3456 and 900-12-3456 are never issued"},
		{"id 11010519491231002X", "id [ID]"},
		{"id 110105194912310021 has a bad check digit", "id 110105194912310021 has a bad check digit"},
		{"call (415) 555-0132 or +44 20 7946 0958", "call [PHONE] or [PHONE]"},
		{"order 12345 shipped", "order 12345 shipped"},
		{"version 1.2.3 of 2024", "version 1.2.3 of 2024"},
	} {
		if got := sc.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// streamed feeds text to Stream in pieces cut at the given sizes and returns what came out.
func streamed(sc *Scanner, text string, sizes []byte) (string, []string) {
	var out strings.Builder
	var pieces []string
	var held Tail
	for i, k := 0, 0; i < len(text); k++ {
		n := 1
		if len(sizes) > 0 {
			n = int(sizes[k%len(sizes)])%9 + 1
		}
		end := min(i+n, len(text))
		var o string
		o, held = sc.Stream(held, text[i:end], false)
		out.WriteString(o)
		pieces = append(pieces, o)
		i = end
	}
	o, _ := sc.Stream(held, "", true)
	out.WriteString(o)
	return out.String(), append(pieces, o)
}

func TestStreamEqualsWhole(t *testing.T) {
	sc := scanner(t)
	text := "Mail jane.doe@example.com, call +1 415-555-0132 or (415) 555 0133; card 4111 1111 1111 1111 and id 11010519491231002X.\nSSN 078-05-1120 end"
	want := sc.Redact(text)
	for _, sizes := range [][]byte{{0}, {2}, {6}, {1, 4, 0, 8}} {
		got, pieces := streamed(sc, text, sizes)
		if got != want {
			t.Errorf("sizes %v:\n got %q\nwant %q", sizes, got, want)
		}
		for _, p := range pieces {
			if strings.Contains(p, "@example") || strings.Contains(p, "555-01") || strings.Contains(p, "05-1120") {
				t.Errorf("sizes %v: piece %q carries part of a match", sizes, p)
			}
		}
	}
}

func TestStreamHoldsBackAtMostTheWindow(t *testing.T) {
	sc := scanner(t)
	sc.window = 8
	out, held := sc.Stream(Tail{}, strings.Repeat("x", 30), false)
	if len(held.Text) > 8 || out+held.Text != strings.Repeat("x", 30) {
		t.Errorf("out %q held %q", out, held)
	}
}

// FuzzStreamEqualsWhole checks that redacting a stream in pieces of any size gives the same
// text as redacting it whole.
func FuzzStreamEqualsWhole(f *testing.F) {
	f.Add("Mail jane.doe@example.com now", []byte{2, 5})
	f.Add("call +1 415-555-0132 ok 4111 1111 1111 1111", []byte{1})
	f.Add("11010519491231002X 078-05-1120", []byte{3, 7})
	sc := scanner(f)
	f.Fuzz(func(t *testing.T, text string, sizes []byte) {
		if len(text) > 200 {
			return
		}
		want := sc.Redact(text)
		if got, _ := streamed(sc, text, sizes); got != want {
			t.Errorf("text %q sizes %v:\n got %q\nwant %q", text, sizes, got, want)
		}
	})
}

func TestOnChunkKeepsStatePerChoice(t *testing.T) {
	var p Plugin
	if err := p.configure(Config{}); err != nil {
		t.Fatal(err)
	}
	c := plugin.NewTestCall(&plugin.Request{Op: "chat"}, 1)
	var got [2]strings.Builder
	for _, piece := range []struct {
		idx  int
		text string
	}{{0, "a@b"}, {1, "x@y"}, {0, ".com "}, {1, "z "}} {
		ch := plugin.Chunk{Index: piece.idx, Text: piece.text}
		if err := p.OnChunk(context.Background(), c, &ch); err != nil {
			t.Fatal(err)
		}
		got[piece.idx].WriteString(ch.Text)
	}
	for i := range 2 {
		ch := plugin.Chunk{Index: i, End: true}
		_ = p.OnChunk(context.Background(), c, &ch)
		got[i].WriteString(ch.Text)
	}
	if got[0].String() != "[EMAIL] " || got[1].String() != "x@yz " {
		t.Errorf("choices %q %q", got[0].String(), got[1].String())
	}
}
