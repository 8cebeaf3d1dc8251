package runner

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/engine/gguf"
	"github.com/open-autoglm/autoglm/internal/engine/model"
	"github.com/open-autoglm/autoglm/internal/engine/sample"
	"github.com/open-autoglm/autoglm/internal/engine/tokenizer"
)

const storiesPath = "../../../models/stories260K.gguf"

// storiesContinuation is the demo model's documented greedy continuation of
// "Once upon a time".
const storiesContinuation = ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high."

// openStories opens the demo model; its metadata says 128 positions but it
// was trained at 512.
func openStories(tb testing.TB, opt Options) *Runner {
	tb.Helper()
	if opt.ContextLength == 0 {
		opt.ContextLength = 512
	}
	return openHooked(tb, opt, nil)
}

// openHooked opens the demo model with a hook run before every step.
func openHooked(tb testing.TB, opt Options, beforeStep func([]*model.Seq)) *Runner {
	tb.Helper()
	f, err := gguf.Open(storiesPath)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := newRunner(f, opt, beforeStep)
	if err != nil {
		f.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := r.Close(); err != nil {
			tb.Error(err)
		}
	})
	return r
}

func encode(r *Runner, text string) []int32 {
	return r.Tokenizer().Encode(text, tokenizer.EncodeOptions{AddSpecial: true})
}

// gate holds the scheduler before each step until the test lets it go:
// step releases one step, open all of them.
type gate struct {
	steps  chan struct{}
	opened chan struct{}
	once   sync.Once
}

// openGated opens the demo model with a gate before every step; record, if
// not nil, sees each step's batch first. The gate opens at cleanup before
// the Runner closes, so that a failed test cannot leave Close waiting for a
// held scheduler.
func openGated(t *testing.T, opt Options, record func([]*model.Seq)) (*Runner, *gate) {
	g := &gate{steps: make(chan struct{}, 1024), opened: make(chan struct{})}
	r := openHooked(t, opt, func(batch []*model.Seq) {
		if record != nil {
			record(batch)
		}
		g.wait()
	})
	t.Cleanup(g.open) // runs before the Close registered by openHooked
	return r, g
}

func (g *gate) wait() {
	select {
	case <-g.steps:
	case <-g.opened:
	}
}

func (g *gate) step(n int) {
	for range n {
		g.steps <- struct{}{}
	}
}

func (g *gate) open() { g.once.Do(func() { close(g.opened) }) }

// generated is the outcome of one Generate call.
type generated struct {
	text   string
	tokens []int32
	events []Event
	res    Result
	err    error
}

func gen(r *Runner, req Request) generated {
	var g generated
	g.res, g.err = r.Generate(context.Background(), req, func(ev Event) error {
		g.events = append(g.events, ev)
		g.text += ev.Text
		g.tokens = append(g.tokens, ev.Token)
		return nil
	})
	return g
}

func TestInfo(t *testing.T) {
	r := openStories(t, Options{})
	info := r.Info()
	want := Info{Arch: "llama", ContextLength: 512, VocabSize: 512, EmbeddingDim: 64, Template: "plain", Name: info.Name,
		KVCacheType: "F32", KVBytesPerToken: 2 * 5 * 4 * 8 * 4} // 5 layers, 4 KV heads of 8, keys and values, f32
	if info != want {
		t.Errorf("Info() = %+v, want %+v", info, want)
	}
	if got := encode(r, "Once upon a time"); fmt.Sprint(got) != "[1 403 407 261 378]" {
		t.Errorf("prompt tokens %v", got)
	}
}

func TestGreedyStories(t *testing.T) {
	r := openStories(t, Options{})
	g := gen(r, Request{Prompt: encode(r, "Once upon a time"), MaxTokens: 60})
	if g.err != nil {
		t.Fatal(g.err)
	}
	if !strings.HasPrefix(g.text, storiesContinuation) {
		t.Errorf("greedy continuation\n got %q\nwant prefix %q", g.text, storiesContinuation)
	}
	if g.res != (Result{PromptTokens: 5, CompletionTokens: 60, FinishReason: "length"}) {
		t.Errorf("result %+v", g.res)
	}
	if len(g.events) != 60 {
		t.Errorf("%d events, want one per token", len(g.events))
	}
	// The events' text is the tokenizer's decoding of the generated ids.
	if want := r.Tokenizer().DecodeWith(g.tokens, tokenizer.DecodeOptions{Continuation: true}); g.text != want {
		t.Errorf("streamed text %q != decoded %q", g.text, want)
	}
}

