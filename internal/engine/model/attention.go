package model

import (
	"math"

	"github.com/open-autoglm/autoglm/internal/engine/quant"
)

// Attention runs in two shapes. A sequence that brings few rows to a step
// (decoding) takes one work item per row and KV head: the query heads that
// share the KV head are handled together, so each key and value row is read
// (and, for f16 and q8_0 caches, decoded) once for all of them. A sequence
// that brings many rows (a prompt) is cut into tiles of up to attnTileRows
// consecutive rows, one work item per tile and KV head: the tile's queries
// (rows × grouped heads) meet blocks of keys as one matrix product, so each
// key and value row is decoded once per tile and used for every query in
// it, and the products run in the register-tiled kernels of
// quant.MatMulF32. Both shapes compute the same softmax(q·Kᵀ/√d)·V with the
// same f16 rounding.
const (
	// attnTileMin is the fewest rows of one sequence in a step that take
	// the tiled path; below it the per-row path is cheaper (the tile
	// transposes its keys).
	attnTileMin = 4
	// attnTileRows is the most rows in one tile: enough queries to spread
	// the transposition and decoding of the keys, few enough that a prompt
	// of a hundred tokens still gives each worker several items.
	attnTileRows = 16
	// attnKeyBlock is the number of keys whose transposed block meets the
	// tile's queries at once (hd × attnKeyBlock floats stay in L1).
	attnKeyBlock = 64
	// attnValueBlock is the number of value rows decoded at once for a
	// tile over an f16 or q8_0 cache.
	attnValueBlock = 256
)

// attnItem is one work item: rows rows of sequence seq starting at step
// row row0, against KV head g.
type attnItem struct {
	seq, row0, rows, g int
}

// attnScratch holds one worker's buffers for a tile: the gathered queries,
// the scores (one row per query, ld columns apart), a transposed key block,
// a block of decoded values and the outputs.
type attnScratch struct {
	q, s, kt, v, o []float32
	ld             int
}

func (a *attnScratch) floats() int {
	return cap(a.q) + cap(a.s) + cap(a.kt) + cap(a.v) + cap(a.o)
}

// roundUp rounds n up to a multiple of k.
func roundUp(n, k int) int { return (n + k - 1) / k * k }

// prepareTiles sizes the tile buffers of every worker for the longest
// sequence of the step that takes the tiled path.
func (m *Model) prepareTiles(seqs []*Seq, b *buffers) {
	keys := 0
	for _, s := range seqs {
		if len(s.Tokens) >= attnTileMin {
			keys = max(keys, s.Cache.n+len(s.Tokens))
		}
	}
	if keys == 0 {
		return
	}
	cfg := &m.cfg
	hd := cfg.HeadDim
	rows := roundUp(attnTileRows*(cfg.Heads/cfg.KVHeads), 4)
	if len(b.tiles) != m.pool.size {
		b.tiles = make([]attnScratch, m.pool.size)
	}
	ld := roundUp(keys, 16)
	for w := range b.tiles {
		t := &b.tiles[w]
		t.q = grow(t.q, rows*hd)
		t.s = grow(t.s, rows*ld)
		t.kt = grow(t.kt, hd*attnKeyBlock)
		t.v = grow(t.v, attnValueBlock*hd)
		t.o = grow(t.o, rows*hd)
		t.ld = ld
	}
}

// attention computes, for every row and head, softmax(q·Kᵀ/√d)·V over the
// row's sequence cache up to and including the row's position, into b.att.
func (m *Model) attention(l int, seqs []*Seq, b *buffers) {
	cfg := &m.cfg
	hd := cfg.HeadDim
	qDim := cfg.Heads * hd
	group := cfg.Heads / cfg.KVHeads
	scale := float32(1 / math.Sqrt(float64(hd)))

	// The items of the latest rows (the most keys) go first, so that the
	// short ones fill in at the end.
	items := b.attnItems[:0]
	row := b.rows
	for i := len(seqs) - 1; i >= 0; i-- {
		n := len(seqs[i].Tokens)
		row -= n
		if n < attnTileMin {
			for r := row + n - 1; r >= row; r-- {
				for g := range cfg.KVHeads {
					items = append(items, attnItem{seq: i, row0: r, rows: 1, g: g})
				}
			}
			continue
		}
		tiles := (n + attnTileRows - 1) / attnTileRows
		for t := tiles - 1; t >= 0; t-- {
			lo, hi := t*n/tiles, (t+1)*n/tiles
			for g := range cfg.KVHeads {
				items = append(items, attnItem{seq: i, row0: row + lo, rows: hi - lo, g: g})
			}
		}
	}
	b.attnItems = items

	m.pool.run(len(items), 1, func(worker, lo, hi int) {
		if m.faultHook != nil {
			m.faultHook(worker)
		}
		for _, it := range items[lo:hi] {
			c := seqs[it.seq].Cache
			span := it.row0*qDim + it.g*group*hd
			if it.rows == 1 {
				attendGroup(c, l, it.g, b.rowPos[it.row0]+1, b.q[span:span+group*hd], b.att[span:span+group*hd],
					group, hd, scale, b.scores[worker], b.kvRow[worker])
				continue
			}
			attendTile(c, l, it.g, b.rowPos[it.row0], it.rows, b.q[span:], b.att[span:], qDim,
				group, hd, scale, &b.tiles[worker], b.kvRow[worker][:hd])
		}
	})
}

