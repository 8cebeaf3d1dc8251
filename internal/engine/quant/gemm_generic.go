package quant

import "encoding/binary"

// The portable tile kernels. They are the reference the assembly is tested
// against and the code that runs where there is no assembly (other CPUs,
// or the purego build tag). Products of quants are summed exactly in
// integers per block; only the per-block scaling is floating point.

// Block decoders for the 32-element formats: signed quants (the stored
// value less the type's offset) for the symmetric types, the raw unsigned
// quants plus the min for Q4_1 and Q5_1.

func blockQ8_0(b []byte, q *[32]int8) (float32, float32) {
	b = b[:q8_0Bytes]
	for j := range q {
		q[j] = int8(b[2+j])
	}
	return f16(b), 0
}

func blockQ4_0(b []byte, q *[32]int8) (float32, float32) {
	b = b[:q4_0Bytes]
	for j := range 16 {
		v := b[2+j]
		q[j] = int8(v&0xf) - 8
		q[j+16] = int8(v>>4) - 8
	}
	return f16(b), 0
}

func blockQ5_0(b []byte, q *[32]int8) (float32, float32) {
	b = b[:q5_0Bytes]
	qh := binary.LittleEndian.Uint32(b[2:])
	for j := range 16 {
		v := b[6+j]
		q[j] = int8(v&0xf|byte(qh>>j&1)<<4) - 16
		q[j+16] = int8(v>>4|byte(qh>>(j+16)&1)<<4) - 16
	}
	return f16(b), 0
}

func blockQ4_1(b []byte, q *[32]int8) (float32, float32) {
	b = b[:q4_1Bytes]
	for j := range 16 {
		v := b[4+j]
		q[j] = int8(v & 0xf)
		q[j+16] = int8(v >> 4)
	}
	return f16(b), f16(b[2:])
}

func blockQ5_1(b []byte, q *[32]int8) (float32, float32) {
	b = b[:q5_1Bytes]
	qh := binary.LittleEndian.Uint32(b[4:])
	for j := range 16 {
		v := b[8+j]
		q[j] = int8(v&0xf | byte(qh>>j&1)<<4)
		q[j+16] = int8(v>>4 | byte(qh>>(j+16)&1)<<4)
	}
	return f16(b), f16(b[2:])
}

// decodeBlock and decodeSuper switch on the type rather than call through a
// function value, which would make their outputs escape to the heap.
func decodeBlock(t Type, b []byte, q *[32]int8) (float32, float32) {
	switch t {
	case Q8_0:
		return blockQ8_0(b, q)
	case Q4_0:
		return blockQ4_0(b, q)
	case Q5_0:
		return blockQ5_0(b, q)
	case Q4_1:
		return blockQ4_1(b, q)
	case Q5_1:
		return blockQ5_1(b, q)
	}
	panic("quant: no block decoder for " + t.String())
}

func decodeSuper(t Type, b []byte, s *superBlock) {
	switch t {
	case Q4_K:
		superQ4_K(b, s)
	case Q5_K:
		superQ5_K(b, s)
	case Q6_K:
		superQ6_K(b, s)
	default:
		panic("quant: no super-block decoder for " + t.String())
	}
}

// dot32 is the exact integer dot product of two 32-element blocks.
func dot32(a *[32]int8, b *[32]int8) int32 {
	var s0, s1, s2, s3 int32
	for j := 0; j < 32; j += 4 {
		s0 += int32(a[j]) * int32(b[j])
		s1 += int32(a[j+1]) * int32(b[j+1])
		s2 += int32(a[j+2]) * int32(b[j+2])
		s3 += int32(a[j+3]) * int32(b[j+3])
	}
	return (s0 + s1) + (s2 + s3)
}

// goTileQ8 is the portable R×T tile for the 32-element types: each weight
// block is decoded once and multiplied by the T activation blocks.
func goTileQ8(k *Kernel, w []byte, rb, r0, R int, a *Acts, t0, T int, y []float32, ldy int) {
	goTileQ8From(k, w, rb, r0, R, a, t0, T, y, ldy, 0, false)
}

