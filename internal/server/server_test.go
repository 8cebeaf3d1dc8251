package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/mockllm"
)

type openAIError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Code    string  `json:"code"`
		Param   *string `json:"param"`
		TraceID string  `json:"trace_id"`
	} `json:"error"`
}

type envelope struct {
	Code    string          `json:"code"`
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Message string          `json:"message"`
	TraceID string          `json:"trace_id"`
}

func decodeOpenAIError(t *testing.T, resp *http.Response, body []byte) openAIError {
	t.Helper()
	var e openAIError
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" || e.Error.Type == "" {
		t.Fatalf("not an OpenAI error body: %s (%v)", body, err)
	}
	if e.Error.TraceID == "" || e.Error.TraceID != resp.Header.Get("X-Trace-Id") {
		t.Errorf("trace id in body %q, header %q", e.Error.TraceID, resp.Header.Get("X-Trace-Id"))
	}
	return e
}

func TestChatNonStream(t *testing.T) {
	mock, mockURL := startMock(t, mockllm.Options{Tokens: 7, APIKey: "sk-up"})
	g := startGateway(t, oneModel(mockURL, "        api_key: ${KEY}"), map[string]string{"KEY": "sk-up"})

	body := `{"model":"glm4","messages":[{"role":"user","content":"hello there"}],"tools":[{"type":"function","function":{"name":"f"}}],"response_format":{"type":"json_object"},"logprobs":true,"vendor_extension":{"x":[1,2]}}`
	resp, b := post(t, g.URL+"/v1/chat/completions", body, "Authorization", "Bearer client-key-never-forwarded")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var cc api.ChatCompletion
	if err := json.Unmarshal(b, &cc); err != nil {
		t.Fatal(err)
	}
	if len(cc.Choices) != 1 || cc.Usage == nil || cc.Usage.CompletionTokens != 7 {
		t.Fatalf("unexpected completion: %s", b)
	}
	if resp.Header.Get("X-Trace-Id") == "" {
		t.Error("no X-Trace-Id header")
	}
	// The upstream saw the body with only "model" changed, and the backend's own key.
	st := mock.Stats()
	want := strings.Replace(body, `"model":"glm4"`, `"model":"upstream-glm"`, 1)
	if st.LastBody != want {
		t.Errorf("upstream body\n got %s\nwant %s", st.LastBody, want)
	}
	if got := st.LastHeader.Get("Authorization"); got != "Bearer sk-up" {
		t.Errorf("upstream Authorization = %q", got)
	}
	// The access log names the model and backend and carries the trace id.
	waitFor(t, "access log line", func() bool { return strings.Contains(g.logs.String(), `"msg":"request"`) })
	var line map[string]any
	for _, l := range strings.Split(g.logs.String(), "\n") {
		if strings.Contains(l, `"msg":"request"`) {
			_ = json.Unmarshal([]byte(l), &line)
		}
	}
	for k, v := range map[string]any{"method": "POST", "path": "/v1/chat/completions", "status": float64(200),
		"model": "glm-4-flash", "backend": "glm-4-flash#0", "trace_id": resp.Header.Get("X-Trace-Id")} {
		if line[k] != v {
			t.Errorf("access log %s = %v, want %v (line %v)", k, line[k], v, line)
		}
	}
	for _, k := range []string{"duration_ms", "bytes", "client"} {
		if _, ok := line[k]; !ok {
			t.Errorf("access log lacks %s", k)
		}
	}
}

