package quant

// Q5_K: super-blocks of 256 elements, 176 bytes: d (f16), dmin (f16), 12
// bytes of packed scales and mins (see kscale.go), qh [32], then 128 bytes of
// low nibbles laid out as in Q4_K. For chunk c, bit 2c of qh[l] is the fifth
// bit of element 64c+l and bit 2c+1 that of element 64c+32+l.

const q5_KBytes = 176

func dequantQ5_K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkK; i++ {
		b := (*[q5_KBytes]byte)(src[i*q5_KBytes:])
		y := (*[qkK]float32)(dst[i*qkK:])
		d, dmin := f16(b[0:]), f16(b[2:])
		var sc, mn [8]uint8
		unpackKScales((*[12]byte)(b[4:]), &sc, &mn)
		qh := (*[32]byte)(b[16:])
		qs := (*[128]byte)(b[48:])
		for c := 0; c < 4; c++ {
			d1, m1 := d*float32(sc[2*c]), dmin*float32(mn[2*c])
			d2, m2 := d*float32(sc[2*c+1]), dmin*float32(mn[2*c+1])
			q := (*[32]byte)(qs[32*c:])
			ya := (*[32]float32)(y[64*c:])
			yb := (*[32]float32)(y[64*c+32:])
			for l := range q {
				h := qh[l] >> (2 * c)
				ya[l] = d1*float32(q[l]&0xf|h&1<<4) - m1
				yb[l] = d2*float32(q[l]>>4|h&2<<3) - m2
			}
		}
	}
}

func quantQ5_K(src []float32, dst []byte) {
	for i := 0; i < len(src)/qkK; i++ {
		x := (*[qkK]float32)(src[i*qkK:])
		b := (*[q5_KBytes]byte)(dst[i*q5_KBytes:])
		step, off := encodeKScales(x, 31, (*[16]byte)(b[0:]))
		qh := (*[32]byte)(b[16:])
		qs := (*[128]byte)(b[48:])
		*qh = [32]byte{}
		for c := 0; c < 4; c++ {
			for l := 0; l < 32; l++ {
				lo := kQuant(x[64*c+l], step[2*c], off[2*c], 31)
				hi := kQuant(x[64*c+32+l], step[2*c+1], off[2*c+1], 31)
				qs[32*c+l] = byte(lo&0xf) | byte(hi&0xf)<<4
				qh[l] |= byte(lo>>4)<<(2*c) | byte(hi>>4)<<(2*c+1)
			}
		}
	}
}

func dotQ5_K(row []byte, x []float32) float32 {
	var sum float32
	for i := 0; i < len(x)/qkK; i++ {
		b := (*[q5_KBytes]byte)(row[i*q5_KBytes:])
		v := (*[qkK]float32)(x[i*qkK:])
		var sc, mn [8]uint8
		unpackKScales((*[12]byte)(b[4:]), &sc, &mn)
		qh := (*[32]byte)(b[16:])
		qs := (*[128]byte)(b[48:])
		var acc, accm float32
		for c := 0; c < 4; c++ {
			q := (*[32]byte)(qs[32*c:])
			xa := (*[32]float32)(v[64*c:])
			xb := (*[32]float32)(v[64*c+32:])
			shift := uint(2 * c)
			var s0, s1, t0, t1 float32
			for l := range q {
				h := qh[l] >> shift
				s0 += float32(q[l]&0xf|h&1<<4) * xa[l]
				s1 += float32(q[l]>>4|h&2<<3) * xb[l]
				t0 += xa[l]
				t1 += xb[l]
			}
			acc += float32(sc[2*c])*s0 + float32(sc[2*c+1])*s1
			accm += float32(mn[2*c])*t0 + float32(mn[2*c+1])*t1
		}
		sum += f16(b[0:])*acc - f16(b[2:])*accm
	}
	return sum
}