// decodeRow expands one head row of a cache of type t (f16 or q8_0) into
// dst.
func decodeRow(t quant.Type, dst []float32, src []byte) {
	if t == KVF16 {
		quant.F16RowToF32(dst, src)
		return
	}
	decodeKV(t, dst, src)
}

// attendGroup runs the group query heads in q (group × hd values) over the
// first n positions of KV head g of layer l, writing their outputs to out.
// scores has room for group × n values, row for 2 × hd.
func attendGroup(c *Cache, l, g, n int, q, out []float32, group, hd int, scale float32, scores, row []float32) {
	kf, vf, kb, vb := c.head(l, g, n)
	// With an f16 cache the products are those of llama.cpp's CPU
	// attention on one: the query is rounded to f16 for K·q and the
	// softmax weights to f16 for the sum of V rows (each product of two
	// f16 values summed in f32). Greedy decoding then follows llama.cpp's
	// on the same file; without it, a near tie between two logits may
	// break the other way.
	f16 := c.typ == KVF16
	if f16 {
		quant.ScaleF32(q, 1, true)
	}
	scores = scores[:group*n]
	krow, vrow := row[:hd], row[hd:2*hd]
	for t := range n {
		if kf != nil {
			krow = kf[t*hd : (t+1)*hd]
		} else {
			decodeRow(c.typ, krow, kb[t*c.row:(t+1)*c.row])
		}
		for j := range group {
			scores[j*n+t] = dot(q[j*hd:(j+1)*hd], krow) * scale
		}
	}
	for j := range group {
		softmax(scores[j*n:(j+1)*n], f16)
	}
	clear(out)
	for t := range n {
		if vf != nil {
			vrow = vf[t*hd : (t+1)*hd]
		} else {
			decodeRow(c.typ, vrow, vb[t*c.row:(t+1)*c.row])
		}
		for j := range group {
			quant.AxpyF32(scores[j*n+t], vrow, out[j*hd:(j+1)*hd])
		}
	}
}

// softmax turns s into softmax(s), the weights rounded to f16 when f16 is
// set. The sum of the exponentials is taken in float64.
func softmax(s []float32, f16 bool) {
	mx := quant.MaxF32(s)
	sum := quant.ExpSub(s, mx)
	quant.ScaleF32(s, float32(1/sum), f16)
}

// attendTile runs rows consecutive rows of one sequence, the first at
// position pos0, against KV head g of layer l: for row r and query head j
// of the group, the query is q[r*qDim+j*hd:][:hd] and the output goes to
// out at the same place. Row r sees the keys up to its own position.
//
// The queries (rows × group of them, padded to a multiple of four with
// zeros) are gathered into a.q and rounded to f16 for an f16 cache. Scores
// are a.q·Kᵀ, a block of attnKeyBlock transposed keys at a time, scaled by
// 1/√d afterwards as in the per-row path; each query's row is masked past
// its position, turned into softmax weights (rounded to f16 for an f16
// cache) and multiplied by V into a.o.
func attendTile(c *Cache, l, g, pos0, rows int, q, out []float32, qDim, group, hd int, scale float32, a *attnScratch, krow []float32) {
	nk := pos0 + rows
	kf, vf, kb, vb := c.head(l, g, nk)
	f16 := c.typ == KVF16
	m := rows * group
	m4 := roundUp(m, 4)
	ld := a.ld

	qs := a.q[:m4*hd]
	for r := range rows {
		for j := range group {
			dst := qs[(r*group+j)*hd : (r*group+j+1)*hd]
			copy(dst, q[r*qDim+j*hd:r*qDim+(j+1)*hd])
			if f16 {
				quant.ScaleF32(dst, 1, true)
			}
		}
	}
	clear(qs[m*hd:])

	s := a.s[:m4*ld]
	for t0 := 0; t0 < nk; t0 += attnKeyBlock {
		bw := min(attnKeyBlock, nk-t0)
		bwp := roundUp(bw, 16)
		kt := a.kt[:hd*bwp]
		for t := range bw {
			k := krow
			if kf != nil {
				k = kf[(t0+t)*hd : (t0+t+1)*hd]
			} else {
				decodeRow(c.typ, krow, kb[(t0+t)*c.row:(t0+t+1)*c.row])
			}
			for d, x := range k {
				kt[d*bwp+t] = x
			}
		}
		if bw < bwp {
			for d := range hd {
				clear(kt[d*bwp+bw : (d+1)*bwp])
			}
		}
		quant.MatMulF32(m4, bwp, hd, qs, hd, kt, bwp, s[t0:], ld, false)
	}

	for i := range m4 {
		si := s[i*ld : i*ld+nk]
		if i >= m {
			clear(si)
			continue
		}
		n := pos0 + i/group + 1
		quant.ScaleF32(si[:n], scale, false)
		softmax(si[:n], f16)
		clear(si[n:])
	}

	o := a.o[:m4*hd]
	if vf != nil {
		quant.MatMulF32(m4, hd, nk, s, ld, vf, hd, o, hd, false)
	} else {
		for t0 := 0; t0 < nk; t0 += attnValueBlock {
			bn := min(attnValueBlock, nk-t0)
			v := a.v[:bn*hd]
			for t := range bn {
				decodeRow(c.typ, v[t*hd:(t+1)*hd], vb[(t0+t)*c.row:(t0+t+1)*c.row])
			}
			quant.MatMulF32(m4, hd, bn, s[t0:], ld, v, hd, o, hd, t0 > 0)
		}
	}
	for r := range rows {
		copy(out[r*qDim:r*qDim+group*hd], o[r*group*hd:(r+1)*group*hd])
	}
}
