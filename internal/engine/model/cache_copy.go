package model

// CopyFrom makes c hold the positions src holds (both caches of the same model), so that a
// sequence can continue from another's prompt without computing it again (several choices
// of one prompt).
func (c *Cache) CopyFrom(src *Cache) {
	c.reserve(src.n)
	for l := range c.k {
		copy(c.k[l][:src.n*c.kvDim], src.k[l][:src.n*src.kvDim])
		copy(c.v[l][:src.n*c.kvDim], src.v[l][:src.n*src.kvDim])
	}
	c.n = src.n
}
