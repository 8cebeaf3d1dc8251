package model

import (
	"math"
	"testing"
)

func TestExpf(t *testing.T) {
	worst := 0.0
	for x := float32(-87); x <= 88.5; x += 0.00731 {
		want := math.Exp(float64(x))
		if rel := math.Abs(float64(expf(x))-want) / want; rel > worst {
			worst = rel
		}
	}
	if worst > 5e-7 {
		t.Errorf("worst relative error %g", worst)
	}
	if expf(-100) != 0 || !math.IsInf(float64(expf(100)), 1) || expf(0) != 1 {
		t.Errorf("edges: %v %v %v", expf(-100), expf(100), expf(0))
	}
	if nan := expf(float32(math.NaN())); nan == nan {
		t.Error("NaN in, number out")
	}
}
