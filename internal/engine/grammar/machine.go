package grammar

// The parser is a stack of frames, fed one byte at a time. Frames are small values without
// pointers, so a state is copied cheaply (the mask search copies it at every trie node) and
// encoded as a cache key.

type frameKind uint8

const (
	fRoot frameKind = iota
	fValue
	fObject
	fArray
	fString
	fNumber
	fLit
)

// Object phases.
const (
	oStart uint8 = iota // after '{': a key or '}'
	oKey                // a key frame is on top
	oColon              // after the key: ':'
	oValue              // a value frame is on top
	oAfter              // after a value: ',' or '}'
	oNext               // after ',': a key
)

// Array phases.
const (
	aStart uint8 = iota
	aValue
	aAfter
	aNext
)

// String phases.
const (
	sNormal uint8 = iota
	sEscape
	sUnicode
)

// Number phases.
const (
	nSign uint8 = iota // after '-'
	nZero
	nInt
	nDot
	nFrac
	nE
	nESign
	nExp
)

// maxWS bounds a run of insignificant whitespace: enough for a newline and an indentation,
// short enough that a model fond of blank lines still has to write the JSON.
const maxWS = 6

// maxNumber bounds a number's length in bytes.
const maxNumber = 40

type frame struct {
	kind  frameKind
	phase uint8
	ws    uint8
	flag  uint8 // string: 1 for a free object key; number: 1 for integer; root: 1 when done
	node  int32
	n     int32  // array: items; lit: bytes matched; number: bytes; string: hex digits left
	set   uint64 // object: properties seen; lit: candidates
	key   int32  // object: the property whose value is being read (-1: additional)
}

type result uint8

const (
	rReject result = iota
	rConsumed
	rRefeed // the stack changed; feed the byte again to the new top
)

func isWS(b byte) bool { return b == ' ' || b == '\n' || b == '\t' || b == '\r' }

// start returns the initial stack.
func (g *Grammar) start() []frame {
	return []frame{{kind: fRoot}, {kind: fValue, node: g.root}}
}

// feed advances st by one byte; false leaves st unspecified.
func (g *Grammar) feed(st *[]frame, b byte) bool {
	for range 64 {
		s := *st
		top := &s[len(s)-1]
		var r result
		switch top.kind {
		case fRoot:
			return false // the value is complete: nothing may follow
		case fValue:
			r = g.value(st, top, b)
		case fObject:
			r = g.object(st, top, b)
		case fArray:
			r = g.array(st, top, b)
		case fString:
			r = g.str(st, top, b)
		case fNumber:
			r = g.number(st, top, b)
		case fLit:
			r = g.lit(st, top, b)
		}
		switch r {
		case rReject:
			return false
		case rConsumed:
			return true
		}
	}
	return false
}

func ws(top *frame) result {
	if top.ws >= maxWS {
		return rReject
	}
	top.ws++
	return rConsumed
}

// pop removes the top frame and tells its parent that a value (or key) ended. lit is the
// index of the literal that matched, for key frames.
func (g *Grammar) pop(st *[]frame, lit int32) {
	s := (*st)[:len(*st)-1]
	*st = s
	p := &s[len(s)-1]
	p.ws = 0
	switch p.kind {
	case fRoot:
		p.flag = 1
	case fObject:
		switch p.phase {
		case oKey:
			p.key = lit
			if lit >= 0 {
				p.set |= 1 << lit
			}
			p.phase = oColon
		case oValue:
			p.phase = oAfter
		}
	case fArray:
		p.n++
		p.phase = aAfter
	}
}

func (g *Grammar) push(st *[]frame, f frame) { *st = append(*st, f) }

