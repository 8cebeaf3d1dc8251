package sample

import (
	"math"
	"testing"
)

func TestExpNeg(t *testing.T) {
	worst := 0.0
	for x := float32(-87.29); x <= 0; x += 0.00137 {
		want := math.Exp(float64(x))
		got := float64(expNeg(x))
		if rel := math.Abs(got-want) / want; rel > worst {
			worst = rel
		}
	}
	if worst > 4e-7 {
		t.Errorf("worst relative error %g", worst)
	}
	for _, x := range []float32{0, -1e-30, -88, -1000, float32(math.Inf(-1))} {
		want := float32(math.Exp(float64(x)))
		if x < -87.3 {
			want = 0
		}
		if got := expNeg(x); got != want && math.Abs(float64(got-want)) > 1e-7 {
			t.Errorf("expNeg(%v) = %v, want %v", x, got, want)
		}
	}
	if got := expNeg(1); math.Abs(float64(got)-math.E) > 1e-6 {
		t.Errorf("expNeg(1) = %v", got)
	}
}
