package model

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/open-autoglm/autoglm/internal/engine/quant"
)

// Seq is one sequence's part of a Forward step.
type Seq struct {
	// Cache is the sequence's cache; Tokens are appended at positions
	// Cache.Len(), Cache.Len()+1, ….
	Cache  *Cache
	Tokens []int32
	// AllLogits asks for logits at every new position; otherwise only the
	// last position's logits are computed (cheaper: the output projection
	// is the largest matrix of small models).
	AllLogits bool
	// Embed asks for an embedding of the new tokens: the final-norm hidden
	// states of the positions of this step, mean-pooled and L2-normalised.
	Embed bool

	// Logits receives len(Tokens) (AllLogits) or 1 rows of Vocab values,
	// row-major. Embedding receives Dim values when Embed is set. Both
	// buffers are reused when their capacity allows.
	Logits    []float32
	Embedding []float32
}

// ErrContextFull is returned (wrapped) by Forward when a sequence would
// grow past the model's context length.
var ErrContextFull = errors.New("model: context length exceeded")

// buffers are the activations of one step, grown to the largest batch seen.
type buffers struct {
	rows           int
	rowSeq, rowPos []int
	x, xn, o       []float32
	q, k, v, qkv   []float32
	att            []float32
	ga, gb, h      []float32
	cos, sin       []float32
	hid, logits    []float32
	outRows        []int
	scores         [][]float32   // per worker: attention scores of a head group
	kvRow          [][]float32   // per worker: one decoded key and value row
	tiles          []attnScratch // per worker: the buffers of a tile of prompt rows
	attnItems      []attnItem    // the work items of one layer's attention
	acts           [2]quant.Acts // activations converted for the matrix products
}

