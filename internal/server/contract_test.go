package server_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	_ "github.com/open-autoglm/autoglm/internal/backend/local"
	"github.com/open-autoglm/autoglm/internal/contract"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/openapi"
)

// TestContract: every OpenAI-compatible answer of the gateway, from a remote upstream (the
// mock) and from a local model, validates against OpenAI's published OpenAPI document,
// streamed chunks and Responses events included.
func TestContract(t *testing.T) {
	doc := contract.Load(t)
	_, mockURL := startMock(t, mockllm.Options{Tokens: 5, ToolCalls: true})
	g := startGateway(t, oneModel(mockURL, fmt.Sprintf(`
  - name: stories
    backends:
      - type: local
        path: %s
        context_length: 256
`, "../../models/stories260K.gguf")), nil)
	tools := `"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}}}]`
	rtools := `"tools":[{"type":"function","name":"f","parameters":{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}}]`
	for _, model := range []string{"glm4", "stories"} {
		t.Run(model, func(t *testing.T) {
			post := func(path, body string) []byte {
				t.Helper()
				resp, b := post(t, g.URL+path, body)
				if resp.StatusCode != 200 {
					t.Fatalf("%s %s: %d %s", path, body, resp.StatusCode, b)
				}
				return b
			}
			chat := `"model":"` + model + `","max_tokens":6,"messages":[{"role":"user","content":"Once upon a time"}]`
			doc.Check(t, "CreateChatCompletionResponse", post("/v1/chat/completions", `{`+chat+`}`))
			doc.CheckStream(t, "CreateChatCompletionStreamResponse", post("/v1/chat/completions", `{`+chat+`,"stream":true,"stream_options":{"include_usage":true}}`))
			doc.CheckStream(t, "CreateChatCompletionStreamResponse", post("/v1/chat/completions", `{`+chat+`,"stream":true}`))
			cmpl := `"model":"` + model + `","max_tokens":6,"prompt":"Once upon a time"`
			doc.Check(t, "CreateCompletionResponse", post("/v1/completions", `{`+cmpl+`}`))
			doc.CheckStream(t, contract.CompletionChunk, post("/v1/completions", `{`+cmpl+`,"stream":true}`))
			doc.Check(t, "CreateEmbeddingResponse", post("/v1/embeddings", `{"model":"`+model+`","input":["a","b"]}`))

			in := `"model":"` + model + `","input":"Once upon a time","max_output_tokens":6`
			r := post("/v1/responses", `{`+in+`,"instructions":"x","metadata":{"k":"v"}}`)
			doc.Check(t, "Response", r)
			id := r[strings.Index(string(r), `"id":"`)+6:]
			id = id[:strings.IndexByte(string(id), '"')]
			resp, b := get(t, g.URL+"/v1/responses/"+string(id))
			if resp.StatusCode != 200 {
				t.Fatalf("GET response: %d", resp.StatusCode)
			}
			doc.Check(t, "Response", b)
			_, b = get(t, g.URL+"/v1/responses/"+string(id)+"/input_items")
			doc.Check(t, "ResponseItemList", b)
			types := doc.CheckResponseEvents(t, post("/v1/responses", `{`+in+`,"stream":true}`))
			if len(types) < 8 || types[len(types)-1] != "response.incomplete" && types[len(types)-1] != "response.completed" {
				t.Errorf("event types %v", types)
			}
			if model == "glm4" {
				// Tool calls, as the mock makes them.
				doc.Check(t, "CreateChatCompletionResponse", post("/v1/chat/completions", `{`+chat+`,`+tools+`}`))
				doc.CheckStream(t, "CreateChatCompletionStreamResponse", post("/v1/chat/completions", `{`+chat+`,`+tools+`,"stream":true}`))
				doc.Check(t, "Response", post("/v1/responses", `{`+in+`,`+rtools+`}`))
				doc.CheckResponseEvents(t, post("/v1/responses", `{`+in+`,`+rtools+`,"stream":true}`))
			}
		})
	}
	_, b := get(t, g.URL+"/v1/models")
	doc.Check(t, "ListModelsResponse", b)
	_, b = get(t, g.URL+"/v1/models/glm4")
	doc.Check(t, "Model", b)
	for _, path := range []string{"/v1/chat/completions", "/v1/responses", "/v1/nowhere"} {
		_, b := post(t, g.URL+path, `{"model":"nope","input":"x","messages":[]}`)
		doc.Check(t, "ErrorResponse", b)
	}
}

// TestOpenAPITraffic: the harness checks every exchange against the served API description
// (openapitest); this test makes sure the main kinds of exchange pass through it: a chat
// completion as JSON and as a stream, an error, health, readiness, the backends, and the
// description itself, served as the document the checks use.
func TestOpenAPITraffic(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 3})
	g := startGateway(t, oneModel(mockURL, ""), nil)
	chat := `{"model":"glm4","messages":[{"role":"user","content":"hi"}]`
	if resp, b := post(t, g.URL+"/v1/chat/completions", chat+`}`); resp.StatusCode != 200 {
		t.Fatalf("chat: %d %s", resp.StatusCode, b)
	}
	if resp, _ := post(t, g.URL+"/v1/chat/completions", chat+`,"stream":true}`); !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %q", resp.Header.Get("Content-Type"))
	}
	if resp, _ := post(t, g.URL+"/v1/chat/completions", `{"model":"nope","messages":[]}`); resp.StatusCode != 404 {
		t.Fatalf("unknown model: %d", resp.StatusCode)
	}
	for _, p := range []string{"/healthz", "/readyz", "/v1/admin/backends", "/openapi.json"} {
		if resp, _ := get(t, g.URL+p); resp.StatusCode != 200 {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
	}
	_, doc := get(t, g.URL+"/openapi.json")
	if !bytes.Equal(doc, openapi.Document()) {
		t.Error("GET /openapi.json is not the document the checks use")
	}
	for _, w := range []struct {
		method, path string
		status       int
	}{
		{"POST", "/v1/chat/completions", 200}, {"POST", "/v1/chat/completions", 404},
		{"GET", "/healthz", 200}, {"GET", "/readyz", 200}, {"GET", "/v1/admin/backends", 200}, {"GET", "/openapi.json", 200},
	} {
		if g.checked.Seen(w.method, w.path, w.status) == 0 {
			t.Errorf("%s %s → %d was not checked", w.method, w.path, w.status)
		}
	}
	if n := g.checked.Seen("POST", "/v1/chat/completions", 200); n != 2 {
		t.Errorf("chat checked %d times, want 2 (JSON and stream)", n)
	}
}
