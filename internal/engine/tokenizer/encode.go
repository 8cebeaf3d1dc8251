package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// EncodeOptions controls Encode.
type EncodeOptions struct {
	// AddSpecial adds BOS and/or EOS as the vocabulary asks (Vocab.AddBOS,
	// Vocab.AddEOS).
	AddSpecial bool
	// ParseSpecial recognises the text of control tokens (such as
	// "<|im_start|>" or "<s>") in the input and encodes it as that token.
	// Without it such text is encoded as ordinary text. User-defined tokens
	// are recognised either way, as llama.cpp and Hugging Face do.
	ParseSpecial bool
}

// symbol is one node of the doubly linked list that both merge algorithms
// work on: a span of the text that is, or may become, one token.
type symbol struct {
	start, n   int32 // byte span in the text being merged; n == 0 once merged away
	prev, next int32 // neighbours, -1 at the ends
	id         int32 // BPE: the token this span is (-1 if none)
}

// candidate is a possible merge of symbols left and left's next neighbour,
// queued by priority. size (the pair's byte length at queueing time) detects
// candidates made stale by an earlier merge: spans only grow, so an unchanged
// sum means both sides are unchanged.
type candidate struct {
	left, right int32
	size        int32
	rank        int32   // BPE: lower merges first
	score       float32 // SentencePiece: higher merges first
	id          int32   // BPE: the merged token
}

// encodeState is per-call scratch space, pooled to keep Encode allocation-light.
type encodeState struct {
	syms  []symbol
	queue queue
	buf   []byte
	words []string
}

// queue is a binary heap of candidates; spm selects the ordering.
type queue struct {
	items []candidate
	spm   bool
}

// before orders candidates as llama.cpp does: SentencePiece by score, highest
// first; BPE by merge rank, lowest first; ties go to the leftmost pair.
func (q *queue) before(a, b *candidate) bool {
	if q.spm {
		if a.score != b.score {
			return a.score > b.score
		}
	} else if a.rank != b.rank {
		return a.rank < b.rank
	}
	return a.left < b.left
}

func (q *queue) push(c candidate) {
	q.items = append(q.items, c)
	i := len(q.items) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.before(&q.items[i], &q.items[p]) {
			break
		}
		q.items[i], q.items[p] = q.items[p], q.items[i]
		i = p
	}
}

func (q *queue) pop() candidate {
	top := q.items[0]
	last := len(q.items) - 1
	q.items[0] = q.items[last]
	q.items = q.items[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && q.before(&q.items[l], &q.items[m]) {
			m = l
		}
		if r < last && q.before(&q.items[r], &q.items[m]) {
			m = r
		}
		if m == i {
			break
		}
		q.items[i], q.items[m] = q.items[m], q.items[i]
		i = m
	}
	return top
}

// Encode converts text to token ids. It never fails: text that no token
// covers becomes byte tokens (or the unknown token when the vocabulary has no
// byte tokens). Invalid UTF-8 is accepted and, with byte tokens available,
// survives a round trip through Decode.
func (t *Tokenizer) Encode(text string, opts EncodeOptions) []int32 {
	out := make([]int32, 0, len(text)/3+2)
	if opts.AddSpecial && t.v.AddBOS {
		out = append(out, t.v.BOS)
	}
	st := t.scratch.Get().(*encodeState)
	start := 0
	for i := 0; i < len(text); {
		id, n := t.matchSpecial(text, i, opts.ParseSpecial)
		if n == 0 {
			i++
			continue
		}
		if i > start {
			out = t.encodeText(st, text[start:i], out)
		}
		out = append(out, id)
		i += n
		start = i
	}
	if start < len(text) {
		out = t.encodeText(st, text[start:], out)
	}
	t.scratch.Put(st)
	if opts.AddSpecial && t.v.AddEOS {
		out = append(out, t.v.EOS)
	}
	return out
}

// matchSpecial returns the longest token cut out of the input at text[i:]
// (see buildSpecial), or n == 0.
func (t *Tokenizer) matchSpecial(text string, i int, parseSpecial bool) (id int32, n int) {
	for _, id := range t.special[text[i]] {
		if !parseSpecial && t.typ(id) != TypeUserDefined {
			continue
		}
		if s := t.v.Tokens[id]; strings.HasPrefix(text[i:], s) {
			return id, len(s)
		}
	}
	return -1, 0
}

