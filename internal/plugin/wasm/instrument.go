package wasm

import (
	"errors"
	"fmt"
	"math"
)

// stopExport is the name under which an instrumented module exports its stop flag.
const stopExport = "autoglm.stop"

// instrument returns a copy of a WebAssembly binary with a stop check at the start of every
// function body and of every loop: `global.get $stop; if; unreachable; end`, where $stop is
// a new mutable i32 global, exported as "autoglm.stop", that no code of the module can name.
// The host sets it when a call's time is up, and the call traps at its next loop iteration
// or function call. Every yieldEvery checks the code also steps out to Go and back, so that a
// long call does not hold up Go's garbage collector and scheduler.
//
// wazero's own way to stop a call (WithCloseOnContextDone) leaves compiled code for Go at
// every loop iteration; Go's compiler for wasm makes every branch a loop iteration, so a Go
// module ran 10 to 25 times slower with it. The check here is a load and a branch.
//
// Every section is read to its end, the way wazero reads it: the imports (to count imported
// globals), the globals and exports (entries added: the flag and a counter), the code (every
// instruction, to find the loops) and the others for their lengths, each checked against the
// bytes it counts before wazero, which allocates by them, sees the module. An instruction or
// a type it does not know is an error: the module is refused rather than run unchecked.
func instrument(code []byte) ([]byte, error) {
	if len(code) < 8 || string(code[:4]) != "\x00asm" || code[4] != 1 || code[5] != 0 || code[6] != 0 || code[7] != 0 {
		return nil, errors.New("not a WebAssembly module (version 1)")
	}
	type section struct {
		id   byte
		body []byte
	}
	var secs []section
	var m moduleShape
	r := &reader{b: code, i: 8}
	for r.i < len(r.b) {
		id := r.byte()
		n := r.u32()
		body := r.bytes(int(n))
		if r.err != nil {
			return nil, fmt.Errorf("section %d: %w", id, r.err)
		}
		// Every section the runtime decodes is read through here first, to its last byte:
		// the entries spliced into the global and export sections below land where the
		// runtime reads them, and no length in the module reaches the runtime's decoder
		// (which sizes its slices by them) before it is checked against the bytes it counts.
		if id != 10 {
			if err := m.check(id, body); err != nil {
				return nil, fmt.Errorf("section %d: %w", id, err)
			}
		}
		secs = append(secs, section{id, body})
	}
	stop := m.importedGlobals + m.globals
	count := stop + 1
	// if (global.get $stop) { unreachable }
	check := appendU32([]byte{0x23}, stop)
	check = append(check, 0x04, 0x40, 0x00, 0x0b)
	if m.memories > 0 {
		// Compiled wasm never stops for Go's scheduler on its own, and a garbage collection
		// waits for every running goroutine to stop: a long call would hold up the whole
		// process, the timer that should stop it included. Every yieldEvery checks, the
		// code goes to Go and back (memory.grow 0 does, and changes nothing):
		// $count -= 1; if ($count == 0) { drop(memory.grow(0)); $count = yieldEvery }
		check = appendU32(append(check, 0x23), count)
		check = append(check, 0x41, 0x01, 0x6b, 0x24)
		check = appendU32(check, count)
		check = appendU32(append(check, 0x23), count)
		check = append(check, 0x45, 0x04, 0x40, 0x41, 0x00, 0x40, 0x00, 0x1a, 0x41)
		check = appendS32(check, yieldEvery)
		check = appendU32(append(check, 0x24), count)
		check = append(check, 0x0b)
	}

	// The new globals: $stop, mutable i32 0; $count, mutable i32 yieldEvery.
	newGlobal := []byte{0x7f, 0x01, 0x41, 0x00, 0x0b, 0x7f, 0x01, 0x41}
	newGlobal = append(appendS32(newGlobal, yieldEvery), 0x0b)
	name := append(appendU32(nil, uint32(len(stopExport))), stopExport...)
	newExport := appendU32(append(name, 0x03), stop)

	// Sections must keep their order: rank gives each known id its place.
	rank := map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}
	out := append([]byte(nil), code[:8]...)
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	addedGlobal, addedExport := false, false
	for _, s := range secs {
		if s.id != 0 {
			if !addedGlobal && rank[s.id] > rank[6] {
				emit(6, append(appendU32(nil, 2), newGlobal...))
				addedGlobal = true
			}
			if !addedExport && rank[s.id] > rank[7] {
				emit(7, append(appendU32(nil, 1), newExport...))
				addedExport = true
			}
		}
		switch s.id {
		case 6:
			// m.check read the section to its end: its entries are exactly its count's,
			// and the two added here are the runtime's globals stop and stop+1.
			g := &reader{b: s.body}
			n := g.count()
			emit(6, append(append(appendU32(nil, n+2), s.body[g.i:]...), newGlobal...))
			addedGlobal = true
		case 7:
			e := &reader{b: s.body}
			n := e.count()
			emit(7, append(append(appendU32(nil, n+1), s.body[e.i:]...), newExport...))
			addedExport = true
		case 4:
			emit(4, m.boundTables(s.body))
		case 10:
			body, err := instrumentCode(s.body, check, stop)
			if err != nil {
				return nil, fmt.Errorf("code section: %w", err)
			}
			emit(10, body)
		default:
			emit(s.id, s.body)
		}
	}
	if !addedGlobal {
		emit(6, append(appendU32(nil, 2), newGlobal...))
	}
	if !addedExport {
		emit(7, append(appendU32(nil, 1), newExport...))
	}
	return out, nil
}