func TestChatStreamIncludeUsage(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 5})
	g := startGateway(t, oneModel(mockURL, ""), nil)
	c := api.NewClient(g.URL+"/v1", nil)
	for _, include := range []bool{false, true} {
		req := &api.ChatCompletionRequest{Model: "glm-4-flash", Messages: []api.Message{{Role: "user", Content: api.Text("hi")}}}
		if include {
			req.StreamOptions = &api.StreamOptions{IncludeUsage: true}
		}
		var text strings.Builder
		var usage *api.Usage
		chunks := 0
		err := c.ChatStream(context.Background(), req, func(ch *api.ChatCompletionChunk) error {
			chunks++
			for _, choice := range ch.Choices {
				text.WriteString(choice.Delta.Content)
			}
			if ch.Usage != nil {
				usage = ch.Usage
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if words := len(strings.Fields(text.String())); words != 5 {
			t.Errorf("include_usage=%v: streamed %d words (%q), want 5", include, words, text.String())
		}
		if include != (usage != nil) {
			t.Errorf("include_usage=%v but usage chunk present=%v", include, usage != nil)
		}
		if usage != nil && usage.CompletionTokens != 5 {
			t.Errorf("usage %+v", usage)
		}
	}
}

// TestSSEPassthroughGolden sends a stream with comments, CRLF line ends, multi-line data,
// event/id/retry fields, Unicode and tool calls, and checks the client receives exactly those
// bytes, each event before the upstream sends the next (so nothing is buffered). A client that
// did not ask for usage gets the same bytes without the usage chunk, which the gateway asked
// the upstream for on its behalf.
func TestSSEPassthroughGolden(t *testing.T) {
	golden, err := os.ReadFile("testdata/passthrough.sse")
	if err != nil {
		t.Fatal(err)
	}
	events := splitEvents(golden)
	next := make(chan struct{})
	bodies := make(chan string, 2)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- string(b)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Set-Cookie", "upstream=secret")
		w.WriteHeader(200)
		for i, ev := range events {
			if i > 0 {
				select {
				case <-next:
				case <-r.Context().Done():
					return
				}
			}
			_, _ = w.Write(ev)
			w.(http.Flusher).Flush()
		}
	}))
	defer upstream.Close()
	g := startGateway(t, oneModel(upstream.URL+"/v1", ""), nil)

	for i, tc := range []struct {
		name, body string
		want       [][]byte // what the client must receive, event by event
	}{
		{"include_usage", `{"model":"glm4","stream":true,"stream_options":{"include_usage":true}}`, events},
		{"no usage asked", `{"model":"glm4","stream":true}`, slices.Delete(slices.Clone(events), 5, 6)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", g.URL+"/v1/chat/completions", strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Errorf("Content-Type %q", ct)
			}
			if resp.Header.Get("Set-Cookie") != "" {
				t.Error("upstream cookie leaked to the client")
			}
			if up := <-bodies; !strings.Contains(up, `"include_usage":true`) {
				t.Errorf("upstream was not asked for usage: %s", up)
			}
			var got, want []byte
			sent := 0
			for i, ev := range tc.want {
				buf := make([]byte, len(ev))
				if _, err := io.ReadFull(resp.Body, buf); err != nil {
					t.Fatalf("event %d not received before the next was sent (buffered?): %v", i, err)
				}
				got = append(got, buf...)
				want = append(want, ev...)
				// Release upstream events until the next one the client should see is sent.
				for sent < len(events)-1 && (i+1 >= len(tc.want) || !bytes.Equal(events[sent+1], tc.want[i+1])) {
					next <- struct{}{}
					sent++
				}
				if i+1 < len(tc.want) && sent < len(events)-1 {
					next <- struct{}{}
					sent++
				}
			}
			rest, _ := io.ReadAll(resp.Body)
			got = append(got, rest...)
			if !bytes.Equal(got, want) {
				t.Errorf("stream differs from the golden file\n got %q\nwant %q", got, want)
			}
			// One request per case: the outcome is reported after the answer has ended.
			o := g.outcomes.last(t, i+1)
			if o.Usage.PromptTokens != 9 || o.Usage.CompletionTokens != 4 || o.Usage.Estimated || !o.Stream {
				t.Errorf("accounted usage %+v", o)
			}
		})
	}
}

// splitEvents cuts an SSE byte stream after each blank line (LF or CRLF).
func splitEvents(b []byte) [][]byte {
	var out [][]byte
	start := 0
	for i := 0; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		if i+1 < len(b) && b[i+1] == '\n' {
			out = append(out, b[start:i+2])
			start = i + 2
			i++
		} else if i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
			out = append(out, b[start:i+3])
			start = i + 3
			i += 2
		}
	}
	if start < len(b) {
		out = append(out, b[start:])
	}
	return out
}

