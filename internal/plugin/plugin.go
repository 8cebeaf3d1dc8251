// Package plugin runs the plugin chain: Go plugins registered at init (built-in ones under
// internal/plugin/..., a team's own by one blank import in the command) and WebAssembly
// modules loaded from the configuration.
//
// # Where the chain runs
//
// The chain is installed as the router's Hook, around Registry.Do: the one call every model
// request makes, whichever way it came in. OpenAI chat, completions and Responses
// passthrough requests reach it from the HTTP handlers; Anthropic Messages and translated
// Responses requests are chat completions by then; gRPC calls are served by the same HTTP
// handlers; and the task system (chat and code generation) calls Registry.Do itself. Remote
// upstreams and the local engine are both backends behind it. Plugins therefore see one
// request shape, Request, with no knowledge of the protocol the client spoke.
//
// # Hooks
//
// A plugin implements any of RequestHook (before the backend: rewrite, answer or refuse),
// ResponseHook (a whole, non-streamed answer) and ChunkHook (each piece of a streamed
// answer: rewrite or drop). Request hooks run in configured order; response and chunk hooks
// in reverse order. When a request hook answers, the response hooks of the plugins before it
// still run on that answer.
//
// # Lifecycle
//
// For each configured entry the registry's constructor makes a fresh value, Provision
// decodes its section strictly (unknown keys are errors) and prepares it, Validate (when
// implemented) checks it, and Cleanup (when implemented) releases it once the chain it
// belongs to is replaced and the last request using it has finished. Cleanup also runs
// when a later entry fails to provision.
//
// # Failures
//
// A hook that returns an error, panics or runs past its timeout fails the request with a
// clear error naming the plugin, or is skipped for that request when its entry says
// on_error: skip. The server never goes down for it. A Refusal is not a failure: it is the
// plugin's answer, sent to the client as an invalid-request error with the plugin's message.
package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Plugin is the part every plugin implements. Provision receives the plugin's own section of
// the configuration and must decode it with Section.Decode (strict) before using it. It must
// not start goroutines that outlive Cleanup.
type Plugin interface {
	Provision(ctx context.Context, cfg Section, env Env) error
}

// Validator is implemented by plugins that check their configuration after Provision.
type Validator interface {
	Validate() error
}

// Cleaner is implemented by plugins that hold resources.
type Cleaner interface {
	Cleanup() error
}

// RequestHook runs before the request goes to a backend. It may change c.Req in place
// (model, messages, prompt, parameters), answer it with c.Reply, or refuse it by returning a
// Refusal. Any other error is a failure of the plugin.
type RequestHook interface {
	OnRequest(ctx context.Context, c *Call) error
}

// ResponseHook runs on a whole successful answer that was not streamed. It may change the
// text of each choice.
type ResponseHook interface {
	OnResponse(ctx context.Context, c *Call, r *Response) error
}

// ChunkHook runs on each choice of each streamed chunk that carries text or a finish reason,
// in stream order, on one goroutine per request: state kept with c.State needs no lock. It
// may change ch.Text or set ch.Drop. At the end of the stream it is called once more per
// choice with ch.End set and no text, so a plugin that held text back can emit it.
type ChunkHook interface {
	OnChunk(ctx context.Context, c *Call, ch *Chunk) error
}

// Blocking is implemented by plugins whose hooks wait on something (I/O, a WebAssembly
// call) and must be stopped at the hook's time limit: they get a context that ends then.
// Other hooks run under the request's context, and one that returns after its time limit
// fails all the same; a Go hook cannot be stopped from outside, so one that never returns
// holds its request (a Go plugin is code built into the server, trusted as such).
type Blocking interface {
	Blocking() bool
}

// HookSet is implemented by a plugin whose hooks depend on its configuration (a Wasm module
// exports some of them, or needs only some with its configuration). The chain calls only the
// hooks it reports, read once after Provision: a response hook that does nothing would
// otherwise have every whole answer read and decoded for it.
type HookSet interface {
	Hooks() (request, response, chunk bool)
}

