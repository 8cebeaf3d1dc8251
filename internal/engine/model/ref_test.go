package model

import (
	"fmt"
	"math"
	"testing"

	"github.com/open-autoglm/autoglm/internal/engine/gguf"
	"github.com/open-autoglm/autoglm/internal/engine/quant"
)

// refModel is an independent float64 implementation of the supported
// architectures, written for clarity rather than speed and sharing no code
// with the engine: weights are dequantised into [][]float64 once, and the
// forward pass recomputes every position of a sequence from scratch.
type refModel struct {
	arch                                     string
	dim, heads, kvHeads, headDim, ffn, vocab int
	ropeDim                                  int
	ropeBase, eps                            float64
	halves                                   bool
	ropeFreqs                                []float64
	embd, out                                [][]float64
	outNorm                                  []float64
	layers                                   []refLayer
	// actType maps the first element of every matrix row to the
	// matrix's type: matVec rounds its input the way the engine's
	// kernels quantise activations for that type.
	actType map[*float64]quant.Type
}

type refLayer struct {
	attnNorm, bq, bk, bv, postAttn, ffnNorm, postFFN []float64
	wq, wk, wv, wo, gate, up, down                   [][]float64
}

func loadRef(t *testing.T, f *gguf.File) *refModel {
	t.Helper()
	arch, _ := f.String("general.architecture")
	u := func(k string) int {
		v, ok := f.Uint(arch + "." + k)
		if !ok {
			t.Fatalf("reference: missing %s.%s", arch, k)
		}
		return int(v)
	}
	r := &refModel{arch: arch, actType: map[*float64]quant.Type{}}
	r.dim, r.heads, r.kvHeads, r.ffn = u("embedding_length"), u("attention.head_count"), u("attention.head_count_kv"), u("feed_forward_length")
	r.headDim = r.dim / r.heads
	if v, ok := f.Uint(arch + ".attention.key_length"); ok {
		r.headDim = int(v)
	}
	r.ropeDim = u("rope.dimension_count")
	r.ropeBase, _ = f.Float(arch + ".rope.freq_base")
	r.eps, _ = f.Float(arch + ".attention.layer_norm_rms_epsilon")
	r.halves = arch == "qwen2"

	mat := func(name string) [][]float64 {
		ti, ok := f.Tensor(name)
		if !ok {
			t.Fatalf("reference: missing %s", name)
		}
		cols, rows := int(ti.Dims[0]), 1
		if len(ti.Dims) > 1 {
			rows = int(ti.Dims[1])
		}
		data, err := f.TensorData(ti)
		if err != nil {
			t.Fatal(err)
		}
		flat := make([]float32, rows*cols)
		if err := quant.Dequantize(ti.Type, data, flat); err != nil {
			t.Fatal(err)
		}
		m := make([][]float64, rows)
		for i := range m {
			m[i] = make([]float64, cols)
			for j := range m[i] {
				m[i][j] = float64(flat[i*cols+j])
			}
			r.actType[&m[i][0]] = ti.Type
		}
		return m
	}
	vec := func(name string) []float64 {
		if _, ok := f.Tensor(name); !ok {
			return nil
		}
		m := mat(name)
		return m[0]
	}
	r.ropeFreqs = vec("rope_freqs.weight")
	r.embd = mat("token_embd.weight")
	r.vocab = len(r.embd)
	r.outNorm = vec("output_norm.weight")
	if _, ok := f.Tensor("output.weight"); ok {
		r.out = mat("output.weight")
	} else {
		r.out = r.embd
	}
	n := u("block_count")
	qDim, kvDim := r.heads*r.headDim, r.kvHeads*r.headDim
	for i := range n {
		p := fmt.Sprintf("blk.%d.", i)
		var L refLayer
		L.attnNorm = vec(p + "attn_norm.weight")
		if _, ok := f.Tensor(p + "attn_qkv.weight"); ok {
			qkv := mat(p + "attn_qkv.weight")
			L.wq, L.wk, L.wv = qkv[:qDim], qkv[qDim:qDim+kvDim], qkv[qDim+kvDim:]
			if b := vec(p + "attn_qkv.bias"); b != nil {
				L.bq, L.bk, L.bv = b[:qDim], b[qDim:qDim+kvDim], b[qDim+kvDim:]
			}
		} else {
			L.wq, L.wk, L.wv = mat(p+"attn_q.weight"), mat(p+"attn_k.weight"), mat(p+"attn_v.weight")
			L.bq, L.bk, L.bv = vec(p+"attn_q.bias"), vec(p+"attn_k.bias"), vec(p+"attn_v.bias")
		}
		L.wo = mat(p + "attn_output.weight")
		L.postAttn = vec(p + "post_attention_norm.weight")
		L.ffnNorm = vec(p + "ffn_norm.weight")
		if _, ok := f.Tensor(p + "ffn_gate.weight"); ok {
			L.gate, L.up = mat(p+"ffn_gate.weight"), mat(p+"ffn_up.weight")
		} else {
			gu := mat(p + "ffn_up.weight")
			L.gate, L.up = gu[:r.ffn], gu[r.ffn:]
		}
		L.down = mat(p + "ffn_down.weight")
		L.postFFN = vec(p + "post_ffw_norm.weight")
		r.layers = append(r.layers, L)
	}
	return r
}

