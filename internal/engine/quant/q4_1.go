package quant

// Q4_1: blocks of 32 elements, 20 bytes: d (f16), m (f16), then 16 bytes of
// nibbles laid out as in Q4_0; x = d*q + m.

const (
	qk4_1     = 32
	q4_1Bytes = 20
)

func dequantQ4_1(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qk4_1; i++ {
		b := (*[q4_1Bytes]byte)(src[i*q4_1Bytes:])
		y := (*[qk4_1]float32)(dst[i*qk4_1:])
		d, m := f16(b[0:]), f16(b[2:])
		for j := 0; j < 16; j++ {
			q := b[4+j]
			y[j] = d*float32(q&0xf) + m
			y[j+16] = d*float32(q>>4) + m
		}
	}
}

func quantQ4_1(src []float32, dst []byte) {
	for i := 0; i < len(src)/qk4_1; i++ {
		x := (*[qk4_1]float32)(src[i*qk4_1:])
		b := (*[q4_1Bytes]byte)(dst[i*q4_1Bytes:])
		lo, hi := minMax(x[:])
		d := (hi - lo) / 15
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b[0:], d)
		putF16(b[2:], lo)
		for j := 0; j < 16; j++ {
			q0 := clamp(roundHalfAway((x[j]-lo)*id), 0, 15)
			q1 := clamp(roundHalfAway((x[j+16]-lo)*id), 0, 15)
			b[4+j] = byte(q0) | byte(q1)<<4
		}
	}
}

// dotQ4_1 uses dot = d*Σq·x + m*Σx, so the offset costs one add per element.
func dotQ4_1(row []byte, x []float32) float32 {
	var sum float32
	for i := 0; i < len(x)/qk4_1; i++ {
		b := (*[q4_1Bytes]byte)(row[i*q4_1Bytes:])
		v := (*[qk4_1]float32)(x[i*qk4_1:])
		var s0, s1, t0, t1 float32
		for j := 0; j < 16; j++ {
			q := b[4+j]
			s0 += float32(q&0xf) * v[j]
			s1 += float32(q>>4) * v[j+16]
			t0 += v[j]
			t1 += v[j+16]
		}
		sum += f16(b[0:])*(s0+s1) + f16(b[2:])*(t0+t1)
	}
	return sum
}
