package quant

import "testing"

// Each case builds one block's bytes by hand and lists the values the format
// definition gives for it, worked out in the comments; elements not listed
// must equal def. Nothing here is derived from this package's encoders.
type blockCase struct {
	name string
	t    Type
	b    []byte
	def  float32
	want map[int]float32
	// defs overrides def for ranges of elements [lo, hi).
	defs []rangeVal
}

type rangeVal struct {
	lo, hi int
	v      float32
}

func blockCases() []blockCase {
	var cases []blockCase

	cases = append(cases,
		blockCase{name: "F32", t: F32, b: []byte{0x00, 0x00, 0xc0, 0x3f}, want: map[int]float32{0: 1.5}},
		blockCase{name: "F16", t: F16, b: []byte{0x00, 0x3e}, want: map[int]float32{0: 1.5}},
		blockCase{name: "F16/subnormal", t: F16, b: []byte{0x01, 0x80}, want: map[int]float32{0: -5.960464477539063e-08}},
		blockCase{name: "BF16", t: BF16, b: []byte{0xc0, 0x3f}, want: map[int]float32{0: 1.5}},
	)

	// Q8_0: d = 0x3800 = 0.5. qs[0]=4 -> 2, qs[1]=-2 -> -1, qs[31]=-127 -> -63.5.
	q80 := make([]byte, 34)
	q80[0], q80[1] = 0x00, 0x38
	q80[2+0] = 0x04
	q80[2+1] = 0xfe
	q80[2+31] = 0x81
	cases = append(cases, blockCase{name: "Q8_0", t: Q8_0, b: q80,
		want: map[int]float32{0: 2, 1: -1, 31: -63.5}})

	// Q4_0: d = 0x4000 = 2; nibbles 8 decode to 0.
	// qs[0]=0x9f: element 0 = 2*(15-8) = 14, element 16 = 2*(9-8) = 2.
	// qs[15]=0x08: element 15 = 2*(8-8) = 0, element 31 = 2*(0-8) = -16.
	q40 := make([]byte, 18)
	q40[0], q40[1] = 0x00, 0x40
	for j := 0; j < 16; j++ {
		q40[2+j] = 0x88
	}
	q40[2+0] = 0x9f
	q40[2+15] = 0x08
	cases = append(cases, blockCase{name: "Q4_0", t: Q4_0, b: q40,
		want: map[int]float32{0: 14, 16: 2, 15: 0, 31: -16}})

	// Q4_1: d = 0x3800 = 0.5, m = 0xbc00 = -1; nibble 0 decodes to -1.
	// qs[0]=0x2f: element 0 = 0.5*15-1 = 6.5, element 16 = 0.5*2-1 = 0.
	q41 := make([]byte, 20)
	q41[0], q41[1] = 0x00, 0x38
	q41[2], q41[3] = 0x00, 0xbc
	q41[4+0] = 0x2f
	cases = append(cases, blockCase{name: "Q4_1", t: Q4_1, b: q41, def: -1,
		want: map[int]float32{0: 6.5, 16: 0}})

	// Q5_0: d = 0x3c00 = 1, qh = 0x80000001 (bits 0 and 31); a zero quant
	// with a clear high bit decodes to 1*(0-16) = -16.
	// qs[0]=0x21: element 0 = (1|16)-16 = 1, element 16 = (2|0)-16 = -14.
	// qs[15]=0xf0: element 15 = (0|0)-16 = -16, element 31 = (15|16)-16 = 15.
	q50 := make([]byte, 22)
	q50[0], q50[1] = 0x00, 0x3c
	q50[2], q50[3], q50[4], q50[5] = 0x01, 0x00, 0x00, 0x80
	q50[6+0] = 0x21
	q50[6+15] = 0xf0
	cases = append(cases, blockCase{name: "Q5_0", t: Q5_0, b: q50, def: -16,
		want: map[int]float32{0: 1, 16: -14, 15: -16, 31: 15}})

	// Q5_1: d = 0x3800 = 0.5, m = 0x4000 = 2, qh = 0x00010002 (bits 1, 16).
	// qs[1]=0x03: element 1 = 0.5*(3|16)+2 = 11.5, element 17 = 0.5*0+2 = 2.
	// qs[0]=0x50: element 0 = 0.5*0+2 = 2, element 16 = 0.5*(5|16)+2 = 12.5.
	q51 := make([]byte, 24)
	q51[0], q51[1] = 0x00, 0x38
	q51[2], q51[3] = 0x00, 0x40
	q51[4], q51[5], q51[6], q51[7] = 0x02, 0x00, 0x01, 0x00
	q51[8+0] = 0x50
	q51[8+1] = 0x03
	cases = append(cases, blockCase{name: "Q5_1", t: Q5_1, b: q51, def: 2,
		want: map[int]float32{1: 11.5, 17: 2, 0: 2, 16: 12.5}})

	// Q4_K: d = 0x3c00 = 1, dmin = 0x3800 = 0.5.
	// Scales: sc[0]=2, m[0]=1, sc[5]=35 (0b10_0011), m[5]=50 (0b11_0010).
	//   byte 0 = sc[0] = 0x02
	//   byte 1 = sc[1] | (sc[5]>>4)<<6 = 0 | 2<<6 = 0x80
	//   byte 4 = m[0] = 0x01
	//   byte 5 = m[1] | (m[5]>>4)<<6 = 0 | 3<<6 = 0xc0
	//   byte 9 = (sc[5]&15) | (m[5]&15)<<4 = 3 | 2<<4 = 0x23
	// Sub-block 0 is elements 0..31 (chunk 0, low nibbles of qs[0..31]);
	// sub-block 5 is elements 160..191 (chunk 2, high nibbles of qs[64..95]).
	// qs[0]=0x07: element 0 = 1*2*7 - 0.5*1 = 13.5; element 32 (sub-block 1,
	// sc=m=0) = 0. qs[67]=0xa0: element 163 = 1*35*10 - 0.5*50 = 325;
	// element 131 (sub-block 4) = 0.
	// Other elements of sub-block 0 are -0.5*1 = -0.5, of sub-block 5 -25.
	q4k := make([]byte, 144)
	q4k[0], q4k[1] = 0x00, 0x3c
	q4k[2], q4k[3] = 0x00, 0x38
	q4k[4+0] = 0x02
	q4k[4+1] = 0x80
	q4k[4+4] = 0x01
	q4k[4+5] = 0xc0
	q4k[4+9] = 0x23
	q4k[16+0] = 0x07
	q4k[16+67] = 0xa0
	cases = append(cases, blockCase{name: "Q4_K", t: Q4_K, b: q4k,
		defs: []rangeVal{{0, 32, -0.5}, {160, 192, -25}},
		want: map[int]float32{0: 13.5, 32: 0, 163: 325, 131: 0}})

	// Q5_K: d = 0x4000 = 2, dmin = 0x3c00 = 1.
	// Scales: sc[2]=3, m[2]=4, sc[7]=63 (0b11_1111), m[7]=16 (0b01_0000).
	//   byte 2 = sc[2] = 0x03;  byte 3 = sc[3] | (sc[7]>>4)<<6 = 0xc0
	//   byte 6 = m[2] = 0x04;   byte 7 = m[3] | (m[7]>>4)<<6 = 0x40
	//   byte 11 = (sc[7]&15) | (m[7]&15)<<4 = 0x0f
	// Sub-block 2 = elements 64..95: chunk 1 low nibbles (qs[32..63]), qh bit 2.
	// Sub-block 7 = elements 224..255: chunk 3 high nibbles (qs[96..127]), qh bit 7.
	// qs[37]=0x09, qh[5]=0x04: element 69 = 2*3*(9|16) - 1*4 = 146;
	// element 101 (sub-block 3) = 0.
	// qs[96]=0xf0, qh[0]=0x80: element 224 = 2*63*(15|16) - 1*16 = 3890;
	// element 192 (sub-block 6) = 0.
	// Other elements of sub-block 2 are -4, of sub-block 7 -16.
	q5k := make([]byte, 176)
	q5k[0], q5k[1] = 0x00, 0x40
	q5k[2], q5k[3] = 0x00, 0x3c
	q5k[4+2] = 0x03
	q5k[4+3] = 0xc0
	q5k[4+6] = 0x04
	q5k[4+7] = 0x40
	q5k[4+11] = 0x0f
	q5k[16+5] = 0x04
	q5k[16+0] = 0x80
	q5k[48+37] = 0x09
	q5k[48+96] = 0xf0
	cases = append(cases, blockCase{name: "Q5_K", t: Q5_K, b: q5k,
		defs: []rangeVal{{64, 96, -4}, {224, 256, -16}},
		want: map[int]float32{69: 146, 101: 0, 224: 3890, 192: 0}})

	// Q6_K: d = 0x3800 = 0.5 (bytes 208-209); scales[0]=2, scales[1]=-1,
	// scales[13]=-128. All-zero quant bits decode to q-32 = -32, so element e
	// defaults to 0.5*scales[e/16]*(-32): -32 for 0..15, 16 for 16..31,
	// 2048 for 208..223, 0 elsewhere.
	// Element 0: ql[0] low nibble 5, qh[0] bits 0-1 = 2 -> q = 37-32 = 5,
	//   0.5*2*5 = 5. (ql[0] high nibble and qh[0] bits 4-5 are element 64: 0.)
	// Element 17: ql[17] low nibble 15, qh[17] bits 0-1 = 3 -> q = 63-32 = 31,
	//   0.5*(-1)*31 = -15.5.
	// Element 210 = second half, index 82 = l+64 with l = 18: ql[64+18] high
	//   nibble 3, qh[32+18] bits 4-5 = 1 -> q = 19-32 = -13, 0.5*(-128)*(-13) = 832.
	//   (ql[82] low nibble is element 146, scale 9 = 0.)
	q6k := make([]byte, 210)
	q6k[208], q6k[209] = 0x00, 0x38
	q6k[192+0] = 0x02
	q6k[192+1] = 0xff
	q6k[192+13] = 0x80
	q6k[0] = 0x05
	q6k[128+0] = 0x02
	q6k[17] = 0x0f
	q6k[128+17] = 0x03
	q6k[64+18] = 0x30
	q6k[128+32+18] = 0x10
	cases = append(cases, blockCase{name: "Q6_K", t: Q6_K, b: q6k,
		defs: []rangeVal{{0, 16, -32}, {16, 32, 16}, {208, 224, 2048}},
		want: map[int]float32{0: 5, 17: -15.5, 210: 832, 64: 0, 146: 0}})

	return cases
}

