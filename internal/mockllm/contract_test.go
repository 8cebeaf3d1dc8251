package mockllm_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/internal/contract"
	"github.com/open-autoglm/autoglm/internal/mockllm"
)

// TestContract: the mock answers as OpenAI's published document says OpenAI does.
func TestContract(t *testing.T) {
	doc := contract.Load(t)
	ts := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 4, ToolCalls: true}))
	defer ts.Close()
	call := func(method, path, body string) []byte {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	chat := `"model":"m","messages":[{"role":"user","content":"hi"}]`
	tools := `"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]`
	doc.Check(t, "CreateChatCompletionResponse", call("POST", "/v1/chat/completions", `{`+chat+`}`))
	doc.Check(t, "CreateChatCompletionResponse", call("POST", "/v1/chat/completions", `{`+chat+`,"n":2}`))
	doc.Check(t, "CreateChatCompletionResponse", call("POST", "/v1/chat/completions", `{`+chat+`,`+tools+`}`))
	doc.CheckStream(t, "CreateChatCompletionStreamResponse", call("POST", "/v1/chat/completions", `{`+chat+`,"stream":true,"stream_options":{"include_usage":true}}`))
	doc.CheckStream(t, "CreateChatCompletionStreamResponse", call("POST", "/v1/chat/completions", `{`+chat+`,`+tools+`,"stream":true,"stream_options":{"include_usage":true}}`))
	doc.Check(t, "CreateCompletionResponse", call("POST", "/v1/completions", `{"model":"m","prompt":"hi"}`))
	doc.CheckStream(t, contract.CompletionChunk, call("POST", "/v1/completions", `{"model":"m","prompt":"hi","stream":true,"stream_options":{"include_usage":true}}`))
	doc.Check(t, "CreateEmbeddingResponse", call("POST", "/v1/embeddings", `{"model":"m","input":["a","b"]}`))
	doc.Check(t, "ListModelsResponse", call("GET", "/v1/models", ""))
	doc.Check(t, "Model", call("GET", "/v1/models/mock-model", ""))
	doc.Check(t, "ErrorResponse", call("POST", "/v1/chat/completions", `{"messages":[]}`))
	doc.Check(t, "ErrorResponse", call("GET", "/v1/nowhere", ""))
}