// Env is what a plugin may use while provisioning.
type Env struct {
	// Name is the entry's name (its type unless the configuration names it).
	Name string
	// Logger logs with the plugin's name attached.
	Logger *slog.Logger
	// Dir is the directory relative paths in the plugin's section are resolved against (the
	// configuration file's directory).
	Dir string
}

// Refusal is a plugin's refusal of a request: the client sees Message.
type Refusal struct {
	Message string
}

func (r *Refusal) Error() string { return "refused: " + r.Message }

// Refuse returns a refusal with a message for the client.
func Refuse(msg string) error { return &Refusal{Message: msg} }

// Section is a plugin's own configuration section.
type Section struct {
	node *yaml.Node
	json []byte
}

// YAMLSection wraps a YAML node (the config file's plugins[i].config).
func YAMLSection(n *yaml.Node) Section { return Section{node: n} }

// JSONSection wraps a JSON document.
func JSONSection(b []byte) Section { return Section{json: b} }

// Empty reports whether the section holds nothing.
func (s Section) Empty() bool {
	if s.node != nil {
		return s.node.Kind == 0 || s.node.Kind == yaml.ScalarNode && s.node.ShortTag() == "!!null"
	}
	return len(bytes.TrimSpace(s.json)) == 0
}

// Decode decodes the section into v strictly: a key v has no field for is an error, and so
// is a second document. An empty section leaves v as it is.
func (s Section) Decode(v any) error {
	if s.Empty() {
		return nil
	}
	if s.node != nil {
		b, err := yaml.Marshal(s.node)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(v); err != nil {
			return s.yamlError(err)
		}
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(s.json))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if dec.More() {
		return errors.New("config: more than one JSON value")
	}
	return nil
}

// JSON returns the section as a JSON document ("{}" when empty), for plugins that hand their
// configuration on (a Wasm module).
func (s Section) JSON() ([]byte, error) {
	if s.Empty() {
		return []byte("{}"), nil
	}
	if s.node == nil {
		return s.json, nil
	}
	var v any
	if err := s.node.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

var unknownField = regexp.MustCompile(`^line \d+: field (\S+) not found in type .*$`)

// yamlError rewrites a decoding error of the section with the lines of the configuration
// file (the section was re-encoded to decode it strictly, which renumbers its lines).
func (s Section) yamlError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("config: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		if sub := unknownField.FindStringSubmatch(m); sub != nil {
			if k := findKey(s.node, sub[1]); k != nil {
				msgs[i] = fmt.Sprintf("line %d: unknown key %q", k.Line, sub[1])
			} else {
				msgs[i] = fmt.Sprintf("unknown key %q", sub[1])
			}
			continue
		}
		msgs[i] = m
	}
	return fmt.Errorf("config: %s", strings.Join(msgs, "; "))
}

// findKey finds a mapping key named name in n's tree.
func findKey(n *yaml.Node, name string) *yaml.Node {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				return n.Content[i]
			}
		}
	}
	for _, c := range n.Content {
		if k := findKey(c, name); k != nil {
			return k
		}
	}
	return nil
}

// Info describes a registered plugin type.
type Info struct {
	// ID is the type name used in the configuration ("redact").
	ID string
	// New returns a fresh, unprovisioned plugin. It must have no side effects.
	New func() Plugin
}

var (
	regMu    sync.RWMutex
	registry = map[string]Info{}
)

// Register adds a plugin type. It is meant to be called from init and panics when the ID is
// empty or taken, or New is nil.
func Register(info Info) {
	if info.ID == "" || info.New == nil {
		panic("plugin: Register needs an ID and a constructor")
	}
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[info.ID]; dup {
		panic("plugin: type registered twice: " + info.ID)
	}
	registry[info.ID] = info
}

// Lookup returns the registered type id.
func Lookup(id string) (Info, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	i, ok := registry[id]
	return i, ok
}

// Types lists the registered plugin types, sorted.
func Types() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	ids := make([]string, 0, len(registry))
	for id := range registry {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
