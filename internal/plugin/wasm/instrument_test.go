package wasm

import (
	"bytes"
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// loopModule is a module with a memory whose exported "spin" loops until its argument counts down to 0,
// written out byte by byte: (func (export "spin") (param i32) (loop (br_if 0 (i32.ne
// (local.tee 0 (i32.sub (local.get 0) (i32.const 1))) (i32.const 0))))).
var loopModule = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
	0x01, 0x05, 0x01, 0x60, 0x01, 0x7f, 0x00, // type: (i32) -> ()
	0x03, 0x02, 0x01, 0x00, // function 0 of type 0
	0x05, 0x03, 0x01, 0x00, 0x01, // memory: one, of at least one page
	0x07, 0x08, 0x01, 0x04, 's', 'p', 'i', 'n', 0x00, 0x00, // export "spin"
	0x0a, 0x13, 0x01, 0x11, 0x00, // code: one body of 0x11 bytes, no locals
	0x03, 0x40, // loop
	0x20, 0x00, 0x41, 0x01, 0x6b, 0x22, 0x00, // local.get 0, i32.const 1, i32.sub, local.tee 0
	0x41, 0x00, 0x47, 0x0d, 0x00, // i32.const 0, i32.ne, br_if 0
	0x0b, 0x0b, // end loop, end function
}

