package wasm

import (
	"bytes"
	"context"
	"runtime"
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
	code, err := instrument(loopModule)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	m, err := rt.Instantiate(ctx, code)
	if err != nil {
		t.Fatalf("the instrumented module does not load: %v", err)
	}
	spin := m.ExportedFunction("spin")
	if _, err := spin.Call(ctx, 1000); err != nil {
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
		_, err := spin.Call(ctx, 0)
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
		rt := wazero.NewRuntime(ctx)
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
