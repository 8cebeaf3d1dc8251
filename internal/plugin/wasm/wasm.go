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
// entry's config object once per instance and answers 0 or {"error": "..."}.
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
	p.rt = wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithMemoryLimitPages(cfg.MemoryPages).
		WithCloseOnContextDone(true).
		// Reserve the whole capped memory up front: growing it page by page copies it each
		// time, which made a Go module's hook calls three times slower (BenchmarkWasmHook).
		// The reservation is address space; pages cost memory when the module touches them.
		WithMemoryCapacityFromMax(true))
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, p.rt); err != nil {
		return err
	}
	p.mod, err = p.rt.CompileModule(ctx, code)
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
	return nil
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
}

// get takes an idle instance or starts one, waiting for a slot when all are busy.
func (p *Plugin) get(ctx context.Context) (*instance, error) {
	select {
	case in := <-p.pool:
		return in, nil
	default:
	}
	select {
	case in := <-p.pool:
		return in, nil
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	in, err := p.start(ctx)
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
	in := &instance{mod: m, alloc: m.ExportedFunction("alloc"), free: m.ExportedFunction("free"), hooks: map[string]api.Function{}}
	for _, h := range []string{"configure", "on_request", "on_response", "on_chunk"} {
		if f := m.ExportedFunction(h); f != nil {
			in.hooks[h] = f
		}
	}
	if f := in.hooks["configure"]; f != nil {
		out, err := in.call(ctx, f, p.conf)
		if err != nil {
			m.Close(context.Background())
			return nil, fmt.Errorf("configure: %w", err)
		}
		if out != nil {
			var res struct {
				Error string `json:"error"`
			}
			if json.Unmarshal(out, &res) == nil && res.Error != "" {
				m.Close(context.Background())
				return nil, fmt.Errorf("the module rejected its configuration: %s", res.Error)
			}
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

// call writes in to the instance's memory, calls f and returns the answer (nil: no change).
func (in *instance) call(ctx context.Context, f api.Function, data []byte) ([]byte, error) {
	res, err := in.alloc.Call(ctx, uint64(len(data)))
	if err != nil {
		return nil, err
	}
	ptr := uint32(res[0])
	mem := in.mod.Memory()
	if !mem.Write(ptr, data) {
		return nil, errors.New("alloc returned memory outside the module's")
	}
	res, err = f.Call(ctx, uint64(ptr), uint64(len(data)))
	if err != nil {
		return nil, err
	}
	if _, err := in.free.Call(ctx, uint64(ptr)); err != nil {
		return nil, err
	}
	packed := res[0]
	if packed == 0 {
		return nil, nil
	}
	optr, olen := uint32(packed>>32), uint32(packed)
	out, ok := mem.Read(optr, olen)
	if !ok {
		return nil, errors.New("the hook's answer lies outside the module's memory")
	}
	out = append([]byte(nil), out...)
	if _, err := in.free.Call(ctx, uint64(optr)); err != nil {
		return nil, err
	}
	return out, nil
}

// invoke runs hook with the JSON of v and decodes the answer into out. It reports whether
// the module answered.
func (p *Plugin) invoke(ctx context.Context, hook string, v, out any) (bool, error) {
	if !p.has[hook] {
		return false, nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return false, err
	}
	in, err := p.get(ctx)
	if err != nil {
		return false, err
	}
	start := time.Now()
	b, err := in.call(ctx, in.hooks[hook], data)
	if err != nil {
		p.discard(in)
		if ctx.Err() != nil {
			return false, fmt.Errorf("module stopped after %v: %w", time.Since(start).Round(time.Millisecond), context.DeadlineExceeded)
		}
		return false, fmt.Errorf("module failed in %s: %w", hook, err)
	}
	p.put(in)
	if b == nil {
		return false, nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return false, fmt.Errorf("the module's answer to %s is not the JSON the ABI asks for: %w", hook, err)
	}
	return true, nil
}