// yieldEvery is how many checks pass between two trips to Go.
const yieldEvery = 1 << 14

// Limits on what a module may declare, checked before the runtime sees it. The runtime
// sizes memory by these numbers when it compiles or starts the module, apart from the
// memory_pages cap on linear memory. Toolchains stay far below them.
const (
	// maxLocals bounds the locals of one function (the runtime allocates a slot for each
	// when it decodes the body: 2^32-1 of them, 6 bytes, took 32 GiB).
	maxLocals = 50000
	// maxTableElems bounds the initial sizes of all the module's tables together (the
	// runtime allocates them at every instance start, 8 bytes an element).
	maxTableElems = 1 << 20
)

// moduleShape is what instrument needs to know of a module's sections other than code.
type moduleShape struct {
	importedGlobals, globals, memories uint32
	tableElems                         uint64
}

// check reads a section other than code to its end, entry by entry, as the runtime will
// decode it, and refuses what the runtime would size anything by before checking it, or
// would read differently from the way this reader does.
func (m *moduleShape) check(id byte, body []byte) error {
	r := &reader{b: body}
	switch id {
	case 0: // custom: a name, then bytes the runtime keeps whole, except the name section
		name := string(r.name())
		if r.err == nil && name == "name" {
			return checkNames(body[r.i:])
		}
		return r.err
	case 1: // types
		for n := r.count(); n > 0 && r.err == nil; n-- {
			if form := r.byte(); r.err == nil && form != 0x60 {
				return fmt.Errorf("type of form %#x (only function types are supported)", form)
			}
			for k := r.count(); k > 0 && r.err == nil; k-- { // parameters
				r.valType()
			}
			for k := r.count(); k > 0 && r.err == nil; k-- { // results
				r.valType()
			}
		}
	case 2: // imports
		for n := r.count(); n > 0 && r.err == nil; n-- {
			r.name() // module
			r.name() // name
			switch kind := r.byte(); kind {
			case 0x00: // function
				r.u32()
			case 0x01:
				m.table(r)
			case 0x02:
				r.limits()
				m.memories++
			case 0x03:
				r.valType()
				r.mutability()
				m.importedGlobals++
			default:
				if r.err == nil {
					return fmt.Errorf("import of kind %#x (tags are not supported)", kind)
				}
			}
		}
	case 3: // functions
		for n := r.count(); n > 0 && r.err == nil; n-- {
			r.u32()
		}
	case 4: // tables
		for n := r.count(); n > 0 && r.err == nil; n-- {
			m.table(r)
		}
	case 5: // memories
		n := r.count()
		for k := n; k > 0 && r.err == nil; k-- {
			r.limits()
		}
		m.memories += n
	case 6: // globals
		n := r.count()
		for k := n; k > 0 && r.err == nil; k-- {
			r.valType()
			r.mutability()
			r.constExpr()
		}
		m.globals = n
	case 7: // exports
		for n := r.count(); n > 0 && r.err == nil; n-- {
			r.name()
			if kind := r.byte(); r.err == nil && kind > 0x03 {
				return fmt.Errorf("export of kind %#x", kind)
			}
			r.u32()
		}
	case 8, 12: // start function, data count
		r.u32()
	case 9: // elements
		for n := r.count(); n > 0 && r.err == nil; n-- {
			r.elementSegment()
		}
	case 11: // data
		for n := r.count(); n > 0 && r.err == nil; n-- {
			switch prefix := r.u32(); prefix {
			case 0:
				r.constExpr()
			case 1:
			case 2:
				r.u32()
				r.constExpr()
			default:
				if r.err == nil {
					return fmt.Errorf("data segment of kind %d", prefix)
				}
			}
			r.name() // the bytes: a vector of bytes, as a name is
		}
	case 13:
		return errors.New("tags (exception handling) are not supported")
	default:
		return errors.New("unknown section")
	}
	if r.err != nil {
		return r.err
	}
	if r.i != len(body) {
		return errors.New("the entries end before the section does")
	}
	return nil
}

