package grammar

import (
	"math"
	"sort"
	"sync"
)

// Vocab is a model's vocabulary as bytes, arranged in a trie for the mask search. It is
// immutable and safe for concurrent use.
type Vocab struct {
	size   int
	eog    []int32
	nodes  []trieNode
	toks   []int32 // token ids, grouped by the trie node they end at
	pieces []string
	// plain marks the tokens made only of bytes that leave a string's inside unchanged
	// (no quote, backslash or control byte); special lists the other non-empty tokens. Inside
	// a string, the mask is plain plus the special tokens that pass one by one, which spares
	// walking the whole trie.
	plain   []uint64
	special []int32
}

func (v *Vocab) piece(id int32) string { return v.pieces[id] }

type trieNode struct {
	b                  byte
	first, count       int32 // children: nodes[first : first+count]
	tokFirst, tokCount int32 // tokens ending here: toks[tokFirst : tokFirst+tokCount]
}

// NewVocab builds the trie. pieces[i] is token i's bytes as it appears in output text
// ("" for control tokens, which are never allowed); eog lists the end-of-generation
// tokens, allowed exactly when the output is complete.
func NewVocab(pieces []string, eog []int32) *Vocab {
	ids := make([]int32, 0, len(pieces))
	for id, p := range pieces {
		if p != "" {
			ids = append(ids, int32(id))
		}
	}
	sort.Slice(ids, func(a, b int) bool { return pieces[ids[a]] < pieces[ids[b]] })
	v := &Vocab{size: len(pieces), eog: append([]int32(nil), eog...), pieces: pieces, plain: make([]uint64, (len(pieces)+63)/64)}
	for _, id := range ids {
		p, ok := pieces[id], true
		for i := 0; i < len(p) && ok; i++ {
			b := p[i]
			ok = b >= 0x20 && b != '"' && b != '\\' && b != 0x7f
		}
		if ok {
			v.plain[id>>6] |= 1 << (id & 63)
		} else {
			v.special = append(v.special, id)
		}
	}
	// Breadth-first over ranges of the sorted ids: a node is the range of ids sharing its
	// path; those whose piece ends at the node come first in the range.
	type span struct{ lo, hi, depth int32 }
	v.nodes = []trieNode{{}}
	queue := []span{{0, int32(len(ids)), 0}}
	for qi := 0; qi < len(queue); qi++ {
		sp := queue[qi]
		n := &v.nodes[qi]
		lo := sp.lo
		n.tokFirst = int32(len(v.toks))
		for lo < sp.hi && int32(len(pieces[ids[lo]])) == sp.depth {
			v.toks = append(v.toks, ids[lo])
			lo++
		}
		n.tokCount = int32(len(v.toks)) - n.tokFirst
		n.first = int32(len(v.nodes))
		for lo < sp.hi {
			b := pieces[ids[lo]][sp.depth]
			hi := lo + 1
			for hi < sp.hi && pieces[ids[hi]][sp.depth] == b {
				hi++
			}
			v.nodes = append(v.nodes, trieNode{b: b})
			queue = append(queue, span{lo, hi, sp.depth + 1})
			lo = hi
		}
		n = &v.nodes[qi]
		n.count = int32(len(v.nodes)) - n.first
	}
	return v
}

// Size is the vocabulary size.
func (v *Vocab) Size() int { return v.size }

// masker searches the trie for the tokens a state allows, and caches the result per state.
type masker struct {
	g *Grammar
	v *Vocab

	mu    sync.Mutex
	cache map[string][]uint64
}

// maxCached bounds the masks kept per grammar and vocabulary (each is vocab/8 bytes).
const maxCached = 512

func newMasker(g *Grammar, v *Vocab) *masker {
	return &masker{g: g, v: v, cache: map[string][]uint64{}}
}

// key encodes a state as a cache key.
func key(st []frame) string {
	b := make([]byte, 0, len(st)*24)
	for _, f := range st {
		b = append(b, byte(f.kind), f.phase, f.ws, f.flag,
			byte(f.node), byte(f.node>>8), byte(f.node>>16), byte(f.node>>24),
			byte(f.n), byte(f.n>>8), byte(f.n>>16), byte(f.n>>24),
			byte(f.key), byte(f.key>>8), byte(f.key>>16), byte(f.key>>24))
		for i := 0; i < 64; i += 8 {
			b = append(b, byte(f.set>>i))
		}
	}
	return string(b)
}

