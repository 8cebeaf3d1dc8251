package quant

// Q6_K: super-blocks of 256 elements, 210 bytes: ql [128] (low four bits),
// qh [64] (high two bits), scales [16]int8 (one per 16 elements), d (f16).
// Each 128-element half n uses ql[64n:], qh[32n:], scales[8n:]; within it,
// for l in [0, 32):
//
//	element l    = ql[l]    low  nibble | (qh[l]>>0 & 3)<<4
//	element l+32 = ql[l+32] low  nibble | (qh[l]>>2 & 3)<<4
//	element l+64 = ql[l]    high nibble | (qh[l]>>4 & 3)<<4
//	element l+96 = ql[l+32] high nibble | (qh[l]>>6 & 3)<<4
//
// and element e of the block decodes as d*scales[e/16]*(q-32).

const q6_KBytes = 210

func dequantQ6_K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkK; i++ {
		b := (*[q6_KBytes]byte)(src[i*q6_KBytes:])
		y := (*[qkK]float32)(dst[i*qkK:])
		d := f16(b[208:])
		for n := 0; n < 2; n++ {
			ql := (*[64]byte)(b[64*n:])
			qh := (*[32]byte)(b[128+32*n:])
			sc := (*[8]byte)(b[192+8*n:])
			yy := (*[128]float32)(y[128*n:])
			for l := 0; l < 32; l++ {
				is := l / 16
				h := qh[l]
				yy[l] = d * float32(int8(sc[is])) * float32(int32(ql[l]&0xf|h&3<<4)-32)
				yy[l+32] = d * float32(int8(sc[is+2])) * float32(int32(ql[l+32]&0xf|h>>2&3<<4)-32)
				yy[l+64] = d * float32(int8(sc[is+4])) * float32(int32(ql[l]>>4|h>>4&3<<4)-32)
				yy[l+96] = d * float32(int8(sc[is+6])) * float32(int32(ql[l+32]>>4|h>>6<<4)-32)
			}
		}
	}
}

func quantQ6_K(src []float32, dst []byte) {
	for i := 0; i < len(src)/qkK; i++ {
		x := (*[qkK]float32)(src[i*qkK:])
		b := (*[q6_KBytes]byte)(dst[i*q6_KBytes:])
		// Sub-block scales map the largest-magnitude element to -32, as
		// ggml does, then get quantised to int8 against d.
		var scale [16]float32
		var maxAbs float32
		for j := range scale {
			scale[j] = signedAbsMax(x[16*j:16*j+16]) / -32
			maxAbs = max(maxAbs, abs32(scale[j]))
		}
		d := F16ToF32(F32ToF16(maxAbs / 127))
		putF16(b[208:], d)
		var L [qkK]uint8
		for j := range scale {
			var sc int32
			if d > 0 {
				sc = clamp(roundHalfAway(scale[j]/d), -128, 127)
			}
			b[192+j] = byte(int8(sc))
			step := d * float32(sc)
			for k := 16 * j; k < 16*j+16; k++ {
				q := int32(0)
				if step != 0 {
					q = clamp(roundHalfAway(x[k]/step), -32, 31)
				}
				L[k] = uint8(q + 32)
			}
		}
		for n := 0; n < 2; n++ {
			ll := (*[128]uint8)(L[128*n:])
			for l := 0; l < 32; l++ {
				b[64*n+l] = ll[l]&0xf | ll[l+64]&0xf<<4
				b[64*n+l+32] = ll[l+32]&0xf | ll[l+96]&0xf<<4
				b[128+32*n+l] = ll[l]>>4 | ll[l+32]>>4<<2 | ll[l+64]>>4<<4 | ll[l+96]>>4<<6
			}
		}
	}
}

func dotQ6_K(row []byte, x []float32) float32 {
	var sum float32
	for i := 0; i < len(x)/qkK; i++ {
		b := (*[q6_KBytes]byte)(row[i*q6_KBytes:])
		v := (*[qkK]float32)(x[i*qkK:])
		var acc float32
		for n := 0; n < 2; n++ {
			ql := (*[64]byte)(b[64*n:])
			qh := (*[32]byte)(b[128+32*n:])
			sc := (*[8]byte)(b[192+8*n:])
			xx := (*[128]float32)(v[128*n:])
			for g := 0; g < 2; g++ {
				var s1, s2, s3, s4 float32
				for l := 16 * g; l < 16*g+16; l++ {
					h := qh[l]
					s1 += float32(int32(ql[l]&0xf|h&3<<4)-32) * xx[l]
					s2 += float32(int32(ql[l+32]&0xf|h>>2&3<<4)-32) * xx[l+32]
					s3 += float32(int32(ql[l]>>4|h>>4&3<<4)-32) * xx[l+64]
					s4 += float32(int32(ql[l+32]>>4|h>>6<<4)-32) * xx[l+96]
				}
				acc += float32(int8(sc[g]))*s1 + float32(int8(sc[g+2]))*s2 +
					float32(int8(sc[g+4]))*s3 + float32(int8(sc[g+6]))*s4
			}
		}
		sum += f16(b[208:]) * acc
	}
	return sum
}
