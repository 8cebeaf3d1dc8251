package quant

import "encoding/binary"

// Q5_1: blocks of 32 elements, 24 bytes: d (f16), m (f16), qh (uint32
// little-endian), then 16 bytes of low nibbles; bits as in Q5_0;
// x = d*q + m.

const (
	qk5_1     = 32
	q5_1Bytes = 24
)

func dequantQ5_1(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qk5_1; i++ {
		b := (*[q5_1Bytes]byte)(src[i*q5_1Bytes:])
		y := (*[qk5_1]float32)(dst[i*qk5_1:])
		d, m := f16(b[0:]), f16(b[2:])
		qh := binary.LittleEndian.Uint32(b[4:])
		for j := 0; j < 16; j++ {
			q := b[8+j]
			lo := uint32(q&0xf) | (qh>>j&1)<<4
			hi := uint32(q>>4) | (qh>>(j+16)&1)<<4
			y[j] = d*float32(lo) + m
			y[j+16] = d*float32(hi) + m
		}
	}
}

func quantQ5_1(src []float32, dst []byte) {
	for i := 0; i < len(src)/qk5_1; i++ {
		x := (*[qk5_1]float32)(src[i*qk5_1:])
		b := (*[q5_1Bytes]byte)(dst[i*q5_1Bytes:])
		lo, hi := minMax(x[:])
		d := (hi - lo) / 31
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b[0:], d)
		putF16(b[2:], lo)
		var qh uint32
		for j := 0; j < 16; j++ {
			q0 := uint32(clamp(roundHalfAway((x[j]-lo)*id), 0, 31))
			q1 := uint32(clamp(roundHalfAway((x[j+16]-lo)*id), 0, 31))
			b[8+j] = byte(q0&0xf) | byte(q1&0xf)<<4
			qh |= (q0 >> 4) << j
			qh |= (q1 >> 4) << (j + 16)
		}
		binary.LittleEndian.PutUint32(b[4:], qh)
	}
}

func dotQ5_1(row []byte, x []float32) float32 {
	var sum float32
	for i := 0; i < len(x)/qk5_1; i++ {
		b := (*[q5_1Bytes]byte)(row[i*q5_1Bytes:])
		v := (*[qk5_1]float32)(x[i*qk5_1:])
		// Running shifts of qh, as in dotQ5_0.
		hl := binary.LittleEndian.Uint32(b[4:])
		hh := hl >> 16
		var s0, s1, t0, t1 float32
		for j := 0; j < 16; j++ {
			q := b[8+j]
			lo := q&0xf | byte(hl&1)<<4
			hi := q>>4 | byte(hh&1)<<4
			hl >>= 1
			hh >>= 1
			s0 += float32(lo) * v[j]
			s1 += float32(hi) * v[j+16]
			t0 += v[j]
			t1 += v[j+16]
		}
		sum += f16(b[0:])*(s0+s1) + f16(b[2:])*(t0+t1)
	}
	return sum
}
