package model

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/open-autoglm/autoglm/internal/engine/gguf"
	"github.com/open-autoglm/autoglm/internal/engine/quant"
)

// Options tune a loaded model.
type Options struct {
	// ContextLength caps the positions per sequence. 0 uses the file's
	// {arch}.context_length. Larger values are allowed (some files state
	// less than the model was trained on) but quality past the trained
	// length is the caller's concern.
	ContextLength int
	// Threads is the number of goroutines matrix products and attention
	// are split over. 0 uses GOMAXPROCS, which measures best: idle
	// workers sleep rather than spin and the caller never waits for one
	// that has not started, so a second thread costs no CPU time even
	// when the other core is busy, and helps whenever it is free.
	Threads int
	// KVType is the element type of the KV cache: KVF32 (the zero value,
	// exact), KVF16 (half the memory) or KVQ8_0 (about a quarter; the head
	// size must be a multiple of 32).
	KVType quant.Type
	// FaultHook, when set, is called at the start of every attention chunk of a forward pass
	// with the worker's id. It is a seam for tests, which make it panic to check that a
	// failing kernel fails only its requests; servers leave it nil.
	FaultHook func(worker int)
}

// Model is a loaded model. Forward calls are serialised internally; a Model
// may be shared by goroutines, each with its own Caches.
type Model struct {
	cfg Config

	tokEmbd    *weight
	outputNorm []float32
	output     *weight
	layers     []layer

	invFreq []float64 // rotary frequency of each rotated pair

	pool *pool
	mu   sync.Mutex // serialises Forward; guards buf
	buf  buffers

	// faultHook, when set (by tests only), is called at the start of
	// every attention chunk with the worker's id: a seam to make a
	// kernel panic on a chosen worker.
	faultHook func(worker int)

	scratch atomic.Int64 // bytes of buf, readable without mu
	packed  int64        // bytes of weights repacked at load
	// released is the bytes of mapped tensor data copied at load whose
	// pages the model gave back (gguf.File.Release).
	released int64
}

// ScratchBytes returns the memory of the activation buffers of a forward
// step, which grow to the largest step seen. It may be called at any time.
func (m *Model) ScratchBytes() int64 { return m.scratch.Load() }

// PackedBytes returns the memory of the weights copied at load into the
// layout of the CPU's packed kernels (Q4_0 and F16 with AVX-512 VNNI), or
// whole into huge pages (Q8_0, Q5_0, Q4_K and Q6_K with AVX-512 VNNI, where
// the system gives huge pages); 0 where none are.
func (m *Model) PackedBytes() int64 { return m.packed }

// ReleasedBytes returns the bytes of the mapped file's tensor data that the
// model copied at load (PackedBytes) and gave back to the system: it reads
// the copies instead (the mapped bytes only for a token embedding's rows
// and rows past a matrix's last packed group), so they are not resident
// twice.
func (m *Model) ReleasedBytes() int64 { return m.released }

type layer struct {
	attnNorm         []float32
	wq, wk, wv, wqkv *weight
	bq, bk, bv, bqkv []float32
	wo               *weight
	bo               []float32
	postAttnNorm     []float32 // GLM-4 only

	ffnNorm     []float32
	gate, up    *weight // gate is nil when up is the fused gate+up matrix
	down        *weight
	postFFNNorm []float32 // GLM-4 only
}

