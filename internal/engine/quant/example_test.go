package quant_test

import (
	"fmt"

	"github.com/open-autoglm/autoglm/internal/engine/quant"
)

func ExampleMatVec() {
	const rows, cols = 2, 32
	w := make([]float32, rows*cols)
	for c := 0; c < cols; c++ {
		w[c] = 1         // row 0: all ones
		w[cols+c] = -0.5 // row 1: all -0.5
	}
	enc, err := quant.Quantize(quant.Q8_0, w)
	if err != nil {
		panic(err)
	}
	x := make([]float32, cols)
	for i := range x {
		x[i] = 2
	}
	y := make([]float32, rows)
	quant.MatVec(quant.Q8_0, enc, rows, cols, x, y)
	rb, _ := quant.RowBytes(quant.Q8_0, cols)
	fmt.Println(y, rb)
	// Output: [64 -32] 34
}
