package grpcapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	autoglmv1 "github.com/open-autoglm/autoglm/gen/autoglm/v1"
	"github.com/open-autoglm/autoglm/gen/autoglm/v1/autoglmv1connect"
	"github.com/open-autoglm/autoglm/internal/admin"
	"github.com/open-autoglm/autoglm/internal/admin/admintest"
	"github.com/open-autoglm/autoglm/internal/auth"
	_ "github.com/open-autoglm/autoglm/internal/backend/openai"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/grpcapi"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/ratelimit"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/telemetry"
	"github.com/open-autoglm/autoglm/internal/testenv"
	"google.golang.org/protobuf/proto"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// gateway is an autoglm server with the gRPC routes, on a real loopback listener, in front of
// a mock upstream.
type gateway struct {
	URL      string
	mock     *mockllm.Server
	auth     *auth.Authenticator
	keys     *admintest.Store
	mu       sync.Mutex
	outcomes []openai.Outcome
}

const adminKey = "grpc-test-bootstrap-admin-key"

// startGateway starts a mock upstream with mopt and a gateway for it; withAuth turns
// authentication on with adminKey as the only credential.
func startGateway(t testing.TB, mopt mockllm.Options, withAuth bool) *gateway {
	t.Helper()
	return startGatewayWith(t, mopt, withAuth, "")
}

// startGatewayWith is startGateway with more configuration (YAML appended to the models).
func startGatewayWith(t testing.TB, mopt mockllm.Options, withAuth bool, moreYAML string) *gateway {
	t.Helper()
	m := mockllm.New(mopt)
	up := httptest.NewServer(m)
	t.Cleanup(up.Close)
	cfg, err := config.Parse([]byte(`
models:
  - name: glm-4-flash
    aliases: [glm4]
    backends:
      - type: openai
        base_url: `+up.URL+`/v1
        model: upstream-glm
`+moreYAML), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	reg, err := router.New(cfg.Models)
	if err != nil {
		t.Fatalf("registry: %v", err)
	}
	t.Cleanup(func() { reg.Close() })
	logs := &syncBuffer{}
	log := telemetry.NewLogger(logs, telemetry.ParseLevel("debug"))
	g := &gateway{mock: m}
	var srv *server.Server
	oa := openai.New(reg, openai.Options{Logger: log, StreamWriteTimeout: cfg.Server.StreamWriteTimeout.D(), OnDone: func(_ context.Context, o openai.Outcome) {
		g.mu.Lock()
		g.outcomes = append(g.outcomes, o)
		g.mu.Unlock()
	}})
	var opts server.Options
	if withAuth {
		cfg.Auth.Enabled = true
		g.keys = admintest.NewStore()
		a, err := auth.New(auth.Options{Config: cfg.Auth, Keys: admin.KeyFeed(g.keys), AdminKey: adminKey})
		if err != nil {
			t.Fatal(err)
		}
		opts.Auth, g.auth = a, a
		lim, err := ratelimit.New(cfg.RateLimit, ratelimit.Options{Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		opts.Limit = lim.Stage(ratelimit.MiddlewareOptions{Subject: func(r *http.Request) (ratelimit.Subject, bool) {
			p, ok := auth.FromContext(r.Context())
			if !ok || p == nil {
				return ratelimit.Subject{}, false
			}
			return ratelimit.Subject{KeyID: p.KeyID, UserID: p.UserID, Role: p.Role}, true
		}})
	}
	opts.Routes = append(oa.Routes(), grpcapi.Routes(func() http.Handler { return srv.Handler() }, grpcapi.Options{MaxBytes: cfg.Server.MaxBodyBytes, Auth: g.auth})...)
	srv = server.NewWith(cfg.Server, reg, log, opts)
	// Registered first, so it runs after the server has stopped.
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("AUTOGLM_TEST_LOGS") != "" {
			t.Log(logs.String())
		}
	})
	g.URL = "http://" + testenv.ServeLoopback(t, srv.Serve)
	return g
}

// clients are the generated client over each protocol the listener speaks: Connect and
// gRPC-Web over HTTP/1.1, gRPC over h2c.
func clients(t testing.TB, url string) map[string]autoglmv1connect.InferenceServiceClient {
	t.Helper()
	h1 := &http.Client{Transport: &http.Transport{}}
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: tr}
	t.Cleanup(func() {
		h1.CloseIdleConnections()
		h2c.CloseIdleConnections()
	})
	return map[string]autoglmv1connect.InferenceServiceClient{
		"connect": autoglmv1connect.NewInferenceServiceClient(h1, url),
		"grpc":    autoglmv1connect.NewInferenceServiceClient(h2c, url, connect.WithGRPC()),
		"grpcweb": autoglmv1connect.NewInferenceServiceClient(h1, url, connect.WithGRPCWeb()),
	}
}

