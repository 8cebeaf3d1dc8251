// Package backend defines what the gateway needs from a place that runs a model, and the
// init-time registry of backend types.
//
// A Backend takes an OpenAI-shaped request body and returns the answer as raw bytes: a JSON
// document, or a text/event-stream for streamed requests. Upstream servers answer that way
// already, so the gateway passes their bytes through without decoding; the local engine
// produces the same shapes. Extra abilities (health probes, tokenizing) are separate
// optional interfaces found by type assertion.
package backend

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"

	"github.com/open-autoglm/autoglm/internal/config"
)

// Op is the kind of request.
type Op uint8

const (
	OpChat       Op = iota // POST /chat/completions
	OpCompletion           // POST /completions
	OpEmbedding            // POST /embeddings
	OpResponses            // POST /responses (passed through to upstreams that speak it)
)

// Path is the path of the operation relative to an OpenAI API root ("/chat/completions").
func (o Op) Path() string {
	switch o {
	case OpChat:
		return "/chat/completions"
	case OpCompletion:
		return "/completions"
	case OpEmbedding:
		return "/embeddings"
	case OpResponses:
		return "/responses"
	}
	return ""
}

func (o Op) String() string {
	switch o {
	case OpChat:
		return "chat"
	case OpCompletion:
		return "completion"
	case OpEmbedding:
		return "embedding"
	case OpResponses:
		return "responses"
	}
	return fmt.Sprintf("op(%d)", o)
}

// Request is one call to a backend.
type Request struct {
	Op Op
	// Body is the client's JSON body, with "model" already set to the name this backend
	// knows. Backends must not modify it: a retry may send it elsewhere.
	Body []byte
	// Stream reports whether the client asked for a stream.
	Stream bool
	// Header holds client headers the gateway forwards: User-Agent and the trace id. An
	// upstream client must still drop credential and billing headers from it (see
	// backend/openai.ClientHeaderRefused).
	Header http.Header
}

// Response is a backend's answer. The caller must close Body.
type Response struct {
	StatusCode int
	// Header holds the response headers the client should see (Content-Type at least).
	Header http.Header
	// Body is the answer's body. Closing it while a read on another goroutine waits for the
	// upstream must end that read (with an error) and abandon the upstream request: the
	// scheduling layer's idle timeout does so when no context of the attempt's own can be
	// canceled. net/http's response bodies and io.Pipe's reader do; a body that also has an
	// Interrupt method is ended with it instead of Close.
	Body io.ReadCloser
}

// Backend sends requests to one model server.
//
// Do returns an error only when no answer was received (connection refused, timeout, the
// context was canceled); an answer with an error status is a Response. Do must honour ctx:
// when it is canceled, the upstream request is abandoned and Body reads fail. Implementations
// are safe for concurrent use.
type Backend interface {
	Do(ctx context.Context, req *Request) (*Response, error)
}

// OnLoop is implemented by backends that may be called on an event loop (internal/evloop):
// their Do, and the reads of its answer, wait only on connections of the request's loop or
// through evloop.Block. A request for any other backend leaves its loop before Do.
type OnLoop interface {
	OnLoop() bool
}

// Prober is implemented by backends that can check cheaply whether they are reachable.
type Prober interface {
	// Probe returns nil when the backend answered, whatever the status.
	Probe(ctx context.Context) error
}

// MemoryReporter is implemented by backends that hold a model in this process.
type MemoryReporter interface {
	// Memory returns the model's memory now; safe for concurrent use.
	Memory() Memory
}

// Memory is what an in-process model holds, in bytes.
type Memory struct {
	// WeightsMapped is the tensor data read in place from the mapped model file; tensors copied at
	// load (WeightsPacked) are released from the mapping and not counted, so the two add up.
	WeightsMapped int64 `json:"weights_mapped_bytes"`
	// WeightsPacked is the copy of weights made at load for the CPU's kernels (not file-backed).
	WeightsPacked int64 `json:"weights_packed_bytes"`
	// KVCacheType is the KV cache element type (F32, F16, Q8_0).
	KVCacheType string `json:"kv_cache_type"`
	// KVCache is held now by the KV caches, which grow with use up to KVCacheMax.
	KVCache    int64 `json:"kv_cache_bytes"`
	KVCacheMax int64 `json:"kv_cache_max_bytes"`
	// Scratch is the activation buffers of a forward step.
	Scratch int64 `json:"scratch_bytes"`
}

// Closer is implemented by backends that hold resources (loaded models, connections).
type Closer interface {
	Close() error
}

// Factory builds a backend from its configuration. It must not start goroutines or touch
// the network; it may open files (a local model).
type Factory func(cfg config.Backend) (Backend, error)

var (
	regMu    sync.Mutex
	registry = map[string]Factory{}
)

// Register makes a backend type available under name. It is meant to be called from init
// and panics when name is taken.
func Register(name string, f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("backend: type registered twice: " + name)
	}
	registry[name] = f
}

// New builds the backend described by cfg.
func New(cfg config.Backend) (Backend, error) {
	regMu.Lock()
	f, ok := registry[cfg.Type]
	regMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("backend type %q is not available in this build (have %v)", cfg.Type, Types())
	}
	return f(cfg)
}

// Types lists the registered backend types.
func Types() []string {
	regMu.Lock()
	defer regMu.Unlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// EngineReporter is implemented by backends that run a model in this process, for the
// engine's metrics.
type EngineReporter interface {
	// Engine returns the scheduler's figures now; safe for concurrent use.
	Engine() Engine
}

// Engine is what an in-process engine reports: cumulative counters (for rates) and its load
// now.
type Engine struct {
	// PromptTokens were computed, CachedTokens reused from a KV cache (prefix reuse),
	// GeneratedTokens sampled.
	PromptTokens, CachedTokens, GeneratedTokens uint64
	// ForwardSeconds is the time spent in forward passes, over Steps passes.
	ForwardSeconds float64
	Steps          uint64
	// BatchBounds are the upper bounds of the batch-size histogram; BatchCounts[i] counts
	// the steps with at most BatchBounds[i] sequences, cumulatively (the Prometheus way);
	// BatchSum is the total of the steps' sizes.
	BatchBounds []float64
	BatchCounts []uint64
	BatchSum    uint64
	// PrefixHits and PrefixMisses count requests whose prompt did or did not reuse a cached
	// prefix.
	PrefixHits, PrefixMisses uint64
	// Running sequences hold a slot; Waiting requests are queued for one.
	Running, Waiting int
	// KVCacheBytes is held by the KV caches now.
	KVCacheBytes int64
}
