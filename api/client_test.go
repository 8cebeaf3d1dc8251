package api_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/internal/mockllm"
)

// mock starts a mock upstream and returns it with a client for it.
func mock(t *testing.T, opt mockllm.Options) (*mockllm.Server, *api.Client) {
	t.Helper()
	m := mockllm.New(opt)
	ts := httptest.NewServer(m)
	t.Cleanup(ts.Close)
	return m, api.NewClient(ts.URL, ts.Client())
}

func chatRequest() *api.ChatCompletionRequest {
	return &api.ChatCompletionRequest{
		Model:    "mock-model",
		Messages: []api.Message{{Role: api.RoleUser, Content: api.Text("tell me a story")}},
	}
}

func TestChat(t *testing.T) {
	m, c := mock(t, mockllm.Options{Tokens: 6})
	req := chatRequest()
	req.Stream = true // ignored by Chat
	got, err := c.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !req.Stream {
		t.Error("Chat modified the request")
	}
	if got.Object != "chat.completion" || got.Model != "mock-model" || len(got.Choices) != 1 {
		t.Fatalf("answer %+v", got)
	}
	ch := got.Choices[0]
	if ch.Message.Role != api.RoleAssistant || len(strings.Fields(ch.Message.Content.String())) != 6 || ch.FinishReason != api.FinishStop {
		t.Errorf("choice %+v", ch)
	}
	if diff := cmp.Diff(&api.Usage{PromptTokens: 4, CompletionTokens: 6, TotalTokens: 10}, got.Usage); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
	st := m.Stats()
	if !strings.Contains(st.LastBody, `"messages":[{"role":"user","content":"tell me a story"}]`) || strings.Contains(st.LastBody, `"stream"`) {
		t.Errorf("sent %s", st.LastBody)
	}
	if st.LastHeader.Get("Content-Type") != "application/json" {
		t.Errorf("sent headers %v", st.LastHeader)
	}
}

