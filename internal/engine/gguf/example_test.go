package gguf_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/open-autoglm/autoglm/internal/engine/gguf"
	"github.com/open-autoglm/autoglm/internal/engine/quant"
)

func Example() {
	w := gguf.NewWriter()
	w.Add("general.architecture", "llama")
	w.Add("llama.block_count", uint32(5))
	w.Add("tokenizer.ggml.tokens", []string{"<unk>", "<s>", "</s>"})
	weights, _ := quant.Quantize(quant.Q8_0, make([]float32, 64))
	if err := w.AddTensor("output.weight", quant.Q8_0, []uint64{32, 2}, weights); err != nil {
		log.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		log.Fatal(err)
	}

	f, err := gguf.Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		log.Fatal(err)
	}
	arch, _ := f.String("general.architecture")
	blocks, _ := f.Uint("llama.block_count")
	toks, _ := f.Strings("tokenizer.ggml.tokens")
	t, _ := f.Tensor("output.weight")
	data, _ := f.TensorData(t)
	fmt.Println(arch, blocks, len(toks))
	fmt.Println(t.Name, t.Dims, t.Type, len(data), f.DataOffset%int64(f.Alignment))
	// Output:
	// llama 5 3
	// output.weight [32 2] Q8_0 68 0
}
