package local_test

import (
	"testing"

	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/contract"
)

// TestContract: the local engine answers as OpenAI's published document says OpenAI does.
func TestContract(t *testing.T) {
	doc := contract.Load(t)
	b := open(t)
	chat := `"model":"stories260k","max_tokens":5,"messages":[{"role":"user","content":"Once upon a time"}]`
	_, body := do(t, b, backend.OpChat, `{`+chat+`}`)
	doc.Check(t, "CreateChatCompletionResponse", body)
	_, body = do(t, b, backend.OpChat, `{`+chat+`,"stream":true,"stream_options":{"include_usage":true}}`)
	doc.CheckStream(t, "CreateChatCompletionStreamResponse", body)
	cmpl := `"model":"stories260k","max_tokens":5,"prompt":"Once upon a time"`
	_, body = do(t, b, backend.OpCompletion, `{`+cmpl+`}`)
	doc.Check(t, "CreateCompletionResponse", body)
	_, body = do(t, b, backend.OpCompletion, `{`+cmpl+`,"stream":true,"stream_options":{"include_usage":true}}`)
	doc.CheckStream(t, contract.CompletionChunk, body)
	_, body = do(t, b, backend.OpEmbedding, `{"model":"stories260k","input":["a","b"]}`)
	doc.Check(t, "CreateEmbeddingResponse", body)
}