func TestChatStream(t *testing.T) {
	_, c := mock(t, mockllm.Options{Tokens: 5})
	ctx := context.Background()
	full, err := c.Chat(ctx, chatRequest())
	if err != nil {
		t.Fatal(err)
	}
	req := chatRequest()
	req.StreamOptions = &api.StreamOptions{IncludeUsage: true}
	var text strings.Builder
	var chunks []*api.ChatCompletionChunk
	err = c.ChatStream(ctx, req, func(ch *api.ChatCompletionChunk) error {
		chunks = append(chunks, ch)
		for _, choice := range ch.Choices {
			text.WriteString(choice.Delta.Content)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if req.Stream {
		t.Error("ChatStream modified the request")
	}
	if text.String() != full.Choices[0].Message.Content.String() {
		t.Errorf("streamed %q, whole answer %q", text.String(), full.Choices[0].Message.Content)
	}
	if len(chunks) != 6 {
		t.Fatalf("%d chunks, want 5 tokens + usage", len(chunks))
	}
	if chunks[0].Choices[0].Delta.Role != api.RoleAssistant || chunks[4].Choices[0].FinishReason != api.FinishStop || chunks[3].Choices[0].FinishReason != "" {
		t.Errorf("chunks %+v", chunks)
	}
	if last := chunks[5]; len(last.Choices) != 0 || last.Usage == nil || last.Usage.CompletionTokens != 5 {
		t.Errorf("usage chunk %+v", last)
	}

	// An error from fn stops the stream and is returned as is.
	stop := errors.New("enough")
	n := 0
	err = c.ChatStream(ctx, chatRequest(), func(*api.ChatCompletionChunk) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("got %v after %d chunks, want %v after 1", err, n, stop)
	}
}

func TestCompletionsAndEmbeddings(t *testing.T) {
	_, c := mock(t, mockllm.Options{Tokens: 4, EmbeddingDim: 5})
	ctx := context.Background()
	comp, err := c.Completions(ctx, &api.CompletionRequest{Model: "m", Prompt: api.TextInput("a", "b"), MaxTokens: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(comp.Choices) != 2 || comp.Choices[1].FinishReason != api.FinishLength || len(strings.Fields(comp.Choices[0].Text)) != 3 {
		t.Errorf("completion %+v", comp)
	}
	var text string
	err = c.CompletionsStream(ctx, &api.CompletionRequest{Model: "m", Prompt: api.TokenInput([]int{1, 2, 3})}, func(ch *api.Completion) error {
		text += ch.Choices[0].Text
		return nil
	})
	if err != nil || len(strings.Fields(text)) != 4 {
		t.Errorf("streamed %q, %v", text, err)
	}

	float, err := c.Embeddings(ctx, &api.EmbeddingRequest{Model: "e", Input: api.TextInput("x", "y")})
	if err != nil {
		t.Fatal(err)
	}
	b64, err := c.Embeddings(ctx, &api.EmbeddingRequest{Model: "e", Input: api.TextInput("x", "y"), EncodingFormat: "base64"})
	if err != nil {
		t.Fatal(err)
	}
	if len(float.Data) != 2 || len(float.Data[0].Embedding) != 5 || float.Usage.PromptTokens != 2 {
		t.Errorf("embeddings %+v", float)
	}
	if diff := cmp.Diff(float, b64); diff != "" {
		t.Errorf("float and base64 answers differ (-float +base64):\n%s", diff)
	}
}

func TestModels(t *testing.T) {
	_, c := mock(t, mockllm.Options{Models: []string{"a", "org/b"}})
	ctx := context.Background()
	list, err := c.Models(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Data) != 2 || list.Data[1].ID != "org/b" || list.Data[1].OwnedBy != "mockllm" {
		t.Errorf("models %+v", list)
	}
	m, err := c.Model(ctx, "org/b")
	if err != nil || m.ID != "org/b" {
		t.Errorf("model %+v, %v", m, err)
	}
	_, err = c.Model(ctx, "missing")
	var se *api.StatusError
	if !errors.As(err, &se) || se.StatusCode != 404 || se.Code != "model_not_found" || se.Param != "model" || se.Type != "invalid_request_error" {
		t.Errorf("missing model: %#v", err)
	}
}

func TestAPIKeyAndFailures(t *testing.T) {
	m, c := mock(t, mockllm.Options{APIKey: "sk-1"})
	ctx := context.Background()
	_, err := c.Models(ctx)
	var se *api.StatusError
	if !errors.As(err, &se) || se.StatusCode != 401 || se.Code != "invalid_api_key" {
		t.Fatalf("without a key: %v", err)
	}
	if !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "invalid_api_key") {
		t.Errorf("message %q", err)
	}
	keyed := c.WithAPIKey("sk-1").WithHeader("X-Tenant", "t1")
	if _, err := keyed.Models(ctx); err != nil {
		t.Fatal(err)
	}
	if h := m.Stats().LastHeader; h.Get("Authorization") != "Bearer sk-1" || h.Get("X-Tenant") != "t1" {
		t.Errorf("headers sent: %v", h)
	}
	if _, err := c.Models(ctx); err == nil {
		t.Error("WithAPIKey changed the original client")
	}

	_, failing := mock(t, mockllm.Options{FailRate: 1})
	_, err = failing.Chat(ctx, chatRequest())
	if !errors.As(err, &se) || se.StatusCode != 500 || se.Type != "server_error" {
		t.Errorf("injected failure: %v", err)
	}
	err = failing.ChatStream(ctx, chatRequest(), func(*api.ChatCompletionChunk) error { return nil })
	if !errors.As(err, &se) || se.StatusCode != 500 {
		t.Errorf("injected failure on a stream: %v", err)
	}
}

func TestStreamCancel(t *testing.T) {
	m, c := mock(t, mockllm.Options{Tokens: 1000, ITL: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	err := c.ChatStream(ctx, chatRequest(), func(*api.ChatCompletionChunk) error {
		if n++; n == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for m.Stats().StreamsCanceled != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("upstream never saw the cancellation: %+v", m.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fake serves fixed answers, for the shapes the mock never produces.
func fake(t *testing.T, h http.HandlerFunc) *api.Client {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return api.NewClient(ts.URL+"/v1/", nil) // the /v1 suffix is accepted
}

func TestErrorShapes(t *testing.T) {
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		name   string
		status int
		header []string
		body   string
		want   api.StatusError
	}{
		{"openai", 429, []string{"Retry-After", "7", "X-Trace-Id", "tr-1"},
			`{"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}`,
			api.StatusError{StatusCode: 429, Type: "rate_limit_error", Code: "rate_limit_exceeded", Message: "slow down", TraceID: "tr-1", RetryAfter: 7 * time.Second}},
		{"envelope", 403, nil,
			`{"code":"PERMISSION_DENIED","success":false,"data":null,"message":"no","trace_id":"tr-2"}`,
			api.StatusError{StatusCode: 403, Code: "PERMISSION_DENIED", Message: "no", TraceID: "tr-2"}},
		{"envelope with header trace", 503, []string{"X-Trace-Id", "tr-h"},
			`{"code":"UNAVAILABLE","success":false,"message":"down","trace_id":"tr-b"}`,
			api.StatusError{StatusCode: 503, Code: "UNAVAILABLE", Message: "down", TraceID: "tr-h"}},
		{"string error", 400, nil, `{"error":"bad model"}`, api.StatusError{StatusCode: 400, Message: "bad model"}},
		{"numeric code", 400, nil, `{"error":{"message":"m","type":"BadRequestError","code":400}}`,
			api.StatusError{StatusCode: 400, Type: "BadRequestError", Code: "400", Message: "m"}},
		{"text", 502, nil, "upstream exploded\n", api.StatusError{StatusCode: 502, Message: "upstream exploded"}},
		{"empty", 504, nil, "", api.StatusError{StatusCode: 504, Message: "Gateway Timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fake(t, func(w http.ResponseWriter, r *http.Request) {
				for i := 0; i+1 < len(tc.header); i += 2 {
					w.Header().Set(tc.header[i], tc.header[i+1])
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			_, err := c.Models(context.Background())
			var se *api.StatusError
			if !errors.As(err, &se) {
				t.Fatalf("got %v", err)
			}
			if diff := cmp.Diff(tc.want, *se); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", date)
		w.WriteHeader(429)
	})
	_, err := c.Models(context.Background())
	var se *api.StatusError
	if !errors.As(err, &se) || se.RetryAfter < 60*time.Second || se.RetryAfter > 90*time.Second {
		t.Errorf("Retry-After as a date: %v", err)
	}
}

func TestStreamShapes(t *testing.T) {
	const chunk = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}`
	for _, tc := range []struct {
		name, ctype, body string
		chunks            int
		check             func(error) bool
	}{
		{"done", "text/event-stream", ": hello\n\ndata: " + chunk + "\n\ndata: [DONE]\n\n", 1, isNil},
		{"multi-line data", "text/event-stream", "data: {\"id\":\"c\",\ndata: \"choices\":[]}\n\ndata: [DONE]\n\n", 1, isNil},
		{"no done", "text/event-stream", "data: " + chunk + "\n\n", 1, func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{"error event", "text/event-stream", "data: " + chunk + "\n\nevent: error\ndata: {\"error\":{\"message\":\"oom\",\"type\":\"server_error\",\"code\":\"503\"}}\n\n", 1,
			statusErr(func(se *api.StatusError) bool {
				return se.StatusCode == 503 && se.Message == "oom" && se.TraceID == "tr"
			})},
		{"error object", "text/event-stream", "data: " + chunk + "\n\ndata: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n", 1,
			statusErr(func(se *api.StatusError) bool {
				return se.StatusCode == 0 && se.Message == "overloaded" && se.Type == "server_error"
			})},
		{"bad chunk", "text/event-stream", "data: {nope\n\n", 0, func(err error) bool { return err != nil && strings.Contains(err.Error(), "decode event") }},
		{"json error", "application/json", `{"error":{"message":"m","type":"t"}}`, 0, statusErr(func(se *api.StatusError) bool { return se.Message == "m" })},
		{"json answer", "application/json; charset=utf-8", `{"id":"x","choices":[]}`, 0, func(err error) bool { return err != nil && strings.Contains(err.Error(), "expected an event stream") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fake(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/v1/chat/completions" || r.Header.Get("Accept") != "text/event-stream" {
					t.Errorf("request %s %v", r.URL.Path, r.Header)
				}
				w.Header().Set("Content-Type", tc.ctype)
				w.Header().Set("X-Trace-Id", "tr")
				io.WriteString(w, tc.body)
			})
			n := 0
			err := c.ChatStream(context.Background(), chatRequest(), func(*api.ChatCompletionChunk) error { n++; return nil })
			if !tc.check(err) || n != tc.chunks {
				t.Errorf("got %v after %d chunks", err, n)
			}
		})
	}
}

func isNil(err error) bool { return err == nil }

func statusErr(ok func(*api.StatusError) bool) func(error) bool {
	return func(err error) bool {
		var se *api.StatusError
		return errors.As(err, &se) && ok(se)
	}
}

// TestStreamIsIncremental checks that chunks reach the callback as they
// arrive, not when the stream ends.
func TestStreamIsIncremental(t *testing.T) {
	release := make(chan struct{})
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		bw := bufio.NewWriter(w)
		fmt.Fprintf(bw, "data: {\"choices\":[]}\n\n")
		bw.Flush()
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "data: [DONE]\n\n")
	})
	err := c.ChatStream(context.Background(), chatRequest(), func(*api.ChatCompletionChunk) error {
		close(release)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