func TestInstrumentStopsALoop(t *testing.T) {
	m := load(t, loopModule)
	spin := m.ExportedFunction("spin")
	if _, err := spin.Call(t.Context(), 1000); err != nil {
		t.Fatalf("a call that ends by itself failed: %v", err)
	}
	stop, ok := m.ExportedGlobal(stopExport).(api.MutableGlobal)
	if !ok {
		t.Fatal("no mutable stop flag exported")
	}
	// 0 counts down through every i32, for seconds. A garbage collection in the meantime
	// must not wait for the call to end (it steps out to Go now and then), and the flag,
	// set while it runs, stops it at a loop check.
	done := make(chan error, 1)
	go func() {
		_, err := spin.Call(context.Background(), 0)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	runtime.GC()
	stop.Set(1)
	if err := <-done; err == nil {
		t.Fatal("a call with the stop flag set ran to its end")
	}
}

func TestInstrumentRefusesWhatItCannotCheck(t *testing.T) {
	for name, code := range map[string][]byte{
		"not wasm":  []byte("\x7fELF...."),
		"cut short": loopModule[:len(loopModule)-3],
		// A global.get of index 0 in a module with no globals: after instrumenting, index
		// 0 would be the stop flag, which the module must not be able to reach.
		"names the stop flag": bytes.Replace(loopModule, []byte{0x20, 0x00, 0x41, 0x01}, []byte{0x23, 0x00, 0x41, 0x01}, 1),
		"unknown instruction": bytes.Replace(loopModule, []byte{0x6b}, []byte{0x06}, 1),
	} {
		if _, err := instrument(code); err == nil {
			t.Errorf("%s: instrumented", name)
		}
	}
}

// sec is a section: its id, its size, its body.
func sec(id byte, body ...byte) []byte {
	return append(appendU32([]byte{id}, uint32(len(body))), body...)
}

// wasmModule is a module of the sections given.
func wasmModule(sections ...[]byte) []byte {
	return slices.Concat(append([][]byte{[]byte("\x00asm\x01\x00\x00\x00")}, sections...)...)
}

// spinType, spinFunc and spinExport are the type, function and export sections of a module
// with one function "spin" of type () -> ().
var (
	spinType   = sec(1, 0x01, 0x60, 0x00, 0x00)
	spinFunc   = sec(3, 0x01, 0x00)
	spinExport = sec(7, 0x01, 0x04, 's', 'p', 'i', 'n', 0x00, 0x00)
)

// codeOf is the code section of one function with no locals and the instructions given.
func codeOf(instrs ...byte) []byte {
	body := append([]byte{0x00}, instrs...)
	return sec(10, append(appendU32([]byte{0x01}, uint32(len(body))), body...)...)
}

// The added global and export are spliced into the module's own sections, which must hold
// exactly the entries their counts say: a section with bytes after its entries had the
// runtime read the added entries as the end of the module's last one, and the stop flag was
// missing or was some other global (CI's fuzz stage: "instrumented module without a mutable
// stop flag"; the inputs are kept in testdata/fuzz/FuzzInstrument).
func TestInstrumentStopFlagIsTheGlobalItAdded(t *testing.T) {
	for name, code := range map[string][]byte{
		// An export section of no entries and a byte 13: the runtime read it as the length of
		// a name that took in the added export, and "autoglm.stop" was not exported.
		"export section longer than its entries": wasmModule(sec(7, 0x00, 0x0d)),
		// A global section of no entries and the start of an f32 global: the runtime read it
		// and the added $stop as one immutable f32 global, the one "autoglm.stop" named.
		"global section longer than its entries": wasmModule(sec(6, 0x00, 0x7d, 0x00, 0x43)),
	} {
		if _, err := instrument(code); err == nil {
			t.Errorf("%s: instrumented", name)
		}
	}

	// A module with a global and exports of its own keeps them, and the flag is the new one.
	code := wasmModule(spinType, spinFunc,
		sec(6, 0x01, 0x7f, 0x00, 0x41, 0x2a, 0x0b), // (global i32 (i32.const 42))
		sec(7, 0x02, 0x04, 's', 'p', 'i', 'n', 0x00, 0x00, 0x01, 'g', 0x03, 0x00),
		codeOf(0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b)) // loop br 0 end
	m := load(t, code)
	if g := m.ExportedGlobal("g"); g == nil || g.Get() != 42 {
		t.Fatalf("the module's own global export: %v", g)
	}
	stopsWhenFlagged(t, m)
}

// load instruments code and instantiates it in a runtime closed when the test ends.
func load(t *testing.T, code []byte) api.Module {
	t.Helper()
	out, err := instrument(code)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	t.Cleanup(func() { _ = rt.Close(ctx) })
	m, err := rt.Instantiate(ctx, out)
	if err != nil {
		t.Fatalf("the instrumented module does not load: %v", err)
	}
	return m
}

// stopsWhenFlagged calls m's "spin", which loops forever, sets the stop flag and waits for
// the call to fail. A loop the check is missing from makes the test run until go test's
// -timeout ends it.
func stopsWhenFlagged(t *testing.T, m api.Module) {
	t.Helper()
	stop, ok := m.ExportedGlobal(stopExport).(api.MutableGlobal)
	if !ok {
		t.Fatal("no mutable stop flag exported")
	}
	done := make(chan error, 1)
	go func() {
		_, err := m.ExportedFunction("spin").Call(context.Background())
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	stop.Set(1)
	if err := <-done; err == nil {
		t.Fatal("a call with the stop flag set ran to its end")
	}
}

// instrument reads every instruction as the runtime does: where the two read an instruction
// with different lengths, a loop the runtime runs could be, to instrument, the immediates of
// some other instruction, and go without its check.
func TestInstrumentReadsInstructionsAsTheRuntimeDoes(t *testing.T) {
	// A block of type "ref null 12" (0x63 and a heap type: two bytes, one byte to instrument,
	// which then read 12 as br, and went on out of step through an i32.const and a loop
	// br 0 that it took for data.drop and memory.grow). Refused: such types are GC and
	// function-references types, which the runtime does not run.
	types := []byte{0x0d}
	for range 13 {
		types = append(types, 0x60, 0x00, 0x00)
	}
	refBlock := wasmModule(sec(1, types...), spinFunc, spinExport,
		codeOf(0x02, 0x63, 0x0c, 0x41, 0xfc, 0x09, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x00, 0x0b, 0x1a, 0x0b))
	if _, err := instrument(refBlock); err == nil {
		t.Error("a block of a reference type: instrumented")
	}

	// A vector instruction's number: the runtime reads one byte, 0x80 here (then 0x00 as
	// unreachable, in an if not taken), where a LEB128 reading makes 0x80 0x00 instruction
	// 0, v128.load, whose alignment and offset took in the "end" and the loop after it.
	instrs := []byte{0x41, 0x00, 0x04, 0x40, 0xfd, 0x0c} // i32.const 0, if, v128.const
	instrs = append(instrs, make([]byte, 16)...)
	instrs = append(instrs, 0xfd, 0x80, 0x00, 0x0b, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b)
	m := load(t, wasmModule(spinType, spinFunc, spinExport, codeOf(instrs...)))
	stopsWhenFlagged(t, m)
}

// A length in a module is checked against the bytes it counts before the runtime sees it:
// the runtime's decoder sizes slices by the lengths it reads, and a few bytes made it ask
// for gigabytes (the fuzzing process died of it: exit status 2, out of memory, or a
// gigabyte-sized allocation zeroed for longer than the fuzzer waits).
func TestInstrumentRefusesSizesBeyondTheModule(t *testing.T) {
	huge := []byte{0xff, 0xff, 0xff, 0xff, 0x0f} // 2^32-1
	code := func(size []byte) []byte {           // one function whose one local group holds size i32s
		b := slices.Concat([]byte{0x01}, size, []byte{0x7f, 0x0b})
		return sec(10, append(appendU32([]byte{0x01}, uint32(len(b))), b...)...)
	}
	locals := func(n uint32) []byte { return code(appendU32(nil, n)) }
	for name, code := range map[string][]byte{
		// FuzzInstrument's input 3ac788eb6b4f72a9: a type of 2^28-1 parameters, 2 GiB.
		"parameters":     wasmModule(sec(1, slices.Concat([]byte{0x01, 0x60}, huge, []byte{0x00})...)),
		"locals":         wasmModule(spinType, spinFunc, code(huge)),
		"too many":       wasmModule(spinType, spinFunc, locals(maxLocals+1)),
		"function names": wasmModule(sec(0, slices.Concat([]byte{0x04, 'n', 'a', 'm', 'e', 0x01, 0x05}, huge)...)),
		"export name":    wasmModule(sec(7, slices.Concat([]byte{0x01}, huge, []byte{0x00})...)),
		"custom name":    wasmModule(sec(0, huge...)),
		"element list":   wasmModule(sec(9, slices.Concat([]byte{0x01, 0x01, 0x00}, huge)...)),
		"data bytes":     wasmModule(sec(11, slices.Concat([]byte{0x01, 0x01}, huge)...)),
		"table":          wasmModule(sec(4, 0x01, 0x70, 0x00, 0x80, 0x80, 0x80, 0x40)), // 2^27 elements
	} {
		if _, err := instrument(code); err == nil {
			t.Errorf("%s: instrumented", name)
		}
	}

	// At the limits, a module is instrumented and runs.
	m := load(t, wasmModule(spinType, spinFunc,
		sec(4, slices.Concat([]byte{0x01, 0x70, 0x00}, appendU32(nil, maxTableElems))...),
		spinExport, locals(maxLocals)))
	if _, err := m.ExportedFunction("spin").Call(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// wazero grows a table without a maximum as far as table.grow asks (2^32-1 elements of 8
// bytes: the process dies out of memory), outside memory_pages: every table gets a maximum,
// and all of them together at most maxTableElems elements.
func TestInstrumentBoundsTableGrowth(t *testing.T) {
	code := wasmModule(sec(1, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f), // (i32) -> i32
		spinFunc,
		sec(4, 0x01, 0x70, 0x00, 0x01), // a funcref table of 1 element, no maximum (as Go declares it)
		sec(7, 0x01, 0x04, 'g', 'r', 'o', 'w', 0x00, 0x00),
		codeOf(0xd0, 0x70, 0x20, 0x00, 0xfc, 0x0f, 0x00, 0x0b)) // table.grow 0 (ref.null func) (local.get 0)
	m := load(t, code)
	grow := func(n uint32) int32 {
		res, err := m.ExportedFunction("grow").Call(t.Context(), uint64(n))
		if err != nil {
			t.Fatal(err)
		}
		return int32(res[0])
	}
	if old := grow(maxTableElems); old != -1 {
		t.Fatalf("a table grown past %d elements: grow returned %d, want -1", maxTableElems, old)
	}
	if old := grow(maxTableElems - 1); old != 1 {
		t.Fatalf("a table grown to %d elements: grow returned %d, want 1", maxTableElems, old)
	}
	if old := grow(1); old != -1 {
		t.Fatalf("a table grown past %d elements: grow returned %d, want -1", maxTableElems, old)
	}
}

// FuzzInstrument: any bytes are refused or instrumented without a panic, and what
// instrument accepts and wazero compiles still exports the stop flag.
func FuzzInstrument(f *testing.F) {
	f.Add(loopModule)
	f.Add(loopModule[:8])
	f.Fuzz(func(t *testing.T, code []byte) {
		out, err := instrument(code)
		if err != nil {
			return
		}
		ctx := context.Background()
		// Memory capped as the loader caps it (memory_pages): uncapped, a module of 65536
		// pages has every instance start allocate 4 GiB, which the operator allows or not.
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithMemoryLimitPages(16))
		defer rt.Close(ctx)
		cm, err := rt.CompileModule(ctx, out)
		if err != nil {
			return
		}
		m, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithStartFunctions())
		if err != nil {
			return
		}
		if _, ok := m.ExportedGlobal(stopExport).(api.MutableGlobal); !ok {
			t.Fatalf("instrumented module without a mutable stop flag")
		}
	})
}
