package sample

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// logitsOf returns logits whose softmax is exactly probs.
func logitsOf(probs ...float64) []float32 {
	l := make([]float32, len(probs))
	for i, p := range probs {
		if p == 0 {
			l[i] = float32(math.Inf(-1))
			continue
		}
		l[i] = float32(math.Log(p))
	}
	return l
}

// support samples n times and returns the set of ids drawn, sorted.
func support(t *testing.T, p Params, logits []float32, history []int32, n int) []int32 {
	t.Helper()
	s := New(p)
	seen := map[int32]bool{}
	buf := make([]float32, len(logits))
	for range n {
		copy(buf, logits)
		seen[s.Sample(buf, history)] = true
	}
	var ids []int32
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func TestGreedy(t *testing.T) {
	tests := []struct {
		name   string
		logits []float32
		want   int32
	}{
		{"single max", []float32{0.1, 3, -2, 2.9}, 1},
		{"tie picks lowest id", []float32{1, 5, 2, 5, 5}, 1},
		{"all equal", []float32{0, 0, 0}, 0},
		{"negative", []float32{-3, -1, -2}, 1},
		{"nan ignored", []float32{float32(math.NaN()), 1, 2}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, temp := range []float32{0, -1} {
				s := New(Params{Temperature: temp, TopK: 1, TopP: 0.5, Seed: 3})
				if got := s.Sample(slices.Clone(tc.logits), nil); got != tc.want {
					t.Errorf("temperature %v: got %d, want %d", temp, got, tc.want)
				}
			}
		})
	}
}

func TestRepeatPenalty(t *testing.T) {
	// Token 0 has a positive logit, token 1 a negative one; both are seen.
	logits := []float32{2, -1, 1.5, -3}
	s := New(Params{RepeatPenalty: 2})
	s.penalize(logits, []int32{0, 1, 1, 99, -5})
	want := []float32{1, -2, 1.5, -3}
	if !slices.Equal(logits, want) {
		t.Fatalf("got %v, want %v", logits, want)
	}
	// The greedy choice moves from token 0 to token 2.
	if got := New(Params{RepeatPenalty: 2}).Sample([]float32{2, -1, 1.5, -3}, []int32{0}); got != 2 {
		t.Errorf("greedy with penalty: got %d, want 2", got)
	}
}

func TestFrequencyPresencePenalty(t *testing.T) {
	logits := []float32{5, 5, 5, 5}
	s := New(Params{FrequencyPenalty: 0.5, PresencePenalty: 1})
	s.penalize(logits, []int32{0, 0, 0, 2})
	want := []float32{5 - 1.5 - 1, 5, 5 - 0.5 - 1, 5}
	if !slices.Equal(logits, want) {
		t.Fatalf("got %v, want %v", logits, want)
	}
	// Counts must be cleared between calls.
	logits = []float32{5, 5, 5, 5}
	s.penalize(logits, []int32{3})
	want = []float32{5, 5, 5, 5 - 0.5 - 1}
	if !slices.Equal(logits, want) {
		t.Fatalf("second call: got %v, want %v", logits, want)
	}
}

func TestRepeatLastN(t *testing.T) {
	logits := []float32{2, 2, 2}
	s := New(Params{RepeatPenalty: 2, RepeatLastN: 2})
	s.penalize(logits, []int32{0, 1, 2})
	want := []float32{2, 1, 1}
	if !slices.Equal(logits, want) {
		t.Fatalf("got %v, want %v", logits, want)
	}
}

func TestTopK(t *testing.T) {
	logits := logitsOf(0.05, 0.3, 0.1, 0.25, 0.2, 0.1)
	got := support(t, Params{Temperature: 1, TopK: 3, Seed: 1}, logits, nil, 2000)
	if want := []int32{1, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("top-3 support %v, want %v", got, want)
	}
	// Ties at the cut keep the lowest ids.
	got = support(t, Params{Temperature: 1, TopK: 2, Seed: 1}, []float32{1, 1, 1, 1}, nil, 500)
	if want := []int32{0, 1}; !slices.Equal(got, want) {
		t.Errorf("tied top-2 support %v, want %v", got, want)
	}
	// K at or beyond the vocabulary disables the filter.
	got = support(t, Params{Temperature: 1, TopK: 10, Seed: 1}, logitsOf(0.25, 0.25, 0.25, 0.25), nil, 500)
	if want := []int32{0, 1, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("top-10 support %v, want %v", got, want)
	}
}

