package model

import (
	"fmt"
	"math"
	"sync/atomic"

	"github.com/open-autoglm/autoglm/internal/engine/quant"
)

// KV cache element types: Options.KVType takes one of these.
const (
	KVF32  = quant.F32  // 4 bytes per element, exact
	KVF16  = quant.F16  // 2 bytes per element
	KVQ8_0 = quant.Q8_0 // 34 bytes per 32 elements; needs a head size that is a multiple of 32
)

// ParseKVType maps a configuration name ("f32", "f16", "q8_0", or upper case) to
// a KV cache type.
func ParseKVType(s string) (quant.Type, error) {
	switch s {
	case "f32", "F32", "":
		return KVF32, nil
	case "f16", "F16":
		return KVF16, nil
	case "q8_0", "Q8_0":
		return KVQ8_0, nil
	}
	return 0, fmt.Errorf("unknown KV cache type %q (want f32, f16 or q8_0)", s)
}

func checkKVType(t quant.Type, headDim int) error {
	switch t {
	case KVF32, KVF16:
		return nil
	case KVQ8_0:
		if headDim%32 != 0 {
			return fmt.Errorf("model: KV cache type q8_0 needs a head size that is a multiple of 32, not %d", headDim)
		}
		return nil
	}
	return fmt.Errorf("model: KV cache type %v is not one of f32, f16, q8_0", t)
}

// kvRowBytes is the size of one head's key (or value) at one position.
func kvRowBytes(t quant.Type, headDim int) int {
	switch t {
	case KVF16:
		return 2 * headDim
	case KVQ8_0:
		return headDim / 32 * 34
	}
	return 4 * headDim
}

// Cache holds one sequence's keys and values for every layer. Each layer
// stores, per KV head, the positions one after another (head-major), so
// that attention streams one contiguous block per head. Elements are f32,
// f16 or q8_0 blocks as the model's KV type says; keys and values are
// rounded to that type when stored.
//
// Its storage grows on demand up to the model's context length. A Cache is
// used by one sequence at a time; it is not safe for concurrent use, and
// must not be modified while a Forward that uses it is running.
type Cache struct {
	m      *Model
	n      int // positions filled
	cap    int // positions allocated
	typ    quant.Type
	row    int // bytes of one head at one position
	f32    bool
	k, v   [][]byte     // per layer, KVHeads × cap × row bytes (f16, q8_0)
	kf, vf [][]float32  // per layer, KVHeads × cap × HeadDim (f32)
	bytes  atomic.Int64 // memory held: cap × KVBytesPerPosition, readable at any time
}

// NewCache returns an empty cache for one sequence of m.
func (m *Model) NewCache() *Cache {
	c := &Cache{m: m, typ: m.cfg.KVType, row: kvRowBytes(m.cfg.KVType, m.cfg.HeadDim), f32: m.cfg.KVType == KVF32}
	if c.f32 {
		c.kf = make([][]float32, m.cfg.Layers)
		c.vf = make([][]float32, m.cfg.Layers)
	} else {
		c.k = make([][]byte, m.cfg.Layers)
		c.v = make([][]byte, m.cfg.Layers)
	}
	return c
}

// Len returns the number of positions in the cache: the position the next
// token will take.
func (c *Cache) Len() int { return c.n }

// Cap returns the number of positions the cache can take in total (the
// model's context length).
func (c *Cache) Cap() int { return c.m.cfg.ContextLength }

// Bytes returns the memory the cache holds now (it grows with use). Unlike
// the other methods it may be called while a Forward uses the cache.
func (c *Cache) Bytes() int64 { return c.bytes.Load() }

// KVBytesPerPosition is the KV cache memory one position of one sequence
// takes, over all layers, keys and values.
func (m *Model) KVBytesPerPosition() int64 {
	return kvBytesPerPosition(m.cfg.Layers, m.cfg.KVHeads, m.cfg.HeadDim, m.cfg.KVType)
}

// kvBytesPerPosition is KVBytesPerPosition for a model's shape and KV cache type.
func kvBytesPerPosition(layers, kvHeads, headDim int, t quant.Type) int64 {
	return int64(2 * layers * kvHeads * kvRowBytes(t, headDim))
}

// Truncate drops positions from n on, so that the sequence continues from
// position n (for example to reuse a shared prompt prefix). n beyond Len is
// ignored; a negative n empties the cache. Storage is kept.
func (c *Cache) Truncate(n int) {
	c.n = min(max(n, 0), c.n)
}

