package local_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/internal/backend"
)

type chatLogprobs struct {
	Content []struct {
		Token       string  `json:"token"`
		Logprob     float64 `json:"logprob"`
		Bytes       []int   `json:"bytes"`
		TopLogprobs []struct {
			Token   string  `json:"token"`
			Logprob float64 `json:"logprob"`
		} `json:"top_logprobs"`
	} `json:"content"`
}

type completionLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []*float64           `json:"token_logprobs"`
	TopLogprobs   []map[string]float64 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

func TestChatNAndLogprobs(t *testing.T) {
	b := open(t)
	status, body := do(t, b, backend.OpChat, `{"model":"m","temperature":0,"max_tokens":10,"n":2,"logprobs":true,"top_logprobs":2,
		"messages":[{"role":"user","content":"Once upon a time"}]}`)
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	var cc api.ChatCompletion
	if err := json.Unmarshal(body, &cc); err != nil {
		t.Fatal(err)
	}
	if len(cc.Choices) != 2 || cc.Usage.CompletionTokens != 20 || cc.Usage.PromptTokens != 5 {
		t.Fatalf("choices/usage: %s", body)
	}
	for i, ch := range cc.Choices {
		if ch.Index != i || !strings.HasPrefix(continuation, ch.Message.Content.String()) || ch.FinishReason != "length" {
			t.Errorf("choice %d: %+v", i, ch)
		}
		var lp chatLogprobs
		if err := json.Unmarshal(ch.Logprobs, &lp); err != nil {
			t.Fatal(err)
		}
		if len(lp.Content) != 10 {
			t.Fatalf("%d logprob entries, want 10", len(lp.Content))
		}
		var text string
		for _, e := range lp.Content {
			text += e.Token
			if len(e.TopLogprobs) != 2 || e.TopLogprobs[0].Token != e.Token || e.Logprob > 0 || string(bytesOf(e.Bytes)) != e.Token {
				t.Errorf("entry %+v", e)
			}
		}
		if text != ch.Message.Content.String() {
			t.Errorf("logprob tokens spell %q, content is %q", text, ch.Message.Content.String())
		}
	}

	// Streamed: every chunk carries its token's logprobs; both choices end with a finish chunk.
	_, body = do(t, b, backend.OpChat, `{"model":"m","temperature":0,"max_tokens":6,"n":2,"logprobs":true,"stream":true,
		"messages":[{"role":"user","content":"Once upon a time"}]}`)
	texts := map[int]string{}
	entries := map[int]int{}
	finished := map[int]bool{}
	for _, d := range sse(t, body) {
		if d == "[DONE]" {
			continue
		}
		var ch api.ChatCompletionChunk
		if err := json.Unmarshal([]byte(d), &ch); err != nil {
			t.Fatal(err)
		}
		for _, c := range ch.Choices {
			texts[c.Index] += c.Delta.Content
			if c.Logprobs != nil {
				var lp chatLogprobs
				_ = json.Unmarshal(c.Logprobs, &lp)
				entries[c.Index] += len(lp.Content)
			}
			if c.FinishReason != "" {
				finished[c.Index] = true
			}
		}
	}
	for i := range 2 {
		if entries[i] != 6 || !finished[i] || !strings.HasPrefix(continuation, texts[i]) || texts[i] == "" {
			t.Errorf("streamed choice %d: %q, %d logprob entries, finished %v", i, texts[i], entries[i], finished[i])
		}
	}
}

func bytesOf(v []int) []byte {
	out := make([]byte, len(v))
	for i, x := range v {
		out[i] = byte(x)
	}
	return out
}

