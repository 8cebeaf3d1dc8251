package quant

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"unsafe"

	"github.com/open-autoglm/autoglm/internal/engine/hugepage"
)

// Packed weights. For some types the assembly has tiles that read the
// weights in an interleaved layout made once at load ([Kernel.Pack]), as
// llama.cpp repacks Q4_0 for its CPU GEMM. Rows are taken in groups of
// packRows; within a group each vector lane is one row, so a tile
// multiplies a whole group by one broadcast activation element (or four
// int8 quants) per instruction and ends with each row's sum in its own
// lane: no horizontal sums, and one sequential stream of weight bytes.
//
// Q4_0, per group of 16 rows: first the blocks' scales, 16 f16 per block
// (nb×32 bytes, padded to a multiple of 64), then per block 256 bytes of
// quants: four 64-byte vectors, vector j holding bytes 4j..4j+3 of each
// row's qs in lane (row) order. Bytes are ggml's unchanged (low nibble
// element i, high nibble element i+16), so the low nibbles of vector j
// are elements 4j..4j+3 and the high ones 16+4j..16+4j+3.
//
// F16, per group of 16 rows: for each column, the 16 rows' halves (32
// bytes); the group padded to a multiple of 64 bytes. A tile converts one
// column to 16 float32 lanes and multiplies it by each activation row's
// element of that column, broadcast.
//
// Rows past the last full group stay in the original bytes and use the
// ordinary tiles.
//
// Q8_0, Q5_0, Q4_K and Q6_K (on the AVX-512 VNNI tier) have no packed
// tiles: their matrix-vector kernels already read one sequential stream.
// Their copy is the matrix's own bytes, whole, moved from the file mapping's 4 KiB pages into memory
// advised for 2 MiB pages, which is what decoding measured faster with
// (docs/BENCHMARKS.md); it is made only where the system gives huge pages
// (hugepage.Available), and every product of the matrix reads it.

// packRows is the number of weight rows a packed tile multiplies at once:
// one per 32-bit lane of a 512-bit register.
const packRows = 16

// packedTile computes y[t*ys/4 + r] for the 16 rows of one packed group
// (scales sc, quants qs, nb blocks) and T activation rows of one packed
// activation group x.
type packedTile func(sc, qs *byte, nb int, x *byte, y *float32, ys int)

// packedGemv computes y[16g + r] for the rows r of groups consecutive
// packed groups (the first at w, stride bytes apart, each with scBytes of
// scales and nb blocks per row) and the one activation row of the packed
// activation group x.
type packedGemv func(w *byte, stride, scBytes, nb int, x *byte, y *float32, groups int)

// packedGemvF computes y[16g + r] for the rows r of groups consecutive
// packed F16 groups (the first at w, stride bytes apart, n columns) and
// one float32 activation row x.
type packedGemvF func(w *byte, stride, n int, x *float32, y *float32, groups int)

// packedTileF computes y[t*ys/4 + r] for the 16 rows of one packed F16
// group w (n columns) and T float32 activation rows from x, xs bytes
// apart.
type packedTileF func(w *byte, x *float32, xs int, n int, y *float32, ys int)

// packedTileF2 is packedTileF over two consecutive groups, ws bytes apart.
type packedTileF2 func(w *byte, ws int, x *float32, xs int, n int, y *float32, ys int)

// Packed is a weight matrix rearranged for the packed tiles. It is
// immutable and safe for concurrent use.
type Packed struct {
	typ        Type
	rows, cols int
	groups     int // full groups of packRows rows
	scBytes    int // bytes of a group's scale region
	stride     int // bytes of a group
	buf        []byte
	whole      bool             // buf is the matrix in its own layout (Kernel.copies)
	mem        *hugepage.Buffer // holds buf (shared by PackAll's copies)
	size64     int64            // Bytes: mem's size, or this copy's share of it
}

// Bytes returns the memory the packed copy takes: its allocation's, or for
// a copy from PackAll its 64-byte aligned share of the one allocation.
func (p *Packed) Bytes() int64 {
	if p == nil {
		return 0
	}
	return p.size64
}

// HugePages reports whether the packed copy lies in memory advised for
// 2 MiB pages (package hugepage).
func (p *Packed) HugePages() bool { return p != nil && p.mem.Mapped() }

// packs reports whether k has packed tiles on this CPU.
func (k *Kernel) packs() bool { return k.ptiles[1] != nil || k.ptilesF[1] != nil }

// Whole reports whether p is a copy of the matrix in its own layout (a
// type whose copy only moves it into huge pages), which the model reads
// in place of the mapped bytes for every use.
func (p *Packed) Whole() bool { return p != nil && p.whole }

// packsActs reports whether k's packed tiles read the interleaved copy of
// the activations (Acts.pk).
func (k *Kernel) packsActs() bool { return k.ptiles[1] != nil }