func TestCompletionsEmbeddingsModels(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 4, EmbeddingDim: 6})
	g := startGateway(t, oneModel(mockURL, "")+`
  - name: embedder
    backends:
      - type: openai
        base_url: `+mockURL+"\n", nil)
	c := api.NewClient(g.URL+"/v1", nil)
	ctx := context.Background()

	comp, err := c.Completions(ctx, &api.CompletionRequest{Model: "glm4", Prompt: api.TextInput("Once upon a time"), MaxTokens: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(comp.Choices) != 1 || len(strings.Fields(comp.Choices[0].Text)) != 3 || comp.Choices[0].FinishReason != "length" {
		t.Errorf("completion %+v", comp)
	}

	emb, err := c.Embeddings(ctx, &api.EmbeddingRequest{Model: "embedder", Input: api.TextInput("a", "b")})
	if err != nil {
		t.Fatal(err)
	}
	if len(emb.Data) != 2 || len(emb.Data[0].Embedding) != 6 {
		t.Errorf("embeddings %+v", emb)
	}

	list, err := c.Models(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Data) != 2 || list.Data[0].ID != "glm-4-flash" || list.Data[1].ID != "embedder" || list.Object != "list" {
		t.Errorf("models %+v", list)
	}
	m, err := c.Model(ctx, "glm4")
	if err != nil || m.ID != "glm-4-flash" {
		t.Errorf("model by alias: %+v %v", m, err)
	}
	_, err = c.Model(ctx, "nope")
	var se *api.StatusError
	if !errors.As(err, &se) || se.StatusCode != 404 || se.Code != "model_not_found" {
		t.Errorf("unknown model id: %v", err)
	}

	resp, b := post(t, g.URL+"/v1/embeddings", `{"model":"embedder","input":"x","stream":true}`)
	if resp.StatusCode != 400 {
		t.Errorf("streamed embeddings: %d %s", resp.StatusCode, b)
	}
}

func TestErrors(t *testing.T) {
	mock, mockURL := startMock(t, mockllm.Options{})
	g := startGateway(t, oneModel(mockURL, "")+"server:\n  max_body_bytes: 2048\n", nil)
	big := `{"model":"glm4","messages":[{"role":"user","content":"` + strings.Repeat("x", 4096) + `"}]}`
	cases := []struct {
		name, path, body string
		status           int
		code, typ, param string
	}{
		{"unknown model", "/v1/chat/completions", `{"model":"gpt-9","messages":[]}`, 404, "model_not_found", "invalid_request_error", "model"},
		{"bad json", "/v1/chat/completions", `{"model":"glm4",`, 400, "invalid_json", "invalid_request_error", ""},
		{"not an object", "/v1/completions", `["glm4"]`, 400, "invalid_json", "invalid_request_error", ""},
		{"missing model", "/v1/chat/completions", `{"messages":[]}`, 400, "missing_model", "invalid_request_error", "model"},
		{"model not a string", "/v1/embeddings", `{"model":7}`, 400, "invalid_request", "invalid_request_error", "model"},
		{"stream not bool", "/v1/chat/completions", `{"model":"glm4","stream":"yes"}`, 400, "invalid_request", "invalid_request_error", "stream"},
		{"too large", "/v1/chat/completions", big, 413, "body_too_large", "invalid_request_error", ""},
	}
	before := mock.Stats().Requests["POST /v1/chat/completions"]
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := post(t, g.URL+tc.path, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			e := decodeOpenAIError(t, resp, b)
			if e.Error.Code != tc.code || e.Error.Type != tc.typ {
				t.Errorf("code %q type %q, want %q %q", e.Error.Code, e.Error.Type, tc.code, tc.typ)
			}
			if (e.Error.Param == nil && tc.param != "") || (e.Error.Param != nil && *e.Error.Param != tc.param) {
				t.Errorf("param %v, want %q", e.Error.Param, tc.param)
			}
		})
	}
	if after := mock.Stats().Requests["POST /v1/chat/completions"]; after != before {
		t.Errorf("bad requests reached the upstream (%d calls)", after-before)
	}

	// A body over the limit without a Content-Length (chunked) is refused while reading.
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte(big))
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", g.URL+"/v1/chat/completions", pr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked oversize body: %d %s", resp.StatusCode, b)
	}

	// Unknown routes under /v1/ answer as OpenAI does: an invalid_request_error naming the
	// method and path, with a null code; elsewhere in the envelope.
	resp, b = post(t, g.URL+"/v1/no-such-thing", `{}`)
	var oe struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Code    *string `json:"code"`
			Param   *string `json:"param"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &oe); err != nil || resp.StatusCode != 404 || oe.Error.Message != "Invalid URL (POST /v1/no-such-thing)" ||
		oe.Error.Type != "invalid_request_error" || oe.Error.Code != nil || oe.Error.Param != nil {
		t.Errorf("unknown /v1/ route: %d %s", resp.StatusCode, b)
	}
	resp, b = get(t, g.URL+"/no-such-thing")
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil || resp.StatusCode != 404 || env.Success || env.Code != "route_not_found" || env.TraceID != resp.Header.Get("X-Trace-Id") {
		t.Errorf("unknown native route: %d %s", resp.StatusCode, b)
	}
	resp, b = get(t, g.URL+"/v1/chat/completions")
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET on a POST route: %d allow=%q %s", resp.StatusCode, resp.Header.Get("Allow"), b)
	}
	decodeOpenAIError(t, resp, b)
}

func TestTraceID(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{})
	g := startGateway(t, oneModel(mockURL, ""), nil)
	resp, b := post(t, g.URL+"/v1/chat/completions", `{"model":"nope"}`, "X-Trace-Id", "my-trace-0001")
	if resp.Header.Get("X-Trace-Id") != "my-trace-0001" || !bytes.Contains(b, []byte(`"trace_id":"my-trace-0001"`)) {
		t.Errorf("caller trace id not echoed: %q %s", resp.Header.Get("X-Trace-Id"), b)
	}
	if resp.Header.Get("X-Request-Id") != "my-trace-0001" {
		t.Errorf("X-Request-Id %q, want the trace id", resp.Header.Get("X-Request-Id"))
	}
	// Every answer carries it, successful ones and those of the mock upstream relayed too,
	// as the gateway's id rather than the upstream's.
	for _, path := range []string{"/v1/models", "/healthz", "/nowhere"} {
		resp, _ := get(t, g.URL+path)
		if id := resp.Header.Get("X-Request-Id"); id == "" || id != resp.Header.Get("X-Trace-Id") {
			t.Errorf("%s: X-Request-Id %q, X-Trace-Id %q", path, id, resp.Header.Get("X-Trace-Id"))
		}
	}
	resp, _ = post(t, g.URL+"/v1/chat/completions", `{"model":"glm4","messages":[{"role":"user","content":"hi"}]}`)
	if id := resp.Header.Get("X-Request-Id"); resp.StatusCode != 200 || id != resp.Header.Get("X-Trace-Id") {
		t.Errorf("chat: %d X-Request-Id %q, X-Trace-Id %q", resp.StatusCode, id, resp.Header.Get("X-Trace-Id"))
	}
	resp, _ = post(t, g.URL+"/v1/chat/completions", `{"model":"nope"}`, "X-Trace-Id", "bad id\"with quotes")
	if id := resp.Header.Get("X-Trace-Id"); len(id) != 32 {
		t.Errorf("malformed trace id was not replaced: %q", id)
	}
	resp, _ = post(t, g.URL+"/v1/chat/completions", `{"model":"nope"}`, "Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if id := resp.Header.Get("X-Trace-Id"); id != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("traceparent not used: %q", id)
	}
	waitFor(t, "log with trace id", func() bool { return strings.Contains(g.logs.String(), `"trace_id":"my-trace-0001"`) })
}

func TestUpstreamDownAndFailover(t *testing.T) {
	// A port with nothing listening.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String() + "/v1"
	ln.Close()

	g := startGateway(t, oneModel(dead, ""), nil)
	resp, b := post(t, g.URL+"/v1/chat/completions", `{"model":"glm4","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 502 {
		t.Fatalf("upstream down: %d %s", resp.StatusCode, b)
	}
	e := decodeOpenAIError(t, resp, b)
	if e.Error.Code != "upstream_unreachable" || strings.Contains(string(b), "refused") || strings.Contains(string(b), "127.0.0.1") {
		t.Errorf("error leaks internals or has the wrong code: %s", b)
	}
	resp, b = get(t, g.URL+"/readyz")
	if resp.StatusCode != 200 {
		// Never probed: health is unknown, which counts as ready until a probe says otherwise.
		t.Logf("readyz before probe: %d %s", resp.StatusCode, b)
	}

	// With a dead and a failing backend ahead of a healthy one, every request succeeds.
	_, good := startMock(t, mockllm.Options{Tokens: 2})
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(503)
	}))
	defer failing.Close()
	g2 := startGateway(t, `
models:
  - name: m
    backends:
      - {type: openai, base_url: "`+dead+`"}
      - {type: openai, base_url: "`+failing.URL+`/v1"}
      - {type: openai, base_url: "`+good+`"}
`, nil)
	for i := 0; i < 9; i++ {
		resp, b := post(t, g2.URL+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, b)
		}
	}
}