// Load builds a Model over f's tensors. It validates every shape and type
// it uses and reports the first problem by tensor or key name. The model
// reads weights from f's memory, so f must stay open while the Model is in
// use; Close the Model first.
func Load(f *gguf.File, opt Options) (*Model, error) {
	cfg, err := readConfig(f)
	if err != nil {
		return nil, err
	}
	if opt.ContextLength < 0 || opt.Threads < 0 {
		return nil, fmt.Errorf("model: negative options %+v", opt)
	}
	cfg.ContextLength = cfg.TrainContext
	if opt.ContextLength > 0 {
		cfg.ContextLength = opt.ContextLength
	}
	cfg.Threads = opt.Threads
	if cfg.Threads == 0 {
		cfg.Threads = runtime.GOMAXPROCS(0)
	}
	if err := checkKVType(opt.KVType, cfg.HeadDim); err != nil {
		return nil, err
	}
	cfg.KVType = opt.KVType
	l := loader{f: f}
	m := &Model{cfg: cfg, faultHook: opt.FaultHook}

	qDim, kvDim := cfg.Heads*cfg.HeadDim, cfg.KVHeads*cfg.HeadDim
	m.tokEmbd = l.matrix("token_embd.weight", -1, cfg.Dim)
	if m.tokEmbd != nil {
		m.cfg.Vocab = m.tokEmbd.rows
	}
	m.outputNorm = l.vector("output_norm.weight", cfg.Dim)
	if l.has("output.weight") {
		m.output = l.matrix("output.weight", m.cfg.Vocab, cfg.Dim)
	} else {
		m.output = m.tokEmbd
		m.cfg.TiedOutput = true
	}
	m.layers = make([]layer, cfg.Layers)
	for i := range m.layers {
		ly := &m.layers[i]
		p := fmt.Sprintf("blk.%d.", i)
		ly.attnNorm = l.vector(p+"attn_norm.weight", cfg.Dim)
		if l.has(p + "attn_qkv.weight") {
			ly.wqkv = l.matrix(p+"attn_qkv.weight", qDim+2*kvDim, cfg.Dim)
			ly.bqkv = l.optVector(p+"attn_qkv.bias", qDim+2*kvDim)
		} else {
			ly.wq = l.matrix(p+"attn_q.weight", qDim, cfg.Dim)
			ly.wk = l.matrix(p+"attn_k.weight", kvDim, cfg.Dim)
			ly.wv = l.matrix(p+"attn_v.weight", kvDim, cfg.Dim)
			ly.bq = l.optVector(p+"attn_q.bias", qDim)
			ly.bk = l.optVector(p+"attn_k.bias", kvDim)
			ly.bv = l.optVector(p+"attn_v.bias", kvDim)
		}
		ly.wo = l.matrix(p+"attn_output.weight", cfg.Dim, qDim)
		ly.bo = l.optVector(p+"attn_output.bias", cfg.Dim)
		ly.ffnNorm = l.vector(p+"ffn_norm.weight", cfg.Dim)
		if l.has(p + "ffn_gate.weight") {
			ly.gate = l.matrix(p+"ffn_gate.weight", cfg.FFN, cfg.Dim)
			ly.up = l.matrix(p+"ffn_up.weight", cfg.FFN, cfg.Dim)
		} else {
			// chatglm and glm4 fuse gate and up into one matrix of
			// 2×FFN rows, gate first.
			ly.up = l.matrix(p+"ffn_up.weight", 2*cfg.FFN, cfg.Dim)
		}
		ly.down = l.matrix(p+"ffn_down.weight", cfg.Dim, cfg.FFN)
		if cfg.Arch == "glm4" {
			ly.postAttnNorm = l.vector(p+"post_attention_norm.weight", cfg.Dim)
			ly.postFFNNorm = l.vector(p+"post_ffw_norm.weight", cfg.Dim)
		}
		if l.err != nil {
			break
		}
	}
	if l.err != nil {
		return nil, l.err
	}
	m.cfg.WeightType = l.dominantType()
	l.pack()
	m.packed = l.packed
	m.released = l.released

	m.invFreq = make([]float64, cfg.RopeDim/2)
	for i := range m.invFreq {
		m.invFreq[i] = math.Pow(cfg.RopeBase, -float64(2*i)/float64(cfg.RopeDim))
	}
	// Llama 3.1-style files carry per-frequency divisors in rope_freqs.
	if l.has("rope_freqs.weight") {
		factors := l.vector("rope_freqs.weight", cfg.RopeDim/2)
		if l.err != nil {
			return nil, l.err
		}
		for i, f := range factors {
			if !(f > 0) {
				return nil, fmt.Errorf("model: rope_freqs.weight[%d] = %v, want > 0", i, f)
			}
			m.invFreq[i] /= float64(f)
		}
	}
	m.pool = newPool(cfg.Threads)
	return m, nil
}

// Config returns the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// Close stops the model's worker goroutines. The Model must not be used
// afterwards; Close is idempotent.
func (m *Model) Close() error {
	m.pool.stop()
	return nil
}

// loader collects the first error while fetching tensors so Load reads as a
// list of expectations.
type loader struct {
	f     *gguf.File
	err   error
	bytes map[quant.Type]int64
	// weights are the matrices fetched so far, packed together at the end.
	weights []*weight
	// packed counts the bytes of weights repacked at load.
	packed int64
	// released counts the mapped bytes of the weights packed, given back.
	released int64
}