func (c blockCase) expected() []float32 {
	n := c.t.BlockSize()
	out := make([]float32, n)
	for i := range out {
		out[i] = c.def
	}
	for _, r := range c.defs {
		for i := r.lo; i < r.hi; i++ {
			out[i] = r.v
		}
	}
	for i, v := range c.want {
		out[i] = v
	}
	return out
}

func TestDequantizeBlocks(t *testing.T) {
	for _, c := range blockCases() {
		t.Run(c.name, func(t *testing.T) {
			if len(c.b) != c.t.BlockBytes() {
				t.Fatalf("test block is %d bytes, type wants %d", len(c.b), c.t.BlockBytes())
			}
			want := c.expected()
			got := make([]float32, len(want))
			if err := Dequantize(c.t, c.b, got); err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("element %d = %g, want %g", i, got[i], want[i])
				}
			}
			// Dot with a one-hot x picks out single elements; with all-ones x
			// it sums the block. Both must match the hand-worked values.
			x := make([]float32, len(want))
			var sum float64
			for i := range x {
				x[i] = 1
				sum += float64(want[i])
			}
			if got := Dot(c.t, c.b, x); !closeRel(float64(got), sum, 1e-6) {
				t.Errorf("Dot(ones) = %g, want %g", got, sum)
			}
			for i := range want {
				clear(x)
				x[i] = 1
				if got := Dot(c.t, c.b, x); got != want[i] {
					t.Errorf("Dot(e%d) = %g, want %g", i, got, want[i])
				}
			}
		})
	}
}

func closeRel(got, want, tol float64) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	scale := max(1, want, -want)
	return d <= tol*scale
}
