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

// KVBytes is the memory the key/value cache of one sequence takes at ctx positions, as the
// engine stores it (float32).
func (s Summary) KVBytes(ctx int) int64 {
	c := s.Config
	return 2 * int64(c.Layers) * int64(ctx) * int64(c.KVHeads) * int64(c.HeadDim) * 4
}