func TestTopP(t *testing.T) {
	logits := logitsOf(0.1, 0.4, 0.05, 0.3, 0.15)
	tests := []struct {
		p    float32
		want []int32
	}{
		{0.35, []int32{1}},
		{0.4, []int32{1}},
		{0.65, []int32{1, 3}},
		{0.8, []int32{1, 3, 4}},
		{0.9, []int32{0, 1, 3, 4}},
		{0.99, []int32{0, 1, 2, 3, 4}},
	}
	for _, tc := range tests {
		for _, k := range []int{0, 4} {
			want := tc.want
			if k == 4 && len(want) == 5 {
				want = []int32{0, 1, 3, 4}
			}
			got := support(t, Params{Temperature: 1, TopP: tc.p, TopK: k, Seed: 7}, logits, nil, 3000)
			if !slices.Equal(got, want) {
				t.Errorf("top-p %v top-k %d: support %v, want %v", tc.p, k, got, want)
			}
		}
	}
}

func TestMinP(t *testing.T) {
	logits := logitsOf(0.1, 0.4, 0.05, 0.3, 0.15)
	// Threshold 0.5*0.4 = 0.2 keeps 0.4 and 0.3.
	got := support(t, Params{Temperature: 1, MinP: 0.5, Seed: 2}, logits, nil, 2000)
	if want := []int32{1, 3}; !slices.Equal(got, want) {
		t.Errorf("min-p support %v, want %v", got, want)
	}
	// After top-p (sorted path) too.
	got = support(t, Params{Temperature: 1, MinP: 0.3, TopP: 0.95, Seed: 2}, logits, nil, 2000)
	if want := []int32{1, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("top-p+min-p support %v, want %v", got, want)
	}
}

func TestTemperature(t *testing.T) {
	// A low temperature concentrates the mass: with T=0.05 the second token
	// (logit 1 below the best) has weight e^-20 and is practically never drawn.
	got := support(t, Params{Temperature: 0.05, Seed: 5}, []float32{0, 3, 2}, nil, 2000)
	if want := []int32{1}; !slices.Equal(got, want) {
		t.Errorf("T=0.05 support %v, want %v", got, want)
	}
	// A high temperature flattens it: the frequencies approach uniform.
	counts := make([]int, 3)
	s := New(Params{Temperature: 100, Seed: 5})
	const n = 30000
	for range n {
		counts[s.Sample([]float32{0, 3, 2}, nil)]++
	}
	for id, c := range counts {
		if f := float64(c) / n; math.Abs(f-1.0/3) > 0.03 {
			t.Errorf("T=100 token %d frequency %.3f, want ≈ 1/3", id, f)
		}
	}
}

func TestSeedReproducible(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	logits := make([]float32, 1000)
	for i := range logits {
		logits[i] = float32(r.NormFloat64() * 2)
	}
	p := Params{Temperature: 0.9, TopK: 50, TopP: 0.95, MinP: 0.01, RepeatPenalty: 1.1, Seed: 42}
	run := func(p Params) []int32 {
		s := New(p)
		var out []int32
		for range 200 {
			out = append(out, s.Sample(slices.Clone(logits), out))
		}
		return out
	}
	a, b := run(p), run(p)
	if !slices.Equal(a, b) {
		t.Fatal("same seed gave different sequences")
	}
	p.Seed = 43
	if c := run(p); slices.Equal(a, c) {
		t.Error("different seeds gave identical sequences")
	}
}