// Pack returns w (rows × cols of k's type) rearranged for the packed tiles,
// or nil when this CPU or build has none for the type or the matrix has
// fewer than one group of rows. For a type that is copied whole (Q8_0,
// Q5_0, Q4_K, Q6_K on the AVX-512 VNNI tier) it returns the copy where huge pages are
// available, else nil. The result is a copy; w is still read for
// the rows past the last group. [PackAll] packs several matrices into one
// allocation.
func (k *Kernel) Pack(w []byte, rows, cols int) *Packed {
	p := k.packLayout(w, rows, cols)
	if p == nil {
		return nil
	}
	p.place(hugepage.Alloc(p.size()+64), 0)
	p.size64 = p.mem.Reserved()
	k.fill(p, w)
	return p
}

// PackJob is one matrix for [PackAll]: w holds rows × cols of K's type.
type PackJob struct {
	K          *Kernel
	W          []byte
	Rows, Cols int
}

// PackAll packs every job's matrix as [Kernel.Pack] does (nil where Pack
// gives nil) into one allocation, so that all of a model's packed weights
// lie in 2 MiB pages where the system gives them (package hugepage), not
// only the whole 2 MiB stretches of each large matrix; it returns the
// packed copies and the bytes the allocation holds.
func PackAll(jobs []PackJob) ([]*Packed, int64) {
	out := make([]*Packed, len(jobs))
	offs := make([]int, len(jobs))
	total := 0
	for i, j := range jobs {
		if p := j.K.packLayout(j.W, j.Rows, j.Cols); p != nil {
			out[i] = p
			offs[i] = total
			total += (p.size() + 63) / 64 * 64
		}
	}
	if total == 0 {
		return out, 0
	}
	mem := hugepage.Alloc(total + 64)
	base := int((64 - uintptr(unsafe.Pointer(&mem.Bytes()[0]))%64) % 64)
	for i, p := range out {
		if p == nil {
			continue
		}
		p.place(mem, base+offs[i])
		p.size64 = int64((p.size() + 63) / 64 * 64)
		jobs[i].K.fill(p, jobs[i].W)
	}
	return out, mem.Reserved()
}

// packLayout returns the geometry of w's packed copy, without memory, or
// nil when Pack gives nil.
func (k *Kernel) packLayout(w []byte, rows, cols int) *Packed {
	bs := k.typ.BlockSize()
	if !k.packs() && !k.copies || rows < packRows || cols%bs != 0 || cols == 0 {
		return nil
	}
	rb := cols / bs * k.typ.BlockBytes()
	if len(w) < rows*rb {
		panic(fmt.Sprintf("quant: Pack %v: %d rows of %d with len(w)=%d", k.typ, rows, cols, len(w)))
	}
	if k.copies {
		if !hugepage.Available() {
			return nil
		}
		// One "group" of every row: size() is the matrix.
		return &Packed{typ: k.typ, rows: rows, cols: cols, whole: true, stride: rows * rb, groups: 1}
	}
	nb := cols / 32
	p := &Packed{typ: k.typ, rows: rows, cols: cols, groups: rows / packRows}
	if k.typ == F16 {
		p.stride = (cols*packRows*2 + 63) / 64 * 64
	} else {
		p.scBytes = (nb*packRows*2 + 63) / 64 * 64
		p.stride = p.scBytes + nb*packRows*16
	}
	return p
}

// size is the bytes of p's packed groups.
func (p *Packed) size() int { return p.groups * p.stride }

// place puts p's groups in mem from the first 64-byte boundary at or past
// off (64-byte aligned, so no vector load crosses a cache line; and in
// 2 MiB pages where the system gives them: decoding streams the whole copy
// once per token, and with 4 KiB pages TLB misses and the prefetchers'
// stops at every page boundary slow it down).
func (p *Packed) place(mem *hugepage.Buffer, off int) {
	raw := mem.Bytes()
	off += int((64 - uintptr(unsafe.Pointer(&raw[off]))%64) % 64)
	p.mem = mem
	p.buf = raw[off : off+p.size() : off+p.size()]
}

