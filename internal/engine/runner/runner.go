package runner

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/open-autoglm/autoglm/internal/engine/chat"
	"github.com/open-autoglm/autoglm/internal/engine/gguf"
	"github.com/open-autoglm/autoglm/internal/engine/model"
	"github.com/open-autoglm/autoglm/internal/engine/quant"
	"github.com/open-autoglm/autoglm/internal/engine/sample"
	"github.com/open-autoglm/autoglm/internal/engine/tokenizer"
)

// Options configure a Runner.
type Options struct {
	// ContextLength is the number of positions each sequence may use,
	// prompt included. 0 takes the file's metadata value.
	ContextLength int
	// Threads is the number of goroutines each forward pass is split over.
	// 0 uses GOMAXPROCS.
	Threads int
	// Parallel is the largest number of sequences decoded together in one
	// step (each holds a KV cache of up to ContextLength positions).
	// Default 4.
	Parallel int
	// Template overrides the chat template by family name (see
	// chat.ByName). "" detects it from tokenizer.chat_template.
	Template string
	// QueueSize is the number of requests that may wait for a slot; more
	// fail with ErrQueueFull. Default 64.
	QueueSize int
	// PrefillChunk is the most prompt tokens fed to the model in one step,
	// over all sequences, so that a long prompt delays the running
	// generations by a bounded amount per token. Default 64.
	PrefillChunk int
	// KVCacheType is the KV cache element type: model.KVF32 (the zero
	// value), model.KVF16 or model.KVQ8_0.
	KVCacheType quant.Type
	// Progress, when set, makes Open read every page of the weights
	// before returning, so that the first request does not wait for the
	// file to come in from disk, and reports the bytes read so far with
	// the total, from time to time and once at the end.
	Progress func(done, total int64)
	// NoPrefixReuse turns prompt prefix reuse off: every prompt is then
	// computed from its first token (see the package documentation).
	NoPrefixReuse bool
	// FaultHook is passed to the model (see model.Options.FaultHook): a seam for tests.
	FaultHook func(worker int)
}

func (o Options) withDefaults() Options {
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 64
	}
	if o.PrefillChunk <= 0 {
		o.PrefillChunk = 64
	}
	return o
}

// Errors returned by Generate and Embed. They are wrapped with details;
// test with errors.Is.
var (
	// ErrContextLength means an input does not fit the context: a prompt
	// needs len(prompt)+1 positions, an embedding input len(input).
	ErrContextLength = errors.New("runner: input exceeds the context length")
	// ErrClosed means the Runner was closed before or during the call.
	ErrClosed = errors.New("runner: closed")
	// ErrQueueFull means QueueSize requests are already waiting for a
	// slot; the caller may retry later.
	ErrQueueFull = errors.New("runner: too many requests waiting")
	// ErrInvalidRequest means the request itself is malformed: an empty
	// prompt, a token id outside the vocabulary, a negative MaxTokens.
	ErrInvalidRequest = errors.New("runner: invalid request")
	// ErrInternal means the engine failed: a panic in a kernel, a pool
	// worker or the scheduler. The request fails; the Runner keeps
	// serving. The wrapped error carries the panic value and, when the
	// panic was in the model, a *model.PanicError with its stack.
	ErrInternal = errors.New("runner: internal error")
)

// Info describes the loaded model.
type Info struct {
	Name          string // general.name, or "" when the file has none
	Arch          string // general.architecture
	ContextLength int    // positions per sequence, as configured
	VocabSize     int
	EmbeddingDim  int
	Template      string // chat template family name
	// KVCacheType is the KV cache element type ("F32", "F16", "Q8_0") and
	// KVBytesPerToken the cache memory one position of one sequence takes.
	KVCacheType     string
	KVBytesPerToken int64
}