// goTileQ8From runs goTileQ8 from block b0 on; with add it adds to y
// instead of storing (the assembly tiles leave an odd last block to it).
func goTileQ8From(k *Kernel, w []byte, rb, r0, R int, a *Acts, t0, T int, y []float32, ldy int, b0 int, add bool) {
	if T == 1 && (k.typ == Q8_0 || k.typ == Q4_0) {
		// One activation row: dot the stored bytes directly instead of
		// decoding each block first (about twice as fast in Go).
		for r := range R {
			row := w[(r0+r)*rb : (r0+r+1)*rb]
			v := goRowQ8(k.typ, row, a, t0, b0)
			if add {
				y[r0+r] += v
			} else {
				y[r0+r] = v
			}
		}
		return
	}
	cols := a.cols
	nb := cols / 32
	bb := k.typ.BlockBytes()
	var acc [tileMax][tileMax]float32
	var q [tileMax][32]int8
	var d, m [tileMax]float32
	for b := b0; b < nb; b++ {
		for r := range R {
			off := (r0+r)*rb + b*bb
			d[r], m[r] = decodeBlock(k.typ, w[off:off+bb], &q[r])
		}
		for t := range T {
			i := ((t0+t)*nb + b) * 8
			x := (*[32]int8)(a.qs[(t0+t)*cols+b*32:])
			dx := a.dv[i]
			for r := range R {
				acc[r][t] += d[r] * dx * float32(dot32(&q[r], x))
				if k.hasMin {
					acc[r][t] += m[r] * a.sv[i] * 8
				}
			}
		}
	}
	for t := range T {
		for r := range R {
			if add {
				y[t*ldy+r0+r] += acc[r][t]
			} else {
				y[t*ldy+r0+r] = acc[r][t]
			}
		}
	}
}

// goRowQ8 is one row of Q8_0 or Q4_0 dotted with activation row t from
// block b0 on.
func goRowQ8(t Type, row []byte, a *Acts, tok, b0 int) float32 {
	cols := a.cols
	nb := cols / 32
	x := a.qs[tok*cols : (tok+1)*cols]
	dv := a.dv[tok*nb*8 : (tok+1)*nb*8]
	var sum float32
	for b := b0; b < nb; b++ {
		xb := (*[32]int8)(x[b*32:])
		var s0, s1, s2, s3 int32
		if t == Q8_0 {
			q := (*[q8_0Bytes]byte)(row[b*q8_0Bytes:])
			for j := 0; j < 32; j += 4 {
				s0 += int32(int8(q[2+j])) * int32(xb[j])
				s1 += int32(int8(q[3+j])) * int32(xb[j+1])
				s2 += int32(int8(q[4+j])) * int32(xb[j+2])
				s3 += int32(int8(q[5+j])) * int32(xb[j+3])
			}
			sum += f16(q[:]) * dv[b*8] * float32((s0+s1)+(s2+s3))
			continue
		}
		q := (*[q4_0Bytes]byte)(row[b*q4_0Bytes:])
		for j := 0; j < 16; j += 2 {
			v0, v1 := q[2+j], q[3+j]
			s0 += (int32(v0&0xf) - 8) * int32(xb[j])
			s1 += (int32(v1&0xf) - 8) * int32(xb[j+1])
			s2 += (int32(v0>>4) - 8) * int32(xb[j+16])
			s3 += (int32(v1>>4) - 8) * int32(xb[j+17])
		}
		sum += f16(q[:]) * dv[b*8] * float32((s0+s1)+(s2+s3))
	}
	return sum
}

// superBlock is a K-quant super-block decoded for the integer kernel:
// element e is d·sc[e/16]·q[e] - dmin·mn[e/16].
type superBlock struct {
	q       [qkK]int8
	sc, mn  [16]int32
	d, dmin float32
}

func superQ4_K(b []byte, s *superBlock) {
	b = b[:q4_KBytes]
	var sc, mn [8]uint8
	unpackKScales((*[12]byte)(b[4:]), &sc, &mn)
	for j := range 8 {
		s.sc[2*j], s.sc[2*j+1] = int32(sc[j]), int32(sc[j])
		s.mn[2*j], s.mn[2*j+1] = int32(mn[j]), int32(mn[j])
	}
	qs := b[16:]
	for c := range 4 {
		for l := range 32 {
			v := qs[32*c+l]
			s.q[64*c+l] = int8(v & 0xf)
			s.q[64*c+32+l] = int8(v >> 4)
		}
	}
	s.d, s.dmin = f16(b), f16(b[2:])
}