// bytes is the memory the step buffers hold.
func (b *buffers) bytes() int64 {
	n := 0
	for _, s := range [][]float32{b.x, b.xn, b.o, b.q, b.k, b.v, b.qkv, b.att, b.ga, b.gb, b.h, b.cos, b.sin, b.hid, b.logits} {
		n += cap(s)
	}
	for w := range b.scores {
		n += cap(b.scores[w]) + cap(b.kvRow[w])
	}
	for w := range b.tiles {
		n += b.tiles[w].floats()
	}
	return int64(4 * n)
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// Forward appends each sequence's Tokens to its Cache and computes the
// requested logits and embeddings. The sequences may be at different
// positions; each Cache must belong to m and appear at most once. All
// sequences are validated before any work: a bad token id, a foreign or
// repeated cache, empty Tokens or a step past the context length
// (ErrContextFull) fail the whole call with no cache changed. If ctx is
// cancelled mid-step Forward returns ctx.Err() and the caches keep their
// previous length; so they do if the computation panics, which Forward
// returns as a *PanicError.
func (m *Model) Forward(ctx context.Context, seqs []*Seq) (err error) {
	if len(seqs) == 0 {
		return nil
	}
	cfg := &m.cfg
	total := 0
	for i, s := range seqs {
		switch {
		case s == nil || s.Cache == nil:
			return fmt.Errorf("model: sequence %d has no cache", i)
		case s.Cache.m != m:
			return fmt.Errorf("model: sequence %d: cache belongs to another model", i)
		case len(s.Tokens) == 0:
			return fmt.Errorf("model: sequence %d has no tokens", i)
		case s.Cache.n+len(s.Tokens) > cfg.ContextLength:
			return fmt.Errorf("%w: sequence %d at position %d + %d tokens > %d", ErrContextFull, i, s.Cache.n, len(s.Tokens), cfg.ContextLength)
		}
		for j := range i {
			if seqs[j].Cache == s.Cache {
				return fmt.Errorf("model: sequences %d and %d share a cache", j, i)
			}
		}
		for _, t := range s.Tokens {
			if t < 0 || int(t) >= cfg.Vocab {
				return fmt.Errorf("model: sequence %d: token %d outside the vocabulary of %d", i, t, cfg.Vocab)
			}
		}
		total += len(s.Tokens)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	defer recoverForward(&err)
	for _, s := range seqs {
		s.Cache.reserve(s.Cache.n + len(s.Tokens))
	}
	b := m.prepare(seqs, total)

	row := 0
	for _, s := range seqs {
		for _, t := range s.Tokens {
			m.tokEmbd.row(int(t), b.x[row*cfg.Dim:(row+1)*cfg.Dim])
			row++
		}
	}

	for l := range m.layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		m.layer(l, seqs, b)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.finish(seqs, b)
	for _, s := range seqs {
		s.Cache.n += len(s.Tokens)
	}
	return nil
}

// prepare sizes the step buffers for n rows and fills the row metadata and
// rotary tables.
func (m *Model) prepare(seqs []*Seq, n int) *buffers {
	cfg := &m.cfg
	b := &m.buf
	qDim, kvDim := cfg.Heads*cfg.HeadDim, cfg.KVHeads*cfg.HeadDim
	b.rows = n
	b.x = grow(b.x, n*cfg.Dim)
	b.xn = grow(b.xn, n*cfg.Dim)
	b.o = grow(b.o, n*cfg.Dim)
	b.q = grow(b.q, n*qDim)
	b.k = grow(b.k, n*kvDim)
	b.v = grow(b.v, n*kvDim)
	b.att = grow(b.att, n*qDim)
	b.ga = grow(b.ga, n*2*cfg.FFN)
	b.gb = grow(b.gb, n*cfg.FFN)
	b.h = grow(b.h, n*cfg.FFN)
	if m.layers[0].wqkv != nil {
		b.qkv = grow(b.qkv, n*(qDim+2*kvDim))
	}
	half := cfg.RopeDim / 2
	b.cos = grow(b.cos, n*half)
	b.sin = grow(b.sin, n*half)
	if cap(b.rowSeq) < n {
		b.rowSeq = make([]int, n)
		b.rowPos = make([]int, n)
	}
	b.rowSeq, b.rowPos = b.rowSeq[:n], b.rowPos[:n]
	row := 0
	for i, s := range seqs {
		for j := range s.Tokens {
			pos := s.Cache.n + j
			b.rowSeq[row], b.rowPos[row] = i, pos
			p := float64(pos) * cfg.RopeScale
			for d, f := range m.invFreq {
				sn, cs := math.Sincos(p * f)
				b.cos[row*half+d], b.sin[row*half+d] = float32(cs), float32(sn)
			}
			row++
		}
	}
	if len(b.scores) != m.pool.size {
		b.scores = make([][]float32, m.pool.size)
		b.kvRow = make([][]float32, m.pool.size)
	}
	for w := range b.scores {
		b.scores[w] = grow(b.scores[w], cfg.Heads/cfg.KVHeads*cfg.ContextLength)
		b.kvRow[w] = grow(b.kvRow[w], 2*cfg.HeadDim)
	}
	m.prepareTiles(seqs, b)
	m.scratch.Store(b.bytes())
	return b
}

// layer runs transformer block l over all rows of the step.
func (m *Model) layer(l int, seqs []*Seq, b *buffers) {
	cfg := &m.cfg
	ly := &m.layers[l]
	n, dim := b.rows, cfg.Dim
	qDim, kvDim := cfg.Heads*cfg.HeadDim, cfg.KVHeads*cfg.HeadDim

	rmsNormRows(b.xn, b.x, ly.attnNorm, n, dim, cfg.NormEps)
	if ly.wqkv != nil {
		width := qDim + 2*kvDim
		m.matmul(ly.wqkv, b.xn, n, b.qkv, nil)
		for r := range n {
			src := b.qkv[r*width : (r+1)*width]
			addBias(src, ly.bqkv)
			copy(b.q[r*qDim:(r+1)*qDim], src[:qDim])
			copy(b.k[r*kvDim:(r+1)*kvDim], src[qDim:qDim+kvDim])
			copy(b.v[r*kvDim:(r+1)*kvDim], src[qDim+kvDim:])
		}
	} else {
		a := m.matmul(ly.wq, b.xn, n, b.q, nil)
		a = m.matmul(ly.wk, b.xn, n, b.k, a)
		m.matmul(ly.wv, b.xn, n, b.v, a)
		addBiasRows(b.q, ly.bq, n)
		addBiasRows(b.k, ly.bk, n)
		addBiasRows(b.v, ly.bv, n)
	}
	half := cfg.RopeDim / 2
	for r := range n {
		cs, sn := b.cos[r*half:(r+1)*half], b.sin[r*half:(r+1)*half]
		for h := range cfg.Heads {
			m.rope(b.q[r*qDim+h*cfg.HeadDim:], cs, sn)
		}
		for h := range cfg.KVHeads {
			m.rope(b.k[r*kvDim+h*cfg.HeadDim:], cs, sn)
		}
		seqs[b.rowSeq[r]].Cache.store(l, b.rowPos[r], b.k[r*kvDim:(r+1)*kvDim], b.v[r*kvDim:(r+1)*kvDim])
	}

	m.attention(l, seqs, b)
	m.matmul(ly.wo, b.att, n, b.o, nil)
	addBiasRows(b.o, ly.bo, n)
	if ly.postAttnNorm != nil {
		rmsNormRows(b.o, b.o, ly.postAttnNorm, n, dim, cfg.NormEps)
	}
	addTo(b.x, b.o)

	rmsNormRows(b.xn, b.x, ly.ffnNorm, n, dim, cfg.NormEps)
	ffn := cfg.FFN
	if ly.gate != nil {
		a := m.matmul(ly.gate, b.xn, n, b.ga, nil)
		m.matmul(ly.up, b.xn, n, b.gb, a)
		m.pool.run(n*ffn, m.pool.grainFor(n*ffn, 64), func(_, lo, hi int) {
			quant.SwiGLU(b.h[lo:hi], b.ga[lo:hi], b.gb[lo:hi])
		})
	} else {
		m.matmul(ly.up, b.xn, n, b.ga, nil)
		m.pool.run(n, 1, func(_, lo, hi int) {
			for r := lo; r < hi; r++ {
				gu := b.ga[r*2*ffn : (r+1)*2*ffn]
				quant.SwiGLU(b.h[r*ffn:(r+1)*ffn], gu, gu[ffn:])
			}
		})
	}
	m.matmul(ly.down, b.h, n, b.o, nil)
	if ly.postFFNNorm != nil {
		rmsNormRows(b.o, b.o, ly.postFFNNorm, n, dim, cfg.NormEps)
	}
	addTo(b.x, b.o)
}

// rope rotates the first RopeDim elements of one head in place.
func (m *Model) rope(x, cos, sin []float32) {
	half := len(cos)
	if m.cfg.RopeStyle == RopeHalves {
		a, b := x[:half], x[half:2*half]
		for i := range half {
			x0, x1 := a[i], b[i]
			a[i] = x0*cos[i] - x1*sin[i]
			b[i] = x0*sin[i] + x1*cos[i]
		}
		return
	}
	x = x[:2*half]
	for i := range half {
		x0, x1 := x[2*i], x[2*i+1]
		x[2*i] = x0*cos[i] - x1*sin[i]
		x[2*i+1] = x0*sin[i] + x1*cos[i]
	}
}

// finish applies the final norm to the rows that need it and computes the
// logits and embeddings.
func (m *Model) finish(seqs []*Seq, b *buffers) {
	cfg := &m.cfg
	dim := cfg.Dim
	b.outRows = b.outRows[:0]
	row := 0
	for _, s := range seqs {
		n := len(s.Tokens)
		if s.AllLogits {
			for j := range n {
				b.outRows = append(b.outRows, row+j)
			}
		} else {
			b.outRows = append(b.outRows, row+n-1)
		}
		if s.Embed {
			s.Embedding = grow(s.Embedding, dim)
			clear(s.Embedding)
			for j := range n {
				h := b.xn[(row+j)*dim : (row+j+1)*dim]
				rmsNorm(h, b.x[(row+j)*dim:(row+j+1)*dim], m.outputNorm, cfg.NormEps)
				addTo(s.Embedding, h)
			}
			var ss float64
			for _, v := range s.Embedding {
				ss += float64(v) * float64(v)
			}
			if ss > 0 {
				inv := float32(1 / math.Sqrt(ss))
				for i := range s.Embedding {
					s.Embedding[i] *= inv
				}
			}
		}
		row += n
	}
	nOut := len(b.outRows)
	b.hid = grow(b.hid, nOut*dim)
	for i, r := range b.outRows {
		rmsNorm(b.hid[i*dim:(i+1)*dim], b.x[r*dim:(r+1)*dim], m.outputNorm, cfg.NormEps)
	}
	b.logits = grow(b.logits, nOut*cfg.Vocab)
	m.matmul(m.output, b.hid, nOut, b.logits, nil)
	i := 0
	for _, s := range seqs {
		k := 1
		if s.AllLogits {
			k = len(s.Tokens)
		}
		s.Logits = grow(s.Logits, k*cfg.Vocab)
		copy(s.Logits, b.logits[i*cfg.Vocab:(i+k)*cfg.Vocab])
		i += k
	}
}

// rmsNorm writes x/rms(x)·w into dst (which may alias x).
func rmsNorm(dst, x, w []float32, eps float32) {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	inv := float32(1 / math.Sqrt(ss/float64(len(x))+float64(eps)))
	for i, v := range x {
		dst[i] = v * inv * w[i]
	}
}

func rmsNormRows(dst, x, w []float32, n, dim int, eps float32) {
	for r := range n {
		rmsNorm(dst[r*dim:(r+1)*dim], x[r*dim:(r+1)*dim], w, eps)
	}
}

func addBias(x, bias []float32) {
	for i := range bias {
		x[i] += bias[i]
	}
}

func addBiasRows(x, bias []float32, n int) {
	if bias == nil {
		return
	}
	d := len(bias)
	for r := range n {
		addBias(x[r*d:(r+1)*d], bias)
	}
}

func addTo(dst, src []float32) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] += src[i]
	}
}
