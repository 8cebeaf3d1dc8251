package quant

// Q4_0: blocks of 32 elements, 18 bytes: d (f16) then 16 bytes of nibbles.
// Byte j holds element j (low nibble) and element j+16 (high nibble);
// x = d*(q-8).

const (
	qk4_0     = 32
	q4_0Bytes = 18
)

func dequantQ4_0(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qk4_0; i++ {
		b := (*[q4_0Bytes]byte)(src[i*q4_0Bytes:])
		y := (*[qk4_0]float32)(dst[i*qk4_0:])
		d := f16(b[0:])
		for j := 0; j < 16; j++ {
			q := b[2+j]
			y[j] = d * float32(int32(q&0xf)-8)
			y[j+16] = d * float32(int32(q>>4)-8)
		}
	}
}

func quantQ4_0(src []float32, dst []byte) {
	for i := 0; i < len(src)/qk4_0; i++ {
		x := (*[qk4_0]float32)(src[i*qk4_0:])
		b := (*[q4_0Bytes]byte)(dst[i*q4_0Bytes:])
		d := signedAbsMax(x[:]) / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b[0:], d)
		for j := 0; j < 16; j++ {
			lo := clamp(roundHalfAway(x[j]*id)+8, 0, 15)
			hi := clamp(roundHalfAway(x[j+16]*id)+8, 0, 15)
			b[2+j] = byte(lo) | byte(hi)<<4
		}
	}
}

func dotQ4_0(row []byte, x []float32) float32 {
	var sum float32
	for i := 0; i < len(x)/qk4_0; i++ {
		b := (*[q4_0Bytes]byte)(row[i*q4_0Bytes:])
		v := (*[qk4_0]float32)(x[i*qk4_0:])
		var s0, s1, s2, s3 float32
		for j := 0; j < 16; j += 2 {
			q0, q1 := b[2+j], b[3+j]
			s0 += float32(int32(q0&0xf)-8) * v[j]
			s1 += float32(int32(q1&0xf)-8) * v[j+1]
			s2 += float32(int32(q0>>4)-8) * v[j+16]
			s3 += float32(int32(q1>>4)-8) * v[j+17]
		}
		sum += f16(b[0:]) * ((s0 + s1) + (s2 + s3))
	}
	return sum
}