// encodeText encodes a stretch of text that holds no special tokens.
func (t *Tokenizer) encodeText(st *encodeState, text string, out []int32) []int32 {
	if t.bpe {
		st.words = t.split(text, st.words[:0])
		for _, w := range st.words {
			out = t.encodeWord(st, w, out)
		}
		clear(st.words) // drop references to the caller's text
		return out
	}
	return t.encodeSPM(st, text, out)
}

// encodeSPM is llama.cpp's SentencePiece tokenizer: escape spaces as "▁"
// (prefixing one when AddSpacePrefix is set), start from single characters,
// repeatedly merge the adjacent pair whose concatenation is the token with the
// highest score, then spell whatever is left that is not a token as bytes.
func (t *Tokenizer) encodeSPM(st *encodeState, text string, out []int32) []int32 {
	buf := st.buf[:0]
	if t.v.AddSpacePrefix {
		buf = append(buf, spaceEscape...)
	}
	for i := 0; i < len(text); i++ {
		if text[i] == ' ' {
			buf = append(buf, spaceEscape...)
		} else {
			buf = append(buf, text[i])
		}
	}
	st.buf = buf
	if !t.spmWords {
		return t.mergeSPM(st, buf, out)
	}
	// No token spans a word start (see spanWordStart), so merging each word
	// on its own gives the same result with far smaller queues.
	lo := 0
	for i := 1; i < len(buf); i++ {
		if isEscape(buf, i) && !isEscape(buf, i-len(spaceEscape)) {
			out = t.mergeSPM(st, buf[lo:i], out)
			lo = i
		}
	}
	return t.mergeSPM(st, buf[lo:], out)
}

// spaceEscape is SentencePiece's visible space, U+2581.
const spaceEscape = "▁"

// isEscape reports whether buf[i:] starts with spaceEscape.
func isEscape(buf []byte, i int) bool {
	return i >= 0 && i+len(spaceEscape) <= len(buf) && string(buf[i:i+len(spaceEscape)]) == spaceEscape
}

// spanWordStart reports whether some token has a "▁" right after another
// character, so that a merge could join the end of one word to the start of
// the next. Vocabularies trained with SentencePiece's default whitespace
// splitting have none ("▁▁" runs are fine: "▁" follows "▁").
func spanWordStart(tokens []string) bool {
	for _, s := range tokens {
		for i := 1; i < len(s); i++ {
			if isEscape([]byte(s), i) && !isEscape([]byte(s), i-len(spaceEscape)) {
				return true
			}
		}
	}
	return false
}