var fourPrompts = []string{"Once upon a time", "The cat", "Lily and Tom went to the", "One day, a big dog"}

func TestBatchedEqualsAlone(t *testing.T) {
	r := openStories(t, Options{Parallel: 4})
	n := 40
	if raceEnabled {
		n = 16
	}
	alone := make([]string, len(fourPrompts))
	for i, p := range fourPrompts {
		g := gen(r, Request{Prompt: encode(r, p), MaxTokens: n})
		if g.err != nil {
			t.Fatal(g.err)
		}
		alone[i] = g.text
	}
	together := make([]generated, len(fourPrompts))
	var wg sync.WaitGroup
	for i, p := range fourPrompts {
		wg.Go(func() { together[i] = gen(r, Request{Prompt: encode(r, p), MaxTokens: n}) })
	}
	wg.Wait()
	for i := range fourPrompts {
		if together[i].err != nil {
			t.Fatal(together[i].err)
		}
		if together[i].text != alone[i] {
			t.Errorf("prompt %q\n batched %q\n   alone %q", fourPrompts[i], together[i].text, alone[i])
		}
	}
}

func TestSeededSampling(t *testing.T) {
	r := openStories(t, Options{})
	prompt := encode(r, "Once upon a time")
	params := sample.Params{Temperature: 1, TopP: 0.95, Seed: 42}
	a := gen(r, Request{Prompt: prompt, MaxTokens: 30, Sample: params})
	b := gen(r, Request{Prompt: prompt, MaxTokens: 30, Sample: params})
	if a.err != nil || b.err != nil {
		t.Fatal(a.err, b.err)
	}
	if a.text != b.text {
		t.Errorf("same seed, different text:\n%q\n%q", a.text, b.text)
	}
	params.Seed = 7
	c := gen(r, Request{Prompt: prompt, MaxTokens: 30, Sample: params})
	if c.text == a.text {
		t.Errorf("seeds 42 and 7 gave the same text %q", c.text)
	}
}

func TestMaxTokensAndContext(t *testing.T) {
	r := openStories(t, Options{ContextLength: 16})
	prompt := encode(r, "Once upon a time")
	g := gen(r, Request{Prompt: prompt, MaxTokens: 3})
	if g.err != nil || g.res != (Result{PromptTokens: 5, CompletionTokens: 3, FinishReason: "length"}) {
		t.Errorf("MaxTokens 3: %+v, %v", g.res, g.err)
	}
	// 16 positions: the prompt's 5 plus 11 fed tokens, and the 12th token
	// is sampled from the last position. The first 4 prompt tokens are
	// still in the cache from the request before.
	g = gen(r, Request{Prompt: prompt})
	if g.err != nil || g.res != (Result{PromptTokens: 5, CachedTokens: 4, CompletionTokens: 12, FinishReason: "length"}) {
		t.Errorf("context full: %+v, %v", g.res, g.err)
	}
	if !strings.HasPrefix(storiesContinuation, g.text) {
		t.Errorf("text %q is not a prefix of the continuation", g.text)
	}

	long := make([]int32, 16)
	long[0] = 1
	for i := 1; i < len(long); i++ {
		long[i] = 403
	}
	if _, err := r.Generate(context.Background(), Request{Prompt: long}, nil); !errors.Is(err, ErrContextLength) {
		t.Errorf("16-token prompt in 16 positions: %v, want ErrContextLength", err)
	}
	res, err := r.Generate(context.Background(), Request{Prompt: long[:15]}, nil)
	if err != nil || res.CompletionTokens != 2 || res.FinishReason != "length" {
		t.Errorf("15-token prompt: %+v, %v", res, err)
	}
}

func TestInvalidRequests(t *testing.T) {
	r := openStories(t, Options{})
	for _, req := range []Request{
		{},
		{Prompt: []int32{1, 512}},
		{Prompt: []int32{-1}},
		{Prompt: []int32{1}, MaxTokens: -1},
	} {
		if _, err := r.Generate(context.Background(), req, nil); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%+v: %v, want ErrInvalidRequest", req, err)
		}
	}
}

