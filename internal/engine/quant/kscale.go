package quant

import "math"

// Q4_K and Q5_K split a 256-element super-block into eight 32-element
// sub-blocks, each with a 6-bit scale sc and a 6-bit min m, packed into 12
// bytes:
//
//	bytes 0-3:  sc[0..3] in bits 0-5, top two bits of sc[4..7] in bits 6-7
//	bytes 4-7:  m[0..3]  in bits 0-5, top two bits of m[4..7]  in bits 6-7
//	bytes 8-11: low four bits of sc[4..7] | low four bits of m[4..7] << 4
//
// An element decodes as d*sc[j]*q - dmin*m[j], with d and dmin the f16
// super-block fields.

func unpackKScales(s *[12]byte, sc, mn *[8]uint8) {
	for j := 0; j < 4; j++ {
		sc[j] = s[j] & 63
		mn[j] = s[j+4] & 63
		sc[j+4] = s[j+8]&0xf | s[j]>>6<<4
		mn[j+4] = s[j+8]>>4 | s[j+4]>>6<<4
	}
}

func packKScales(sc, mn *[8]uint8, s *[12]byte) {
	for j := 0; j < 4; j++ {
		s[j] = sc[j]&63 | sc[j+4]>>4<<6
		s[j+4] = mn[j]&63 | mn[j+4]>>4<<6
		s[j+8] = sc[j+4]&0xf | mn[j+4]<<4
	}
}

// encodeKScales chooses the super-block and sub-block scales and mins for a
// Q4_K/Q5_K block whose quants run from 0 to levels. It writes d, dmin and the
// packed scales into hdr (the first 16 bytes of the block) and returns each
// sub-block's effective step and offset as the decoder will see them, so the
// caller quantises against exactly what will be decoded.
//
// Each sub-block's min is clamped to at most 0 because the format can only
// subtract it; sub-block scales are rounded up so that the sub-block's range
// never exceeds levels steps.
func encodeKScales(x *[qkK]float32, levels float32, hdr *[16]byte) (step, off [8]float32) {
	var scale, minv [8]float32
	var maxScale, maxMin float32
	for j := 0; j < 8; j++ {
		lo, hi := minMax(x[j*32 : j*32+32])
		lo = min(lo, 0)
		scale[j] = (hi - lo) / levels
		minv[j] = -lo
		maxScale = max(maxScale, scale[j])
		maxMin = max(maxMin, minv[j])
	}
	d := F16ToF32(F32ToF16(maxScale / 63))
	dmin := F16ToF32(F32ToF16(maxMin / 63))
	putF16(hdr[0:], d)
	putF16(hdr[2:], dmin)
	var sc, mn [8]uint8
	for j := 0; j < 8; j++ {
		if d > 0 {
			sc[j] = uint8(clamp(int32(math.Ceil(float64(scale[j]/d))), 0, 63))
		}
		if dmin > 0 {
			mn[j] = uint8(clamp(roundHalfAway(minv[j]/dmin), 0, 63))
		}
		step[j] = d * float32(sc[j])
		off[j] = dmin * float32(mn[j])
	}
	packKScales(&sc, &mn, (*[12]byte)(hdr[4:]))
	return step, off
}

// kQuant returns the quant in [0, levels] nearest to v for a sub-block with
// the given step and offset.
func kQuant(v, step, off float32, levels int32) int32 {
	if step == 0 {
		return 0
	}
	return clamp(roundHalfAway((v+off)/step), 0, levels)
}