// fill writes w's rows into p's groups.
func (k *Kernel) fill(p *Packed, w []byte) {
	cols := p.cols
	rb := cols / k.typ.BlockSize() * k.typ.BlockBytes()
	nb := cols / 32
	le := binary.LittleEndian
	if p.whole {
		copy(p.buf, w[:p.rows*rb])
		return
	}
	if k.typ == F16 {
		for g := range p.groups {
			dst := p.buf[g*p.stride : (g+1)*p.stride]
			src := w[g*packRows*rb : (g+1)*packRows*rb]
			for r := range packRows {
				row := src[r*rb : (r+1)*rb]
				for c := range cols {
					le.PutUint16(dst[c*32+2*r:], le.Uint16(row[2*c:]))
				}
			}
		}
		return
	}
	for g := range p.groups {
		dst := p.buf[g*p.stride : (g+1)*p.stride]
		src := w[g*packRows*rb : (g+1)*packRows*rb]
		for b := range nb {
			sc := dst[b*32 : b*32+32]
			q := dst[p.scBytes+b*256 : p.scBytes+b*256+256]
			for r := range packRows {
				blk := src[r*rb+b*18 : r*rb+b*18+18]
				le.PutUint16(sc[2*r:], le.Uint16(blk))
				le.PutUint32(q[4*r:], le.Uint32(blk[2:]))
				le.PutUint32(q[64+4*r:], le.Uint32(blk[6:]))
				le.PutUint32(q[128+4*r:], le.Uint32(blk[10:]))
				le.PutUint32(q[192+4*r:], le.Uint32(blk[14:]))
			}
		}
	}
}

// MulRowsPacked is [Kernel.MulRows] with p, the packed copy of w from
// k.Pack (nil to use w alone): whole groups of rows go through the packed
// tiles, any rows before or after them through the ordinary ones.
func (k *Kernel) MulRowsPacked(w []byte, p *Packed, lo, hi int, a *Acts, y []float32, ldy int) {
	if p.Whole() {
		if p.typ != k.typ || p.cols != a.cols {
			panic(fmt.Sprintf("quant: MulRowsPacked %v × %d columns with a copy of %v × %d", k.typ, a.cols, p.typ, p.cols))
		}
		k.MulRows(p.buf, lo, hi, a, y, ldy)
		runtime.KeepAlive(p)
		return
	}
	if p == nil || !k.packs() {
		k.MulRows(w, lo, hi, a, y, ldy)
		return
	}
	n := a.n
	float := k.typ == F16
	if p.typ != k.typ || p.cols != a.cols || (a.kind != actsQ8 || len(a.pk) == 0 && n > 0) && !float || float && a.kind != actsF32 || lo < 0 || hi < lo || hi > p.rows ||
		(n > 0 && len(y) < (n-1)*ldy+hi) {
		panic(fmt.Sprintf("quant: MulRowsPacked %v rows [%d,%d) × %d with %d packed rows, ldy=%d", k.typ, lo, hi, n, p.rows, ldy))
	}
	g0 := (lo + packRows - 1) / packRows
	g1 := min(hi/packRows, p.groups)
	if g0 >= g1 {
		k.MulRows(w, lo, hi, a, y, ldy)
		return
	}
	if lo < g0*packRows {
		k.MulRows(w, lo, g0*packRows, a, y, ldy)
	}
	if g1*packRows < hi {
		k.MulRows(w, g1*packRows, hi, a, y, ldy)
	}
	if n == 0 {
		return
	}
	nb := a.cols / 32
	cols := a.cols
	if n == 1 && float && k.pgemvF != nil {
		// Decoding: one call streams every group.
		k.pgemvF(&p.buf[g0*p.stride], p.stride, cols, &a.f[0], &y[g0*packRows], g1-g0)
		runtime.KeepAlive(p)
		return
	}
	if n == 1 && k.pgemv != nil {
		// Decoding: one call streams every group.
		k.pgemv(&p.buf[g0*p.stride], p.stride, p.scBytes, nb, &a.pk[0], &y[g0*packRows], g1-g0)
		runtime.KeepAlive(p)
		return
	}
	// Groups are taken in chunks of about 256 KiB (at least two groups,
	// which the two-group tiles take together), which stay in the L2
	// cache while every tile of activation rows passes over them.
	chunk := max(2, (256<<10)/p.stride)
	for c0 := g0; c0 < g1; c0 += chunk {
		c1 := min(c0+chunk, g1)
		for t := 0; t < n; t += pkRows {
			T := min(pkRows, n-t)
			if float {
				x := &a.f[t*cols]
				g := c0
				if f2 := k.ptilesF2[T]; f2 != nil {
					for ; g+1 < c1; g += 2 {
						f2(&p.buf[g*p.stride], p.stride, x, cols*4, cols, &y[t*ldy+g*packRows], ldy*4)
					}
				}
				for ; g < c1; g++ {
					k.ptilesF[T](&p.buf[g*p.stride], x, cols*4, cols, &y[t*ldy+g*packRows], ldy*4)
				}
				continue
			}
			f := k.ptiles[T]
			x := &a.pk[t/pkRows*nb*pkBlock]
			for g := c0; g < c1; g++ {
				base := p.buf[g*p.stride:]
				f(&base[0], &base[p.scBytes], nb, x, &y[t*ldy+g*packRows], ldy*4)
			}
		}
	}
	runtime.KeepAlive(p) // p.mem unmaps p.buf when collected
}