func TestStopStrings(t *testing.T) {
	r := openStories(t, Options{})
	prompt := encode(r, "Once upon a time")
	for _, tc := range []struct {
		stop []string
		want string
	}{
		{[]string{"Lily"}, ", there was a little girl named "},
		// Spans several tokens; the held-back "girl" must not leak.
		{[]string{"girl named Lily"}, ", there was a little "},
		{[]string{"park", "named"}, ", there was a little girl "},
		{[]string{". "}, ", there was a little girl named Lily"},
	} {
		g := gen(r, Request{Prompt: prompt, MaxTokens: 60, Stop: tc.stop})
		if g.err != nil {
			t.Fatal(g.err)
		}
		if g.text != tc.want || g.res.FinishReason != "stop" {
			t.Errorf("stop %q: %q (%s), want %q (stop)", tc.stop, g.text, g.res.FinishReason, tc.want)
		}
		if g.res.CompletionTokens != len(g.events) {
			t.Errorf("stop %q: %d tokens but %d events", tc.stop, g.res.CompletionTokens, len(g.events))
		}
	}
	// A stop string that never completes is held back only while it might,
	// and everything is released by the end.
	g := gen(r, Request{Prompt: prompt, MaxTokens: 60, Stop: []string{"girl named Bob", "red balloon"}})
	if !strings.HasPrefix(g.text, storiesContinuation) || g.res.FinishReason != "length" {
		t.Errorf("unmatched stop strings changed the text: %q (%s)", g.text, g.res.FinishReason)
	}
}

// The demo model does not end its stories by itself within its context, so
// the end-of-generation path is driven with chosen logits.
func TestAdvanceEOG(t *testing.T) {
	r := openStories(t, Options{})
	tok := r.Tokenizer()
	oneHot := func(id int32) []float32 {
		l := make([]float32, r.Info().VocabSize)
		l[id] = 10
		return l
	}
	take := func(j *job) ([]Event, bool, Result) {
		evs, done, res, err := j.box.take(nil)
		if err != nil {
			t.Fatal(err)
		}
		return evs, done, res
	}

	// " Lily" is held back as a possible start of " Lily!"; the EOS that
	// follows releases it on its own event.
	j := newJob(Request{Prompt: []int32{1}, Stop: []string{" Lily!"}})
	s := r.newSeq(j)
	for _, id := range tok.Encode("Lily", tokenizer.EncodeOptions{}) {
		s.step.Logits = oneHot(id)
		r.advance(s)
	}
	s.step.Logits = oneHot(tok.EOS())
	r.advance(s)
	evs, done, res := take(j)
	if !done || res.FinishReason != "stop" || !s.finished {
		t.Fatalf("after EOS: done %v, %+v", done, res)
	}
	var text string
	for _, ev := range evs[:len(evs)-1] {
		text += ev.Text
	}
	last := evs[len(evs)-1]
	if text != "" || last.Text != " Lily" || last.Token != tok.EOS() {
		t.Errorf("events %+v: want the held text on the EOS event", evs)
	}
	if res.CompletionTokens != len(evs) {
		t.Errorf("%d tokens, %d events", res.CompletionTokens, len(evs))
	}

	// An EOS with nothing held back has no event.
	j = newJob(Request{Prompt: []int32{1}})
	s = r.newSeq(j)
	s.step.Logits = oneHot(tok.EOS())
	r.advance(s)
	if evs, done, res := take(j); len(evs) != 0 || !done || res.CompletionTokens != 1 || res.FinishReason != "stop" {
		t.Errorf("bare EOS: %+v %v %+v", evs, done, res)
	}

	// A character cut short by MaxTokens comes out as U+FFFD, never as a
	// broken UTF-8 sequence.
	e2, ok := tok.Lookup("<0xE2>")
	if !ok {
		t.Fatal("no byte token")
	}
	j = newJob(Request{Prompt: []int32{1}, MaxTokens: 1})
	s = r.newSeq(j)
	s.step.Logits = oneHot(e2)
	r.advance(s)
	if evs, _, res := take(j); len(evs) != 1 || evs[0].Text != "\uFFFD" || res.FinishReason != "length" {
		t.Errorf("cut character: %+v %+v", evs, res)
	}
}