// Reset empties the cache, keeping its storage.
func (c *Cache) Reset() { c.n = 0 }

// reserve makes room for n positions in total, growing geometrically.
func (c *Cache) reserve(n int) {
	if n <= c.cap {
		return
	}
	newCap := max(n, min(2*c.cap, c.m.cfg.ContextLength), 16)
	newCap = min(newCap, c.m.cfg.ContextLength)
	heads, hd := c.m.cfg.KVHeads, c.m.cfg.HeadDim
	if c.f32 {
		for l := range c.kf {
			c.kf[l] = regrow(c.kf[l], heads, c.n*hd, c.cap*hd, newCap*hd)
			c.vf[l] = regrow(c.vf[l], heads, c.n*hd, c.cap*hd, newCap*hd)
		}
	} else {
		for l := range c.k {
			c.k[l] = regrow(c.k[l], heads, c.n*c.row, c.cap*c.row, newCap*c.row)
			c.v[l] = regrow(c.v[l], heads, c.n*c.row, c.cap*c.row, newCap*c.row)
		}
	}
	c.cap = newCap
	c.bytes.Store(int64(newCap) * c.m.KVBytesPerPosition())
}

// regrow moves heads blocks of used elements, oldStride apart, into a new
// slice where they are newStride apart.
func regrow[E any](old []E, heads, used, oldStride, newStride int) []E {
	s := make([]E, heads*newStride)
	for h := range heads {
		copy(s[h*newStride:h*newStride+used], old[h*oldStride:h*oldStride+used])
	}
	return s
}

// store writes the keys and values of all KV heads at position pos of layer
// l (k and v hold KVHeads × HeadDim values).
func (c *Cache) store(l, pos int, k, v []float32) {
	hd := c.m.cfg.HeadDim
	for h := range c.m.cfg.KVHeads {
		ks, vs := k[h*hd:(h+1)*hd], v[h*hd:(h+1)*hd]
		if c.f32 {
			off := (h*c.cap + pos) * hd
			copy(c.kf[l][off:off+hd], ks)
			copy(c.vf[l][off:off+hd], vs)
			continue
		}
		off := (h*c.cap + pos) * c.row
		encodeKV(c.typ, c.k[l][off:off+c.row], ks)
		encodeKV(c.typ, c.v[l][off:off+c.row], vs)
	}
}

// head returns layer l's keys and values of KV head h, positions [0, n)
// one after another: as float32 when the type is f32, as bytes otherwise.
func (c *Cache) head(l, h, n int) (kf, vf []float32, k, v []byte) {
	if c.f32 {
		hd := c.m.cfg.HeadDim
		off := h * c.cap * hd
		return c.kf[l][off : off+n*hd], c.vf[l][off : off+n*hd], nil, nil
	}
	off := h * c.cap * c.row
	return nil, nil, c.k[l][off : off+n*c.row], c.v[l][off : off+n*c.row]
}

// encodeKV rounds src into dst as f16 or q8_0 (ggml's block: an f16 scale
// max|x|/127, then 32 int8 values).
func encodeKV(t quant.Type, dst []byte, src []float32) {
	if t == KVF16 {
		for i, x := range src {
			h := quant.F32ToF16(x)
			dst[2*i], dst[2*i+1] = byte(h), byte(h>>8)
		}
		return
	}
	for b := 0; b < len(src); b += 32 {
		blk := src[b : b+32]
		out := dst[b/32*34 : b/32*34+34]
		var amax float32
		for _, x := range blk {
			amax = max(amax, float32(math.Abs(float64(x))))
		}
		d := amax / 127
		h := quant.F32ToF16(d)
		out[0], out[1] = byte(h), byte(h>>8)
		inv := float32(0)
		if d != 0 {
			inv = 1 / d
		}
		for i, x := range blk {
			out[2+i] = byte(int8(math.Round(float64(x * inv))))
		}
	}
}

// decodeKV expands one head row of type t into dst.
func decodeKV(t quant.Type, dst []float32, src []byte) {
	if t == KVF16 {
		for i := range dst {
			dst[i] = quant.F16ToF32(uint16(src[2*i]) | uint16(src[2*i+1])<<8)
		}
		return
	}
	for b := 0; b < len(dst); b += 32 {
		in := src[b/32*34 : b/32*34+34]
		d := quant.F16ToF32(uint16(in[0]) | uint16(in[1])<<8)
		out := dst[b : b+32]
		q := in[2:34]
		for i := range out {
			out[i] = d * float32(int8(q[i]))
		}
	}
}
