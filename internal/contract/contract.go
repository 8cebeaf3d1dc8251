// Package contract checks answers of the OpenAI-compatible routes against OpenAI's published
// OpenAPI document, for tests: JSON documents against a named schema of
// #/components/schemas, server-sent event streams chunk by chunk, and the Responses API's
// typed events each against the schema of its type.
//
// The document is not part of the repository. Load finds it through $AUTOGLM_OPENAI_OPENAPI,
// or as shared/data/openai-openapi/openapi.json in the repository's folder or one above it.
// Without it a test is skipped, except under CI=true, where it fails.
//
// Two quirks of the document are corrected when it is loaded (its README names them): a
// stream chunk's finish_reason is typed as a string although the API sends null on every
// chunk but the last, and some schemas use 3.0's nullable, which the loader understands.
package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/open-autoglm/autoglm/api/sse"
)

// Env names the document's path, when it is not found beside the repository.
const Env = "AUTOGLM_OPENAI_OPENAPI"

// Doc is the loaded document.
type Doc struct {
	schemas map[string]*openapi3.Schema
	events  map[string]string // Responses stream event type → schema name
}

var (
	loadOnce sync.Once
	loaded   *Doc
	loadErr  error
)

// Load returns the document, loading it once per test binary.
func Load(t testing.TB) *Doc {
	t.Helper()
	path := find()
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("OpenAI's OpenAPI document is required under CI=true: set %s or put it in shared/data/openai-openapi/", Env)
		}
		t.Skipf("OpenAI's OpenAPI document not found (set %s)", Env)
	}
	loadOnce.Do(func() { loaded, loadErr = load(path) })
	if loadErr != nil {
		t.Fatalf("loading %s: %v", path, loadErr)
	}
	return loaded
}

