// Package wasm is the "wasm" plugin type: a plugin compiled to WebAssembly, run by wazero (pure
// Go, no cgo) in a sandbox. A module sees no file system unless the configuration mounts a
// directory (read-only), no network (WASI preview 1 has none), no environment variables
// but those configured, and a fake clock unless given the real one; its memory is capped
// (memory_pages, 64 KiB each) and each hook call is stopped when the entry's timeout passes.
// A module that traps, runs out of memory or is stopped fails that call (or is skipped, per
// on_error) and its instance is thrown away; the next call gets a fresh one.
//
// The ABI (docs/PLUGINS.md has it in full): the module exports memory, alloc(size i32) i32,
// free(ptr i32), and any of on_request, on_response, on_chunk: (ptr i32, len i32) i64. The
// host writes a JSON document at a buffer from alloc, calls the hook, and reads the answer:
// a JSON document whose address and length are packed in the result as ptr<<32 | len, or 0
// for "no change". It frees both buffers. An optional configure(ptr, len) i64 receives the
// entry's config object once per instance and answers 0, {"error": "..."}, or {"hooks": [...]}
// naming the hooks the configuration needs (ABI 1.1).
package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/open-autoglm/autoglm/internal/evloop"
	"github.com/open-autoglm/autoglm/internal/plugin"
)

func init() {
	plugin.Register(plugin.Info{ID: "wasm", New: func() plugin.Plugin { return new(Plugin) }})
}

// Config is the plugin's section.
type Config struct {
	// Path is the module file (.wasm), relative to the configuration file's directory.
	// Required.
	Path string `yaml:"path" json:"path"`
	// MemoryPages caps the module's memory in 64 KiB pages. Default 512 (32 MiB).
	MemoryPages uint32 `yaml:"memory_pages" json:"memory_pages"`
	// Instances is how many calls may run at once (one module instance each). Default 4.
	Instances int `yaml:"instances" json:"instances"`
	// Mounts maps a directory inside the sandbox to one on the host, read-only. Default none.
	Mounts map[string]string `yaml:"mounts" json:"mounts"`
	// Env sets the module's environment variables. Default none.
	Env map[string]string `yaml:"env" json:"env"`
	// Clock gives the module the real wall clock and a real monotonic clock. Default false:
	// fake clocks.
	Clock bool `yaml:"clock" json:"clock"`
	// Config is handed to the module's configure export as JSON.
	Config map[string]any `yaml:"config" json:"config"`
}

// The hooks a module may export.
const (
	hookRequest  = "on_request"
	hookResponse = "on_response"
	hookChunk    = "on_chunk"
)

// Plugin runs a module.
type Plugin struct {
	name   string
	rt     wazero.Runtime
	mod    wazero.CompiledModule
	modCfg wazero.ModuleConfig
	conf   []byte
	has    map[string]bool
	pool   chan *instance
	slots  chan struct{}
	stderr io.Writer
}

var (
	_ plugin.RequestHook  = (*Plugin)(nil)
	_ plugin.ResponseHook = (*Plugin)(nil)
	_ plugin.ChunkHook    = (*Plugin)(nil)
	_ plugin.Cleaner      = (*Plugin)(nil)
	_ plugin.Blocking     = (*Plugin)(nil)
	_ plugin.HookSet      = (*Plugin)(nil)
)