// mergeSPM runs the score-ordered merge over buf and appends the result.
func (t *Tokenizer) mergeSPM(st *encodeState, buf []byte, out []int32) []int32 {
	syms := st.syms[:0]
	for i := 0; i < len(buf); {
		n := utf8Len(buf, i)
		syms = append(syms, symbol{start: int32(i), n: int32(n), prev: int32(len(syms)) - 1, next: int32(len(syms)) + 1})
		i += n
	}
	if len(syms) == 0 {
		return out
	}
	syms[len(syms)-1].next = -1

	q := &st.queue
	q.items, q.spm = q.items[:0], true
	tryPair := func(l, r int32) {
		if l < 0 || r < 0 {
			return
		}
		a, b := syms[l].start, syms[r].start+syms[r].n
		id, ok := t.ids[string(buf[a:b])]
		if !ok {
			return
		}
		var score float32
		if t.v.Scores != nil {
			score = t.v.Scores[id]
		}
		q.push(candidate{left: l, right: r, size: b - a, score: score})
	}
	for i := 1; i < len(syms); i++ {
		tryPair(int32(i-1), int32(i))
	}
	for len(q.items) > 0 {
		c := q.pop()
		l, r := &syms[c.left], &syms[c.right]
		if l.n == 0 || r.n == 0 || l.n+r.n != c.size {
			continue
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if l.next >= 0 {
			syms[l.next].prev = c.left
		}
		tryPair(l.prev, c.left)
		tryPair(c.left, l.next)
	}

	for i := int32(0); i >= 0; i = syms[i].next {
		s := syms[i]
		piece := buf[s.start : s.start+s.n]
		if id, ok := t.ids[string(piece)]; ok {
			out = append(out, id)
			continue
		}
		out = t.appendBytes(piece, out)
	}
	st.syms = syms
	return out
}

// appendBytes spells an unknown character as byte tokens. Without a byte
// token for every one of its bytes the whole character becomes the unknown
// token, as SentencePiece does without byte fallback (nothing if there is no
// unknown token either).
func (t *Tokenizer) appendBytes(piece []byte, out []int32) []int32 {
	for _, b := range piece {
		if t.byteTok[b] < 0 {
			if t.v.UNK >= 0 {
				out = append(out, t.v.UNK)
			}
			return out
		}
	}
	for _, b := range piece {
		out = append(out, t.byteTok[b])
	}
	return out
}

// utf8Len is the length of the character starting at buf[i]. An invalid
// byte counts as one character of its own. (llama.cpp judges by the first byte
// alone, so an invalid lead byte can swallow part of the following "▁" and
// lose the space in a round trip; this is the one place we differ.)
func utf8Len(buf []byte, i int) int {
	if buf[i] < utf8.RuneSelf {
		return 1
	}
	_, n := utf8.DecodeRune(buf[i:])
	return n
}

// encodeWord is byte-level BPE on one pre-tokenized word: start from one
// symbol per byte (each byte's GPT-2 character token) and apply merge rules in
// rank order, always the best-ranked applicable pair first, leftmost on ties.
// A heap of candidate pairs makes this O(n log n) in the word length.
func (t *Tokenizer) encodeWord(st *encodeState, word string, out []int32) []int32 {
	if len(word) == 1 {
		return t.appendByteToken(word[0], out)
	}
	if t.v.IgnoreMerges {
		buf := st.buf[:0]
		for i := 0; i < len(word); i++ {
			buf = append(buf, byteLevelChars.char[word[i]]...)
		}
		st.buf = buf
		if id, ok := t.ids[string(buf)]; ok {
			return append(out, id)
		}
	}

	syms := st.syms[:0]
	for i := 0; i < len(word); i++ {
		syms = append(syms, symbol{start: int32(i), n: 1, prev: int32(i) - 1, next: int32(i) + 1, id: t.byteTok[word[i]]})
	}
	syms[len(syms)-1].next = -1

	q := &st.queue
	q.items, q.spm = q.items[:0], false
	tryPair := func(l, r int32) {
		if l < 0 || r < 0 {
			return
		}
		m, ok := t.merges[pairKey(syms[l].id, syms[r].id)]
		if !ok {
			return
		}
		q.push(candidate{left: l, right: r, size: syms[l].n + syms[r].n, rank: m.rank, id: m.id})
	}
	for i := 1; i < len(syms); i++ {
		tryPair(int32(i-1), int32(i))
	}
	for len(q.items) > 0 {
		c := q.pop()
		l, r := &syms[c.left], &syms[c.right]
		if l.n == 0 || r.n == 0 || l.n+r.n != c.size {
			continue
		}
		l.n += r.n
		l.id = c.id
		r.n = 0
		l.next = r.next
		if l.next >= 0 {
			syms[l.next].prev = c.left
		}
		tryPair(l.prev, c.left)
		tryPair(c.left, l.next)
	}

	for i := int32(0); i >= 0; i = syms[i].next {
		s := syms[i]
		switch {
		case s.id >= 0:
			out = append(out, s.id)
		case t.v.UNK >= 0:
			// Only a lone byte without a token can be left without an id.
			out = append(out, t.v.UNK)
		}
	}
	st.syms = syms
	return out
}

func (t *Tokenizer) appendByteToken(b byte, out []int32) []int32 {
	switch {
	case t.byteTok[b] >= 0:
		return append(out, t.byteTok[b])
	case t.v.UNK >= 0:
		return append(out, t.v.UNK)
	}
	return out
}

// byteLevelChars is the fixed GPT-2 byte↔character table, built once.
var byteLevelChars = newByteLevel()