// Runner serves one model. All methods are safe for concurrent use.
type Runner struct {
	file *gguf.File
	m    *model.Model
	tok  *tokenizer.Tokenizer
	tmpl chat.Template
	info Info
	opt  Options
	cfg  model.Config

	runCtx  context.Context // cancelled by Close: aborts forward passes
	stopRun context.CancelFunc
	done    chan struct{} // closed when the scheduler goroutine has exited
	wake    chan struct{} // capacity 1: "the queue or a caller changed"

	beforeStep func([]*model.Seq)

	mu      sync.Mutex
	closed  bool
	waiting []*job         // FIFO; guarded by mu
	running int            // sequences holding a slot; guarded by mu
	users   sync.WaitGroup // Embed calls in flight
	caches  []*model.Cache // free caches for Embed, storage kept; guarded by mu
	// slots are the generation caches not held by a sequence, with the
	// tokens they still hold, at most Parallel; guarded by mu.
	slots    []*slot
	released uint64             // counts slot releases, for least-recently-used order; guarded by mu
	live     map[*slot]struct{} // slots in existence, free or held; guarded by mu
	weights  int64              // bytes of tensor data

	closeOnce sync.Once
	closeErr  error

	counters counters
}

// Open loads the GGUF file at path and starts the scheduler. The file stays
// memory-mapped until Close.
func Open(path string, opt Options) (*Runner, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := newRunner(f, opt, nil)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// newRunner builds a Runner over an open file; beforeStep, when not nil, is
// called by the scheduler with each step's batch before the forward pass (a
// seam for tests).
func newRunner(f *gguf.File, opt Options, beforeStep func([]*model.Seq)) (*Runner, error) {
	opt = opt.withDefaults()
	var tmpl chat.Template
	if opt.Template != "" {
		t, ok := chat.ByName(opt.Template)
		if !ok {
			return nil, fmt.Errorf("unknown chat template %q", opt.Template)
		}
		tmpl = t
	} else {
		src, _ := f.String("tokenizer.chat_template")
		tmpl = chat.Detect(src)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return nil, err
	}
	// The pages are read before the model loads, not after: the load
	// copies some tensors and gives their mapped pages back, which a
	// read afterwards would make resident again.
	if opt.Progress != nil {
		prefault(f, opt.Progress)
	}
	m, err := model.Load(f, model.Options{ContextLength: opt.ContextLength, Threads: opt.Threads, KVType: opt.KVCacheType,
		FaultHook: opt.FaultHook})
	if err != nil {
		return nil, err
	}
	cfg := m.Config()
	name, _ := f.String("general.name")
	r := &Runner{
		file: f,
		m:    m,
		tok:  tok,
		tmpl: tmpl,
		opt:  opt,
		cfg:  cfg,
		info: Info{
			Name:          name,
			Arch:          cfg.Arch,
			ContextLength: cfg.ContextLength,
			VocabSize:     cfg.Vocab,
			EmbeddingDim:  cfg.Dim,
			Template:      tmpl.Name(),

			KVCacheType:     cfg.KVType.String(),
			KVBytesPerToken: m.KVBytesPerPosition(),
		},
		done:       make(chan struct{}),
		wake:       make(chan struct{}, 1),
		beforeStep: beforeStep,
		live:       map[*slot]struct{}{},
	}
	for i := range f.Tensors {
		r.weights += f.Tensors[i].Size
	}
	r.runCtx, r.stopRun = context.WithCancel(context.Background())
	go r.schedule()
	return r, nil
}

// prefault reads one byte of every page of the tensor data, reporting
// progress every 64 MiB.
func prefault(f *gguf.File, progress func(done, total int64)) {
	var total, done, next int64
	for i := range f.Tensors {
		total += f.Tensors[i].Size
	}
	const page, step = 4096, 64 << 20
	var sum byte
	for i := range f.Tensors {
		data, err := f.TensorData(&f.Tensors[i])
		if err != nil {
			continue // Load has checked the tensors it uses
		}
		for j := 0; j < len(data); j += page {
			sum += data[j]
		}
		done += int64(len(data))
		if done >= next {
			progress(done, total)
			next = done + step
		}
	}
	runtime.KeepAlive(sum) // the reads are the point
	progress(total, total)
}

// Close stops the scheduler, fails pending and running requests with
// ErrClosed, waits for Embed calls to return and releases the model and the
// file. Close is idempotent.
func (r *Runner) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		r.stopRun()
		<-r.done
		r.users.Wait()
		r.closeErr = errors.Join(r.m.Close(), r.file.Close())
	})
	return r.closeErr
}

// Info describes the loaded model.
func (r *Runner) Info() Info { return r.info }

