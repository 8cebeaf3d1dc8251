package model

// CopyFrom makes c hold the positions src holds (both caches of the same model), so that a
// sequence can continue from another's prompt without computing it again (several choices
// of one prompt).
func (c *Cache) CopyFrom(src *Cache) {
	c.n = 0 // nothing of c's old contents needs to survive the regrow
	c.reserve(src.n)
	heads, hd := c.m.cfg.KVHeads, c.m.cfg.HeadDim
	for h := range heads {
		if c.f32 {
			for l := range c.kf {
				copy(c.kf[l][h*c.cap*hd:h*c.cap*hd+src.n*hd], src.kf[l][h*src.cap*hd:h*src.cap*hd+src.n*hd])
				copy(c.vf[l][h*c.cap*hd:h*c.cap*hd+src.n*hd], src.vf[l][h*src.cap*hd:h*src.cap*hd+src.n*hd])
			}
			continue
		}
		for l := range c.k {
			copy(c.k[l][h*c.cap*c.row:h*c.cap*c.row+src.n*c.row], src.k[l][h*src.cap*src.row:h*src.cap*src.row+src.n*src.row])
			copy(c.v[l][h*c.cap*c.row:h*c.cap*c.row+src.n*c.row], src.v[l][h*src.cap*src.row:h*src.cap*src.row+src.n*src.row])
		}
	}
	c.n = src.n
}
