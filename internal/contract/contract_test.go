package contract

import (
	"strings"
	"testing"
)

// TestRefuses: the checks are not vacuous; documents that break the schema are refused.
func TestRefuses(t *testing.T) {
	d := Load(t)
	ok := `{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi","refusal":null},"logprobs":null,"finish_reason":"stop"}]}`
	if err := d.Validate("CreateChatCompletionResponse", []byte(ok)); err != nil {
		t.Errorf("valid completion refused: %v", err)
	}
	for name, body := range map[string]string{
		"CreateChatCompletionResponse": strings.Replace(ok, `,"refusal":null`, "", 1),
		"Response":                     `{"id":"resp_1","object":"response"}`,
		"ErrorResponse":                `{"error":"boom"}`,
		"NoSuchSchema":                 `{}`,
	} {
		if err := d.Validate(name, []byte(body)); err == nil {
			t.Errorf("%s accepted %s", name, body)
		}
	}
	// A streamed chunk may carry finish_reason null; a whole answer's choice may not omit it.
	chunk := `{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}`
	if err := d.Validate("CreateChatCompletionStreamResponse", []byte(chunk)); err != nil {
		t.Errorf("chunk refused: %v", err)
	}
	evs := Events([]byte("event: a\ndata: {\"x\":1}\n\ndata: [DONE]\n\n"))
	if len(evs) != 2 || evs[0].Name != "a" || string(evs[0].Data) != `{"x":1}` || string(evs[1].Data) != "[DONE]" {
		t.Errorf("events: %+v", evs)
	}
}
