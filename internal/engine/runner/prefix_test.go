package runner

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/open-autoglm/autoglm/internal/engine/tokenizer"
)

func words(r *Runner, text string) []int32 {
	return r.Tokenizer().Encode(text, tokenizer.EncodeOptions{})
}

func concat(parts ...[]int32) []int32 {
	var out []int32
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestPrefixReuseChat plays a three-turn conversation in which each turn
// resends the whole history, with and without prefix reuse: the greedy
// answers must be the same, and each turn must find the history in the cache.
func TestPrefixReuseChat(t *testing.T) {
	reuse := openStories(t, Options{Parallel: 2})
	fresh := openStories(t, Options{Parallel: 2, NoPrefixReuse: true})
	turns := []string{" Then she went home.", " The next day,"}

	var histA, histB []int32
	histA = encode(reuse, "Once upon a time")
	histB = slices.Clone(histA)
	for turn := 0; turn <= len(turns); turn++ {
		a := gen(reuse, Request{Prompt: histA, MaxTokens: 12})
		b := gen(fresh, Request{Prompt: histB, MaxTokens: 12})
		if a.err != nil || b.err != nil {
			t.Fatal(a.err, b.err)
		}
		if a.text != b.text || !slices.Equal(a.tokens, b.tokens) {
			t.Fatalf("turn %d: with reuse %q, without %q", turn, a.text, b.text)
		}
		if a.res.FinishReason != "length" {
			t.Fatalf("turn %d finished with %q; the test needs 12 tokens", turn, a.res.FinishReason)
		}
		if b.res.CachedTokens != 0 {
			t.Errorf("turn %d without reuse: %d cached tokens", turn, b.res.CachedTokens)
		}
		if turn > 0 {
			// The cache holds the previous prompt and every generated
			// token but the last (sampled, never fed).
			if want := len(histA) - len(words(reuse, turns[turn-1])) - 1; a.res.CachedTokens != want {
				t.Errorf("turn %d: %d cached tokens, want %d", turn, a.res.CachedTokens, want)
			}
		} else if a.res.CachedTokens != 0 {
			t.Errorf("first turn: %d cached tokens", a.res.CachedTokens)
		}
		if a.res.PromptTokens != len(histA) {
			t.Errorf("turn %d: prompt tokens %d, want %d", turn, a.res.PromptTokens, len(histA))
		}
		if turn < len(turns) {
			histA = concat(histA, a.tokens, words(reuse, turns[turn]))
			histB = slices.Clone(histA)
		}
	}

	// The same prompt again: all but its last token come from the cache.
	p := encode(reuse, "Once upon a time")
	first := gen(fresh, Request{Prompt: p, MaxTokens: 8})
	again := gen(reuse, Request{Prompt: p, MaxTokens: 8})
	if again.res.CachedTokens != len(p)-1 || again.text != first.text {
		t.Errorf("repeated prompt: %d cached (want %d), %q vs %q", again.res.CachedTokens, len(p)-1, again.text, first.text)
	}
}

// TestPrefixReuseLongestSlot checks that a request gets the slot that shares
// the longest prefix with it, not merely a free one.
func TestPrefixReuseLongestSlot(t *testing.T) {
	r := openStories(t, Options{Parallel: 2})
	a := encode(r, "Once upon a time there was a dog named Max")
	b := encode(r, "The little cat sat on the mat and looked at the sky")
	ga := gen(r, Request{Prompt: a, MaxTokens: 4})
	gb := gen(r, Request{Prompt: b, MaxTokens: 4})
	if ga.err != nil || gb.err != nil {
		t.Fatal(ga.err, gb.err)
	}
	// b's slot was released last; a request continuing a must still find a's.
	c := concat(a, words(r, " who liked to run"))
	gc := gen(r, Request{Prompt: c, MaxTokens: 2})
	if want := commonPrefix(concat(a, ga.tokens[:3]), c); gc.res.CachedTokens != want || want < len(a) {
		t.Errorf("continuing a: %d cached, want %d (a has %d tokens)", gc.res.CachedTokens, want, len(a))
	}
	d := concat(b, words(r, " all day"))
	gd := gen(r, Request{Prompt: d, MaxTokens: 2})
	if want := commonPrefix(concat(b, gb.tokens[:3]), d); gd.res.CachedTokens != want || want < len(b) {
		t.Errorf("continuing b: %d cached, want %d (b has %d tokens)", gd.res.CachedTokens, want, len(b))
	}
	// A prompt sharing nothing (not even BOS) computes everything.
	other := words(r, "Birds sing")
	if g := gen(r, Request{Prompt: other, MaxTokens: 1}); g.err != nil || g.res.CachedTokens != 0 {
		t.Errorf("unrelated prompt: %d cached, %v", g.res.CachedTokens, g.err)
	}
	r.mu.Lock()
	n := len(r.slots)
	r.mu.Unlock()
	if n > 2 {
		t.Errorf("%d slots kept, Parallel is 2", n)
	}
}

// TestPrefixReuseConcurrent sends requests that share a long prefix from
// many goroutines at once; every answer must equal the one computed from
// scratch.
func TestPrefixReuseConcurrent(t *testing.T) {
	reuse := openStories(t, Options{Parallel: 3, PrefillChunk: 16})
	fresh := openStories(t, Options{Parallel: 1, NoPrefixReuse: true})
	system := "Once upon a time, in a small town near the sea, there lived a kind old man who loved to tell stories."
	var prompts [][]int32
	for i := range 4 {
		prompts = append(prompts, encode(reuse, fmt.Sprintf("%s One day child number %d asked him", system, i)))
	}
	want := make([]generated, len(prompts))
	for i, p := range prompts {
		want[i] = gen(fresh, Request{Prompt: p, MaxTokens: 10})
	}
	const rounds = 3
	var wg sync.WaitGroup
	got := make([]generated, rounds*len(prompts))
	for k := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[k] = gen(reuse, Request{Prompt: prompts[k%len(prompts)], MaxTokens: 10})
		}()
	}
	wg.Wait()
	cached := 0
	for k, g := range got {
		w := want[k%len(prompts)]
		if g.err != nil || g.text != w.text {
			t.Errorf("request %d: %q, %v; want %q", k, g.text, g.err, w.text)
		}
		cached += g.res.CachedTokens
	}
	if cached == 0 {
		t.Error("no request reused a prefix")
	}
}

func TestMemory(t *testing.T) {
	r := openStories(t, Options{Parallel: 2})
	m := r.Memory()
	// The demo model: 292,800 f32 parameters; 5 layers × 4 KV heads × 8
	// values × 2 (keys, values) × 4 bytes per position.
	if m.Weights != 4*292800 || m.KVCacheType != "F32" || m.KVCacheMax != 2*512*1280 || m.KVCache != 0 {
		t.Errorf("before any request: %+v", m)
	}
	if g := gen(r, Request{Prompt: encode(r, "Once upon a time"), MaxTokens: 20}); g.err != nil {
		t.Fatal(g.err)
	}
	m = r.Memory()
	if m.KVCache < 25*1280 || m.KVCache > m.KVCacheMax || m.Scratch <= 0 {
		t.Errorf("after a request: %+v", m)
	}
}

func TestLoadProgress(t *testing.T) {
	var calls [][2]int64
	r, err := Open(storiesPath, Options{Progress: func(done, total int64) { calls = append(calls, [2]int64{done, total}) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(calls) == 0 || calls[len(calls)-1] != [2]int64{4 * 292800, 4 * 292800} {
		t.Errorf("progress calls %v", calls)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i][0] < calls[i-1][0] {
			t.Errorf("progress went back: %v", calls)
		}
	}
}
