package httphead

import "net/textproto"

// Names is a table of canonical field names that Lookup matches a field name against, in any
// case, without allocating: a parser gives the names its peers send most a table, so that
// naming their fields costs nothing. A table is built once, when the program starts, and only
// read after that.
type Names struct {
	keys    map[string]string // each name, to itself, so that a match returns the table's string
	longest int               // the longest name's length: a longer one is in no case a match
}

// maxName bounds the length of a name in a table: Lookup puts a name in canonical form in a
// buffer of this size on the stack.
const maxName = 64

// NewNames builds a table of the given names. It panics if one is not in the canonical form
// textproto.CanonicalMIMEHeaderKey gives, is not a token, or is longer than 64 bytes: the names
// are written in the program, and a wrong one is a mistake to catch when it starts.
func NewNames(names ...string) *Names {
	t := &Names{keys: make(map[string]string, len(names))}
	for _, k := range names {
		if !IsToken([]byte(k)) || textproto.CanonicalMIMEHeaderKey(k) != k || len(k) > maxName {
			panic("httphead: " + k + " is not a canonical field name of at most 64 bytes")
		}
		t.keys[k] = k
		t.longest = max(t.longest, len(k))
	}
	return t
}

// Lookup returns the name in the table that name equals but for the case of ASCII letters, and
// whether there is one. For a name that is a token, that is its canonical form as
// textproto.CanonicalMIMEHeaderKey gives it; a name that is not a token matches nothing.
func (t *Names) Lookup(name []byte) (string, bool) {
	if k, ok := t.keys[string(name)]; ok {
		return k, true // already in canonical form, as most senders write it
	}
	if len(name) > t.longest {
		return "", false
	}
	var buf [maxName]byte
	c, changed := canonical(buf[:0], name)
	if !changed {
		return "", false // in canonical form and not in the table
	}
	k, ok := t.keys[string(c)]
	return k, ok
}

// canonical appends name to dst in canonical form: each ASCII letter that starts the name or
// follows a hyphen in upper case, every other one in lower case. It reports whether that form
// differs from name.
func canonical(dst, name []byte) ([]byte, bool) {
	changed := false
	up := true
	for _, c := range name {
		d := lower(c)
		if up {
			d = upper(c)
		}
		changed = changed || d != c
		dst = append(dst, d)
		up = c == '-'
	}
	return dst, changed
}