func chatRequest() *autoglmv1.ChatRequest {
	return &autoglmv1.ChatRequest{
		Model:     "glm-4-flash",
		Messages:  []*autoglmv1.Message{{Role: "user", Content: "Say hello"}},
		MaxTokens: proto.Int64(12),
		Seed:      proto.Int64(7),
	}
}

func TestChatAndStream(t *testing.T) {
	g := startGateway(t, mockllm.Options{Tokens: 12, Seed: 3}, false)
	for name, c := range clients(t, g.URL) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			resp, err := c.Chat(ctx, connect.NewRequest(chatRequest()))
			if err != nil {
				t.Fatalf("Chat: %v", err)
			}
			if len(resp.Msg.Choices) != 1 {
				t.Fatalf("choices: %v", resp.Msg)
			}
			want := resp.Msg.Choices[0].Message.GetContent()
			if len(strings.Fields(want)) != 12 || resp.Msg.Choices[0].Message.GetRole() != "assistant" {
				t.Fatalf("message: %v", resp.Msg.Choices[0].Message)
			}
			if u := resp.Msg.Usage; u.GetCompletionTokens() != 12 || u.GetTotalTokens() != u.GetPromptTokens()+12 {
				t.Errorf("usage: %v", u)
			}
			if resp.Header().Get(telemetry.TraceHeader) == "" {
				t.Error("no trace id header")
			}

			stream, err := c.ChatStream(ctx, connect.NewRequest(chatRequest()))
			if err != nil {
				t.Fatalf("ChatStream: %v", err)
			}
			var text strings.Builder
			var last *autoglmv1.ChatStreamResponse
			finish := ""
			n := 0
			for stream.Receive() {
				last = stream.Msg()
				n++
				for _, ch := range last.Choices {
					text.WriteString(ch.Delta.GetContent())
					if ch.FinishReason != "" {
						finish = ch.FinishReason
					}
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("stream: %v", err)
			}
			_ = stream.Close()
			if text.String() != want {
				t.Errorf("stream text %q, want %q", text.String(), want)
			}
			if n < 12 || finish != "stop" {
				t.Errorf("%d messages, finish %q", n, finish)
			}
			if last == nil || last.Usage.GetCompletionTokens() != 12 || len(last.Choices) != 0 {
				t.Errorf("last message: %v", last)
			}
		})
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.outcomes) != 6 {
		t.Errorf("%d usage outcomes, want 6 (each call accounted once)", len(g.outcomes))
	}
}

func TestCompleteEmbedListModels(t *testing.T) {
	g := startGateway(t, mockllm.Options{Tokens: 5, EmbeddingDim: 8}, false)
	for name, c := range clients(t, g.URL) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			cr, err := c.Complete(ctx, connect.NewRequest(&autoglmv1.CompleteRequest{Model: "glm4", Prompt: "Once upon a time"}))
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			if len(cr.Msg.Choices) != 1 || len(strings.Fields(cr.Msg.Choices[0].Text)) != 5 || cr.Msg.Usage.GetPromptTokens() != 4 {
				t.Errorf("Complete: %v", cr.Msg)
			}
			er, err := c.Embed(ctx, connect.NewRequest(&autoglmv1.EmbedRequest{Model: "glm-4-flash", Input: []string{"a", "b c"}}))
			if err != nil {
				t.Fatalf("Embed: %v", err)
			}
			if len(er.Msg.Data) != 2 || er.Msg.Data[1].Index != 1 || len(er.Msg.Data[0].Embedding) != 8 {
				t.Fatalf("Embed: %v", er.Msg)
			}
			var norm float64
			for _, v := range er.Msg.Data[0].Embedding {
				norm += float64(v) * float64(v)
			}
			if norm < 0.99 || norm > 1.01 {
				t.Errorf("embedding norm² %v, want 1", norm)
			}
			lr, err := c.ListModels(ctx, connect.NewRequest(&autoglmv1.ListModelsRequest{}))
			if err != nil {
				t.Fatalf("ListModels: %v", err)
			}
			ids := []string{}
			for _, m := range lr.Msg.Models {
				ids = append(ids, m.Id)
			}
			if !strings.Contains(strings.Join(ids, ","), "glm-4-flash") {
				t.Errorf("models: %v", ids)
			}
		})
	}
}

