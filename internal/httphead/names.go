package httphead

import (
	"net/textproto"
	"slices"
)

// Names is a table of canonical field names that Lookup matches a field name against, in any
// case, without allocating: a parser gives the names its peers send most a table, so that
// naming their fields costs nothing. A table is built once, when the program starts, and only
// read after that.
//
// The names are kept by length, so a lookup compares a name with the one to four of the same
// length, byte by byte, and touches a few cache lines: on a server at a modest rate the table
// is cold at every request, and a hash map's lookup (hash the name, probe a group, compare)
// cost more there than the comparisons do.
type Names struct {
	byLen [maxName + 1][]string // the names of each length
}

// maxName bounds the length of a name in a table.
const maxName = 64

// NewNames builds a table of the given names. It panics if one is not in the canonical form
// textproto.CanonicalMIMEHeaderKey gives, is not a token, or is longer than 64 bytes: the names
// are written in the program, and a wrong one is a mistake to catch when it starts.
func NewNames(names ...string) *Names {
	t := &Names{}
	for _, k := range names {
		if !IsToken([]byte(k)) || textproto.CanonicalMIMEHeaderKey(k) != k || len(k) > maxName {
			panic("httphead: " + k + " is not a canonical field name of at most 64 bytes")
		}
		if !slices.Contains(t.byLen[len(k)], k) {
			t.byLen[len(k)] = append(t.byLen[len(k)], k)
		}
	}
	return t
}

// Lookup returns the name in the table that name equals but for the case of ASCII letters, and
// whether there is one. For a name that is a token, that is its canonical form as
// textproto.CanonicalMIMEHeaderKey gives it; a name that is not a token matches nothing.
func (t *Names) Lookup(name []byte) (string, bool) {
	if len(name) > maxName {
		return "", false
	}
	for _, k := range t.byLen[len(name)] {
		if EqualFold(name, k) {
			return k, true
		}
	}
	return "", false
}