func TestReadyz(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{})
	g := startGateway(t, oneModel(mockURL, ""), nil)
	resp, b := get(t, g.URL+"/readyz")
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil || resp.StatusCode != 200 || !env.Success {
		t.Fatalf("readyz: %d %s", resp.StatusCode, b)
	}
	resp, b = get(t, g.URL+"/healthz")
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"success":true`)) {
		t.Errorf("healthz: %d %s", resp.StatusCode, b)
	}
}

// TestClientDisconnectCancelsUpstream closes the client connection in the middle of a slow
// stream and checks the mock upstream sees its stream canceled, not completed.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	mock, mockURL := startMock(t, mockllm.Options{Tokens: 200, ITL: 20 * time.Millisecond})
	g := startGateway(t, oneModel(mockURL, ""), nil)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", g.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"glm4","stream":true,"messages":[{"role":"user","content":"go"}]}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(resp.Body)
	for i := 0; i < 3; i++ { // read a few events
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	resp.Body.Close()
	waitFor(t, "upstream stream canceled", func() bool { return mock.Stats().StreamsCanceled == 1 })
	if st := mock.Stats(); st.StreamsCompleted != 0 || st.InFlight != 0 {
		t.Errorf("upstream stats after cancel: %+v", st)
	}
	waitFor(t, "499 in the access log", func() bool { return strings.Contains(g.logs.String(), `"status":499`) })
}

func TestPanicRecovery(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{})
	boom := httpapi.Route{Method: "GET", Pattern: "/v1/test/panic", Shape: apierr.ShapeEnvelope,
		Handler: func(w http.ResponseWriter, r *http.Request) error { panic("secret internal detail") }}
	g := startGateway(t, oneModel(mockURL, ""), nil, boom)
	for i := 0; i < 2; i++ {
		resp, b := get(t, g.URL+"/v1/test/panic")
		if resp.StatusCode != 500 || bytes.Contains(b, []byte("secret")) || !bytes.Contains(b, []byte(`"code":"internal_error"`)) {
			t.Fatalf("panic answer: %d %s", resp.StatusCode, b)
		}
	}
	resp, b := post(t, g.URL+"/v1/chat/completions", `{"model":"glm4","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("server not serving after a panic: %d %s", resp.StatusCode, b)
	}
	if !strings.Contains(g.logs.String(), "secret internal detail") {
		t.Error("panic not logged")
	}
}

