package plugin_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/plugin"
	"github.com/open-autoglm/autoglm/internal/plugin/wasm/wasmbuild"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/wire"
)

const benchBody = `{"model":"glm-4","temperature":0.7,"max_tokens":900,"messages":[{"role":"system","content":"You are a helpful assistant for the support team."},{"role":"user","content":"My order 12345 has not arrived yet, can you check where it is? It was due on Monday."}]}`

const benchAnswer = `{"id":"c1","object":"chat.completion","created":1,"model":"up-glm-4","choices":[{"index":0,"message":{"role":"assistant","content":"Your order left the warehouse on Friday and should arrive tomorrow. You can follow it on the carrier's site."},"finish_reason":"stop"}],"usage":{"prompt_tokens":40,"completion_tokens":25,"total_tokens":65}}`

// benchChain measures one non-streamed request through the hook with the given plugins
// section, the backend answering at once from memory.
func benchChain(b *testing.B, pluginsYAML string) {
	cfg := parseConfig(b, models+pluginsYAML, "http://127.0.0.1:1/v1")
	reg, err := router.New(cfg.Models)
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close()
	m := plugin.NewManager(plugin.Options{Registry: reg, Metrics: plugin.NewMetrics()})
	if err := m.Load(context.Background(), cfg.Plugins); err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	model, _ := reg.Lookup("glm-4")
	body := []byte(benchBody)
	f, err := wire.Peek(body)
	if err != nil {
		b.Fatal(err)
	}
	answer := []byte(benchAnswer)
	hdr := http.Header{"Content-Type": {"application/json"}}
	next := func(_ context.Context, _ *router.Model, _ *router.Request) (*backend.Response, *router.Target, error) {
		return &backend.Response{StatusCode: 200, Header: hdr, Body: io.NopCloser(bytes.NewReader(answer))}, nil, nil
	}
	ctx := context.Background()
	buf := make([]byte, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	n := 0
	for b.Loop() {
		n++
		resp, _, err := m.Do(ctx, model, &router.Request{Op: backend.OpChat, Body: body, Fields: f}, next)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := resp.Body.Read(buf); err != nil {
				break
			}
		}
		resp.Body.Close()
	}
	// CPU time per request, which waiting for a busy machine's cores does not inflate the
	// way it does ns/op.
	if cpu := cpuTime() - cpu0; cpu > 0 && n > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/op")
	}
}

// BenchmarkChain is the cost the plugin chain adds to a request: compare each case with
// "empty" (no plugins) from the same run.
func BenchmarkChain(b *testing.B) {
	b.Run("empty", func(b *testing.B) { benchChain(b, "") })
	b.Run("instructions+rules+max_tokens", func(b *testing.B) {
		benchChain(b, `
plugins:
  - type: instructions
    config: {rules: [{match: {models: ["glm-*"]}, system: "Answer for {{.Model}} on {{.Date}}.", mode: append}]}
  - type: rules
    config: {rules: [{match: {max_prompt_len: 4000}, clamp: {temperature: {max: 0.5}}}]}
  - type: max_tokens
    config: {max: 512}
`)
	})
	b.Run("instructions+max_tokens+redact", func(b *testing.B) {
		benchChain(b, `
plugins:
  - type: instructions
    config: {rules: [{match: {models: ["glm-*"]}, system: "Answer for {{.Model}} on {{.Date}}.", mode: append}]}
  - type: max_tokens
    config: {max: 512}
  - type: redact
`)
	})
}

// BenchmarkWasmHook is one on_request call of the example module, from the chain.
func BenchmarkWasmHook(b *testing.B) {
	mod := wasmbuild.Module(b, "./examples/wasm-rewrite")
	b.Run("empty", func(b *testing.B) { benchChain(b, "") })
	b.Run("wasm", func(b *testing.B) {
		benchChain(b, fmt.Sprintf(`
plugins:
  - type: wasm
    config: {path: %s, instances: 1, config: {prefix: "[checked] "}}
`, mod))
	})
	// The host and the ABI alone: a module that answers "no change" without reading.
	noop := wasmbuild.Module(b, "./internal/plugin/wasm/testdata/noop")
	b.Run("wasm-noop", func(b *testing.B) {
		benchChain(b, fmt.Sprintf(`
plugins:
  - type: wasm
    config: {path: %s, instances: 1}
`, noop))
	})
}
