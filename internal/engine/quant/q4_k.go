package quant

// Q4_K: super-blocks of 256 elements, 144 bytes: d (f16), dmin (f16), 12
// bytes of packed sub-block scales and mins (see kscale.go), then 128 bytes of
// nibbles. The quants come in four 64-element chunks; byte l of chunk c holds
// element 64c+l (sub-block 2c) in its low nibble and element 64c+32+l
// (sub-block 2c+1) in its high nibble.

const q4_KBytes = 144

func dequantQ4_K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkK; i++ {
		b := (*[q4_KBytes]byte)(src[i*q4_KBytes:])
		y := (*[qkK]float32)(dst[i*qkK:])
		d, dmin := f16(b[0:]), f16(b[2:])
		var sc, mn [8]uint8
		unpackKScales((*[12]byte)(b[4:]), &sc, &mn)
		qs := (*[128]byte)(b[16:])
		for c := 0; c < 4; c++ {
			d1, m1 := d*float32(sc[2*c]), dmin*float32(mn[2*c])
			d2, m2 := d*float32(sc[2*c+1]), dmin*float32(mn[2*c+1])
			q := (*[32]byte)(qs[32*c:])
			ya := (*[32]float32)(y[64*c:])
			yb := (*[32]float32)(y[64*c+32:])
			for l := range q {
				ya[l] = d1*float32(q[l]&0xf) - m1
				yb[l] = d2*float32(q[l]>>4) - m2
			}
		}
	}
}

func quantQ4_K(src []float32, dst []byte) {
	for i := 0; i < len(src)/qkK; i++ {
		x := (*[qkK]float32)(src[i*qkK:])
		b := (*[q4_KBytes]byte)(dst[i*q4_KBytes:])
		step, off := encodeKScales(x, 15, (*[16]byte)(b[0:]))
		qs := (*[128]byte)(b[16:])
		for c := 0; c < 4; c++ {
			for l := 0; l < 32; l++ {
				lo := kQuant(x[64*c+l], step[2*c], off[2*c], 15)
				hi := kQuant(x[64*c+32+l], step[2*c+1], off[2*c+1], 15)
				qs[32*c+l] = byte(lo) | byte(hi)<<4
			}
		}
	}
}

// dotQ4_K computes Σ(d*sc*q - dmin*m)·x as d*Σsc*Σq·x - dmin*Σm*Σx per
// sub-block, keeping the integer-valued parts apart from the scales.
func dotQ4_K(row []byte, x []float32) float32 {
	var sum float32
	for i := 0; i < len(x)/qkK; i++ {
		b := (*[q4_KBytes]byte)(row[i*q4_KBytes:])
		v := (*[qkK]float32)(x[i*qkK:])
		var sc, mn [8]uint8
		unpackKScales((*[12]byte)(b[4:]), &sc, &mn)
		qs := (*[128]byte)(b[16:])
		var acc, accm float32
		for c := 0; c < 4; c++ {
			q := (*[32]byte)(qs[32*c:])
			xa := (*[32]float32)(v[64*c:])
			xb := (*[32]float32)(v[64*c+32:])
			var s0, s1, t0, t1 float32
			for l := range q {
				s0 += float32(q[l]&0xf) * xa[l]
				s1 += float32(q[l]>>4) * xb[l]
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