// pack makes the packed copies of every matrix whose type has packed
// kernels on this CPU, in one allocation (quant.PackAll), so that all of
// them, not only the 2 MiB stretches of the largest, may lie in huge pages.
func (l *loader) pack() {
	jobs := make([]quant.PackJob, len(l.weights))
	for i, w := range l.weights {
		jobs[i] = quant.PackJob{K: w.k, W: w.data, Rows: w.rows, Cols: w.cols}
	}
	packed, n := quant.PackAll(jobs)
	for i, w := range l.weights {
		w.packed = packed[i]
		if w.packed != nil {
			l.f.Release(w.data)
			l.released += int64(len(w.data))
		}
	}
	l.packed = n
}

func (l *loader) has(name string) bool {
	_, ok := l.f.Tensor(name)
	return ok
}

func (l *loader) fail(format string, args ...any) {
	if l.err == nil {
		l.err = fmt.Errorf("model: "+format, args...)
	}
}

// tensor fetches name and checks it is a rows × cols matrix (Dims[0] is
// the row length); rows < 0 accepts any row count, and a 1-D tensor is
// fetched with rows 0.
func (l *loader) tensor(name string, rows, cols int) (*gguf.TensorInfo, []byte) {
	if l.err != nil {
		return nil, nil
	}
	t, ok := l.f.Tensor(name)
	if !ok {
		l.fail("missing tensor %s", name)
		return nil, nil
	}
	dims := t.Dims
	for len(dims) > 1 && dims[len(dims)-1] == 1 {
		dims = dims[:len(dims)-1]
	}
	wantDims := 2
	if rows == 0 {
		wantDims = 1
	}
	gotRows := uint64(1)
	if len(dims) == 2 {
		gotRows = dims[1]
	}
	if len(dims) != wantDims || dims[0] != uint64(cols) || (rows > 0 && gotRows != uint64(rows)) {
		want := fmt.Sprintf("[%d %d]", cols, rows)
		if rows == 0 {
			want = fmt.Sprintf("[%d]", cols)
		} else if rows < 0 {
			want = fmt.Sprintf("[%d *]", cols)
		}
		l.fail("tensor %s has shape %v, want %s", name, t.Dims, want)
		return nil, nil
	}
	if !t.Type.Supported() {
		l.fail("tensor %s has unsupported type %v", name, t.Type)
		return nil, nil
	}
	if cols%t.Type.BlockSize() != 0 {
		l.fail("tensor %s: row length %d is not a multiple of the %v block size %d", name, cols, t.Type, t.Type.BlockSize())
		return nil, nil
	}
	data, err := l.f.TensorData(t)
	if err != nil {
		l.fail("tensor %s: %v", name, err)
		return nil, nil
	}
	return t, data
}

func (l *loader) matrix(name string, rows, cols int) *weight {
	t, data := l.tensor(name, rows, cols)
	if t == nil {
		return nil
	}
	if rows < 0 {
		if len(t.Dims) < 2 || t.Dims[1] == 0 || t.Dims[1] > math.MaxInt32 {
			l.fail("tensor %s has shape %v, want [%d rows]", name, t.Dims, cols)
			return nil
		}
		rows = int(t.Dims[1])
	}
	w, err := newWeight(name, t.Type, rows, cols, data)
	if err != nil {
		l.fail("%v", err)
		return nil
	}
	if l.bytes == nil {
		l.bytes = map[quant.Type]int64{}
	}
	l.bytes[t.Type] += int64(len(w.data))
	l.weights = append(l.weights, w)
	return w
}

// vector fetches a 1-D tensor of n elements of any supported type as
// float32 (norm weights and biases are small, so they are decoded once).
func (l *loader) vector(name string, n int) []float32 {
	t, data := l.tensor(name, 0, n)
	if t == nil {
		return nil
	}
	v := make([]float32, n)
	if err := quant.Dequantize(t.Type, data, v); err != nil {
		l.fail("tensor %s: %v", name, err)
		return nil
	}
	return v
}

func (l *loader) optVector(name string, n int) []float32 {
	if !l.has(name) {
		return nil
	}
	return l.vector(name, n)
}

func (l *loader) dominantType() quant.Type {
	best, bestBytes := quant.F32, int64(-1)
	for t, b := range l.bytes {
		if b > bestBytes || (b == bestBytes && t < best) {
			best, bestBytes = t, b
		}
	}
	return best
}
