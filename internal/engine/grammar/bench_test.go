package grammar

import (
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// benchVocab builds a 151,936-token vocabulary shaped like a byte-level BPE one (Qwen2.5's
// size): the 256 single bytes, words with and without a leading space, digit runs,
// punctuation runs, indentation, and CJK characters (3-byte UTF-8) alone and in pairs.
func benchVocab() []string {
	const size = 151936
	r := rand.New(rand.NewPCG(42, 42))
	seen := map[string]bool{}
	out := make([]string, 0, size)
	add := func(s string) {
		if s != "" && !seen[s] && len(out) < size-1 {
			seen[s] = true
			out = append(out, s)
		}
	}
	for b := range 256 {
		add(string([]byte{byte(b)}))
	}
	letters := "abcdefghijklmnopqrstuvwxyz"
	punct := []string{"\":", "\",", "{\"", "\"}", "},", "[\"", "\"]", "\": \"", "\", \"", "();", "->", "==", "!=", "://", "...", "\n\n", "\n    ", "    ", "\t\t"}
	for _, p := range punct {
		add(p)
	}
	for len(out) < size-1 {
		switch r.IntN(10) {
		case 0, 1, 2, 3:
			n := 2 + r.IntN(8)
			b := make([]byte, n)
			for i := range b {
				b[i] = letters[r.IntN(26)]
			}
			add(" " + string(b))
		case 4, 5, 6:
			n := 2 + r.IntN(8)
			b := make([]byte, n)
			for i := range b {
				b[i] = letters[r.IntN(26)]
			}
			if r.IntN(3) == 0 {
				b[0] -= 32
			}
			add(string(b))
		case 7:
			add(string(rune(0x4e00+r.IntN(0x5000))) + string(rune(0x4e00+r.IntN(0x5000))))
		case 8:
			n := 1 + r.IntN(3)
			b := make([]byte, n)
			for i := range b {
				b[i] = "0123456789"[r.IntN(10)]
			}
			add(string(b))
		default:
			add(punct[r.IntN(len(punct))] + string(letters[r.IntN(26)]))
		}
	}
	out = append(out, "") // the end token
	_ = utf8.RuneLen
	return out
}

// BenchmarkMask measures the mask of one decode step on a 151,936-token vocabulary, for
// the states generation spends its time in: inside a string value, before a key, inside a
// number, each uncached (a state seen for the first time: the trie search) and cached.
func BenchmarkMask(b *testing.B) {
	pieces := benchVocab()
	eos := int32(len(pieces) - 1)
	v := NewVocab(pieces, []int32{eos})
	g, err := Compile([]byte(personSchema))
	if err != nil {
		b.Fatal(err)
	}
	logits := make([]float32, len(pieces))
	for _, st := range []struct{ name, prefix string }{
		{"string", `{"name": "Ann Lee, the`},
		{"key", `{"name": "Ann", `},
		{"number", `{"name": "Ann", "age": 4`},
	} {
		b.Run(st.name+"/uncached", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c := NewConstraint(g, v) // a fresh cache every time
				s := c.Start()
				s.AcceptBytes(st.prefix)
				s.Mask(logits)
			}
		})
		b.Run(st.name+"/cached", func(b *testing.B) {
			c := NewConstraint(g, v)
			s := c.Start()
			s.AcceptBytes(st.prefix)
			s.Mask(logits)
			b.ReportAllocs()
			for b.Loop() {
				s.Mask(logits)
			}
		})
	}
}

func BenchmarkNewVocab(b *testing.B) {
	pieces := benchVocab()
	for b.Loop() {
		NewVocab(pieces, nil)
	}
}

// BenchmarkGenerationMask measures the constraint's whole cost per generated token (mask and
// accept, uncached states included) over generations of personSchema with random logits on
// a 151,936-token vocabulary; each iteration is one generation with a fresh mask cache.
func BenchmarkGenerationMask(b *testing.B) {
	pieces := benchVocab()
	eos := int32(len(pieces) - 1)
	v := NewVocab(pieces, []int32{eos})
	g, err := Compile([]byte(personSchema))
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 5))
	logits := make([]float32, len(pieces))
	tokens := 0
	b.ResetTimer()
	for b.Loop() {
		c := NewConstraint(g, v)
		st := c.Start()
		for range 200 {
			b.StopTimer()
			for i := range logits {
				logits[i] = float32(r.NormFloat64())
			}
			logits[eos] += 4
			b.StartTimer()
			st.Mask(logits)
			best, bestV := int32(-1), float32(-1e30)
			for i, x := range logits {
				if x > bestV {
					best, bestV = int32(i), x
				}
			}
			tokens++
			if best == eos {
				break
			}
			st.Accept(best)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(tokens), "ns/token")
}