// Tokenizer returns the model's tokenizer.
func (r *Runner) Tokenizer() *tokenizer.Tokenizer { return r.tok }

// Template returns the chat template in use.
func (r *Runner) Template() chat.Template { return r.tmpl }

// Memory is what a loaded model holds, in bytes.
type Memory struct {
	// Weights is the tensor data read in place from the mapped file
	// (shared with the page cache; resident once read). Tensors copied
	// at load (Packed) are not counted: their pages are given back to
	// the system after the copy, so no weight is resident twice.
	Weights int64
	// Packed is the copy of weights made at load for the CPU's kernels
	// (Q4_0 and F16 repacked, Q8_0, Q5_0, Q4_K and Q6_K copied whole, on AVX-512 VNNI;
	// anonymous memory advised for huge pages on Linux, see package
	// hugepage); zero when nothing was copied.
	Packed int64
	// KVCacheType is the KV cache element type ("F32", "F16", "Q8_0").
	KVCacheType string
	// KVCache is held now by the KV caches; they grow with use up to
	// KVCacheMax, Parallel sequences at the full context length.
	KVCache, KVCacheMax int64
	// Scratch is the activation buffers of a forward step, which grow to
	// the largest step seen.
	Scratch int64
}

// Memory returns the model's memory now.
func (r *Runner) Memory() Memory {
	m := Memory{
		Weights:     r.weights - r.m.ReleasedBytes(),
		Packed:      r.m.PackedBytes(),
		KVCacheType: r.info.KVCacheType,
		KVCacheMax:  int64(r.opt.Parallel) * int64(r.cfg.ContextLength) * r.info.KVBytesPerToken,
		Scratch:     r.m.ScratchBytes(),
	}
	r.mu.Lock()
	for sl := range r.live {
		m.KVCache += sl.c.Bytes()
	}
	for _, c := range r.caches {
		m.KVCache += c.Bytes()
	}
	r.mu.Unlock()
	return m
}

// Stats is a snapshot of the scheduler's load.
type Stats struct {
	Running int // sequences holding a slot
	Waiting int // requests queued for a slot
}

// Stats returns the current load.
func (r *Runner) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Stats{Running: r.running, Waiting: len(r.waiting)}
}

// Request is one generation.
type Request struct {
	// Prompt is the prompt's token ids, BOS already included by the caller.
	Prompt []int32
	// MaxTokens caps the generated tokens; 0 means until an
	// end-of-generation token or until the context is full.
	MaxTokens int
	// Sample configures the sequence's own sampler. A zero Seed draws a
	// random one.
	Sample sample.Params
	// Stop ends the generation as soon as the generated text contains one
	// of these strings; the stop string and anything after it are not
	// emitted. Empty strings are ignored.
	Stop []string
	// N is the number of choices generated independently from the prompt. The prompt is
	// computed once and its KV cache copied to each choice; each takes a slot. Events carry
	// their choice's Index. Default 1; at most the runner's Parallel.
	N int
	// Logprobs asks for each generated token's log-probability (Event.Logprob) and
	// TopLogprobs (0-20) for the most likely tokens at each position (Event.Top), both
	// from the model's distribution before penalties, temperature and truncation.
	Logprobs    bool
	TopLogprobs int
	// PromptLogprobs asks for the log-probability of every prompt token after the first
	// (Result.PromptLogprobs), for scoring a text.
	PromptLogprobs bool
	// Constraint, when set, restricts the tokens each choice may sample (grammar-constrained
	// output). It is asked for a new State per choice.
	Constraint Constraint
	// Outcome, when set, is filled in before Generate returns successfully: each choice's
	// counts and finish reason, and the prompt logprobs. (Result then holds the sum of the
	// counts and the first choice's reason.)
	Outcome *Outcome
	// Timing, when set, is filled in when the scheduler has finished with the request
	// (successfully or not); it stays zero when the caller left first.
	Timing *Timing
}