// value replaces a value frame by the frame of the value its first byte starts.
func (g *Grammar) value(st *[]frame, top *frame, b byte) result {
	if isWS(b) {
		if len(*st) == 2 {
			return rReject // the output starts with the value itself
		}
		return ws(top)
	}
	id := top.node
	n := &g.nodes[id]
	if !hasBit(&n.first, b) {
		return rReject
	}
	for n.kind == kAnyOf {
		for _, a := range n.alts {
			if hasBit(&g.nodes[a].first, b) {
				id = a
				break
			}
		}
		n = &g.nodes[id]
	}
	kind := n.kind
	if kind == kAny {
		switch {
		case b == '{':
			kind = kObject
		case b == '[':
			kind = kArray
		case b == '"':
			kind = kString
		case b == 't' || b == 'f' || b == 'n':
			*top = frame{kind: fLit, node: -1, set: anyLits(b)}
			top.n = 1
			return rConsumed
		default:
			kind = kNumber
		}
	}
	switch kind {
	case kObject:
		*top = frame{kind: fObject, node: id, key: -1}
	case kArray:
		*top = frame{kind: fArray, node: id}
	case kString:
		*top = frame{kind: fString, node: id}
	case kNumber, kInteger:
		*top = frame{kind: fNumber, node: id}
		if kind == kInteger {
			top.flag = 1
		}
		if b == '-' {
			top.phase = nSign
		} else if b == '0' {
			top.phase = nZero
		} else {
			top.phase = nInt
		}
		top.n = 1
		return rConsumed
	case kLit:
		var set uint64
		for i, l := range n.lits {
			if l[0] == b {
				set |= 1 << i
			}
		}
		*top = frame{kind: fLit, node: id, set: set, n: 1}
		return rConsumed
	}
	if kind == kObject && g.nodes[id].kind == kAny {
		// A free-form object inside an any value.
		top.node = g.anyObject()
	}
	if kind == kArray && g.nodes[id].kind == kAny {
		top.node = g.anyArray()
	}
	return rConsumed
}

// The literals of an any value: true, false, null.
var anyLitText = [3]string{"true", "false", "null"}

func anyLits(b byte) uint64 {
	switch b {
	case 't':
		return 1
	case 'f':
		return 2
	}
	return 4
}

// anyObject and anyArray are the nodes of free-form containers; the grammar appends them
// lazily at compile time (see finishAny).
func (g *Grammar) anyObject() int32 { return g.nAnyObject }
func (g *Grammar) anyArray() int32  { return g.nAnyArray }

func (g *Grammar) object(st *[]frame, top *frame, b byte) result {
	n := &g.nodes[top.node]
	switch top.phase {
	case oStart, oNext:
		if isWS(b) {
			return ws(top)
		}
		if b == '}' && top.phase == oStart {
			if top.set&n.required != n.required {
				return rReject
			}
			g.pop(st, -1)
			return rConsumed
		}
		if b != '"' {
			return rReject
		}
		top.phase, top.ws = oKey, 0
		if n.additional >= 0 {
			g.push(st, frame{kind: fString, flag: 1})
			return rConsumed
		}
		var cand uint64
		for i := range n.keys {
			if top.set&(1<<i) == 0 {
				cand |= 1 << i
			}
		}
		if cand == 0 {
			return rReject
		}
		g.push(st, frame{kind: fLit, node: top.node, set: cand, n: 1, flag: 1})
		return rConsumed
	case oColon:
		if isWS(b) {
			return ws(top)
		}
		if b != ':' {
			return rReject
		}
		top.phase, top.ws = oValue, 0
		vn := n.additional
		if top.key >= 0 && n.additional < 0 {
			vn = n.props[top.key].node
		}
		g.push(st, frame{kind: fValue, node: vn})
		return rConsumed
	case oAfter:
		if isWS(b) {
			return ws(top)
		}
		switch b {
		case ',':
			if n.additional < 0 && top.set == (uint64(1)<<len(n.keys))-1 {
				return rReject // every property is there
			}
			top.phase, top.ws = oNext, 0
			return rConsumed
		case '}':
			if top.set&n.required != n.required {
				return rReject
			}
			g.pop(st, -1)
			return rConsumed
		}
	}
	return rReject
}