func TestCancelFreesSlot(t *testing.T) {
	r, g := openGated(t, Options{ContextLength: 512, Parallel: 1}, nil)
	prompt := encode(r, "Once upon a time")

	// A holds the only slot; its consumer gives up after two tokens.
	stopErr := errors.New("consumer gone")
	aDone := make(chan error, 1)
	go func() {
		n := 0
		_, err := r.Generate(context.Background(), Request{Prompt: prompt}, func(Event) error {
			if n++; n == 2 {
				return stopErr
			}
			return nil
		})
		aDone <- err
	}()
	waitStats(t, r, Stats{Running: 1})
	// B waits for the slot; C waits too and cancels its context.
	bDone := make(chan generated, 1)
	go func() { bDone <- gen(r, Request{Prompt: prompt, MaxTokens: 5}) }()
	waitStats(t, r, Stats{Running: 1, Waiting: 1})
	cctx, cancel := context.WithCancel(context.Background())
	cDone := make(chan error, 1)
	go func() {
		_, err := r.Generate(cctx, Request{Prompt: prompt}, nil)
		cDone <- err
	}()
	waitStats(t, r, Stats{Running: 1, Waiting: 2})
	cancel()
	if err := <-cDone; !errors.Is(err, context.Canceled) {
		t.Errorf("C: %v, want context.Canceled", err)
	}

	g.step(2)
	if err := <-aDone; !errors.Is(err, stopErr) {
		t.Errorf("A: %v, want the emit error", err)
	}
	g.open()
	b := <-bDone
	if b.err != nil || b.res.CompletionTokens != 5 {
		t.Errorf("B after A left: %+v, %v", b.res, b.err)
	}
	waitStats(t, r, Stats{})
}

// waitStats waits until the scheduler reports want.
func waitStats(t *testing.T, r *Runner, want Stats) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.Stats() != want {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want %+v", r.Stats(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestQueueFull(t *testing.T) {
	r, g := openGated(t, Options{ContextLength: 512, Parallel: 1, QueueSize: 1}, nil)
	prompt := encode(r, "Once upon a time")
	done := make(chan generated, 2)
	go func() { done <- gen(r, Request{Prompt: prompt, MaxTokens: 3}) }()
	waitStats(t, r, Stats{Running: 1})
	go func() { done <- gen(r, Request{Prompt: prompt, MaxTokens: 3}) }()
	waitStats(t, r, Stats{Running: 1, Waiting: 1})
	if _, err := r.Generate(context.Background(), Request{Prompt: prompt}, nil); !errors.Is(err, ErrQueueFull) {
		t.Errorf("third request: %v, want ErrQueueFull", err)
	}
	g.open()
	for range 2 {
		if g := <-done; g.err != nil || g.res.CompletionTokens != 3 {
			t.Errorf("%+v %v", g.res, g.err)
		}
	}
}

func TestManyConcurrent(t *testing.T) {
	r := openStories(t, Options{Parallel: 4, QueueSize: 64})
	const n = 24
	prompts := []string{"Once upon a time", "The cat", "Tom had a", "One day"}
	results := make([]generated, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i] = gen(r, Request{
				Prompt:    encode(r, prompts[i%len(prompts)]),
				MaxTokens: 4 + i%5,
				Sample:    sample.Params{Temperature: 0.8, Seed: int64(i + 1)},
			})
		})
	}
	wg.Wait()
	for i, g := range results {
		if g.err != nil {
			t.Errorf("request %d: %v", i, g.err)
			continue
		}
		if g.res.FinishReason == "length" && g.res.CompletionTokens != 4+i%5 {
			t.Errorf("request %d: %+v", i, g.res)
		}
	}
	waitStats(t, r, Stats{})
}

