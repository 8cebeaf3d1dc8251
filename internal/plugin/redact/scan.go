package redact

import (
	"regexp"
	"slices"
	"strings"
)

// detector finds one kind of personal data.
type detector struct {
	name  string
	re    *regexp.Regexp
	valid func(string) bool // nil: every match counts
	// whole rejects a match that is a piece of a longer run of digit groups (the tail of a
	// card number that failed its check is not a phone number; the last groups of a long
	// number are not a card). It also keeps a match from depending on where the search
	// began: a card check that fails on the first groups of a run would otherwise let a
	// match start at the next group, and a stream, which no longer holds the run's start,
	// finds one that the whole text does not.
	whole bool
	repl  string
	// hint, when set, is a cheap test that s may hold a match; the expression runs only then.
	hint func(string) bool
	// free: the expression looks at nothing before a match (no \b, no digit groups), so a
	// stream's context bytes can only lend it a start the whole text never had. It is run on
	// the unsent text alone. An e-mail's local part would otherwise reach back into the sent
	// bytes (the tail of a previous e-mail) and swallow the next one, which the whole text
	// finds starting where the previous one ended.
	free bool
}

func hasAt(s string) bool { return strings.IndexByte(s, '@') >= 0 }

// digitsAtLeast returns a hint that s holds at least n digits.
func digitsAtLeast(n int) func(string) bool {
	return func(s string) bool {
		c := 0
		for i := 0; i < len(s); i++ {
			if s[i] >= '0' && s[i] <= '9' {
				if c++; c >= n {
					return true
				}
			}
		}
		return false
	}
}