// allowed returns the bit set of tokens that may come next from st.
func (m *masker) allowed(st []frame) []uint64 {
	k := key(st)
	m.mu.Lock()
	bits, ok := m.cache[k]
	m.mu.Unlock()
	if ok {
		return bits
	}
	bits = make([]uint64, (m.v.size+63)/64)
	if m.g.canEnd(st) {
		for _, id := range m.v.eog {
			bits[id>>6] |= 1 << (id & 63)
		}
	}
	if top := st[len(st)-1]; top.kind == fString && top.phase == sNormal {
		copy(bits, m.v.plain)
		buf := make([]frame, 0, len(st)+4)
		for _, id := range m.v.special {
			buf = append(buf[:0], st...)
			p, ok := m.v.pieces[id], true
			for i := 0; i < len(p) && ok; i++ {
				ok = m.g.feed(&buf, p[i])
			}
			if ok {
				bits[id>>6] |= 1 << (id & 63)
			}
		}
	} else if len(st) > 1 { // the root is not complete: search the trie
		m.walk(st, bits)
	}
	if deadEnd(bits) {
		// The vocabulary cannot spell any continuation (a literal needs a byte that no
		// token holds, as in a vocabulary without byte tokens): the generation may only
		// end, cut short, rather than sample a token outside the grammar. Done reports
		// false for it.
		for _, id := range m.v.eog {
			bits[id>>6] |= 1 << (id & 63)
		}
	}
	m.mu.Lock()
	if len(m.cache) >= maxCached {
		clear(m.cache)
	}
	m.cache[k] = bits
	m.mu.Unlock()
	return bits
}

func deadEnd(bits []uint64) bool {
	for _, w := range bits {
		if w != 0 {
			return false
		}
	}
	return true
}

// walk marks in bits the tokens the trie search finds allowed from st.
func (m *masker) walk(st []frame, bits []uint64) {
	s := &search{m: m, bits: bits}
	start := append([]frame(nil), st...)
	s.cur, s.bufs = [][]frame{start}, [][]frame{start}
	s.walk(0, 0)
}

type search struct {
	m    *masker
	bits []uint64
	// cur[d] is the state after d bytes of the current trie path; it may share storage
	// with cur[d-1] when the byte did not change the state. bufs[d] is level d's own
	// storage, never shared.
	cur, bufs [][]frame
}

// unchanged reports whether b leaves st as it is: a plain character inside a string, the
// bulk of the bytes of most masks.
func unchanged(st []frame, b byte) bool {
	top := &st[len(st)-1]
	return top.kind == fString && top.phase == sNormal && b >= 0x20 && b != '"' && b != '\\' && b != 0x7f
}

func (s *search) walk(node int32, depth int) {
	v := s.m.v
	n := v.nodes[node]
	if len(s.cur) <= depth+1 {
		s.cur = append(s.cur, nil)
		s.bufs = append(s.bufs, make([]frame, 0, len(s.cur[depth])+4))
	}
	parent := s.cur[depth]
	for c := n.first; c < n.first+n.count; c++ {
		child := &v.nodes[c]
		if unchanged(parent, child.b) {
			s.cur[depth+1] = parent
		} else {
			next := append(s.bufs[depth+1][:0], parent...)
			ok := s.m.g.feed(&next, child.b)
			s.bufs[depth+1] = next
			if !ok {
				continue
			}
			s.cur[depth+1] = next
		}
		for _, id := range v.toks[child.tokFirst : child.tokFirst+child.tokCount] {
			s.bits[id>>6] |= 1 << (id & 63)
		}
		if child.count > 0 {
			s.walk(c, depth+1)
		}
	}
}

// applyMask sets the logits of tokens outside bits to -Inf.
func applyMask(logits []float32, bits []uint64) {
	ninf := float32(math.Inf(-1))
	for w, word := range bits {
		if word == math.MaxUint64 {
			continue
		}
		base := w * 64
		end := min(base+64, len(logits))
		if word == 0 {
			for i := base; i < end; i++ {
				logits[i] = ninf
			}
			continue
		}
		for i := base; i < end; i++ {
			if word&(1<<(i-base)) == 0 {
				logits[i] = ninf
			}
		}
	}
	for i := len(bits) * 64; i < len(logits); i++ {
		logits[i] = ninf
	}
}
