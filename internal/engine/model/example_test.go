package model_test

import (
	"context"
	"fmt"
	"log"

	"github.com/open-autoglm/autoglm/internal/engine/gguf"
	"github.com/open-autoglm/autoglm/internal/engine/model"
)

// Greedy decoding with the bundled demo model: prefill the prompt in one
// step, then feed back one token per step.
func Example() {
	f, err := gguf.Open("../../../models/stories260K.gguf")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	m, err := model.Load(f, model.Options{Threads: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	seq := &model.Seq{Cache: m.NewCache(), Tokens: []int32{1, 403, 407, 261, 378}} // "Once upon a time"
	var out []int32
	for range 8 {
		if err := m.Forward(context.Background(), []*model.Seq{seq}); err != nil {
			log.Fatal(err)
		}
		best := 0
		for i, v := range seq.Logits {
			if v > seq.Logits[best] {
				best = i
			}
		}
		out = append(out, int32(best))
		seq.Tokens = []int32{int32(best)}
	}
	fmt.Println(out, seq.Cache.Len())
	// Output: [432 383 286 261 376 298 315 421] 12
}
