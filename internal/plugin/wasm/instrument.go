package wasm

import (
	"errors"
	"fmt"
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
// Only the sections it changes are decoded: the imports (to count imported globals), the
// globals and exports (entries added: the flag and a counter) and the code (every instruction, to find the loops).
// An instruction it does not know is an error: the module is refused rather than run
// unchecked.
func instrument(code []byte) ([]byte, error) {
	if len(code) < 8 || string(code[:4]) != "\x00asm" || code[4] != 1 || code[5] != 0 || code[6] != 0 || code[7] != 0 {
		return nil, errors.New("not a WebAssembly module (version 1)")
	}
	type section struct {
		id   byte
		body []byte
	}
	var secs []section
	r := &reader{b: code, i: 8}
	for r.i < len(r.b) {
		id := r.byte()
		n := r.u32()
		body := r.bytes(int(n))
		if r.err != nil {
			return nil, fmt.Errorf("section %d: %w", id, r.err)
		}
		switch id {
		case 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 13:
			// Sections that are vectors: a length beyond the section's bytes is refused
			// here, before the runtime's decoder sizes anything by it.
			v := &reader{b: body}
			v.count()
			if v.err != nil {
				return nil, fmt.Errorf("section %d: %w", id, v.err)
			}
		}
		secs = append(secs, section{id, body})
	}
	var importedGlobals, globals uint32
	hasMemory := false
	for _, s := range secs {
		switch s.id {
		case 2:
			n, mems, err := countImports(s.body)
			if err != nil {
				return nil, fmt.Errorf("import section: %w", err)
			}
			importedGlobals = n
			hasMemory = hasMemory || mems > 0
		case 5:
			m := &reader{b: s.body}
			hasMemory = hasMemory || m.u32() > 0
		case 6:
			g := &reader{b: s.body}
			globals = g.count()
			if g.err != nil {
				return nil, fmt.Errorf("global section: %w", g.err)
			}
		}
	}
	stop := importedGlobals + globals
	count := stop + 1
	// if (global.get $stop) { unreachable }
	check := appendU32([]byte{0x23}, stop)
	check = append(check, 0x04, 0x40, 0x00, 0x0b)
	if hasMemory {
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
			g := &reader{b: s.body}
			n := g.count()
			if g.err != nil {
				return nil, fmt.Errorf("global section: %w", g.err)
			}
			emit(6, append(append(appendU32(nil, n+2), s.body[g.i:]...), newGlobal...))
			addedGlobal = true
		case 7:
			e := &reader{b: s.body}
			n := e.count()
			if e.err != nil {
				return nil, fmt.Errorf("export section: %w", e.err)
			}
			emit(7, append(append(appendU32(nil, n+1), s.body[e.i:]...), newExport...))
			addedExport = true
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

// countImports counts the imported globals and memories.
func countImports(b []byte) (globals, memories uint32, err error) {
	r := &reader{b: b}
	n := r.count()
	for range n {
		r.bytes(int(r.u32())) // module
		r.bytes(int(r.u32())) // name
		switch kind := r.byte(); kind {
		case 0x00: // function
			r.u32()
		case 0x01: // table
			r.byte()
			r.limits()
		case 0x02: // memory
			r.limits()
			memories++
		case 0x03: // global
			r.byte()
			r.byte()
			globals++
		case 0x04: // tag
			r.byte()
			r.u32()
		default:
			return 0, 0, fmt.Errorf("unknown import kind %#x", kind)
		}
		if r.err != nil {
			return 0, 0, r.err
		}
	}
	return globals, memories, r.err
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
	groups := r.count()
	for range groups {
		r.u32()
		if t := r.byte(); !isValType(t) {
			return nil, fmt.Errorf("local of unsupported type %#x", t)
		}
	}
	if r.err != nil {
		return nil, r.err
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
	case op == 0x1c: // select with types
		for range r.count() {
			r.byte()
		}
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
		r.byte()
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
		switch sub := r.u32(); {
		case sub <= 11 || sub == 92 || sub == 93: // v128 loads and stores
			r.memarg()
		case sub == 12 || sub == 13: // v128.const, i8x16.shuffle
			r.bytes(16)
		case sub >= 21 && sub <= 34: // extract and replace lane
			r.byte()
		case sub >= 84 && sub <= 91: // load and store lane
			r.memarg()
			r.byte()
		case sub <= 255:
		default:
			return fmt.Errorf("unknown instruction 0xfd %d", sub)
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

// leb reads a LEB128 number of at most bits bits and returns its low 32 bits unsigned.
func (r *reader) leb(bits int) uint32 {
	var v uint64
	for shift := 0; ; shift += 7 {
		if shift >= bits+7 {
			r.err = errors.New("number too long")
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

func (r *reader) u32() uint32 { return r.leb(32) }

// count reads the length of a vector. Every entry takes at least one byte, so a length
// beyond the bytes left is an error, caught before anything loops over it or sizes a
// module by it.
func (r *reader) count() uint32 {
	n := r.u32()
	if r.err == nil && uint64(n) > uint64(len(r.b)-r.i) {
		r.err = errors.New("vector length beyond the section's end")
		return 0
	}
	return n
}

func (r *reader) limits() {
	flags := r.byte()
	bits := 32
	if flags&0x04 != 0 {
		bits = 64
	}
	r.leb(bits)
	if flags&0x01 != 0 {
		r.leb(bits)
	}
}

func (r *reader) memarg() {
	align := r.u32()
	if align&0x40 != 0 { // multiple memories: a memory index follows
		r.u32()
	}
	r.leb(64)
}

func (r *reader) blockType() {
	if r.i < len(r.b) && (r.b[r.i] == 0x40 || isValType(r.b[r.i])) {
		r.i++
		return
	}
	r.leb(33)
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