// table reads a table type and adds its initial size to the module's.
func (m *moduleShape) table(r *reader) {
	if t := r.byte(); r.err == nil && t != 0x70 && t != 0x6f {
		r.fail(fmt.Errorf("table of type %#x", t))
		return
	}
	min, max, hasMax := r.limits()
	m.tableElems += uint64(min)
	if r.err == nil && hasMax && max < min {
		r.fail(errors.New("a table's maximum is below its minimum"))
	}
	if r.err == nil && m.tableElems > maxTableElems {
		r.fail(fmt.Errorf("tables of more than %d elements in all", maxTableElems))
	}
}

// boundTables rewrites the table section (read by check) so that every table has a maximum
// and the maximums add up to at most maxTableElems: wazero grows a table without a maximum
// to whatever table.grow asks, up to 2^32-1 elements of 8 bytes, outside memory_pages. The
// elements left once every table has its minimum go to the tables in order, each up to the
// maximum it declared; a table.grow beyond its table's maximum fails (returns -1), as the
// format lets any grow fail. Go's compiler declares one table, without a maximum.
func (m *moduleShape) boundTables(body []byte) []byte {
	left := maxTableElems - m.tableElems
	r := &reader{b: body}
	n := r.count()
	out := appendU32(nil, n)
	for ; n > 0; n-- {
		t := r.byte()
		min, max, hasMax := r.limits()
		room := uint64(math.MaxUint32) - uint64(min)
		if hasMax {
			room = uint64(max - min)
		}
		room = min64(room, left)
		left -= room
		out = appendU32(append(out, t, 0x01), min)
		out = appendU32(out, min+uint32(room))
	}
	return out
}

func min64(a, b uint64) uint64 {
	if a < b {
		return a
	}
	return b
}

// checkNames reads the name section's subsections, each to its end: the runtime decodes the
// function and local names by the counts they hold, whatever the subsection's size says.
func checkNames(b []byte) error {
	r := &reader{b: b}
	for r.i < len(r.b) && r.err == nil {
		id := r.byte()
		sub := &reader{b: r.bytes(int(r.u32()))}
		if r.err != nil {
			break
		}
		switch id {
		case 0: // module name
			sub.name()
		case 1: // function names
			sub.nameMap()
		case 2: // local names
			for n := sub.count(); n > 0 && sub.err == nil; n-- {
				sub.u32()
				sub.nameMap()
			}
		default: // skipped by the runtime
			sub.i = len(sub.b)
		}
		if sub.err == nil && sub.i != len(sub.b) {
			sub.err = errors.New("the entries end before the subsection does")
		}
		if sub.err != nil {
			return fmt.Errorf("name section: %w", sub.err)
		}
	}
	if r.err != nil {
		return fmt.Errorf("name section: %w", r.err)
	}
	return nil
}

