package model

// Cache holds one sequence's keys and values for every layer, as float32.
// Its storage grows on demand up to the model's context length. A Cache is
// used by one sequence at a time; it is not safe for concurrent use, and
// must not be modified while a Forward that uses it is running.
type Cache struct {
	m     *Model
	n     int // positions filled
	cap   int // positions allocated
	kvDim int
	k, v  [][]float32 // per layer, cap × kvDim
}

// NewCache returns an empty cache for one sequence of m.
func (m *Model) NewCache() *Cache {
	return &Cache{
		m:     m,
		kvDim: m.cfg.KVHeads * m.cfg.HeadDim,
		k:     make([][]float32, m.cfg.Layers),
		v:     make([][]float32, m.cfg.Layers),
	}
}

// Len returns the number of positions in the cache: the position the next
// token will take.
func (c *Cache) Len() int { return c.n }

// Cap returns the number of positions the cache can take in total (the
// model's context length).
func (c *Cache) Cap() int { return c.m.cfg.ContextLength }

// Truncate drops positions from n on, so that the sequence continues from
// position n (for example to reuse a shared prompt prefix). n beyond Len is
// ignored; a negative n empties the cache. Storage is kept.
func (c *Cache) Truncate(n int) {
	c.n = min(max(n, 0), c.n)
}

// Reset empties the cache, keeping its storage.
func (c *Cache) Reset() { c.n = 0 }

// reserve makes room for n positions in total, growing geometrically.
func (c *Cache) reserve(n int) {
	if n <= c.cap {
		return
	}
	newCap := max(n, min(2*c.cap, c.m.cfg.ContextLength), 16)
	newCap = min(newCap, c.m.cfg.ContextLength)
	for l := range c.k {
		k := make([]float32, newCap*c.kvDim)
		v := make([]float32, newCap*c.kvDim)
		copy(k, c.k[l][:c.n*c.kvDim])
		copy(v, c.v[l][:c.n*c.kvDim])
		c.k[l], c.v[l] = k, v
	}
	c.cap = newCap
}
