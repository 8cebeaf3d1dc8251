package sample_test

import (
	"fmt"

	"github.com/open-autoglm/autoglm/internal/engine/sample"
)

func ExampleSampler_Sample() {
	logits := []float32{1.0, 3.5, 0.2, 3.4}
	greedy := sample.New(sample.Params{})
	fmt.Println(greedy.Sample(append([]float32(nil), logits...), nil))

	// Top-k 2 keeps tokens 1 and 3; a fixed seed makes the draw repeatable.
	s := sample.New(sample.Params{Temperature: 0.8, TopK: 2, Seed: 42})
	a := s.Sample(append([]float32(nil), logits...), nil)
	fmt.Println(a == 1 || a == 3)
	// Output:
	// 1
	// true
}