func TestShortFinishesFirst(t *testing.T) {
	r := openStories(t, Options{Parallel: 2})
	prompt := encode(r, "Once upon a time")
	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	finished := func(name string) {
		mu.Lock()
		order = append(order, name)
		mu.Unlock()
	}
	started := make(chan struct{})
	wg.Go(func() {
		first := true
		// Long: a long prompt and 300 tokens.
		long := encode(r, strings.Repeat("Once upon a time there was a cat. ", 8))
		_, err := r.Generate(context.Background(), Request{Prompt: long, MaxTokens: 300}, func(Event) error {
			if first {
				first = false
				close(started)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		finished("long")
	})
	<-started
	wg.Go(func() {
		if g := gen(r, Request{Prompt: prompt, MaxTokens: 3}); g.err != nil {
			t.Error(g.err)
		}
		finished("short")
	})
	wg.Wait()
	if order[0] != "short" {
		t.Errorf("finish order %v: the later short request should finish first", order)
	}
}

func TestClose(t *testing.T) {
	r, g := openGated(t, Options{ContextLength: 512, Parallel: 1}, nil)
	prompt := encode(r, "Once upon a time")
	errs := make(chan error, 2)
	go func() { errs <- gen(r, Request{Prompt: prompt}).err }()
	waitStats(t, r, Stats{Running: 1})
	go func() { errs <- gen(r, Request{Prompt: prompt}).err }()
	waitStats(t, r, Stats{Running: 1, Waiting: 1})
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	for r.runCtx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	g.open()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Errorf("request at close: %v, want ErrClosed", err)
		}
	}
	if _, err := r.Generate(context.Background(), Request{Prompt: prompt}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Generate after Close: %v", err)
	}
	if _, err := r.Embed(context.Background(), [][]int32{prompt}); !errors.Is(err, ErrClosed) {
		t.Errorf("Embed after Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestEmbed(t *testing.T) {
	r := openStories(t, Options{PrefillChunk: 64})
	inputs := [][]int32{
		encode(r, "Once upon a time"),
		encode(r, "The cat sat on the mat."),
		encode(r, "Lily loved to play outside in the park with her big red ball."),
	}
	batch, err := r.Embed(context.Background(), inputs)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) != len(inputs) {
		t.Fatalf("%d embeddings for %d inputs", len(batch), len(inputs))
	}
	for i, in := range inputs {
		v := batch[i]
		if len(v) != r.Info().EmbeddingDim {
			t.Fatalf("input %d: %d values", i, len(v))
		}
		var ss float64
		for _, x := range v {
			ss += float64(x) * float64(x)
		}
		if math.Abs(ss-1) > 1e-4 {
			t.Errorf("input %d: |v|² = %v", i, ss)
		}
		single, err := r.Embed(context.Background(), [][]int32{in})
		if err != nil {
			t.Fatal(err)
		}
		again, _ := r.Embed(context.Background(), [][]int32{in})
		for k := range v {
			if single[0][k] != again[0][k] {
				t.Fatalf("input %d: the same input gave different vectors", i)
			}
			if d := math.Abs(float64(single[0][k] - v[k])); d > 1e-5 {
				t.Fatalf("input %d element %d: batch %v, single %v", i, k, v[k], single[0][k])
			}
		}
	}
	if cos := dot(batch[0], batch[1]); cos > 0.9999 {
		t.Errorf("different inputs, cosine %v", cos)
	}
	for _, bad := range [][][]int32{{{}}, {{1, 9999}}} {
		if _, err := r.Embed(context.Background(), bad); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("Embed(%v): %v", bad, err)
		}
	}
	if _, err := r.Embed(context.Background(), [][]int32{make([]int32, 513)}); !errors.Is(err, ErrContextLength) {
		t.Errorf("Embed of 513 tokens: %v", err)
	}
}

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// A long prompt is fed in chunks while a running sequence keeps getting a
// token every step.
func TestChunkedPrefill(t *testing.T) {
	var (
		mu    sync.Mutex
		steps [][]int // tokens per batch entry, per step
	)
	r, g := openGated(t, Options{ContextLength: 512, Parallel: 2, PrefillChunk: 8}, func(batch []*model.Seq) {
		var sizes []int
		for _, s := range batch {
			sizes = append(sizes, len(s.Tokens))
		}
		mu.Lock()
		steps = append(steps, sizes)
		mu.Unlock()
	})
	aDone := make(chan generated, 1)
	go func() { aDone <- gen(r, Request{Prompt: encode(r, "Once upon a time"), MaxTokens: 40}) }()
	waitStats(t, r, Stats{Running: 1})
	g.step(1) // A's prompt; then wait until step 2 (A's first decode) is held
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		mu.Lock()
		n := len(steps)
		mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second step never came")
		}
	}
	long := make([]int32, 100)
	long[0] = 1
	for i := 1; i < len(long); i++ {
		long[i] = int32(300 + i)
	}
	bDone := make(chan generated, 1)
	go func() { bDone <- gen(r, Request{Prompt: long, MaxTokens: 1}) }()
	waitStats(t, r, Stats{Running: 1, Waiting: 1})
	g.open()
	b := <-bDone
	a := <-aDone
	if a.err != nil || b.err != nil {
		t.Fatal(a.err, b.err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := [][]int{{5}, {1}}
	for range 12 {
		want = append(want, []int{1, 8})
	}
	want = append(want, []int{1, 4})
	if len(steps) < len(want) || fmt.Sprint(steps[:len(want)]) != fmt.Sprint(want) {
		t.Errorf("steps %v\nwant prefix %v", steps, want)
	}
}
