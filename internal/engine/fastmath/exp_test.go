package fastmath

import (
	"math"
	"testing"
)

func TestExp(t *testing.T) {
	worst := 0.0
	for x := float32(-87); x <= 88.5; x += 0.00731 {
		want := math.Exp(float64(x))
		if rel := math.Abs(float64(Exp(x))-want) / want; rel > worst {
			worst = rel
		}
	}
	if worst > 5e-7 {
		t.Errorf("worst relative error %g", worst)
	}
	if Exp(-100) != 0 || !math.IsInf(float64(Exp(100)), 1) || Exp(0) != 1 {
		t.Errorf("edges: %v %v %v", Exp(-100), Exp(100), Exp(0))
	}
	if nan := Exp(float32(math.NaN())); nan == nan {
		t.Error("NaN in, number out")
	}
}

// TestExpNegative covers what the sampler's softmax uses: logit − max ≤ 0.
func TestExpNegative(t *testing.T) {
	worst := 0.0
	for x := float32(-87.29); x <= 0; x += 0.00137 {
		want := math.Exp(float64(x))
		got := float64(Exp(x))
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
		if got := Exp(x); got != want && math.Abs(float64(got-want)) > 1e-7 {
			t.Errorf("Exp(%v) = %v, want %v", x, got, want)
		}
	}
	if got := Exp(1); math.Abs(float64(got)-math.E) > 1e-6 {
		t.Errorf("Exp(1) = %v", got)
	}
}