func TestExtraReachesUpstream(t *testing.T) {
	g := startGateway(t, mockllm.Options{Tokens: 3}, false)
	req := chatRequest()
	req.Stop = []string{"END"}
	req.Temperature = proto.Float64(0)
	req.Extra = mustStruct(t, map[string]any{"tools": []any{map[string]any{"type": "function", "function": map[string]any{"name": "f"}}}, "stream": true})
	if _, err := clients(t, g.URL)["grpc"].Chat(context.Background(), connect.NewRequest(req)); err != nil {
		t.Fatal(err)
	}
	body := g.mock.Stats().LastBody
	for _, want := range []string{`"tools":[`, `"stop":["END"]`, `"temperature":0`, `"stream":false`} {
		if !strings.Contains(body, want) {
			t.Errorf("upstream body %s lacks %s", body, want)
		}
	}
}

func TestErrors(t *testing.T) {
	g := startGateway(t, mockllm.Options{}, false)
	nan := chatRequest()
	nan.Temperature = proto.Float64(nanValue())
	for name, c := range clients(t, g.URL) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			unknown := chatRequest()
			unknown.Model = "no-such-model"
			_, err := c.Chat(ctx, connect.NewRequest(unknown))
			if connect.CodeOf(err) != connect.CodeNotFound {
				t.Errorf("unknown model: %v", err)
			}
			var cerr *connect.Error
			if errors.As(err, &cerr) && cerr.Meta().Get("autoglm-error-code") == "" {
				t.Errorf("unknown model: no error code in %v", cerr.Meta())
			}
			stream, err := c.ChatStream(ctx, connect.NewRequest(unknown))
			if err == nil {
				for stream.Receive() {
				}
				err = stream.Err()
			}
			if connect.CodeOf(err) != connect.CodeNotFound {
				t.Errorf("unknown model, stream: %v", err)
			}
			noMessages := chatRequest()
			noMessages.Messages = nil
			if _, err := c.Chat(ctx, connect.NewRequest(noMessages)); connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Errorf("no messages: %v", err)
			}
			noModel := chatRequest()
			noModel.Model = ""
			if _, err := c.Chat(ctx, connect.NewRequest(noModel)); connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Errorf("no model: %v", err)
			}
			if _, err := c.Chat(ctx, connect.NewRequest(nan)); connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Errorf("NaN temperature: %v", err)
			}
			if _, err := c.Embed(ctx, connect.NewRequest(&autoglmv1.EmbedRequest{Model: "unknown"})); connect.CodeOf(err) != connect.CodeNotFound && connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Errorf("bad embed: %v", err)
			}
		})
	}
}

func TestAuthentication(t *testing.T) {
	g := startGateway(t, mockllm.Options{Tokens: 2}, true)
	for name, c := range clients(t, g.URL) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if _, err := c.Chat(ctx, connect.NewRequest(chatRequest())); connect.CodeOf(err) != connect.CodeUnauthenticated {
				t.Errorf("no credential: %v", err)
			}
			bad := connect.NewRequest(chatRequest())
			bad.Header().Set("Authorization", "Bearer not-a-key")
			if _, err := c.Chat(ctx, bad); connect.CodeOf(err) != connect.CodeUnauthenticated {
				t.Errorf("bad credential: %v", err)
			}
			ok := connect.NewRequest(chatRequest())
			ok.Header().Set("Authorization", "Bearer "+adminKey)
			if _, err := c.Chat(ctx, ok); err != nil {
				t.Errorf("admin key: %v", err)
			}
			lm := connect.NewRequest(&autoglmv1.ListModelsRequest{})
			lm.Header().Set("X-Api-Key", adminKey)
			if _, err := c.ListModels(ctx, lm); err != nil {
				t.Errorf("x-api-key: %v", err)
			}
		})
	}
}

// newKey stores a key for role and returns its secret.
func (g *gateway) newKey(t *testing.T, role string) string {
	t.Helper()
	secret := auth.NewKey()
	_, err := g.keys.CreateKey(context.Background(), store.Key{ID: store.NewID("key"), Prefix: auth.DisplayPrefix(secret),
		Hash: auth.HashKey(secret), Role: role})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.auth.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return secret
}

