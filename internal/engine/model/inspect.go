package model

import (
	"github.com/open-autoglm/autoglm/internal/engine/gguf"
	"github.com/open-autoglm/autoglm/internal/engine/quant"
)

// Summary describes a model file from its metadata and tensor table, without loading
// weights.
type Summary struct {
	// Config holds the hyperparameters; ContextLength is the training context, and
	// WeightType the type holding the largest share of matrix bytes.
	Config Config
	// Params is the number of weights (elements of every tensor).
	Params uint64
	// WeightBytes is the size of the tensor data: what loading maps into memory.
	WeightBytes int64
}

// Inspect reads f's hyperparameters and sizes.
func Inspect(f *gguf.File) (Summary, error) {
	c, err := readConfig(f)
	if err != nil {
		return Summary{}, err
	}
	c.ContextLength = c.TrainContext
	s := Summary{Config: c}
	byType := map[quant.Type]int64{}
	for i := range f.Tensors {
		t := &f.Tensors[i]
		s.Params += t.Elements()
		s.WeightBytes += t.Size
		if len(t.Dims) >= 2 {
			byType[t.Type] += t.Size
		}
	}
	best, bestBytes := quant.F32, int64(-1)
	for t, b := range byType {
		if b > bestBytes || (b == bestBytes && t < best) {
			best, bestBytes = t, b
		}
	}
	s.Config.WeightType = best
	if v, ok := f.Strings("tokenizer.ggml.tokens"); ok {
		s.Config.Vocab = len(v)
	}
	return s, nil
}

// KVBytes is the memory the key/value cache of one sequence takes at ctx positions when the
// engine stores it as kv (KVF32, KVF16 or KVQ8_0), as a loaded Model's KVBytesPerPosition
// counts it. It fails for a type the model cannot use (q8_0 needs a head size that is a
// multiple of 32).
func (s Summary) KVBytes(ctx int, kv quant.Type) (int64, error) {
	c := s.Config
	if err := checkKVType(kv, c.HeadDim); err != nil {
		return 0, err
	}
	return int64(ctx) * kvBytesPerPosition(c.Layers, c.KVHeads, c.HeadDim, kv), nil
}