// builtin are the detectors known by name, in priority order (a card number is not also a
// phone number).
var builtin = []detector{
	{name: "email", re: regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}`), repl: "[EMAIL]", hint: hasAt, free: true},
	{name: "card", re: regexp.MustCompile(`\b\d(?:[ \-]?\d){12,18}\b`), valid: luhn, whole: true, repl: "[CARD]", hint: digitsAtLeast(13)},
	{name: "ssn", re: regexp.MustCompile(`\b\d{3}-\d{2}-\d{4}\b`), valid: validSSN, repl: "[SSN]", hint: digitsAtLeast(9)},
	{name: "cn_id", re: regexp.MustCompile(`\b\d{17}[\dXx]\b`), valid: validCNID, repl: "[ID]", hint: digitsAtLeast(17)},
	{name: "phone", re: regexp.MustCompile(`(?:\+\d{1,3}[ .\-]?)?(?:\(\d{1,4}\)[ .\-]?\d{3,4}[ .\-]?\d{3,4}|\b\d{2,4}[ .\-]?\d{3,4}[ .\-]?\d{3,4})\b`), valid: phoneDigits, whole: true, repl: "[PHONE]", hint: digitsAtLeast(7)},
}

func digits(s string) []byte {
	d := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			d = append(d, s[i]-'0')
		}
	}
	return d
}

// luhn reports whether a 13 to 19 digit number passes the Luhn check.
func luhn(s string) bool {
	d := digits(s)
	if len(d) < 13 || len(d) > 19 {
		return false
	}
	sum := 0
	for i := range d {
		v := int(d[len(d)-1-i])
		if i%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

// validSSN rejects numbers the US never issues: area 000, 666 or 9xx, group 00, serial 0000.
func validSSN(s string) bool {
	area, group, serial := s[0:3], s[4:6], s[7:11]
	return area != "000" && area != "666" && area[0] != '9' && group != "00" && serial != "0000"
}

// validCNID checks a PRC resident identity number's ISO 7064 MOD 11-2 check character.
func validCNID(s string) bool {
	weights := [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i := 0; i < 17; i++ {
		sum += int(s[i]-'0') * weights[i]
	}
	check := "10X98765432"[sum%11]
	last := s[17]
	if last == 'x' {
		last = 'X'
	}
	return last == check
}

// groupBefore reports whether a digit group ends just before i ("1234 " or "1234-").
func groupBefore(s string, i int) bool {
	if i >= 1 && s[i-1] >= '0' && s[i-1] <= '9' {
		return true
	}
	return i >= 2 && (s[i-1] == ' ' || s[i-1] == '-' || s[i-1] == '.') && s[i-2] >= '0' && s[i-2] <= '9'
}

// groupAfter reports whether a digit group starts just after i.
func groupAfter(s string, i int) bool {
	if i < len(s) && s[i] >= '0' && s[i] <= '9' {
		return true
	}
	return i+1 < len(s) && (s[i] == ' ' || s[i] == '-' || s[i] == '.') && s[i+1] >= '0' && s[i+1] <= '9'
}

func phoneDigits(s string) bool {
	n := len(digits(s))
	return n >= 7 && n <= 15
}

// span is one match to replace.
type span struct {
	start, end int
	repl       string
	prio       int
}

// Scanner finds and replaces personal data.
type Scanner struct {
	dets   []detector
	window int
}

// find returns the non-overlapping matches in s, in order. s[:from] is context already sent:
// a free detector does not see it.
func (sc *Scanner) find(s string, from int) []span {
	var out []span
	for p, d := range sc.dets {
		at := 0
		if d.free {
			at = from
		}
		if d.hint != nil && !d.hint(s[at:]) {
			continue
		}
		for _, loc := range d.re.FindAllStringIndex(s[at:], -1) {
			loc[0], loc[1] = loc[0]+at, loc[1]+at
			if d.valid != nil && !d.valid(s[loc[0]:loc[1]]) {
				continue
			}
			if d.whole && (groupBefore(s, loc[0]) || groupAfter(s, loc[1])) {
				continue
			}
			out = append(out, span{loc[0], loc[1], d.repl, p})
		}
	}
	if len(out) < 2 {
		return out
	}
	slices.SortFunc(out, func(a, b span) int {
		if a.start != b.start {
			return a.start - b.start
		}
		if a.prio != b.prio {
			return a.prio - b.prio
		}
		return (b.end - b.start) - (a.end - a.start)
	})
	kept := out[:1]
	for _, sp := range out[1:] {
		last := &kept[len(kept)-1]
		if sp.start < last.end {
			if sp.prio < last.prio && sp.start == last.start {
				*last = sp
			}
			continue
		}
		kept = append(kept, sp)
	}
	return kept
}

// Redact returns s with every match replaced.
func (sc *Scanner) Redact(s string) string {
	spans := sc.find(s, 0)
	if len(spans) == 0 {
		return s
	}
	return apply(s, spans, 0, len(s))
}

// apply replaces the spans lying within s[from:cut] and returns that part of s.
func apply(s string, spans []span, from, cut int) string {
	var b strings.Builder
	b.Grow(cut - from)
	at := from
	for _, sp := range spans {
		if sp.start < from {
			continue
		}
		if sp.end > cut {
			break
		}
		b.WriteString(s[at:sp.start])
		b.WriteString(sp.repl)
		at = sp.end
	}
	b.WriteString(s[at:cut])
	return b.String()
}

// Tail is what a stream holds back between two pieces: Text, not sent yet, and the last
// bytes sent before it, which decide whether Text starts a word or continues a digit group
// (a held "0 1234" right after "12" is not the start of a number).
type Tail struct {
	Text   string
	before string
}

// contextBytes is how much sent text a Tail keeps: groupBefore looks two bytes back, and \b
// at the first of those looks one further. That third byte is kept only as what \b sees of it
// (see neutral), so that no match can start there: a match the buffer would find starting on
// it is one the whole text never had, since the byte before it decided otherwise, and it
// would hide the match that starts where the unsent text begins.
const contextBytes = 3

// neutral stands in for c as the first byte of a Tail's context: a word byte that starts no
// detector's match but an e-mail's, or a space, which starts none.
func neutral(c byte) byte {
	if c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_' {
		return 'Z'
	}
	return ' '
}

// Stream redacts the next piece of a streamed text. t is what the previous call kept back;
// the result is the text that can be sent now and what to keep back: a tail that could
// still be the start of a match (at most the window), unless final.
func (sc *Scanner) Stream(t Tail, piece string, final bool) (out string, keep Tail) {
	off := len(t.before)
	buf := t.before + t.Text + piece
	spans := sc.find(buf, off)
	if final {
		return apply(buf, spans, off, len(buf)), Tail{}
	}
	cut := max(sc.tailStart(buf), off)
	for _, sp := range spans {
		if sp.start >= off && sp.start < cut && sp.end > cut {
			cut = sp.start
			break
		}
	}
	// A match that reaches the end of the buffer may still grow.
	for _, sp := range spans {
		if sp.end == len(buf) && sp.start >= off && sp.start < cut {
			cut = sp.start
			break
		}
	}
	before := buf[max(cut-contextBytes, 0):cut]
	if len(before) == contextBytes {
		before = string(neutral(before[0])) + before[1:]
	}
	return apply(buf, spans, off, cut), Tail{Text: buf[cut:], before: before}
}

// tailStart is where the tail that could be part of a match begins: the last run of
// non-space characters, extended back over single separators between digits (card and phone
// numbers are written in groups), at most window bytes from the end.
func (sc *Scanner) tailStart(s string) int {
	limit := max(len(s)-sc.window, 0)
	i := len(s)
	for i > limit {
		c := s[i-1]
		if c == '\n' || c == '\r' || c == '\t' {
			break
		}
		if c == ' ' {
			// A space stays in the tail only between two digits (or after a digit group and
			// at the end, where the next group may follow).
			if i-2 >= 0 && isDigitish(s[i-2]) && (i == len(s) || isDigitish(s[i])) {
				i--
				continue
			}
			break
		}
		i--
	}
	return i
}

func isDigitish(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == ')' || c == '(' || c == '+' || c == '.'
}