func superQ5_K(b []byte, s *superBlock) {
	b = b[:q5_KBytes]
	var sc, mn [8]uint8
	unpackKScales((*[12]byte)(b[4:]), &sc, &mn)
	for j := range 8 {
		s.sc[2*j], s.sc[2*j+1] = int32(sc[j]), int32(sc[j])
		s.mn[2*j], s.mn[2*j+1] = int32(mn[j]), int32(mn[j])
	}
	qh := b[16:48]
	qs := b[48:]
	for c := range 4 {
		for l := range 32 {
			v, h := qs[32*c+l], qh[l]>>(2*c)
			s.q[64*c+l] = int8(v&0xf | h&1<<4)
			s.q[64*c+32+l] = int8(v>>4 | h&2<<3)
		}
	}
	s.d, s.dmin = f16(b), f16(b[2:])
}

func superQ6_K(b []byte, s *superBlock) {
	b = b[:q6_KBytes]
	for n := range 2 {
		ql := b[64*n:]
		qh := b[128+32*n:]
		q := s.q[128*n:]
		for l := range 32 {
			h := qh[l]
			q[l] = int8(ql[l]&0xf|h&3<<4) - 32
			q[l+32] = int8(ql[l+32]&0xf|h>>2&3<<4) - 32
			q[l+64] = int8(ql[l]>>4|h>>4&3<<4) - 32
			q[l+96] = int8(ql[l+32]>>4|h>>6<<4) - 32
		}
	}
	for g := range 16 {
		s.sc[g] = int32(int8(b[192+g]))
		s.mn[g] = 0
	}
	s.d, s.dmin = f16(b[208:]), 0
}

// goTileQ8K is the portable R×T tile for the K-quants.
func goTileQ8K(k *Kernel, w []byte, rb, r0, R int, a *Acts, t0, T int, y []float32, ldy int) {
	cols := a.cols
	nb := cols / qkK
	bb := k.typ.BlockBytes()
	var acc [tileMax][tileMax]float32
	var s [tileMax]superBlock
	for b := range nb {
		for r := range R {
			off := (r0+r)*rb + b*bb
			decodeSuper(k.typ, w[off:off+bb], &s[r])
		}
		for t := range T {
			i := (t0+t)*nb + b
			x := a.qs[(t0+t)*cols+b*qkK:][:qkK]
			bs := (*[16]int32)(a.bs[i*16:])
			dx := a.dv[i*16]
			for r := range R {
				sb := &s[r]
				var isum, msum int32
				for g := range 16 {
					isum += sb.sc[g] * dot16((*[16]int8)(sb.q[16*g:]), (*[16]int8)(x[16*g:]))
					msum += sb.mn[g] * bs[g]
				}
				acc[r][t] += dx * (sb.d*float32(isum) - sb.dmin*float32(msum))
			}
		}
	}
	for t := range T {
		for r := range R {
			y[t*ldy+r0+r] = acc[r][t]
		}
	}
}

func dot16(a, b *[16]int8) int32 {
	var s0, s1 int32
	for j := 0; j < 16; j += 2 {
		s0 += int32(a[j]) * int32(b[j])
		s1 += int32(a[j+1]) * int32(b[j+1])
	}
	return s0 + s1
}

// goTileFloat is the tile for F32, F16 and BF16 weights against float32
// activations.
func goTileFloat(k *Kernel, w []byte, rb, r0, R int, a *Acts, t0, T int, y []float32, ldy int) {
	cols := a.cols
	dot := kernels[k.typ].dot
	for r := range R {
		src := w[(r0+r)*rb : (r0+r+1)*rb]
		var row []float32
		if k.typ == F32 {
			row = f32View(src)
		}
		for t := range T {
			x := a.f[(t0+t)*cols : (t0+t+1)*cols]
			if row != nil {
				y[t*ldy+r0+r] = DotF32(row, x)
			} else {
				y[t*ldy+r0+r] = dot(src, x)
			}
		}
	}
}