func find() string {
	if p := os.Getenv(Env); p != "" {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		for _, c := range []string{
			filepath.Join(dir, "shared", "data", "openai-openapi", "openapi.json"),
			filepath.Join(dir, "..", "shared", "data", "openai-openapi", "openapi.json"),
		} {
			if _, err := os.Stat(c); err == nil {
				return c
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// roots are the schemas the checks use; load keeps only what they reach.
var roots = []string{
	"CreateChatCompletionResponse", "CreateChatCompletionStreamResponse", "CreateCompletionResponse",
	"CreateEmbeddingResponse", "ListModelsResponse", "Model", "ErrorResponse", "Response", "ResponseItemList",
	"Batch", "ListBatchesResponse", "OpenAIFile", "ListFilesResponse", "DeleteFileResponse",
}

func load(path string) (*Doc, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	trimmed, err := trim(raw)
	if err != nil {
		return nil, err
	}
	l := openapi3.NewLoader()
	doc, err := l.LoadFromData(trimmed)
	if err != nil {
		return nil, err
	}
	d := &Doc{schemas: make(map[string]*openapi3.Schema), events: make(map[string]string)}
	for name, ref := range doc.Components.Schemas {
		if ref == nil || ref.Value == nil {
			continue
		}
		d.schemas[name] = ref.Value
		// A stream event's schema is an object whose "type" property is a one-value enum.
		if strings.HasSuffix(name, "Event") {
			if tp := ref.Value.Properties["type"]; tp != nil && tp.Value != nil && len(tp.Value.Enum) == 1 {
				if s, ok := tp.Value.Enum[0].(string); ok {
					d.events[s] = name
				}
			}
		}
	}
	chunk, ok := d.schemas["CreateChatCompletionStreamResponse"]
	if !ok {
		return nil, errors.New("no CreateChatCompletionStreamResponse schema")
	}
	d.schemas["CreateChatCompletionStreamResponse"] = nullableFinish(chunk)
	cmpl, ok := d.schemas["CreateCompletionResponse"]
	if !ok {
		return nil, errors.New("no CreateCompletionResponse schema")
	}
	d.schemas[CompletionChunk] = nullableFinish(cmpl)
	return d, nil
}

// CompletionChunk names the schema of a streamed completion's chunks: the document has none
// of its own (the API sends CreateCompletionResponse objects), so it is
// CreateCompletionResponse with a finish_reason that may be null.
const CompletionChunk = "CreateCompletionResponse (stream chunk)"

// nullableFinish returns a copy of s whose choices' finish_reason may be null. Only the
// path to finish_reason is copied; the rest is shared with the document.
func nullableFinish(s *openapi3.Schema) *openapi3.Schema {
	top := *s
	top.Properties = make(openapi3.Schemas, len(s.Properties))
	for k, v := range s.Properties {
		top.Properties[k] = v
	}
	choices := s.Properties["choices"]
	if choices == nil || choices.Value == nil || choices.Value.Items == nil || choices.Value.Items.Value == nil {
		return s
	}
	arr := *choices.Value
	item := *arr.Items.Value
	item.Properties = make(openapi3.Schemas, len(arr.Items.Value.Properties))
	for k, v := range arr.Items.Value.Properties {
		item.Properties[k] = v
	}
	if fr := item.Properties["finish_reason"]; fr != nil && fr.Value != nil {
		f := *fr.Value
		f.Nullable = true
		item.Properties["finish_reason"] = &openapi3.SchemaRef{Value: &f}
	}
	arr.Items = &openapi3.SchemaRef{Value: &item}
	top.Properties["choices"] = &openapi3.SchemaRef{Value: &arr}
	return &top
}

// trim keeps of the document only the schemas reachable from roots and from every stream
// event, without descriptions and examples: loading the whole document takes a minute under
// the race detector, the trimmed one a fraction of that.
func trim(raw []byte) ([]byte, error) {
	var doc struct {
		OpenAPI    string `json:"openapi"`
		Info       any    `json:"info"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	keep := map[string]any{}
	queue := append([]string(nil), roots...)
	for name := range doc.Components.Schemas {
		if strings.HasPrefix(name, "Response") && strings.HasSuffix(name, "Event") {
			queue = append(queue, name)
		}
	}
	const prefix = "#/components/schemas/"
	var walk func(v any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			out := make(map[string]any, len(x))
			for k, e := range x {
				// Documentation keys go, unless the key is a property's name (its value is then
				// an object, a schema).
				_, isObject := e.(map[string]any)
				switch {
				case strings.HasPrefix(k, "x-"):
					continue
				case (k == "description" || k == "example" || k == "examples" || k == "title") && !isObject:
					continue
				}
				if k == "$ref" {
					if s, ok := e.(string); ok && strings.HasPrefix(s, prefix) {
						queue = append(queue, strings.TrimPrefix(s, prefix))
					}
				}
				out[k] = walk(e)
			}
			return out
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = walk(e)
			}
			return out
		}
		return v
	}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if _, done := keep[name]; done {
			continue
		}
		s, ok := doc.Components.Schemas[name]
		if !ok {
			continue
		}
		keep[name] = nil // marks it seen while walking
		keep[name] = walk(s)
	}
	return json.Marshal(map[string]any{
		"openapi":    doc.OpenAPI,
		"info":       doc.Info,
		"paths":      map[string]any{},
		"components": map[string]any{"schemas": keep},
	})
}

// Check fails t unless body is valid JSON that the schema name accepts.
func (d *Doc) Check(t testing.TB, name string, body []byte) {
	t.Helper()
	if err := d.Validate(name, body); err != nil {
		t.Errorf("%s: %v\nbody: %s", name, err, truncate(body))
	}
}

// Validate reports whether the schema name accepts body.
func (d *Doc) Validate(name string, body []byte) error {
	s, ok := d.schemas[name]
	if !ok {
		return fmt.Errorf("the document has no schema %q", name)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	if err := s.VisitJSON(v, openapi3.MultiErrors()); err != nil {
		return shorten(err)
	}
	return nil
}

// Events are the data payloads of an SSE body, with their event names ("" when absent),
// up to and without "[DONE]".
type Event struct {
	Name string
	Data []byte
}

// Events splits an SSE body into events, by the rules of package sse. An unreadable body
// (an event over sse's size limit) ends the list where it broke.
func Events(body []byte) []Event {
	var out []Event
	r := sse.NewReader(bytes.NewReader(body))
	for {
		ev, err := r.Next()
		if err != nil {
			return out
		}
		out = append(out, Event{Name: ev.Type, Data: bytes.Clone(ev.Data)})
	}
}

// CheckStream fails t unless every data event of an SSE body before "data: [DONE]" is
// accepted by the schema name, the stream ends with [DONE], and there is at least one chunk.
func (d *Doc) CheckStream(t testing.TB, name string, body []byte) {
	t.Helper()
	evs := Events(body)
	if len(evs) < 2 || string(evs[len(evs)-1].Data) != "[DONE]" {
		t.Errorf("%s stream does not end with [DONE] after a chunk: %s", name, truncate(body))
		return
	}
	for i, ev := range evs[:len(evs)-1] {
		if err := d.Validate(name, ev.Data); err != nil {
			t.Errorf("%s chunk %d: %v\nchunk: %s", name, i, err, truncate(ev.Data))
		}
	}
}

// CheckResponseEvents fails t unless every event of a Responses API stream is accepted by the
// schema of its type, and returns the types in order.
func (d *Doc) CheckResponseEvents(t testing.TB, body []byte) []string {
	t.Helper()
	var types []string
	for i, ev := range Events(body) {
		var head struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(ev.Data, &head); err != nil {
			t.Errorf("event %d is not JSON: %s", i, truncate(ev.Data))
			continue
		}
		types = append(types, head.Type)
		name, ok := d.events[head.Type]
		if !ok {
			t.Errorf("event %d: the document has no event of type %q", i, head.Type)
			continue
		}
		if err := d.Validate(name, ev.Data); err != nil {
			t.Errorf("event %d (%s): %v\nevent: %s", i, name, err, truncate(ev.Data))
		}
	}
	return types
}

func truncate(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}

// shorten keeps the first lines of each validation error: kin-openapi appends the whole
// schema and value, which drown the point.
func shorten(err error) error {
	var me openapi3.MultiError
	if errors.As(err, &me) {
		var parts []string
		for _, e := range me {
			parts = append(parts, firstLine(e.Error()))
		}
		return errors.New(strings.Join(parts, "; "))
	}
	return errors.New(firstLine(err.Error()))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