// Provision reads, compiles and checks the module, and configures one instance of it, so a
// module that cannot start fails the configuration rather than the first request.
func (p *Plugin) Provision(ctx context.Context, s plugin.Section, env plugin.Env) error {
	var cfg Config
	if err := s.Decode(&cfg); err != nil {
		return err
	}
	if cfg.Path == "" {
		return errors.New("path: the module file is required")
	}
	if cfg.MemoryPages == 0 {
		cfg.MemoryPages = 512
	}
	if cfg.MemoryPages > 65536 {
		return errors.New("memory_pages: at most 65536 (4 GiB)")
	}
	if cfg.Instances == 0 {
		cfg.Instances = 4
	}
	if cfg.Instances < 0 || cfg.Instances > 256 {
		return errors.New("instances: between 1 and 256")
	}
	path := cfg.Path
	if !filepath.IsAbs(path) && env.Dir != "" {
		path = filepath.Join(env.Dir, path)
	}
	code, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("path: %w", err)
	}
	p.name = env.Name
	// Calls are stopped by the check instrument puts in every loop and function, not by
	// wazero's WithCloseOnContextDone, which made a Go module's calls 10 to 25 times slower.
	checked, err := instrument(code)
	if err != nil {
		return fmt.Errorf("path: not a usable WebAssembly module: %w", err)
	}
	p.rt = wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithMemoryLimitPages(cfg.MemoryPages).
		// Reserve the whole capped memory up front: growing it page by page copies it each
		// time, which made a Go module's hook calls three times slower (BenchmarkWasmHook).
		// The reservation is address space; pages cost memory when the module touches them.
		WithMemoryCapacityFromMax(true).
		// DWARF sections are not parsed: no module's debug data is read by the host, whose
		// checks (instrument) do not cover it. Traps still name functions (the name section).
		WithDebugInfoEnabled(false))
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, p.rt); err != nil {
		return err
	}
	p.mod, err = p.rt.CompileModule(ctx, checked)
	if err != nil {
		return fmt.Errorf("path: not a usable WebAssembly module: %w", err)
	}
	exports := p.mod.ExportedFunctions()
	p.has = map[string]bool{}
	for _, name := range []string{"alloc", "free", "configure", "on_request", "on_response", "on_chunk", "_initialize"} {
		_, p.has[name] = exports[name]
	}
	if !p.has["alloc"] || !p.has["free"] {
		return errors.New("the module does not export alloc and free (see the ABI in docs/PLUGINS.md)")
	}
	if !p.has["on_request"] && !p.has["on_response"] && !p.has["on_chunk"] {
		return errors.New("the module exports no hook (on_request, on_response or on_chunk)")
	}
	if _, ok := p.mod.ExportedMemories()["memory"]; !ok {
		return errors.New("the module does not export its memory")
	}
	p.conf, err = json.Marshal(cfg.Config)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if cfg.Config == nil {
		p.conf = []byte("{}")
	}
	fs := wazero.NewFSConfig()
	for _, guest := range slices.Sorted(maps.Keys(cfg.Mounts)) {
		host := cfg.Mounts[guest]
		if !filepath.IsAbs(host) && env.Dir != "" {
			host = filepath.Join(env.Dir, host)
		}
		if st, err := os.Stat(host); err != nil || !st.IsDir() {
			return fmt.Errorf("mounts.%s: %q is not a directory", guest, host)
		}
		fs = fs.WithReadOnlyDirMount(host, guest)
	}
	mc := wazero.NewModuleConfig().WithFSConfig(fs).WithName("").WithStartFunctions()
	if p.has["_initialize"] {
		mc = mc.WithStartFunctions("_initialize")
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.Env)) {
		mc = mc.WithEnv(k, cfg.Env[k])
	}
	if cfg.Clock {
		mc = mc.WithSysWalltime().WithSysNanotime().WithSysNanosleep()
	}
	p.stderr = &logWriter{env: env}
	p.modCfg = mc.WithStderr(p.stderr).WithStdout(p.stderr)
	p.pool = make(chan *instance, cfg.Instances)
	p.slots = make(chan struct{}, cfg.Instances)
	// Start one instance now: a module that cannot start or rejects its configuration fails
	// here, with the configuration, not on the first request.
	in, err := p.get(ctx)
	if err != nil {
		return err
	}
	p.put(in)
	if in.hooksAsked != nil {
		// configure named the hooks this configuration needs: the others are not called.
		for _, h := range in.hooksAsked {
			switch h {
			case hookRequest, hookResponse, hookChunk:
			default:
				return fmt.Errorf("the module's configure answer names an unknown hook %q", h)
			}
			if !p.has[h] {
				return fmt.Errorf("the module's configure answer names %s, which it does not export", h)
			}
		}
		for _, h := range []string{hookRequest, hookResponse, hookChunk} {
			p.has[h] = p.has[h] && slices.Contains(in.hooksAsked, h)
		}
	}
	return nil
}