// Event is one generated token.
type Event struct {
	// Text is the text that became safe to emit with this token: valid
	// UTF-8, possibly "" while bytes of a character are pending or text is
	// held back because it may start a stop string. The Texts of all events
	// concatenate to the generation's text.
	Text  string
	Token int32
	// Index is the choice the token belongs to (0 unless Request.N > 1).
	Index int
	// Logprob and Top are set when Request.Logprobs is: the token's log-probability and
	// the TopLogprobs most likely tokens at its position, most likely first.
	Logprob float32
	Top     []TokenLogprob
}

// TokenLogprob is a token and its log-probability.
type TokenLogprob struct {
	Token   int32
	Logprob float32
}

// Result summarises a finished generation.
type Result struct {
	PromptTokens int
	// CachedTokens is the part of PromptTokens found in a KV cache left by
	// an earlier request (a shared prefix) and therefore not computed again.
	CachedTokens int
	// CompletionTokens counts every sampled token, the end-of-generation
	// token and the tokens of a stop string included.
	CompletionTokens int
	// FinishReason is "stop" (an end-of-generation token or a stop string)
	// or "length" (MaxTokens reached or the context full).
	FinishReason string
}

// Generate runs req and blocks until it ends, calling emit (if not nil) in
// the calling goroutine once per generated token, in order. The scheduler
// never waits for emit: a slow consumer only delays its own request.
//
// The end-of-generation token gets an event only when it releases text held
// back before it (Text is then non-empty). If emit returns an error or ctx is
// done, the sequence is abandoned at once (its slot and KV cache are freed
// before the next step) and Generate returns that error with the counts of the
// events delivered so far. Errors are ErrInvalidRequest, ErrContextLength,
// ErrQueueFull and ErrClosed (wrapped), ctx's error, or emit's.
func (r *Runner) Generate(ctx context.Context, req Request, emit func(Event) error) (Result, error) {
	partial := Result{PromptTokens: len(req.Prompt)}
	if err := r.validate(req); err != nil {
		return partial, err
	}
	if err := ctx.Err(); err != nil {
		return partial, err
	}
	j := newJob(req)
	j.queued = time.Now()
	if err := r.enqueue(j); err != nil {
		return partial, err
	}
	var buf []Event
	for {
		evs, done, res, err := j.box.take(buf[:0])
		buf = evs
		for _, ev := range evs {
			if err := ctx.Err(); err != nil {
				r.abandon(j)
				return partial, err
			}
			partial.CompletionTokens++
			if emit == nil {
				continue
			}
			if err := emit(ev); err != nil {
				r.abandon(j)
				return partial, err
			}
		}
		if done {
			if req.Timing != nil {
				*req.Timing = Timing{Queued: j.queued, Admitted: j.admitted, FirstToken: j.firstToken, Done: time.Now()}
			}
			if err != nil {
				return partial, err
			}
			return res, nil
		}
		select {
		case <-j.box.ready:
		case <-ctx.Done():
			r.abandon(j)
			return partial, ctx.Err()
		}
	}
}

func (r *Runner) validate(req Request) error {
	n := len(req.Prompt)
	if n == 0 {
		return fmt.Errorf("%w: empty prompt", ErrInvalidRequest)
	}
	if req.MaxTokens < 0 {
		return fmt.Errorf("%w: negative max tokens %d", ErrInvalidRequest, req.MaxTokens)
	}
	if err := r.validateChoices(req); err != nil {
		return err
	}
	if n+1 > r.cfg.ContextLength {
		return fmt.Errorf("%w: a prompt of %d tokens plus one generated token needs %d positions, the context has %d",
			ErrContextLength, n, n+1, r.cfg.ContextLength)
	}
	return r.checkTokens(req.Prompt)
}

func (r *Runner) checkTokens(ids []int32) error {
	for i, t := range ids {
		if t < 0 || int(t) >= r.cfg.Vocab {
			return fmt.Errorf("%w: token %d at position %d is outside the vocabulary of %d", ErrInvalidRequest, t, i, r.cfg.Vocab)
		}
	}
	return nil
}

// enqueue appends j to the waiting queue.
func (r *Runner) enqueue(j *job) error {
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		return ErrClosed
	case len(r.waiting) >= r.opt.QueueSize:
		n := len(r.waiting)
		r.mu.Unlock()
		return fmt.Errorf("%w: %d queued, %d running", ErrQueueFull, n, r.opt.Parallel)
	}
	r.waiting = append(r.waiting, j)
	r.mu.Unlock()
	r.poke()
	return nil
}

