package server_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/internal/mockllm"
)

// TestUsageAccounting checks what the usage hook is told for each kind of request: exact
// counts from the upstream for JSON answers and streams (whether or not the client asked for
// the usage chunk), nothing for a cache hit, and an estimate when the upstream reports none.
func TestUsageAccounting(t *testing.T) {
	mock, mockURL := startMock(t, mockllm.Options{Tokens: 7})
	g := startGateway(t, oneModel(mockURL, "")+cacheCfg, nil)
	msg := `"messages":[{"role":"user","content":"three word prompt"}]`

	post(t, g.URL+"/v1/chat/completions", `{"model":"glm4",`+msg+`}`)
	o := g.outcomes.last(t, 1)
	if o.Model != "glm-4-flash" || o.Backend != "glm-4-flash#0" || o.Status != 200 || o.Stream ||
		o.Usage.CompletionTokens != 7 || o.Usage.PromptTokens == 0 || o.Usage.Estimated || o.Cache != "bypass" {
		t.Errorf("non-stream outcome %+v", o)
	}
	prompt := o.Usage.PromptTokens

	_, b := post(t, g.URL+"/v1/chat/completions", `{"model":"glm4","stream":true,`+msg+`}`)
	if bytes.Contains(b, []byte(`"usage":{`)) {
		t.Errorf("the client got a usage chunk it did not ask for: %s", b)
	}
	if !strings.Contains(mock.Stats().LastBody, `"include_usage":true`) {
		t.Errorf("upstream not asked for usage: %s", mock.Stats().LastBody)
	}
	o = g.outcomes.last(t, 2)
	if !o.Stream || o.Usage.CompletionTokens != 7 || o.Usage.PromptTokens != prompt || o.Usage.Estimated {
		t.Errorf("stream outcome %+v", o)
	}

	_, b = post(t, g.URL+"/v1/chat/completions", `{"model":"glm4","stream":true,"stream_options":{"include_usage":true},`+msg+`}`)
	if !bytes.Contains(b, []byte(`"usage":{`)) {
		t.Error("the client asked for the usage chunk and did not get it")
	}

	// Cached: the second identical request costs nothing upstream.
	post(t, g.URL+"/v1/chat/completions", `{"model":"glm4","temperature":0,`+msg+`}`)
	post(t, g.URL+"/v1/chat/completions", `{"model":"glm4","temperature":0,`+msg+`}`)
	if o = g.outcomes.last(t, 5); o.Cache != "hit" || o.Usage.Total() != 0 {
		t.Errorf("cache hit outcome %+v", o)
	}

	// An upstream that reports no usage: counted with the cl100k tokenizer on both texts.
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, word := range []string{" alpha", " beta", " gamma"} {
			_, _ = w.Write([]byte(`data: {"choices":[{"index":0,"delta":{"content":"` + word + `"}}]}` + "\n\n"))
		}
		_, _ = w.Write([]byte("data: [DONE]\n\n"))
	}))
	defer bare.Close()
	g2 := startGateway(t, oneModel(bare.URL+"/v1", ""), nil)
	post(t, g2.URL+"/v1/chat/completions", `{"model":"glm4","stream":true,`+msg+`}`)
	if o = g2.outcomes.last(t, 1); !o.Usage.Estimated || o.Usage.CompletionTokens != 3 || o.Usage.PromptTokens < 3 || o.Usage.PromptTokens > 5 {
		t.Errorf("estimated outcome %+v", o)
	}
}

// TestStreamInPieces sends a stream whose events arrive cut at every few bytes, the usage
// chunk the gateway asked for in the middle of them: the client must get every other event
// byte for byte and in order, and the usage must still be read.
func TestStreamInPieces(t *testing.T) {
	events := []string{
		`data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"one"}}]}` + "\n\n",
		`data: {"choices":[{"index":0,"delta":{"content":" two"}}]}` + "\r\n\r\n",
		`data: {"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":3,"total_tokens":14}}` + "\n\n",
		": a comment line\n\n",
		`data: {"choices":[{"index":0,"delta":{"content":" three"},"finish_reason":"stop"}]}` + "\n\n",
		"data: [DONE]\n\n",
	}
	whole := strings.Join(events, "")
	want := strings.Replace(whole, events[2], "", 1)
	for _, piece := range []int{1, 3, 7, 64, len(whole)} {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			f := w.(http.Flusher)
			for i := 0; i < len(whole); i += piece {
				_, _ = w.Write([]byte(whole[i:min(i+piece, len(whole))]))
				f.Flush()
			}
		}))
		g := startGateway(t, oneModel(up.URL+"/v1", ""), nil)
		_, b := post(t, g.URL+"/v1/chat/completions", `{"model":"glm4","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
		if string(b) != want {
			t.Errorf("pieces of %d bytes: the client got\n%q\nwant\n%q", piece, b, want)
		}
		if o := g.outcomes.last(t, 1); o.Usage.PromptTokens != 11 || o.Usage.CompletionTokens != 3 || o.Usage.Estimated || o.TextEvents != 3 {
			t.Errorf("pieces of %d bytes: outcome %+v", piece, o)
		}
		up.Close()
	}
}
