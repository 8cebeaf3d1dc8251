package model

import (
	"fmt"
	"math"

	"github.com/open-autoglm/autoglm/internal/engine/gguf"
	"github.com/open-autoglm/autoglm/internal/engine/quant"
)

// RopeStyle says which elements of a head are rotated together.
type RopeStyle int

const (
	// RopeAdjacent rotates pairs (x[2i], x[2i+1]): llama, chatglm, glm4
	// (llama.cpp's "normal" rope).
	RopeAdjacent RopeStyle = iota
	// RopeHalves rotates pairs (x[i], x[i+n/2]) where n is the rotary
	// dimension: qwen2 (llama.cpp's "NeoX" rope).
	RopeHalves
)

func (s RopeStyle) String() string {
	if s == RopeHalves {
		return "halves"
	}
	return "adjacent"
}

// Config describes a loaded model.
type Config struct {
	Arch    string // GGUF general.architecture: llama, qwen2, chatglm or glm4
	Name    string // general.name, if present
	Dim     int    // embedding length
	Layers  int
	Heads   int
	KVHeads int // grouped-query attention: Heads is a multiple of KVHeads
	HeadDim int // per-head size of q, k and v
	FFN     int // feed-forward hidden size (the size of gate and of up)
	Vocab   int
	// ContextLength is the number of positions a Cache can hold: the
	// Options value, or TrainContext.
	ContextLength int
	TrainContext  int // {arch}.context_length
	RopeDim       int // leading elements of each head that rotate
	RopeBase      float64
	// RopeScale multiplies positions before rotation (1 unless the file
	// asks for linear rope scaling).
	RopeScale  float64
	RopeStyle  RopeStyle
	NormEps    float32
	TiedOutput bool       // output projection shares token_embd
	WeightType quant.Type // type of the largest share of matrix weights
	Threads    int
	KVType     quant.Type // KV cache element type: KVF32, KVF16 or KVQ8_0
}

// archInfo holds what differs between the supported architectures and is
// not stated in the file.
type archInfo struct {
	rope RopeStyle
}

var archs = map[string]archInfo{
	"llama":   {rope: RopeAdjacent},
	"qwen2":   {rope: RopeHalves},
	"chatglm": {rope: RopeAdjacent},
	"glm4":    {rope: RopeAdjacent},
}

// readConfig reads the hyperparameters of f's architecture.
func readConfig(f *gguf.File) (Config, error) {
	var c Config
	arch, ok := f.String("general.architecture")
	if !ok {
		return c, fmt.Errorf("model: missing general.architecture")
	}
	info, ok := archs[arch]
	if !ok {
		return c, fmt.Errorf("model: unsupported architecture %q (supported: llama, qwen2, chatglm, glm4)", arch)
	}
	c.Arch = arch
	c.Name, _ = f.String("general.name")
	c.RopeStyle = info.rope
	key := func(k string) string { return arch + "." + k }

	var err error
	need := func(k string) int {
		if err != nil {
			return 0
		}
		v, e := uintKey(f, key(k))
		if e != nil {
			err = e
		}
		return v
	}
	c.Dim = need("embedding_length")
	c.Layers = need("block_count")
	c.Heads = need("attention.head_count")
	c.FFN = need("feed_forward_length")
	c.TrainContext = need("context_length")
	if err != nil {
		return c, err
	}
	c.KVHeads = c.Heads
	if _, ok := f.Lookup(key("attention.head_count_kv")); ok {
		if c.KVHeads, err = uintKey(f, key("attention.head_count_kv")); err != nil {
			return c, err
		}
	}
	if c.Dim <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.KVHeads <= 0 || c.FFN <= 0 || c.TrainContext <= 0 {
		return c, fmt.Errorf("model: %s hyperparameters must be positive: dim %d, layers %d, heads %d, kv heads %d, ffn %d, context %d",
			arch, c.Dim, c.Layers, c.Heads, c.KVHeads, c.FFN, c.TrainContext)
	}
	if c.Heads%c.KVHeads != 0 {
		return c, fmt.Errorf("model: %d heads is not a multiple of %d kv heads", c.Heads, c.KVHeads)
	}
	c.HeadDim = c.Dim / c.Heads
	if _, ok := f.Lookup(key("attention.key_length")); ok {
		if c.HeadDim, err = uintKey(f, key("attention.key_length")); err != nil {
			return c, err
		}
	} else if c.Dim%c.Heads != 0 {
		return c, fmt.Errorf("model: dim %d is not a multiple of %d heads", c.Dim, c.Heads)
	}
	if v, ok := f.Uint(key("attention.value_length")); ok && int(v) != c.HeadDim {
		return c, fmt.Errorf("model: value length %d differs from key length %d (unsupported)", v, c.HeadDim)
	}
	c.RopeDim = c.HeadDim
	if _, ok := f.Lookup(key("rope.dimension_count")); ok {
		if c.RopeDim, err = uintKey(f, key("rope.dimension_count")); err != nil {
			return c, err
		}
	}
	if c.RopeDim <= 0 || c.RopeDim > c.HeadDim || c.RopeDim%2 != 0 {
		return c, fmt.Errorf("model: rope dimension %d must be even and within the head size %d", c.RopeDim, c.HeadDim)
	}
	c.RopeBase = 10000
	if v, ok := f.Float(key("rope.freq_base")); ok {
		c.RopeBase = v
	}
	if !(c.RopeBase > 1) || math.IsInf(c.RopeBase, 0) {
		return c, fmt.Errorf("model: rope frequency base %v must be finite and above 1", c.RopeBase)
	}
	c.RopeScale = 1
	if typ, ok := f.String(key("rope.scaling.type")); ok && typ != "none" {
		factor, _ := f.Float(key("rope.scaling.factor"))
		switch {
		case typ != "linear":
			return c, fmt.Errorf("model: rope scaling %q is not supported (only linear)", typ)
		case factor > 0:
			c.RopeScale = 1 / factor
		}
	}
	c.NormEps = 1e-5
	if v, ok := f.Float(key("attention.layer_norm_rms_epsilon")); ok {
		c.NormEps = float32(v)
	}
	return c, nil
}

// uintKey reads a positive count, accepting llama.cpp's per-layer arrays
// when all layers agree.
func uintKey(f *gguf.File, k string) (int, error) {
	if v, ok := f.Uint(k); ok {
		if v > math.MaxInt32 {
			return 0, fmt.Errorf("model: %s = %d is too large", k, v)
		}
		return int(v), nil
	}
	if vs, ok := f.Int32s(k); ok && len(vs) > 0 {
		for _, v := range vs[1:] {
			if v != vs[0] {
				return 0, fmt.Errorf("model: %s varies per layer (unsupported)", k)
			}
		}
		return int(vs[0]), nil
	}
	if _, ok := f.Lookup(k); ok {
		return 0, fmt.Errorf("model: %s is not a non-negative integer", k)
	}
	return 0, fmt.Errorf("model: missing %s", k)
}
