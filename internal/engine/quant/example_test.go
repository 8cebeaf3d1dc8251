package quant_test

import (
	"fmt"

	"github.com/open-autoglm/autoglm/internal/engine/quant"
)

func ExampleMatVec() {
	const rows, cols = 2, 32
	w := make([]float32, rows*cols)
	// Q8_0 stores each block's scale amax/127 as f16; these values make
	// the scale (1 and 0.5) exact, so the printed result is too.
	for c := 0; c < cols; c++ {
		w[c] = 127        // row 0
		w[cols+c] = -63.5 // row 1
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
	// Output: [8128 -4064] 34
}