// instrumentCode rewrites the code section's function bodies.
func instrumentCode(b []byte, check []byte, stop uint32) ([]byte, error) {
	r := &reader{b: b}
	n := r.count()
	out := appendU32(nil, n)
	var fn []byte
	for i := range n {
		size := r.u32()
		body := r.bytes(int(size))
		if r.err != nil {
			return nil, r.err
		}
		var err error
		if fn, err = instrumentBody(fn[:0], body, check, stop); err != nil {
			return nil, fmt.Errorf("function %d: %w", i, err)
		}
		out = appendU32(out, uint32(len(fn)))
		out = append(out, fn...)
	}
	if r.i != len(b) {
		return nil, errors.New("trailing bytes")
	}
	return out, nil
}

func instrumentBody(out, body []byte, check []byte, stop uint32) ([]byte, error) {
	r := &reader{b: body}
	var locals uint64
	for groups := r.count(); groups > 0 && r.err == nil; groups-- {
		locals += uint64(r.u32())
		if t := r.byte(); r.err == nil && !isValType(t) {
			return nil, fmt.Errorf("local of unsupported type %#x", t)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if locals > maxLocals {
		return nil, fmt.Errorf("%d locals (at most %d)", locals, maxLocals)
	}
	out = append(out, body[:r.i]...)
	out = append(out, check...)
	for r.i < len(body) {
		start := r.i
		op := r.byte()
		if err := skipImmediates(op, r, stop); err != nil {
			return nil, err
		}
		if r.err != nil {
			return nil, r.err
		}
		out = append(out, body[start:r.i]...)
		if op == 0x03 { // loop: check at each iteration
			out = append(out, check...)
		}
	}
	return out, nil
}

func isValType(t byte) bool {
	switch t {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
		return true
	}
	return false
}

// skipImmediates reads the immediates of the instruction op. Code that names the stop
// global (an index the module did not have) is refused.
func skipImmediates(op byte, r *reader, stop uint32) error {
	switch {
	case op == 0x02 || op == 0x03 || op == 0x04: // block, loop, if
		r.blockType()
	case op == 0x0c || op == 0x0d: // br, br_if
		r.u32()
	case op == 0x0e: // br_table
		for range r.count() {
			r.u32()
		}
		r.u32()
	case op == 0x10 || op == 0x12: // call, return_call
		r.u32()
	case op == 0x11 || op == 0x13: // call_indirect, return_call_indirect
		r.u32()
		r.u32()
	case op == 0x1c: // select with types: the runtime reads the count as one byte, and wants 1
		if n := r.byte(); r.err == nil && n != 1 {
			return errors.New("select with other than one type")
		}
		r.valType()
	case op >= 0x20 && op <= 0x22: // local.get, local.set, local.tee
		r.u32()
	case op == 0x23 || op == 0x24: // global.get, global.set
		if r.u32() >= stop && r.err == nil {
			return errors.New("an instruction names a global the module does not have")
		}
	case op == 0x25 || op == 0x26: // table.get, table.set
		r.u32()
	case op >= 0x28 && op <= 0x3e: // loads and stores
		r.memarg()
	case op == 0x3f || op == 0x40: // memory.size, memory.grow
		r.u32()
	case op == 0x41:
		r.leb(32)
	case op == 0x42:
		r.leb(64)
	case op == 0x43:
		r.bytes(4)
	case op == 0x44:
		r.bytes(8)
	case op == 0xd0: // ref.null
		if t := r.byte(); r.err == nil && t != 0x70 && t != 0x6f {
			return fmt.Errorf("ref.null of type %#x", t)
		}
	case op == 0xd2: // ref.func
		r.u32()
	case op == 0xfc:
		switch sub := r.u32(); {
		case sub <= 7: // saturating truncations
		case sub == 8, sub == 10, sub == 12, sub == 14: // memory.init, memory.copy, table.init, table.copy
			r.u32()
			r.u32()
		case sub == 9, sub == 11, sub == 13, sub == 15, sub == 16, sub == 17: // data.drop, memory.fill, elem.drop, table.grow, table.size, table.fill
			r.u32()
		default:
			return fmt.Errorf("unknown instruction 0xfc %d", sub)
		}
	case op == 0xfd:
		// The runtime reads a vector instruction's number as one byte, not as the LEB128
		// number the format has (two bytes from 128 on, the second then read as an
		// instruction of its own): read the same way, both see the same instructions.
		switch sub := r.byte(); {
		case sub <= 11 || sub == 92 || sub == 93: // v128 loads and stores
			r.memarg()
		case sub == 12 || sub == 13: // v128.const, i8x16.shuffle
			r.bytes(16)
		case sub >= 21 && sub <= 34: // extract and replace lane
			r.byte()
		case sub >= 84 && sub <= 91: // load and store lane
			r.memarg()
			r.byte()
		}
	case op <= 0x01, op == 0x05, op == 0x0b, op == 0x0f, op == 0x1a, op == 0x1b, // unreachable, nop, else, end, return, drop, select
		op >= 0x45 && op <= 0xc4, // numeric
		op == 0xd1:               // ref.is_null
	default:
		return fmt.Errorf("unsupported instruction %#x", op)
	}
	return nil
}

// reader decodes the binary format; the first error sticks.
type reader struct {
	b   []byte
	i   int
	err error
}

var errShort = errors.New("unexpected end")

func (r *reader) byte() byte {
	if r.i >= len(r.b) {
		r.err = errShort
		return 0
	}
	c := r.b[r.i]
	r.i++
	return c
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || r.i+n > len(r.b) || r.i+n < r.i {
		r.err = errShort
		r.i = len(r.b)
		return nil
	}
	b := r.b[r.i : r.i+n]
	r.i += n
	return b
}

// fail records err unless an error came first.
func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.i = len(r.b)
}

// leb reads a LEB128 number of at most bits bits and returns its low 32 bits unsigned.
func (r *reader) leb(bits int) uint32 {
	var v uint64
	for shift := 0; ; shift += 7 {
		if shift >= bits+7 {
			r.fail(errors.New("number too long"))
			return 0
		}
		c := r.byte()
		if r.err != nil {
			return 0
		}
		if shift < 64 {
			v |= uint64(c&0x7f) << shift
		}
		if c&0x80 == 0 {
			return uint32(v)
		}
	}
}

// u32 reads an unsigned 32-bit LEB128 number as the runtime does: at most 5 bytes, and
// the unused bits of the fifth zero.
func (r *reader) u32() uint32 {
	var v uint32
	for k := 0; k < 5; k++ {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		if c < 0x80 {
			if k == 4 && c&0xf0 != 0 {
				break
			}
			return v | uint32(c)<<(7*k)
		}
		v |= uint32(c&0x7f) << (7 * k)
	}
	r.fail(errors.New("number too long"))
	return 0
}

// count reads the length of a vector. Every entry takes at least one byte, so a length
// beyond the bytes left is an error, caught before anything loops over it or sizes a
// module by it.
func (r *reader) count() uint32 {
	n := r.u32()
	if r.err == nil && uint64(n) > uint64(len(r.b)-r.i) {
		r.fail(errors.New("vector length beyond the section's end"))
		return 0
	}
	return n
}

// name reads a length and that many bytes (a name, or the bytes of a data segment).
func (r *reader) name() []byte {
	return r.bytes(int(r.u32()))
}

// nameMap reads a name map: a vector of an index and a name.
func (r *reader) nameMap() {
	for n := r.count(); n > 0 && r.err == nil; n-- {
		r.u32()
		r.name()
	}
}

// valType reads a value type of one byte. The reference types of the function references
// and GC proposals (0x63, 0x64 and a heap type) are refused.
func (r *reader) valType() {
	if t := r.byte(); r.err == nil && !isValType(t) {
		r.fail(fmt.Errorf("value of unsupported type %#x", t))
	}
}

func (r *reader) mutability() {
	if c := r.byte(); r.err == nil && c > 1 {
		r.fail(fmt.Errorf("mutability %#x", c))
	}
}

// limits reads the limits of a memory or a table. Shared ones (flags 2 and 3) are read, and
// refused by wazero: no threads.
func (r *reader) limits() (min, max uint32, hasMax bool) {
	flags := r.byte()
	if r.err == nil && flags > 3 {
		r.fail(fmt.Errorf("limits of flags %#x", flags))
	}
	min = r.u32()
	if hasMax = flags&0x01 != 0; hasMax {
		max = r.u32()
	}
	return min, max, hasMax
}

// constExpr reads a constant expression, up to its end instruction.
func (r *reader) constExpr() {
	for r.err == nil {
		switch op := r.byte(); op {
		case 0x0b: // end
			return
		case 0x41: // i32.const
			r.leb(32)
		case 0x42: // i64.const
			r.leb(64)
		case 0x43: // f32.const
			r.bytes(4)
		case 0x44: // f64.const
			r.bytes(8)
		case 0x23, 0xd2: // global.get, ref.func
			r.u32()
		case 0xd0: // ref.null
			if t := r.byte(); r.err == nil && t != 0x70 && t != 0x6f {
				r.fail(fmt.Errorf("ref.null of type %#x", t))
			}
		case 0xfd: // v128.const (the runtime reads its number as one byte)
			if sub := r.byte(); r.err == nil && sub != 12 {
				r.fail(fmt.Errorf("instruction 0xfd %d in a constant expression", sub))
			}
			r.bytes(16)
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // add, sub, mul (extended constants)
		default:
			if r.err == nil {
				r.fail(fmt.Errorf("instruction %#x in a constant expression", op))
			}
		}
	}
}

// elementSegment reads one segment of the element section.
func (r *reader) elementSegment() {
	funcs := func() {
		for n := r.count(); n > 0 && r.err == nil; n-- {
			r.u32()
		}
	}
	exprs := func() {
		for n := r.count(); n > 0 && r.err == nil; n-- {
			r.constExpr()
		}
	}
	kind := func() {
		if k := r.byte(); r.err == nil && k != 0 {
			r.fail(fmt.Errorf("element kind %#x", k))
		}
	}
	refType := func() {
		if t := r.byte(); r.err == nil && t != 0x70 && t != 0x6f {
			r.fail(fmt.Errorf("elements of type %#x", t))
		}
	}
	switch prefix := r.u32(); prefix {
	case 0:
		r.constExpr()
		funcs()
	case 1, 3:
		kind()
		funcs()
	case 2:
		r.u32()
		r.constExpr()
		kind()
		funcs()
	case 4:
		r.constExpr()
		exprs()
	case 5, 7:
		refType()
		exprs()
	case 6:
		r.u32()
		r.constExpr()
		refType()
		exprs()
	default:
		if r.err == nil {
			r.fail(fmt.Errorf("element segment of kind %d", prefix))
		}
	}
}

func (r *reader) memarg() {
	// Multiple memories (a memory index after an alignment with bit 6 set) are not
	// supported by the runtime, which would read the index as the offset.
	if align := r.u32(); r.err == nil && align&0x40 != 0 {
		r.fail(errors.New("a memory access names a memory index"))
	}
	r.u32() // the offset: 32 bits, the runtime having no 64-bit memories
}

// blockType reads a block type: none, a value type of one byte, or a type index. The
// runtime reads 0x63 and 0x64 with a heap type after them: refused, as in valType.
func (r *reader) blockType() {
	if r.i < len(r.b) && (r.b[r.i] == 0x40 || isValType(r.b[r.i])) {
		r.i++
		return
	}
	start := r.i
	r.leb(33)
	if r.err != nil {
		return
	}
	// The sign is bit 6 of the last byte, or bit 32 of the number in a fifth byte: a
	// negative number is not a type index.
	last, sign := r.b[r.i-1], byte(0x40)
	if r.i-start == 5 {
		sign = 0x50
	}
	if last&sign != 0 {
		r.fail(fmt.Errorf("block of unsupported type %#x", r.b[start]))
	}
}

// appendS32 appends v as a signed LEB128 number (an i32.const immediate).
func appendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
