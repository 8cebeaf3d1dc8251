// Package fastmath holds the float32 math the engine calls per element on its hot paths,
// where the float64 functions of package math showed up in profiles.
package fastmath

import "math"

// Exp returns e^x in float32 precision (a few ulp), flushing results below the normal range
// to 0 and overflowing to +Inf. Softmax over attention scores and logits, and SiLU, call it
// per element. It is the Cephes expf range reduction and polynomial.
func Exp(x float32) float32 {
	switch {
	case x < -87.3:
		return 0
	case x > 88.7:
		return float32(math.Inf(1))
	case x != x:
		return x
	}
	const (
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
	)
	// n = round(x·log2 e), then e^x = 2^n · e^r with |r| ≤ ln2/2.
	fn := float32(math.Floor(float64(x*log2e + 0.5)))
	n := int32(fn)
	r := x - fn*c1 - fn*c2
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	p = p*r*r + r + 1
	// Split the scale for n = 128, just above float32's exponent range for the largest inputs.
	if n > 127 {
		return p * 2 * math.Float32frombits(uint32(n-1+127)<<23)
	}
	return p * math.Float32frombits(uint32(n+127)<<23)
}
