package local_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/backend/local"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/engine/chat"
	"github.com/open-autoglm/autoglm/internal/engine/tokenizer"
)

const demo = "../../../models/stories260K.gguf"

// continuation is the greedy continuation of "Once upon a time" published with the demo model.
const continuation = ", there was a little girl named Lily. She loved to play outside in the park."

func open(t *testing.T) *local.Backend {
	t.Helper()
	b, err := local.Open(config.Backend{Type: "local", Name: "stories", Path: demo, Model: "stories260k", ContextLength: 512, Parallel: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func do(t *testing.T, b *local.Backend, op backend.Op, body string) (int, []byte) {
	t.Helper()
	resp, err := b.Do(context.Background(), &backend.Request{Op: op, Body: []byte(body), Stream: strings.Contains(body, `"stream":true`)})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// sse returns the data payloads of an SSE body.
func sse(t *testing.T, body []byte) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

func TestChatGreedy(t *testing.T) {
	b := open(t)
	status, body := do(t, b, backend.OpChat, `{"model":"stories260k","temperature":0,"max_tokens":40,
		"messages":[{"role":"user","content":"Once upon a time"}]}`)
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	var cc api.ChatCompletion
	if err := json.Unmarshal(body, &cc); err != nil {
		t.Fatal(err)
	}
	got := cc.Choices[0].Message.Content.String()
	if !strings.HasPrefix(got, continuation) {
		t.Errorf("greedy chat = %q\nwant prefix %q", got, continuation)
	}
	if cc.Model != "stories260k" || cc.Object != "chat.completion" || cc.Choices[0].Message.Role != "assistant" {
		t.Errorf("document fields: %s", body)
	}
	// "Once upon a time" is BOS + 4 tokens; 40 tokens were asked for and the story is longer.
	if u := cc.Usage; u == nil || u.PromptTokens != 5 || u.CompletionTokens != 40 || u.TotalTokens != 45 || cc.Choices[0].FinishReason != "length" {
		t.Errorf("usage %+v finish %q", cc.Usage, cc.Choices[0].FinishReason)
	}
}

func TestCompletionStream(t *testing.T) {
	b := open(t)
	status, body := do(t, b, backend.OpCompletion, `{"model":"stories260k","prompt":"Once upon a time","temperature":0,
		"max_tokens":20,"stream":true,"stream_options":{"include_usage":true}}`)
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	events := sse(t, body)
	if len(events) < 4 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("events: %q", events)
	}
	var text strings.Builder
	var usage *api.Usage
	finish := ""
	for _, ev := range events[:len(events)-1] {
		var c api.Completion
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatalf("chunk %q: %v", ev, err)
		}
		for _, ch := range c.Choices {
			text.WriteString(ch.Text)
			if ch.FinishReason != "" {
				finish = string(ch.FinishReason)
			}
		}
		if c.Usage != nil {
			usage = c.Usage
		}
	}
	if !strings.HasPrefix(continuation, text.String()) && !strings.HasPrefix(text.String(), continuation) {
		t.Errorf("streamed %q, want a prefix of the continuation", text.String())
	}
	if finish != "length" || usage == nil || usage.PromptTokens != 5 || usage.CompletionTokens != 20 {
		t.Errorf("finish %q usage %+v", finish, usage)
	}
}

func TestConcurrentStreams(t *testing.T) {
	b := open(t)
	const n = 6
	var wg sync.WaitGroup
	texts := make([]string, n)
	for i := range n {
		wg.Go(func() {
			status, body := do(t, b, backend.OpChat, `{"model":"stories260k","temperature":0,"max_tokens":12,"stream":true,
				"messages":[{"role":"user","content":"Once upon a time"}]}`)
			if status != 200 {
				t.Errorf("status %d", status)
				return
			}
			var s strings.Builder
			for _, ev := range sse(t, body) {
				var c api.ChatCompletionChunk
				if ev == "[DONE]" || json.Unmarshal([]byte(ev), &c) != nil {
					continue
				}
				for _, ch := range c.Choices {
					s.WriteString(ch.Delta.Content)
				}
			}
			texts[i] = s.String()
		})
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if texts[i] != texts[0] || texts[0] == "" {
			t.Errorf("concurrent greedy streams differ: %q vs %q", texts[i], texts[0])
		}
	}
}

func TestEmbeddings(t *testing.T) {
	b := open(t)
	status, body := do(t, b, backend.OpEmbedding, `{"model":"stories260k","input":["a cat","a dog","a cat"]}`)
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	var er api.EmbeddingResponse
	if err := json.Unmarshal(body, &er); err != nil {
		t.Fatal(err)
	}
	if len(er.Data) != 3 || len(er.Data[0].Embedding) != 64 {
		t.Fatalf("embeddings: %s", body)
	}
	for _, d := range er.Data {
		var s float64
		for _, x := range d.Embedding {
			s += float64(x) * float64(x)
		}
		if math.Abs(s-1) > 1e-4 {
			t.Errorf("vector %d has norm² %v", d.Index, s)
		}
	}
	for i := range er.Data[0].Embedding {
		if er.Data[0].Embedding[i] != er.Data[2].Embedding[i] {
			t.Fatal("the same input gave different vectors")
		}
	}
	if er.Usage.PromptTokens == 0 {
		t.Error("no usage")
	}
	status, body = do(t, b, backend.OpEmbedding, `{"model":"stories260k","input":"x","encoding_format":"base64","dimensions":16}`)
	var b64 api.EmbeddingResponse
	if status != 200 || json.Unmarshal(body, &b64) != nil || len(b64.Data[0].Embedding) != 16 {
		t.Errorf("base64 with dimensions: %d %s", status, body)
	}
}

func TestBadRequests(t *testing.T) {
	b := open(t)
	long := strings.Repeat("Once upon a time ", 200)
	cases := []struct {
		op         backend.Op
		body, code string
	}{
		{backend.OpChat, `{"model":"m","messages":[]}`, "invalid_request"},
		{backend.OpChat, `{"model":"m","n":9,"messages":[{"role":"user","content":"x"}]}`, "invalid_request"},
		{backend.OpChat, `{"model":"m","temperature":7,"messages":[{"role":"user","content":"x"}]}`, "invalid_request"},
		{backend.OpChat, `{"model":"m","messages":[{"role":"user","content":"` + long + `"}]}`, "context_length_exceeded"},
		{backend.OpChat, `{"model":"m","messages":"nope"}`, "invalid_request"},
		{backend.OpCompletion, `{"model":"m","prompt":[999999]}`, "invalid_request"},
		{backend.OpEmbedding, `{"model":"m","input":[]}`, "invalid_request"},
	}
	for _, tc := range cases {
		status, body := do(t, b, tc.op, tc.body)
		var e api.ErrorResponse
		if status != 400 || json.Unmarshal(body, &e) != nil || e.Error.Code != tc.code {
			t.Errorf("%s %.60s: %d %s", tc.op, tc.body, status, body)
		}
	}
}

func TestClientGoneStopsGeneration(t *testing.T) {
	b := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := b.Do(ctx, &backend.Request{Op: backend.OpChat, Stream: true,
		Body: []byte(`{"model":"m","stream":true,"max_tokens":400,"messages":[{"role":"user","content":"Once"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(resp.Body)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	// The slot is free again: a new request completes.
	status, body := do(t, b, backend.OpChat, `{"model":"m","max_tokens":3,"messages":[{"role":"user","content":"Once"}]}`)
	if status != 200 {
		t.Fatalf("after cancel: %d %s", status, body)
	}
}

// TestChatCachedTokens sends a chat turn, then the next turn with the whole
// history: the second finds the first's prompt in the KV cache and says so in
// usage.prompt_tokens_details.cached_tokens.
func TestChatCachedTokens(t *testing.T) {
	b := open(t)
	first := `{"role":"system","content":"You tell short stories."},{"role":"user","content":"Once upon a time"}`
	status, body := do(t, b, backend.OpChat, `{"model":"stories260k","temperature":0,"max_tokens":12,"messages":[`+first+`]}`)
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	if !bytes.Contains(body, []byte(`"prompt_tokens_details":{"cached_tokens":0}`)) {
		t.Errorf("first turn: %s", body)
	}
	var cc api.ChatCompletion
	if err := json.Unmarshal(body, &cc); err != nil {
		t.Fatal(err)
	}
	answer, _ := json.Marshal(cc.Choices[0].Message.Content.String())
	second := first + `,{"role":"assistant","content":` + string(answer) + `},{"role":"user","content":"And then?"}`
	status, body = do(t, b, backend.OpChat, `{"model":"stories260k","temperature":0,"max_tokens":4,"stream":true,
		"stream_options":{"include_usage":true},"messages":[`+second+`]}`)
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	var usage *api.Usage
	for _, ev := range sse(t, body) {
		var c api.ChatCompletionChunk
		if ev != "[DONE]" && json.Unmarshal([]byte(ev), &c) == nil && c.Usage != nil {
			usage = c.Usage
		}
	}
	tok, tmpl := b.Runner().Tokenizer(), b.Runner().Template()
	render := func(msgs []chat.Message) []int32 {
		text, err := tmpl.Render(msgs, true)
		if err != nil {
			t.Fatal(err)
		}
		return tok.Encode(text, tokenizer.EncodeOptions{AddSpecial: true, ParseSpecial: true})
	}
	sys, user := chat.Message{Role: "system", Content: "You tell short stories."}, chat.Message{Role: "user", Content: "Once upon a time"}
	p1 := render([]chat.Message{sys, user})
	p2 := render([]chat.Message{sys, user, {Role: "assistant", Content: cc.Choices[0].Message.Content.String()}, {Role: "user", Content: "And then?"}})
	shared := 0
	for shared < len(p1) && p1[shared] == p2[shared] {
		shared++
	}
	if usage == nil || usage.PromptTokensDetails == nil || usage.PromptTokens != len(p2) ||
		usage.PromptTokensDetails.CachedTokens < shared || usage.PromptTokensDetails.CachedTokens >= len(p2) {
		t.Errorf("second turn usage %+v (details %+v); the prompts share %d of %d tokens", usage, usage.PromptTokensDetails, shared, len(p2))
	}
}

// TestOpenAINulls: choices carry "logprobs": null and chat messages "refusal": null, as
// OpenAI's answers do; strict clients and the published schema expect the keys.
func TestOpenAINulls(t *testing.T) {
	b := open(t)
	_, body := do(t, b, backend.OpChat, `{"model":"stories260k","max_tokens":3,"messages":[{"role":"user","content":"Once"}]}`)
	var doc struct {
		Choices []struct {
			Message  map[string]json.RawMessage `json:"message"`
			Logprobs json.RawMessage            `json:"logprobs"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || len(doc.Choices) != 1 {
		t.Fatalf("%v: %s", err, body)
	}
	if string(doc.Choices[0].Logprobs) != "null" || string(doc.Choices[0].Message["refusal"]) != "null" {
		t.Errorf("chat answer lacks logprobs/refusal null: %s", body)
	}
	for _, tc := range []struct {
		op   backend.Op
		body string
	}{
		{backend.OpChat, `{"model":"stories260k","max_tokens":3,"stream":true,"messages":[{"role":"user","content":"Once"}]}`},
		{backend.OpCompletion, `{"model":"stories260k","max_tokens":3,"stream":true,"prompt":"Once"}`},
		{backend.OpCompletion, `{"model":"stories260k","max_tokens":3,"prompt":"Once"}`},
	} {
		_, body := do(t, b, tc.op, tc.body)
		docs := sse(t, body)
		if !strings.Contains(tc.body, `"stream":true`) {
			docs = []string{string(body)}
		}
		for _, d := range docs {
			if d == "[DONE]" || strings.Contains(d, `"choices":[]`) {
				continue
			}
			if !strings.Contains(d, `"logprobs":null`) {
				t.Errorf("choice without logprobs null: %s", d)
			}
		}
	}
}

func TestKVCacheTypeConfig(t *testing.T) {
	// The demo model's heads are 8 wide: q8_0 blocks of 32 do not fit.
	_, err := local.Open(config.Backend{Type: "local", Path: demo, Model: "m", KVCacheType: "q8_0"})
	if err == nil || !strings.Contains(err.Error(), "multiple of 32") {
		t.Errorf("q8_0 cache on the demo model: %v", err)
	}
	b, err := local.Open(config.Backend{Type: "local", Path: demo, Model: "m", ContextLength: 512, KVCacheType: "f16"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if info := b.Runner().Info(); info.KVCacheType != "F16" || info.KVBytesPerToken != 2*5*4*8*2 {
		t.Errorf("info %+v", info)
	}
	status, body := do(t, b, backend.OpCompletion, `{"model":"m","prompt":"Once upon a time","temperature":0,"max_tokens":12}`)
	var c api.Completion
	if status != 200 || json.Unmarshal(body, &c) != nil || !strings.HasPrefix(continuation, c.Choices[0].Text) {
		t.Errorf("f16 cache, greedy: %d %s", status, body)
	}
}
