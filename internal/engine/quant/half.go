package quant

import "math"

// F16ToF32 converts an IEEE 754 binary16 value to float32 exactly, including
// subnormals, signed zeros, infinities and NaNs (the payload is kept).
//
// It places the half's exponent and mantissa bits at the bottom of a float32
// and multiplies by 2^112, which rebiases normals and normalises subnormals
// in one exact operation; only Inf/NaN need a branch. It sits on the F16
// kernels' hot path, so it is kept branch-light.
func F16ToF32(h uint16) float32 {
	o := uint32(h&0x7fff) << 13
	f := math.Float32frombits(o) * 0x1p112
	bits := math.Float32bits(f)
	if o >= 0x1f<<23 {
		bits = o | 0x7f800000 // Inf or NaN: all-ones exponent, same mantissa
	}
	return math.Float32frombits(bits | uint32(h&0x8000)<<16)
}

// F32ToF16 converts a float32 to IEEE 754 binary16 with round-to-nearest-even.
// Values too large become ±Inf, values too small become subnormals or ±0,
// and NaNs stay NaNs (quiet, keeping the top payload bits).
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			// Below half the smallest subnormal (2^-25): rounds to zero.
			return sign
		}
		// Subnormal result: shift the full 24-bit significand down to
		// units of 2^-24 and round to nearest even. A carry out of the
		// top produces the smallest normal, which is the right encoding.
		m := mant | 0x800000
		shift := uint32(14 - e)
		h := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, up to Inf: correct rounding
	}
	return sign | uint16(h)
}

// BF16ToF32 converts a bfloat16 value to float32 exactly.
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F32ToBF16 converts a float32 to bfloat16 with round-to-nearest-even; NaNs
// stay (quiet) NaNs.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}
