package sample

import "math"

// expNeg returns e^x for x ≤ 0 in float32 precision (relative error within
// a few ulp), flushing results below the normal range to 0. The softmax
// only ever exponentiates logit−max ≤ 0, and over a 150k vocabulary
// math.Exp dominated the sampling time; this is the Cephes expf reduction
// and polynomial.
func expNeg(x float32) float32 {
	if x < -87.3 {
		return 0
	}
	if x > 0 || x != x {
		// Outside the contract; keep the answer right rather than fast.
		return float32(math.Exp(float64(x)))
	}
	const (
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
	)
	// Round x·log2(e) to the nearest integer n (x ≤ 0, so truncating
	// y−0.5 toward zero rounds).
	n := int32(x*log2e - 0.5)
	fn := float32(n)
	r := x - fn*c1 - fn*c2
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	p = p*r*r + r + 1
	return p * math.Float32frombits(uint32(n+127)<<23)
}