// TestDistribution checks that draws follow the softmax with a chi-square
// test; the seed is fixed so the test is deterministic.
func TestDistribution(t *testing.T) {
	probs := []float64{0.02, 0.08, 0.1, 0.15, 0.25, 0.4}
	logits := logitsOf(probs...)
	// Shift the logits: the softmax must not care.
	for i := range logits {
		logits[i] += 7
	}
	for _, p := range []Params{
		{Temperature: 1, Seed: 11},
		{Temperature: 1, TopK: 6, Seed: 12},
		{Temperature: 1, TopP: 0.999, Seed: 13},
	} {
		s := New(p)
		const n = 100000
		counts := make([]float64, len(probs))
		buf := make([]float32, len(logits))
		for range n {
			copy(buf, logits)
			counts[s.Sample(buf, nil)]++
		}
		var chi2 float64
		for i, c := range counts {
			e := probs[i] * n
			chi2 += (c - e) * (c - e) / e
		}
		// 5 degrees of freedom: P(χ² > 20.5) ≈ 0.001.
		if chi2 > 20.5 {
			t.Errorf("%+v: chi-square %.2f over bound 20.5 (counts %v)", p, chi2, counts)
		}
	}
}

func TestTopPHeapMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 50 {
		n := 1 + r.IntN(300)
		c := make([]cand, n)
		var sum float32
		for i := range c {
			c[i] = cand{int32(i), float32(r.ExpFloat64())}
			if r.IntN(5) == 0 && i > 0 {
				c[i].p = c[i-1].p // ties
			}
			sum += c[i].p
		}
		for i := range c {
			c[i].p /= sum
		}
		ref := slices.Clone(c)
		slices.SortFunc(ref, func(a, b cand) int {
			if before(a, b) {
				return -1
			}
			return 1
		})
		p := float32(r.Float64())
		want := topP(ref, p, true)
		got := topP(slices.Clone(c), p, false)
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d n=%d p=%v: heap %v, sort %v", trial, n, p, got, want)
		}
	}
}

func TestDegenerate(t *testing.T) {
	s := New(Params{Temperature: 1, Seed: 1})
	inf := float32(math.Inf(-1))
	if got := s.Sample([]float32{inf, inf, inf}, nil); got != 0 {
		t.Errorf("all -Inf: got %d", got)
	}
	if got := s.Sample(nil, nil); got != -1 {
		t.Errorf("empty: got %d", got)
	}
	if got := s.Sample([]float32{inf, 1, inf}, nil); got != 1 {
		t.Errorf("single finite: got %d", got)
	}
}

func TestNoAllocs(t *testing.T) {
	logits := make([]float32, 5000)
	r := rand.New(rand.NewPCG(5, 6))
	for i := range logits {
		logits[i] = float32(r.NormFloat64())
	}
	hist := []int32{1, 2, 3, 4, 5, 1}
	for _, p := range []Params{
		{Temperature: 0.8, TopK: 40, TopP: 0.9, MinP: 0.05, RepeatPenalty: 1.1, Seed: 1},
		{Temperature: 0.8, TopP: 0.9, FrequencyPenalty: 0.2, Seed: 1},
		{RepeatPenalty: 1.3, Seed: 1},
	} {
		s := New(p)
		buf := make([]float32, len(logits))
		s.Sample(buf, hist) // grow buffers
		allocs := testing.AllocsPerRun(20, func() {
			copy(buf, logits)
			s.Sample(buf, hist)
		})
		if allocs != 0 {
			t.Errorf("%+v: %v allocs per Sample", p, allocs)
		}
	}
}

func BenchmarkSample(b *testing.B) {
	const vocab = 152064
	r := rand.New(rand.NewPCG(9, 9))
	logits := make([]float32, vocab)
	for i := range logits {
		logits[i] = float32(r.NormFloat64() * 3)
	}
	hist := make([]int32, 64)
	for i := range hist {
		hist[i] = int32(r.IntN(vocab))
	}
	cases := []struct {
		name string
		p    Params
	}{
		{"greedy", Params{}},
		{"topk40_topp0.9", Params{Temperature: 0.8, TopK: 40, TopP: 0.9, MinP: 0.05, RepeatPenalty: 1.1, RepeatLastN: 64, Seed: 1}},
		{"topp0.9", Params{Temperature: 0.7, TopP: 0.9, Seed: 1}},
		{"temp_only", Params{Temperature: 1, Seed: 1}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			s := New(tc.p)
			buf := make([]float32, vocab)
			b.ReportAllocs()
			for b.Loop() {
				copy(buf, logits)
				s.Sample(buf, hist)
			}
		})
	}
}
