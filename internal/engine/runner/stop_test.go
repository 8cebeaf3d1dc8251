package runner

import (
	"strings"
	"testing"
)

func TestStopper(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stops   []string
		chunks  []string
		want    []string // released per chunk
		stopped bool
		flush   string
	}{
		{"no stops", nil, []string{"a", "b"}, []string{"a", "b"}, false, ""},
		{"empty stop ignored", []string{""}, []string{"a"}, []string{"a"}, false, ""},
		{"whole", []string{"END"}, []string{"abc", "END", "x"}, []string{"abc", ""}, true, ""},
		{"split", []string{"END"}, []string{"abE", "N", "Dzz"}, []string{"ab", "", ""}, true, ""},
		{"false start", []string{"END"}, []string{"abE", "N", "x"}, []string{"ab", "", "ENx"}, false, ""},
		{"held at end", []string{"END"}, []string{"abEN"}, []string{"ab"}, false, "EN"},
		{"earliest wins", []string{"cd", "bcde"}, []string{"abcdef"}, []string{"a"}, true, ""},
		{"earlier hold", []string{"xyz", "yw"}, []string{"axy"}, []string{"a"}, false, "xy"},
		{"overlap restart", []string{"aab"}, []string{"a", "a", "a", "b"}, []string{"", "", "a", ""}, true, ""},
		{"multibyte", []string{"é!"}, []string{"café", "!"}, []string{"caf", ""}, true, ""},
		{"newlines", []string{"\n\n"}, []string{"one\n", "two\n", "\nthree"}, []string{"one", "\ntwo", ""}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStopper(tc.stops)
			stopped := false
			for i, c := range tc.chunks {
				if stopped {
					break
				}
				var out string
				out, stopped = s.add(c)
				if out != tc.want[i] {
					t.Errorf("chunk %d %q: released %q, want %q", i, c, out, tc.want[i])
				}
			}
			if stopped != tc.stopped {
				t.Errorf("stopped %v, want %v", stopped, tc.stopped)
			}
			if !stopped {
				if f := s.flush(); f != tc.flush {
					t.Errorf("flush %q, want %q", f, tc.flush)
				}
			}
		})
	}
}

// FuzzStopper checks the stopper's contract for any text, chunking and
// stop string: the released text is the text up to the first stop string
// (all of it when there is none), and nothing after a stop is released.
func FuzzStopper(f *testing.F) {
	f.Add("Once upon a time there was a girl named Lily.", "named", uint64(0x1234567))
	f.Add("aaab", "aab", uint64(1))
	f.Add("café!", "é!", uint64(99))
	f.Add("\n\nx", "\n\n", uint64(3))
	f.Add("no stop here", "zzz", uint64(7))
	f.Fuzz(func(t *testing.T, text, stop string, cuts uint64) {
		s := newStopper([]string{stop})
		var got strings.Builder
		stopped := false
		rest := text
		for len(rest) > 0 && !stopped {
			n := int(cuts%4) + 1
			cuts = cuts/4 + 1
			n = min(n, len(rest))
			out, st := s.add(rest[:n])
			got.WriteString(out)
			stopped = st
			rest = rest[n:]
		}
		if !stopped {
			got.WriteString(s.flush())
		}
		want, found := text, false
		if stop != "" {
			if i := strings.Index(text, stop); i >= 0 {
				want, found = text[:i], true
			}
		}
		if got.String() != want || stopped != found {
			t.Errorf("text %q stop %q: released %q (stopped %v), want %q (%v)", text, stop, got.String(), stopped, want, found)
		}
	})
}