// Hooks reports the hooks the module exports, less those its configure answer left out:
// the chain does not read and decode answers for a module without on_response.
func (p *Plugin) Hooks() (request, response, chunk bool) {
	return p.has[hookRequest], p.has[hookResponse], p.has[hookChunk]
}

// Cleanup closes the runtime and every instance.
func (p *Plugin) Cleanup() error {
	if p.rt == nil {
		return nil
	}
	return p.rt.Close(context.Background())
}

// Blocking asks for a context that ends at the hook's time limit: it stops the module.
func (p *Plugin) Blocking() bool { return true }

// instance is one instantiated module, used by one call at a time.
type instance struct {
	mod   api.Module
	alloc api.Function
	free  api.Function
	hooks map[string]api.Function
	// buf holds the JSON of a call's input, kept for the next call.
	buf []byte
	// hooksAsked is the "hooks" list of the configure answer (nil when it had none).
	hooksAsked []string
	// stack is reused for the calls' arguments and results.
	stack [2]uint64
	// stop is the flag instrument added: set, the running call traps at its next check.
	stop api.Global
}

// get takes an idle instance or starts one, waiting for a slot when all are busy.
func (p *Plugin) get(ctx context.Context) (*instance, error) {
	select {
	case in := <-p.pool:
		return in, nil
	default:
	}
	var in *instance
	var err error
	evloop.Block(ctx, func() { // off an event loop: the instances in use may be its requests'
		select {
		case in = <-p.pool:
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			err = ctx.Err()
		}
	})
	if in != nil || err != nil {
		return in, err
	}
	in, err = p.start(ctx)
	if err != nil {
		<-p.slots
		return nil, err
	}
	return in, nil
}

func (p *Plugin) start(ctx context.Context) (*instance, error) {
	// Instantiation runs the module's initialisation under the runtime's context, not the
	// call's: a call's deadline must not leave a half-started instance behind.
	m, err := p.rt.InstantiateModule(context.WithoutCancel(ctx), p.mod, p.modCfg)
	if err != nil {
		return nil, fmt.Errorf("starting the module: %w", err)
	}
	in := &instance{mod: m, alloc: m.ExportedFunction("alloc"), free: m.ExportedFunction("free"), hooks: map[string]api.Function{},
		stop: m.ExportedGlobal(stopExport)}
	if _, ok := in.stop.(api.MutableGlobal); !ok {
		m.Close(context.Background())
		return nil, errors.New("starting the module: its stop flag is missing")
	}
	for _, h := range []string{"configure", "on_request", "on_response", "on_chunk"} {
		if f := m.ExportedFunction(h); f != nil {
			in.hooks[h] = f
		}
	}
	if f := in.hooks["configure"]; f != nil {
		var res struct {
			Error string   `json:"error"`
			Hooks []string `json:"hooks"`
		}
		// Stopped, like a hook, when ctx ends (the hook call's, for an instance started for
		// one).
		stop := context.AfterFunc(ctx, func() { in.stop.(api.MutableGlobal).Set(1) })
		ok, err := in.call(ctx, f, func(b []byte) []byte { return append(b, p.conf...) }, &res)
		if !stop() && err == nil {
			err = context.Cause(ctx)
		}
		if err != nil {
			m.Close(context.Background())
			return nil, fmt.Errorf("configure: %w", err)
		}
		if ok && res.Error != "" {
			m.Close(context.Background())
			return nil, fmt.Errorf("the module rejected its configuration: %s", res.Error)
		}
		if ok && res.Hooks != nil {
			in.hooksAsked = res.Hooks
		}
	}
	return in, nil
}