func (g *Grammar) array(st *[]frame, top *frame, b byte) result {
	n := &g.nodes[top.node]
	switch top.phase {
	case aStart, aNext:
		if isWS(b) {
			return ws(top)
		}
		if b == ']' && top.phase == aStart {
			if n.minItems > 0 {
				return rReject
			}
			g.pop(st, -1)
			return rConsumed
		}
		if n.maxItems >= 0 && int(top.n) >= n.maxItems {
			return rReject
		}
		top.phase, top.ws = aValue, 0
		g.push(st, frame{kind: fValue, node: n.items})
		return rRefeed
	case aAfter:
		if isWS(b) {
			return ws(top)
		}
		switch b {
		case ',':
			if n.maxItems >= 0 && int(top.n) >= n.maxItems {
				return rReject
			}
			top.phase, top.ws = aNext, 0
			return rConsumed
		case ']':
			if int(top.n) < n.minItems {
				return rReject
			}
			g.pop(st, -1)
			return rConsumed
		}
	}
	return rReject
}

func isHex(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F'
}

func (g *Grammar) str(st *[]frame, top *frame, b byte) result {
	switch top.phase {
	case sNormal:
		switch {
		case b == '"':
			g.pop(st, -1)
			return rConsumed
		case b == '\\':
			top.phase = sEscape
			return rConsumed
		case b < 0x20 || b == 0x7f:
			return rReject
		}
		return rConsumed
	case sEscape:
		switch b {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			top.phase = sNormal
			return rConsumed
		case 'u':
			top.phase, top.n = sUnicode, 4
			return rConsumed
		}
		return rReject
	case sUnicode:
		if !isHex(b) {
			return rReject
		}
		top.n--
		if top.n == 0 {
			top.phase = sNormal
		}
		return rConsumed
	}
	return rReject
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// numberComplete reports whether a number may end in phase p.
func numberComplete(p uint8) bool { return p == nZero || p == nInt || p == nFrac || p == nExp }

func (g *Grammar) number(st *[]frame, top *frame, b byte) result {
	integer := top.flag == 1
	next := uint8(255)
	switch top.phase {
	case nSign:
		if b == '0' {
			next = nZero
		} else if isDigit(b) {
			next = nInt
		}
	case nZero, nInt:
		switch {
		case isDigit(b) && top.phase == nInt:
			next = nInt
		case b == '.' && !integer:
			next = nDot
		case (b == 'e' || b == 'E') && !integer:
			next = nE
		}
	case nDot, nFrac:
		if isDigit(b) {
			next = nFrac
		} else if (b == 'e' || b == 'E') && top.phase == nFrac {
			next = nE
		}
	case nE:
		if b == '+' || b == '-' {
			next = nESign
		} else if isDigit(b) {
			next = nExp
		}
	case nESign, nExp:
		if isDigit(b) {
			next = nExp
		}
	}
	if next != 255 {
		if top.n >= maxNumber {
			return rReject
		}
		top.phase = next
		top.n++
		return rConsumed
	}
	if numberComplete(top.phase) {
		g.pop(st, -1)
		return rRefeed
	}
	return rReject
}

// litTexts returns the literals a lit frame matches against.
func (g *Grammar) litTexts(top *frame) []string {
	if top.node < 0 {
		return anyLitText[:]
	}
	n := &g.nodes[top.node]
	if top.flag == 1 {
		return n.keys
	}
	return n.lits
}

// complete returns the index of a literal fully matched by top, or -1.
func (g *Grammar) complete(top *frame) int32 {
	lits := g.litTexts(top)
	for i, l := range lits {
		if top.set&(1<<i) != 0 && len(l) == int(top.n) {
			return int32(i)
		}
	}
	return -1
}

func (g *Grammar) lit(st *[]frame, top *frame, b byte) result {
	lits := g.litTexts(top)
	var next uint64
	for i, l := range lits {
		if top.set&(1<<i) != 0 && len(l) > int(top.n) && l[top.n] == b {
			next |= 1 << i
		}
	}
	if next != 0 {
		top.set = next
		top.n++
		return rConsumed
	}
	if c := g.complete(top); c >= 0 {
		g.pop(st, c)
		return rRefeed
	}
	return rReject
}

// canEnd reports whether the output may end here: the root value is complete, or completes
// at the end of input (a number or a literal such as 12 or true at the top level).
func (g *Grammar) canEnd(st []frame) bool {
	switch len(st) {
	case 1:
		return st[0].flag == 1
	case 2:
		top := &st[1]
		switch top.kind {
		case fNumber:
			return numberComplete(top.phase)
		case fLit:
			return g.complete(top) >= 0
		}
	}
	return false
}