func TestCompletionPromptsEchoLogprobs(t *testing.T) {
	b := open(t)
	status, body := do(t, b, backend.OpCompletion, `{"model":"m","prompt":["Once upon a time","Lily"],"n":2,"max_tokens":5,
		"temperature":0,"echo":true,"logprobs":1}`)
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	var c api.Completion
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Choices) != 4 {
		t.Fatalf("%d choices, want 2 prompts × n=2", len(c.Choices))
	}
	for i, ch := range c.Choices {
		prompt := []string{"Once upon a time", "Lily"}[i/2]
		if ch.Index != i || !strings.HasPrefix(ch.Text, prompt) || len(ch.Text) <= len(prompt) {
			t.Errorf("choice %d: %q", i, ch.Text)
		}
		var lp completionLogprobs
		if err := json.Unmarshal(ch.Logprobs, &lp); err != nil {
			t.Fatal(err)
		}
		if strings.Join(lp.Tokens, "") != ch.Text {
			t.Errorf("choice %d: tokens %q do not spell the text %q", i, lp.Tokens, ch.Text)
		}
		// The model adds BOS, so even the first echoed token has a logprob.
		for k, v := range lp.TokenLogprobs {
			if v == nil || *v > 0 || math.IsNaN(*v) {
				t.Errorf("choice %d token %d logprob %v", i, k+1, v)
			}
		}
		if n := len(lp.TopLogprobs); n == 0 || len(lp.TopLogprobs[n-1]) != 1 {
			t.Errorf("choice %d: top logprobs %v", i, lp.TopLogprobs)
		}
		for k := 1; k < len(lp.TextOffset); k++ {
			if lp.TextOffset[k] != lp.TextOffset[k-1]+len(lp.Tokens[k-1]) {
				t.Errorf("choice %d: text offsets %v", i, lp.TextOffset)
				break
			}
		}
	}
	if c.Choices[0].Text != c.Choices[1].Text || !strings.HasPrefix(c.Choices[0].Text, "Once upon a time, there") {
		t.Errorf("greedy choices of one prompt differ: %q %q", c.Choices[0].Text, c.Choices[1].Text)
	}
	// prompt tokens count each prompt once: BOS+4 and BOS+1.
	if c.Usage.PromptTokens != 7 || c.Usage.CompletionTokens != 20 {
		t.Errorf("usage %+v", c.Usage)
	}
	// Several token prompts, streamed.
	_, body = do(t, b, backend.OpCompletion, `{"model":"m","prompt":[[1,403],[1,407]],"max_tokens":3,"temperature":0,"stream":true}`)
	got := map[int]bool{}
	for _, d := range sse(t, body) {
		var ch api.Completion
		if d != "[DONE]" && json.Unmarshal([]byte(d), &ch) == nil {
			for _, x := range ch.Choices {
				got[x.Index] = true
			}
		}
	}
	if !got[0] || !got[1] || len(got) != 2 {
		t.Errorf("streamed choices %v", got)
	}
}

// TestMultiCachedTokens: a request on the multi path (n > 1, logprobs, several prompts)
// whose prompt begins with one an earlier request left in a KV cache reports the reused
// tokens in usage.prompt_tokens_details.cached_tokens, as the simple path does; streamed too.
func TestMultiCachedTokens(t *testing.T) {
	b := open(t)
	const story = "Once upon a time there was a little girl named Lily. She loved to play"
	status, body := do(t, b, backend.OpCompletion, `{"model":"m","temperature":0,"max_tokens":2,"prompt":"`+story+`"}`)
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	for _, tc := range []struct{ name, extra string }{
		{"n", `"n":2`},
		{"logprobs", `"logprobs":1`},
		{"prompts", `"prompt":["` + story + ` outside", "` + story + ` outside"]`},
		{"stream", `"n":2,"stream":true,"stream_options":{"include_usage":true}`},
	} {
		req := `{"model":"m","temperature":0,"max_tokens":3,` + tc.extra
		if !strings.Contains(tc.extra, `"prompt"`) {
			req += `,"prompt":"` + story + ` outside"`
		}
		status, body := do(t, b, backend.OpCompletion, req+`}`)
		if status != 200 {
			t.Fatalf("%s: %d %s", tc.name, status, body)
		}
		var usage *api.Usage
		if strings.Contains(tc.extra, "stream") {
			for _, ev := range strings.Split(string(body), "\n\n") {
				var c api.Completion
				if d, ok := strings.CutPrefix(ev, "data: "); ok && json.Unmarshal([]byte(d), &c) == nil && c.Usage != nil {
					usage = c.Usage
				}
			}
		} else {
			var c api.Completion
			if err := json.Unmarshal(body, &c); err != nil {
				t.Fatal(err)
			}
			usage = c.Usage
		}
		// The story's tokens (all but the last of the earlier prompt, at least) were cached.
		if usage == nil || usage.PromptTokensDetails == nil || usage.PromptTokensDetails.CachedTokens < 10 ||
			usage.PromptTokensDetails.CachedTokens >= usage.PromptTokens {
			t.Errorf("%s: usage %+v in %s", tc.name, usage, body)
		}
	}
}