// abandon tells the scheduler that nobody is listening to j any more.
func (r *Runner) abandon(j *job) {
	j.leave()
	r.poke()
}

// poke wakes the scheduler if it is idle.
func (r *Runner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// slot is a generation KV cache with the tokens at its positions.
type slot struct {
	c    *model.Cache
	toks []int32 // toks[i] is the token at position i; len(toks) == c.Len()
	used uint64  // when it was last released
}

// takeSlot returns a slot for prompt, truncated to the prefix it shares
// with prompt, and that prefix's length. At least the prompt's last token is
// left to compute, since its logits are needed.
//
// The free slot sharing the longest prefix is taken (the least recently
// used among equals) if the prefix is at least half of the prompt or of
// what the slot holds; a slot full of another conversation is not given up
// for a few shared tokens while fewer than Parallel slots exist: a new one
// is made instead. When
// none fits and no new one may be made, the least recently used free slot
// is emptied.
func (r *Runner) takeSlot(prompt []int32) (*slot, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	best, bestLen, lru := -1, 0, -1
	for i, sl := range r.slots {
		n := 0
		if !r.opt.NoPrefixReuse {
			n = commonPrefix(sl.toks, prompt[:len(prompt)-1])
		}
		if best < 0 || n > bestLen || n == bestLen && sl.used < r.slots[best].used {
			best, bestLen = i, n
		}
		if lru < 0 || sl.used < r.slots[lru].used {
			lru = i
		}
	}
	switch {
	case best >= 0 && (2*bestLen >= len(prompt) || 2*bestLen >= len(r.slots[best].toks)):
	case len(r.live) < r.opt.Parallel || best < 0:
		sl := &slot{c: r.m.NewCache()}
		r.live[sl] = struct{}{}
		return sl, 0
	default:
		best, bestLen = lru, commonPrefix(r.slots[lru].toks, prompt[:len(prompt)-1])
		if r.opt.NoPrefixReuse {
			bestLen = 0
		}
	}
	sl := r.slots[best]
	r.slots = append(r.slots[:best], r.slots[best+1:]...)
	sl.c.Truncate(bestLen)
	sl.toks = sl.toks[:bestLen]
	return sl, bestLen
}

// releaseSlot keeps sl for later prompts, holding the first sl.c.Len() of
// fed (the tokens the sequence put in the cache, in order); fed == nil
// means the cache's contents are unknown (a failed step) and are dropped.
// At most Parallel slots are kept: beyond that the least recently used goes
// to the garbage collector.
func (r *Runner) releaseSlot(sl *slot, fed []int32) {
	if fed == nil {
		sl.c.Reset()
	}
	sl.toks = append(sl.toks[:0], fed[:sl.c.Len()]...)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.released++
	sl.used = r.released
	r.slots = append(r.slots, sl)
	if len(r.slots) > r.opt.Parallel {
		old := 0
		for i, s := range r.slots {
			if s.used < r.slots[old].used {
				old = i
			}
		}
		delete(r.live, r.slots[old])
		r.slots = append(r.slots[:old], r.slots[old+1:]...)
	}
}

// forkSlot returns a new slot whose cache is a copy of src's, for another
// choice (Request.N) of the prompt src holds. It counts as a slot made, so
// releasing it keeps at most Parallel slots as usual.
func (r *Runner) forkSlot(src *slot) *slot {
	sl := &slot{c: r.m.NewCache()}
	sl.c.CopyFrom(src.c)
	r.mu.Lock()
	r.live[sl] = struct{}{}
	r.mu.Unlock()
	return sl
}

func commonPrefix(a, b []int32) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// getCache returns a free cache, or a new one.
func (r *Runner) getCache() *model.Cache {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.caches); n > 0 {
		c := r.caches[n-1]
		r.caches = r.caches[:n-1]
		c.Reset()
		return c
	}
	return r.m.NewCache()
}

// putCache keeps c for reuse, up to Parallel caches; beyond that its storage
// goes to the garbage collector.
func (r *Runner) putCache(c *model.Cache) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.caches) < r.opt.Parallel {
		r.caches = append(r.caches, c)
	}
}
