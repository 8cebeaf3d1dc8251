package quant

import "encoding/binary"

// Q5_0: blocks of 32 elements, 22 bytes: d (f16), qh (uint32 little-endian),
// then 16 bytes of low nibbles laid out as in Q4_0. Bit j of qh is the fifth
// bit of element j (so bits 16..31 belong to the high nibbles);
// x = d*(q-16).

const (
	qk5_0     = 32
	q5_0Bytes = 22
)

func dequantQ5_0(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qk5_0; i++ {
		b := (*[q5_0Bytes]byte)(src[i*q5_0Bytes:])
		y := (*[qk5_0]float32)(dst[i*qk5_0:])
		d := f16(b[0:])
		qh := binary.LittleEndian.Uint32(b[2:])
		for j := 0; j < 16; j++ {
			q := b[6+j]
			lo := int32(q&0xf) | int32(qh>>j&1)<<4
			hi := int32(q>>4) | int32(qh>>(j+16)&1)<<4
			y[j] = d * float32(lo-16)
			y[j+16] = d * float32(hi-16)
		}
	}
}

func quantQ5_0(src []float32, dst []byte) {
	for i := 0; i < len(src)/qk5_0; i++ {
		x := (*[qk5_0]float32)(src[i*qk5_0:])
		b := (*[q5_0Bytes]byte)(dst[i*q5_0Bytes:])
		d := signedAbsMax(x[:]) / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b[0:], d)
		var qh uint32
		for j := 0; j < 16; j++ {
			lo := uint32(clamp(roundHalfAway(x[j]*id)+16, 0, 31))
			hi := uint32(clamp(roundHalfAway(x[j+16]*id)+16, 0, 31))
			b[6+j] = byte(lo&0xf) | byte(hi&0xf)<<4
			qh |= (lo >> 4) << j
			qh |= (hi >> 4) << (j + 16)
		}
		binary.LittleEndian.PutUint32(b[2:], qh)
	}
}

func dotQ5_0(row []byte, x []float32) float32 {
	var sum float32
	for i := 0; i < len(x)/qk5_0; i++ {
		b := (*[q5_0Bytes]byte)(row[i*q5_0Bytes:])
		v := (*[qk5_0]float32)(x[i*qk5_0:])
		// Shift qh down as we go instead of by a variable amount: the
		// low half feeds elements 0..15, the high half 16..31.
		hl := binary.LittleEndian.Uint32(b[2:])
		hh := hl >> 16
		var s0, s1 float32
		for j := 0; j < 16; j++ {
			q := b[6+j]
			lo := int32(q&0xf|byte(hl&1)<<4) - 16
			hi := int32(q>>4|byte(hh&1)<<4) - 16
			hl >>= 1
			hh >>= 1
			s0 += float32(lo) * v[j]
			s1 += float32(hi) * v[j+16]
		}
		sum += f16(b[0:]) * (s0 + s1)
	}
	return sum
}