// TestGracefulShutdownWithStreamInFlight starts a stream, shuts the server down in the
// middle, and checks the stream still completes while new connections are refused.
func TestGracefulShutdownWithStreamInFlight(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 30, ITL: 20 * time.Millisecond})
	g := startGateway(t, oneModel(mockURL, ""), nil)
	resp, err := http.Post(g.URL+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"glm4","stream":true,"messages":[{"role":"user","content":"go"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	g.cancel() // as SIGTERM does
	waitFor(t, "listener closed", func() bool {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(g.URL, "http://"), 100*time.Millisecond)
		if err == nil {
			c.Close()
			return false
		}
		return true
	})
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("stream cut by shutdown: %v", err)
	}
	if !bytes.HasSuffix(rest, []byte("data: [DONE]\n\n")) {
		t.Errorf("stream did not complete: ...%q", rest[max(0, len(rest)-80):])
	}
	select {
	case err := <-g.done:
		if err != nil {
			t.Errorf("Serve returned %v", err)
		}
		g.done <- nil // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("server did not finish shutting down after the stream ended")
	}
}

// FuzzChatRequest sends arbitrary bodies through the whole handler chain to a live mock:
// every answer is a documented status with a well-formed body, and nothing panics.
func FuzzChatRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"glm4","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"glm4","stream":true,"stream_options":{"include_usage":true},"messages":[]}`,
		`{"model":"x"}`, `{`, `[]`, `null`, `{"model":"glm4","stream":1}`, "",
		`{"model":"glm4","max_tokens":-1,"messages":"nope"}`,
	} {
		f.Add([]byte(s))
	}
	_, upURL := startMock(f, mockllm.Options{Tokens: 3})
	g := startGateway(f, oneModel(upURL, ""), nil)
	h := g.srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"/v1/chat/completions", "/v1/completions", "/v1/embeddings"} {
			req := httptest.NewRequest("POST", path, bytes.NewReader(body))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			switch rec.Code {
			case 200:
			case 400, 404, 413:
				var e openAIError
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Message == "" {
					t.Fatalf("%s %q: bad error body %s", path, body, rec.Body.Bytes())
				}
			default:
				// The mock may reject what the gateway passes on; its errors are OpenAI-shaped too.
				if rec.Code < 400 || rec.Code >= 600 {
					t.Fatalf("%s %q: status %d", path, body, rec.Code)
				}
			}
		}
	})
}