// put returns a healthy instance to the pool.
func (p *Plugin) put(in *instance) {
	select {
	case p.pool <- in:
	default:
		in.mod.Close(context.Background())
		<-p.slots
	}
}

// discard throws away an instance that failed: its memory may be in any state.
func (p *Plugin) discard(in *instance) {
	in.mod.Close(context.Background())
	<-p.slots
}

// maxAnswer bounds the answer of one hook call, before the host decodes it.
const maxAnswer = 64 << 20

// call writes the input that enc appends to the instance's buffer into the module's memory,
// calls f, and decodes the answer into out straight from the module's memory, before it is
// freed. It reports whether the module answered (0 is "no change").
func (in *instance) call(ctx context.Context, f api.Function, enc func([]byte) []byte, out any) (bool, error) {
	in.buf = enc(in.buf[:0])
	data := in.buf
	if cap(in.buf) > 1<<20 {
		in.buf = nil // one large request does not keep its buffer
	}
	st := in.stack[:]
	st[0] = uint64(len(data))
	if err := in.alloc.CallWithStack(ctx, st); err != nil {
		return false, err
	}
	ptr := uint32(st[0])
	mem := in.mod.Memory()
	if !mem.Write(ptr, data) {
		return false, errors.New("alloc returned memory outside the module's")
	}
	st[0], st[1] = uint64(ptr), uint64(len(data))
	if err := f.CallWithStack(ctx, st); err != nil {
		return false, err
	}
	packed := st[0]
	st[0] = uint64(ptr)
	if err := in.free.CallWithStack(ctx, st); err != nil {
		return false, err
	}
	if packed == 0 {
		return false, nil
	}
	optr, olen := uint32(packed>>32), uint32(packed)
	if olen > maxAnswer {
		return false, fmt.Errorf("the hook's answer is %d bytes, more than %d", olen, maxAnswer)
	}
	view, ok := mem.Read(optr, olen)
	if !ok {
		return false, errors.New("the hook's answer lies outside the module's memory")
	}
	// Decoded in place, before it is freed: encoding/json copies what it keeps.
	decodeErr := json.Unmarshal(view, out)
	st[0] = uint64(optr)
	if err := in.free.CallWithStack(ctx, st); err != nil {
		return false, err
	}
	if decodeErr != nil {
		return false, fmt.Errorf("%w: %v", errBadAnswer, decodeErr)
	}
	return true, nil
}

var errBadAnswer = errors.New("the module's answer is not the JSON the ABI asks for")

// invoke runs hook with the input enc appends, and decodes the answer into out. It reports
// whether the module answered.
func (p *Plugin) invoke(ctx context.Context, hook string, enc func([]byte) []byte, out any) (bool, error) {
	if !p.has[hook] {
		return false, nil
	}
	in, err := p.get(ctx)
	if err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		p.put(in)
		return false, err
	}
	start := time.Now()
	// When the call's time is up, the flag makes it trap at its next loop iteration or call.
	stop := context.AfterFunc(ctx, func() { in.stop.(api.MutableGlobal).Set(1) })
	ok, err := in.call(ctx, in.hooks[hook], enc, out)
	if !stop() {
		// The flag was set (or is being set): the instance cannot be used again, whatever
		// the call's result.
		p.discard(in)
		return false, fmt.Errorf("module stopped after %v: %w", time.Since(start).Round(time.Millisecond), context.DeadlineExceeded)
	}
	if err != nil {
		if errors.Is(err, errBadAnswer) {
			// The module ran to the end: its instance is sound, its answer is not.
			p.put(in)
			return false, fmt.Errorf("%s: %w", hook, err)
		}
		p.discard(in)
		if ctx.Err() != nil {
			return false, fmt.Errorf("module stopped after %v: %w", time.Since(start).Round(time.Millisecond), context.DeadlineExceeded)
		}
		return false, fmt.Errorf("module failed in %s: %w", hook, err)
	}
	p.put(in)
	return ok, nil
}