// matVec is refMatVec after rounding x as the engine rounds activations
// for w's type: 32-element blocks with an f16 scale of amax/127 for the
// 32-element quants, 256-element blocks whose largest-magnitude element
// maps to -127 for the K-quants, unchanged for float weights. Both round
// to nearest even. This is the arithmetic of llama.cpp's CPU kernels.
func (r *refModel) matVec(w [][]float64, x, bias []float64) []float64 {
	switch t := r.actType[&w[0][0]]; t {
	case quant.Q8_0, quant.Q4_0, quant.Q4_1, quant.Q5_0, quant.Q5_1:
		x = refRoundBlocks(x, 32, func(b []float64) (float64, float64) {
			var amax float64
			for _, v := range b {
				amax = math.Max(amax, math.Abs(v))
			}
			if amax == 0 {
				return 0, 0
			}
			return 127 / amax, float64(quant.F16ToF32(quant.F32ToF16(float32(amax / 127))))
		})
	case quant.Q4_K, quant.Q5_K, quant.Q6_K:
		x = refRoundBlocks(x, 256, func(b []float64) (float64, float64) {
			var m float64
			for _, v := range b {
				if math.Abs(v) > math.Abs(m) {
					m = v
				}
			}
			if m == 0 {
				return 0, 0
			}
			return -127 / m, -m / 127
		})
	}
	return refMatVec(w, x, bias)
}

// refRoundBlocks returns x rounded per block of n: scale returns the
// factor to the quant grid and the step that decodes it.
func refRoundBlocks(x []float64, n int, scale func([]float64) (float64, float64)) []float64 {
	out := make([]float64, len(x))
	for b := 0; b < len(x); b += n {
		id, d := scale(x[b : b+n])
		for j := b; j < b+n; j++ {
			out[j] = d * math.Min(127, math.RoundToEven(x[j]*id))
		}
	}
	return out
}

func refMatVec(w [][]float64, x, bias []float64) []float64 {
	y := make([]float64, len(w))
	for i, row := range w {
		s := 0.0
		for j, v := range row {
			s += v * x[j]
		}
		if bias != nil {
			s += bias[i]
		}
		y[i] = s
	}
	return y
}

func refNorm(x, w []float64, eps float64) []float64 {
	ss := 0.0
	for _, v := range x {
		ss += v * v
	}
	scale := 1 / math.Sqrt(ss/float64(len(x))+eps)
	y := make([]float64, len(x))
	for i := range x {
		y[i] = x[i] * scale * w[i]
	}
	return y
}

// refRope rotates one head vector in place for position pos.
func (r *refModel) refRope(h []float64, pos int) {
	for i := 0; i < r.ropeDim/2; i++ {
		theta := float64(pos) * math.Pow(r.ropeBase, -2*float64(i)/float64(r.ropeDim))
		if r.ropeFreqs != nil {
			theta /= r.ropeFreqs[i]
		}
		a, b := 2*i, 2*i+1
		if r.halves {
			a, b = i, i+r.ropeDim/2
		}
		x0, x1 := h[a], h[b]
		h[a] = x0*math.Cos(theta) - x1*math.Sin(theta)
		h[b] = x0*math.Sin(theta) + x1*math.Cos(theta)
	}
}

// forward returns the logits at every position of tokens and the final
// normed hidden states.
func (r *refModel) forward(tokens []int32) (logits, hidden [][]float64) {
	n := len(tokens)
	x := make([][]float64, n)
	for i, t := range tokens {
		x[i] = append([]float64(nil), r.embd[t]...)
	}
	hd := r.headDim
	for _, L := range r.layers {
		q := make([][]float64, n)
		k := make([][]float64, n)
		v := make([][]float64, n)
		for i := range n {
			xn := refNorm(x[i], L.attnNorm, r.eps)
			q[i] = r.matVec(L.wq, xn, L.bq)
			k[i] = r.matVec(L.wk, xn, L.bk)
			v[i] = r.matVec(L.wv, xn, L.bv)
			for h := range r.heads {
				r.refRope(q[i][h*hd:(h+1)*hd], i)
			}
			for h := range r.kvHeads {
				r.refRope(k[i][h*hd:(h+1)*hd], i)
			}
		}
		for i := range n {
			att := make([]float64, r.heads*hd)
			for h := range r.heads {
				kh := h / (r.heads / r.kvHeads)
				scores := make([]float64, i+1)
				mx := math.Inf(-1)
				for t := 0; t <= i; t++ {
					s := 0.0
					for d := range hd {
						s += q[i][h*hd+d] * k[t][kh*hd+d]
					}
					scores[t] = s / math.Sqrt(float64(hd))
					mx = math.Max(mx, scores[t])
				}
				sum := 0.0
				for t := range scores {
					scores[t] = math.Exp(scores[t] - mx)
					sum += scores[t]
				}
				for t := range scores {
					for d := range hd {
						att[h*hd+d] += scores[t] / sum * v[t][kh*hd+d]
					}
				}
			}
			o := r.matVec(L.wo, att, nil)
			if L.postAttn != nil {
				o = refNorm(o, L.postAttn, r.eps)
			}
			for d := range o {
				x[i][d] += o[d]
			}
		}
		for i := range n {
			xn := refNorm(x[i], L.ffnNorm, r.eps)
			g := r.matVec(L.gate, xn, nil)
			u := r.matVec(L.up, xn, nil)
			h := make([]float64, r.ffn)
			for j := range h {
				h[j] = g[j] / (1 + math.Exp(-g[j])) * u[j]
			}
			o := r.matVec(L.down, h, nil)
			if L.postFFN != nil {
				o = refNorm(o, L.postFFN, r.eps)
			}
			for d := range o {
				x[i][d] += o[d]
			}
		}
	}
	for i := range n {
		hn := refNorm(x[i], r.outNorm, r.eps)
		hidden = append(hidden, hn)
		logits = append(logits, r.matVec(r.out, hn, nil))
	}
	return logits, hidden
}
