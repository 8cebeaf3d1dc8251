package runner

import "strings"

// stopper finds stop strings in streamed text. It holds back the shortest
// tail of the text that could still grow into a stop string, so that a stop
// string split over several chunks is never let through, and releases that
// tail as soon as it can no longer match.
type stopper struct {
	stops   []string // non-empty
	longest int      // length of the longest stop string
	pending string   // text received but not released
}

func newStopper(stops []string) stopper {
	var s stopper
	for _, st := range stops {
		if st != "" {
			s.stops = append(s.stops, st)
			s.longest = max(s.longest, len(st))
		}
	}
	return s
}

// add takes the next chunk of text and returns the text that is safe to
// release. stopped reports that a stop string was found: out is then the
// text before it, and the stop string and the rest are dropped.
func (s *stopper) add(text string) (out string, stopped bool) {
	if len(s.stops) == 0 {
		return text, false
	}
	s.pending += text
	first := -1
	for _, st := range s.stops {
		if i := strings.Index(s.pending, st); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	if first >= 0 {
		out = s.pending[:first]
		s.pending = ""
		return out, true
	}
	k := s.holdFrom()
	out, s.pending = s.pending[:k], s.pending[k:]
	return out, false
}

// holdFrom returns the start of the longest tail of pending that is a
// proper prefix of some stop string (len(pending) when there is none). The
// earliest such start is what must be held: any later candidate lies inside
// it. For valid UTF-8 stop strings the cut falls on a character boundary, so
// released text stays valid UTF-8.
func (s *stopper) holdFrom() int {
	p := s.pending
	for k := max(0, len(p)-s.longest+1); k < len(p); k++ {
		tail := p[k:]
		for _, st := range s.stops {
			if strings.HasPrefix(st, tail) {
				return k
			}
		}
	}
	return len(p)
}

// flush releases whatever is held back, at the end of the generation.
func (s *stopper) flush() string {
	out := s.pending
	s.pending = ""
	return out
}
