package quant

import "encoding/binary"

// Q8_0: blocks of 32 elements, 34 bytes: d (f16) then 32 int8 quants;
// x = d*q.

const (
	qk8_0     = 32
	q8_0Bytes = 34
)

func dequantQ8_0(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qk8_0; i++ {
		b := (*[q8_0Bytes]byte)(src[i*q8_0Bytes:])
		y := (*[qk8_0]float32)(dst[i*qk8_0:])
		d := f16(b[0:])
		for j := range y {
			y[j] = d * float32(int8(b[2+j]))
		}
	}
}

func quantQ8_0(src []float32, dst []byte) {
	for i := 0; i < len(src)/qk8_0; i++ {
		x := (*[qk8_0]float32)(src[i*qk8_0:])
		b := (*[q8_0Bytes]byte)(dst[i*q8_0Bytes:])
		var amax float32
		for _, v := range x {
			amax = max(amax, abs32(v))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b[0:], d)
		for j, v := range x {
			b[2+j] = byte(int8(clamp(roundHalfAway(v*id), -127, 127)))
		}
	}
}

func dotQ8_0(row []byte, x []float32) float32 {
	var sum float32
	for i := 0; i < len(x)/qk8_0; i++ {
		b := (*[q8_0Bytes]byte)(row[i*q8_0Bytes:])
		v := (*[qk8_0]float32)(x[i*qk8_0:])
		var s0, s1, s2, s3 float32
		// Eight quants per 64-bit load; the shifts pick them out.
		for j := 0; j < 4; j++ {
			w := binary.LittleEndian.Uint64(b[2+8*j:])
			xv := (*[8]float32)(v[8*j:])
			s0 += float32(int8(w))*xv[0] + float32(int8(w>>32))*xv[4]
			s1 += float32(int8(w>>8))*xv[1] + float32(int8(w>>40))*xv[5]
			s2 += float32(int8(w>>16))*xv[2] + float32(int8(w>>48))*xv[6]
			s3 += float32(int8(w>>24))*xv[3] + float32(int8(w>>56))*xv[7]
		}
		sum += f16(b[0:]) * ((s0 + s1) + (s2 + s3))
	}
	return sum
}

func abs32(f float32) float32 {
	if f < 0 {
		return -f
	}
	return f
}

// signedAbsMax returns the element of x with the largest magnitude, keeping
// its sign; the legacy symmetric encoders map it to the most negative quant
// so that one extra level is available on the other side.
func signedAbsMax(x []float32) float32 {
	var amax, m float32
	for _, v := range x {
		if a := abs32(v); a > amax {
			amax, m = a, v
		}
	}
	return m
}

func minMax(x []float32) (lo, hi float32) {
	lo, hi = x[0], x[0]
	for _, v := range x[1:] {
		lo = min(lo, v)
		hi = max(hi, v)
	}
	return lo, hi
}