// TestRoles checks that each call needs the permission of the HTTP route it mirrors: a guest
// (models.list) may list models but not chat.
func TestRoles(t *testing.T) {
	g := startGateway(t, mockllm.Options{Tokens: 2}, true)
	guest, user := g.newKey(t, auth.RoleGuest), g.newKey(t, auth.RoleUser)
	for name, c := range clients(t, g.URL) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			chat := connect.NewRequest(chatRequest())
			chat.Header().Set("Authorization", "Bearer "+guest)
			if _, err := c.Chat(ctx, chat); connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Errorf("guest chat: %v", err)
			}
			streamReq := connect.NewRequest(chatRequest())
			streamReq.Header().Set("Authorization", "Bearer "+guest)
			stream, err := c.ChatStream(ctx, streamReq)
			if err == nil {
				for stream.Receive() {
				}
				err = stream.Err()
			}
			if connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Errorf("guest stream: %v", err)
			}
			lm := connect.NewRequest(&autoglmv1.ListModelsRequest{})
			lm.Header().Set("Authorization", "Bearer "+guest)
			if _, err := c.ListModels(ctx, lm); err != nil {
				t.Errorf("guest list: %v", err)
			}
			chat = connect.NewRequest(chatRequest())
			chat.Header().Set("Authorization", "Bearer "+user)
			if _, err := c.Chat(ctx, chat); err != nil {
				t.Errorf("user chat: %v", err)
			}
		})
	}
}

// TestRateLimitChargedOnce checks that a call is charged once against the request rate: a
// key allowed 3 requests a minute makes 3 calls, and the 4th is refused with
// ResourceExhausted and Retry-After.
func TestRateLimitChargedOnce(t *testing.T) {
	g := startGatewayWith(t, mockllm.Options{Tokens: 2}, true, `
ratelimit:
  roles:
    user: {requests_per_minute: 3}
`)
	c := clients(t, g.URL)["grpc"]
	key := g.newKey(t, auth.RoleUser)
	for i := range 4 {
		req := connect.NewRequest(chatRequest())
		req.Header().Set("Authorization", "Bearer "+key)
		_, err := c.Chat(context.Background(), req)
		if i < 3 && err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		if i == 3 {
			var cerr *connect.Error
			if !errors.As(err, &cerr) || cerr.Code() != connect.CodeResourceExhausted || cerr.Meta().Get("Retry-After") == "" {
				t.Fatalf("call 4: %v", err)
			}
		}
	}
}

// TestStreamCancel checks that a caller who cancels a stream stops the upstream stream too.
func TestStreamCancel(t *testing.T) {
	g := startGateway(t, mockllm.Options{Tokens: 500, ITL: 20 * time.Millisecond}, false)
	for name, c := range clients(t, g.URL) {
		t.Run(name, func(t *testing.T) {
			before := g.mock.Stats().StreamsCanceled
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := chatRequest()
			req.MaxTokens = nil
			stream, err := c.ChatStream(ctx, connect.NewRequest(req))
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ {
				if !stream.Receive() {
					t.Fatalf("stream ended early: %v", stream.Err())
				}
			}
			cancel()
			for stream.Receive() {
			}
			if code := connect.CodeOf(stream.Err()); code != connect.CodeCanceled {
				t.Errorf("after cancel: %v", stream.Err())
			}
			_ = stream.Close()
			deadline := time.Now().Add(5 * time.Second)
			for g.mock.Stats().StreamsCanceled == before {
				if time.Now().After(deadline) {
					t.Fatalf("the upstream stream was not canceled: %+v", g.mock.Stats())
				}
				time.Sleep(5 * time.Millisecond)
			}
			if st := g.mock.Stats(); st.StreamsCompleted != 0 {
				t.Errorf("an upstream stream completed: %+v", st)
			}
		})
	}
}

// TestStreamOutlivesWriteTimeout checks that a stream longer than the server's write timeout
// runs to its end: each chunk moves the caller's write deadline, as for SSE.
func TestStreamOutlivesWriteTimeout(t *testing.T) {
	// The stream (15 tokens 150 ms apart) lasts more than twice the write timeouts; the
	// timeouts stay long enough that a starved test process (race detector, busy machine)
	// does not miss one between two writes.
	g := startGatewayWith(t, mockllm.Options{Tokens: 15, ITL: 150 * time.Millisecond}, false, `
server:
  write_timeout: 1s
  stream_write_timeout: 1s
`)
	for _, name := range []string{"grpc", "connect"} {
		t.Run(name, func(t *testing.T) {
			req := chatRequest()
			req.MaxTokens = nil
			stream, err := clients(t, g.URL)[name].ChatStream(context.Background(), connect.NewRequest(req))
			if err != nil {
				t.Fatal(err)
			}
			words := 0
			for stream.Receive() {
				for _, ch := range stream.Msg().Choices {
					words += len(strings.Fields(ch.Delta.GetContent()))
				}
			}
			if err := stream.Err(); err != nil || words != 15 {
				t.Fatalf("%d words, err %v", words, err)
			}
		})
	}
}
