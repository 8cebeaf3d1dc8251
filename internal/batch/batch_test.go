package batch_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/admin"
	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/auth"
	_ "github.com/open-autoglm/autoglm/internal/backend/openai"
	"github.com/open-autoglm/autoglm/internal/batch"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/contract"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/store"
	_ "github.com/open-autoglm/autoglm/internal/store/postgres"
	"github.com/open-autoglm/autoglm/internal/store/sqlite"
	"github.com/open-autoglm/autoglm/internal/telemetry"
	"github.com/open-autoglm/autoglm/internal/testenv"
)

type gateway struct {
	URL        string
	alice, bob string // API keys of two callers
	aliceID    string // alice's key id
	st         store.Store
	auth       *auth.Authenticator
}

// start runs a gateway with authentication on, a mock upstream and the batch service.
// hooks change a test gateway: the upstream's handler, and the server's limit stage.
type hooks struct {
	upstream func(http.Handler) http.Handler
	limit    func(httpapi.Limit) httpapi.Stage
	poll     time.Duration // the workers' poll interval; default 20ms
}

func start(t *testing.T, mock mockllm.Options, bcfg config.Batch, h ...hooks) *gateway {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "autoglm.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return startOn(t, st, mock, bcfg, h...)
}

// startOn is start on the store st.
func startOn(t *testing.T, st store.Store, mock mockllm.Options, bcfg config.Batch, h ...hooks) *gateway {
	t.Helper()
	var hk hooks
	if len(h) > 0 {
		hk = h[0]
	}
	var up http.Handler = mockllm.New(mock)
	if hk.upstream != nil {
		up = hk.upstream(up)
	}
	m := httptest.NewServer(up)
	t.Cleanup(m.Close)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
server:
  max_body_bytes: 2048
models:
  - name: glm-4-flash
    backends:
      - type: openai
        base_url: %s/v1
        model: upstream-glm
batch:
  max_file_bytes: %d
  concurrency: %d
`, m.URL, bcfg.MaxFileBytes, bcfg.Concurrency)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth.Enabled = true
	reg, err := router.New(cfg.Models)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	ctx := context.Background()
	a, err := auth.New(auth.Options{Config: cfg.Auth, Keys: admin.KeyFeed(st)})
	if err != nil {
		t.Fatal(err)
	}
	log := telemetry.NewLogger(io.Discard, telemetry.ParseLevel("error"))
	var srv *server.Server
	svc, err := batch.Open(ctx, st, batch.Options{Config: cfg.Batch, Handler: func() http.Handler { return srv.Handler() },
		Principal: a.PrincipalOf, Logger: log, Poll: cmp.Or(hk.poll, 20*time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	oa := openai.New(reg, openai.Options{Logger: log})
	srv = server.NewWith(cfg.Server, reg, log, server.Options{Auth: a, Routes: append(oa.Routes(), svc.Routes()...), Limit: hk.limit})
	ts := httptest.NewServer(srv.Handler())
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { svc.Run(rctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		ts.Close()
		svc.Close()
	})
	g := &gateway{URL: ts.URL, st: st, auth: a}
	for i, k := range []*string{&g.alice, &g.bob} {
		secret := auth.NewKey()
		id := store.NewID("key")
		if _, err := st.CreateKey(ctx, store.Key{ID: id, Prefix: auth.DisplayPrefix(secret),
			Hash: auth.HashKey(secret), Role: auth.RoleUser}); err != nil {
			t.Fatal(err)
		}
		*k = secret
		if i == 0 {
			g.aliceID = id
		}
	}
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *gateway) do(t *testing.T, key, method, path, contentType string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, g.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (g *gateway) upload(t *testing.T, key, purpose, content string) (int, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("purpose", purpose)
	fw, _ := mw.CreateFormFile("file", "in.jsonl")
	_, _ = io.WriteString(fw, content)
	_ = mw.Close()
	return g.do(t, key, "POST", "/v1/files", mw.FormDataContentType(), buf.Bytes())
}

func chatLine(id, model string) string {
	return fmt.Sprintf(`{"custom_id":%q,"method":"POST","url":"/v1/chat/completions","body":{"model":%q,"messages":[{"role":"user","content":"hello %s"}],"max_tokens":3}}`, id, model, id)
}

type batchDoc struct {
	ID            string  `json:"id"`
	Object        string  `json:"object"`
	Status        string  `json:"status"`
	OutputFileID  *string `json:"output_file_id"`
	ErrorFileID   *string `json:"error_file_id"`
	CompletedAt   *int64  `json:"completed_at"`
	CancelledAt   *int64  `json:"cancelled_at"`
	RequestCounts struct {
		Total, Completed, Failed int
	} `json:"request_counts"`
	Metadata map[string]string `json:"metadata"`
}

func (g *gateway) create(t *testing.T, key, fileID string) batchDoc {
	t.Helper()
	code, b := g.do(t, key, "POST", "/v1/batches", "application/json",
		[]byte(`{"input_file_id":"`+fileID+`","endpoint":"/v1/chat/completions","completion_window":"24h","metadata":{"job":"nightly"}}`))
	if code != 200 {
		t.Fatalf("create batch: %d %s", code, b)
	}
	var d batchDoc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func (g *gateway) waitFor(t *testing.T, key, id string, done func(batchDoc) bool) batchDoc {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, b := g.do(t, key, "GET", "/v1/batches/"+id, "", nil)
		var d batchDoc
		if code != 200 || json.Unmarshal(b, &d) != nil {
			t.Fatalf("get batch: %d %s", code, b)
		}
		if done(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch still %s: %s", d.Status, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type resultLine struct {
	ID       string `json:"id"`
	CustomID string `json:"custom_id"`
	Response *struct {
		StatusCode int             `json:"status_code"`
		RequestID  string          `json:"request_id"`
		Body       json.RawMessage `json:"body"`
	} `json:"response"`
	Error json.RawMessage `json:"error"`
}

func (g *gateway) results(t *testing.T, key, fileID string) []resultLine {
	t.Helper()
	code, b := g.do(t, key, "GET", "/v1/files/"+fileID+"/content", "", nil)
	if code != 200 {
		t.Fatalf("file content: %d %s", code, b)
	}
	var out []resultLine
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r resultLine
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("result line %q: %v", l, err)
		}
		out = append(out, r)
	}
	return out
}

func TestBatchEndToEnd(t *testing.T) {
	endToEnd(t, start(t, mockllm.Options{Tokens: 3}, config.Batch{}))
}

// TestBatchPostgres is TestBatchEndToEnd on PostgreSQL, in a schema of its own.
func TestBatchPostgres(t *testing.T) {
	ctx := context.Background()
	cfg, err := config.Parse([]byte("store:\n  driver: postgres\n  dsn: '"+testenv.PostgresSchemaDSN(t, "batchtest")+"'\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, cfg.Store, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	endToEnd(t, startOn(t, st, mockllm.Options{Tokens: 3}, config.Batch{}))
}

func endToEnd(t *testing.T, g *gateway) {
	lines := []string{chatLine("a", "glm-4-flash"), chatLine("b", "glm-4-flash"), chatLine("missing-model", "no-such-model"), chatLine("c", "glm-4-flash")}
	code, b := g.upload(t, g.alice, "batch", strings.Join(lines, "\n")+"\n")
	if code != 200 {
		t.Fatalf("upload: %d %s", code, b)
	}
	var f struct {
		ID, Object, Purpose, Filename, Status string
		Bytes                                 int
	}
	_ = json.Unmarshal(b, &f)
	doc := contract.Load(t)
	doc.Check(t, "OpenAIFile", b)
	if !strings.HasPrefix(f.ID, "file-") || f.Object != "file" || f.Purpose != "batch" || f.Filename != "in.jsonl" || f.Status != "processed" || f.Bytes == 0 {
		t.Fatalf("file object: %s", b)
	}
	d := g.create(t, g.alice, f.ID)
	if d.Object != "batch" || d.RequestCounts.Total != 4 || d.Metadata["job"] != "nightly" {
		t.Fatalf("batch object: %+v", d)
	}
	d = g.waitFor(t, g.alice, d.ID, func(d batchDoc) bool { return d.Status == "completed" })
	_, b = g.do(t, g.alice, "GET", "/v1/batches/"+d.ID, "", nil)
	doc.Check(t, "Batch", b)
	_, b = g.do(t, g.alice, "GET", "/v1/batches?limit=5", "", nil)
	doc.Check(t, "ListBatchesResponse", b)
	_, b = g.do(t, g.alice, "GET", "/v1/files", "", nil)
	doc.Check(t, "ListFilesResponse", b)
	if d.RequestCounts.Completed != 3 || d.RequestCounts.Failed != 1 || d.OutputFileID == nil || d.ErrorFileID == nil || d.CompletedAt == nil {
		t.Fatalf("completed batch: %+v", d)
	}
	out := g.results(t, g.alice, *d.OutputFileID)
	seen := map[string]bool{}
	for _, r := range out {
		if r.Response == nil || r.Response.StatusCode != 200 || r.Response.RequestID == "" || !strings.HasPrefix(r.ID, "batch_req_") || string(r.Error) != "null" {
			t.Errorf("output line: %+v", r)
			continue
		}
		var body struct {
			Object  string
			Choices []struct{ Message struct{ Content string } }
		}
		_ = json.Unmarshal(r.Response.Body, &body)
		if body.Object != "chat.completion" || len(body.Choices) != 1 || body.Choices[0].Message.Content == "" {
			t.Errorf("output body: %s", r.Response.Body)
		}
		seen[r.CustomID] = true
	}
	if len(out) != 3 || !seen["a"] || !seen["b"] || !seen["c"] {
		t.Errorf("output custom ids: %v (%d lines)", seen, len(out))
	}
	bad := g.results(t, g.alice, *d.ErrorFileID)
	if len(bad) != 1 || bad[0].CustomID != "missing-model" || bad[0].Response == nil || bad[0].Response.StatusCode != 404 ||
		!strings.Contains(string(bad[0].Response.Body), `"error"`) {
		t.Errorf("error file: %+v", bad)
	}

	// Another caller sees none of it.
	for _, p := range []string{"/v1/batches/" + d.ID, "/v1/files/" + f.ID, "/v1/files/" + f.ID + "/content", "/v1/files/" + *d.OutputFileID + "/content"} {
		if code, b := g.do(t, g.bob, "GET", p, "", nil); code != 404 {
			t.Errorf("bob GET %s: %d %s", p, code, b)
		}
	}
	if code, b := g.do(t, g.bob, "POST", "/v1/batches", "application/json", []byte(`{"input_file_id":"`+f.ID+`","endpoint":"/v1/chat/completions","completion_window":"24h"}`)); code != 404 {
		t.Errorf("bob creates a batch from alice's file: %d %s", code, b)
	}
	for key, want := range map[string]int{g.alice: 1, g.bob: 0} {
		_, b := g.do(t, key, "GET", "/v1/batches", "", nil)
		var l struct {
			Object string
			Data   []batchDoc
		}
		_ = json.Unmarshal(b, &l)
		if l.Object != "list" || len(l.Data) != want {
			t.Errorf("batch list: %s; want %d", b, want)
		}
	}
	_, b = g.do(t, g.alice, "GET", "/v1/files", "", nil)
	if n := strings.Count(string(b), `"object":"file"`); n != 3 {
		t.Errorf("alice's files: %d, want the input and two result files: %s", n, b)
	}
	if code, b := g.do(t, g.bob, "DELETE", "/v1/files/"+f.ID, "", nil); code != 404 {
		t.Errorf("bob deletes alice's file: %d %s", code, b)
	}
	code, b = g.do(t, g.alice, "DELETE", "/v1/files/"+f.ID, "", nil)
	if code != 200 || !strings.Contains(string(b), `"deleted":true`) {
		t.Errorf("delete: %d %s", code, b)
	}
	doc.Check(t, "DeleteFileResponse", b)
	if code, _ := g.do(t, g.alice, "GET", "/v1/files/"+f.ID, "", nil); code != 404 {
		t.Errorf("deleted file still there: %d", code)
	}
	// A finished batch cannot be cancelled.
	if code, b := g.do(t, g.alice, "POST", "/v1/batches/"+d.ID+"/cancel", "", nil); code != 409 {
		t.Errorf("cancel a completed batch: %d %s", code, b)
	}
}

// TestBatchWithoutPolling: on SQLite the workers and the finalizer do not poll (here their
// interval is an hour): a new batch wakes one worker, each worker that takes a line wakes
// another, and the last answer wakes the finalizer. The batch's lines run side by side.
func TestBatchWithoutPolling(t *testing.T) {
	var inFlight, peak atomic.Int64
	g := start(t, mockllm.Options{Tokens: 3, TTFT: 50 * time.Millisecond}, config.Batch{Concurrency: 3}, hooks{
		poll: time.Hour,
		upstream: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				h.ServeHTTP(w, r)
			})
		},
	})
	var lines []string
	for i := range 9 {
		lines = append(lines, chatLine(fmt.Sprint("l", i), "glm-4-flash"))
	}
	code, b := g.upload(t, g.alice, "batch", strings.Join(lines, "\n")+"\n")
	if code != 200 {
		t.Fatalf("upload: %d %s", code, b)
	}
	var f struct{ ID string }
	_ = json.Unmarshal(b, &f)
	d := g.create(t, g.alice, f.ID)
	d = g.waitFor(t, g.alice, d.ID, func(d batchDoc) bool { return d.Status == "completed" })
	if d.RequestCounts.Completed != 9 {
		t.Fatalf("completed batch: %+v", d)
	}
	if p := peak.Load(); p < 2 {
		t.Errorf("at most %d line ran at a time, with 3 workers", p)
	}
}

func TestBatchBadInput(t *testing.T) {
	g := start(t, mockllm.Options{Tokens: 3}, config.Batch{MaxFileBytes: 4096})
	ok := chatLine("a", "glm-4-flash")
	for _, tc := range []struct {
		name, purpose, content string
		status                 int
		msg                    string
	}{
		{"not json", "batch", "hello\n", 400, "line 1"},
		{"no custom_id", "batch", `{"method":"POST","url":"/v1/chat/completions","body":{}}`, 400, "custom_id is missing"},
		{"duplicate custom_id", "batch", ok + "\n" + ok, 400, "already used on line 1"},
		{"GET", "batch", strings.Replace(ok, `"POST"`, `"GET"`, 1), 400, "method must be POST"},
		{"bad url", "batch", strings.Replace(ok, "/v1/chat/completions", "/v1/images", 1), 400, "url must be"},
		{"body not an object", "batch", `{"custom_id":"x","method":"POST","url":"/v1/embeddings","body":[1]}`, 400, "line 1"},
		{"streamed", "batch", strings.Replace(ok, `"max_tokens":3`, `"stream":true`, 1), 400, "streamed"},
		{"empty", "batch", "\n\n", 400, "no requests"},
		{"wrong purpose", "fine-tune", ok, 400, "purpose"},
		{"too large", "batch", strings.Repeat(ok+"\n", 40), 413, "exceeds the limit of 4096 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, b := g.upload(t, g.alice, tc.purpose, tc.content)
			var e struct {
				Error struct{ Message, Type string }
			}
			_ = json.Unmarshal(b, &e)
			if code != tc.status || !strings.Contains(e.Error.Message, tc.msg) {
				t.Errorf("%d %s; want %d with %q", code, b, tc.status, tc.msg)
			}
		})
	}
	// The upload limit is the batch section's, not server.max_body_bytes (2048 here), which
	// still holds for other routes.
	var many []string
	for i := range 20 {
		many = append(many, chatLine(fmt.Sprint("m", i), "glm-4-flash"))
	}
	if code, b := g.upload(t, g.alice, "batch", strings.Join(many, "\n")); code != 200 {
		t.Errorf("upload over server.max_body_bytes but under batch.max_file_bytes: %d %s", code, b)
	}
	if code, b := g.do(t, g.alice, "POST", "/v1/chat/completions", "application/json", []byte(`{"model":"glm-4-flash","messages":[{"role":"user","content":"`+strings.Repeat("x", 3000)+`"}]}`)); code != 413 {
		t.Errorf("chat body over server.max_body_bytes: %d %s", code, b)
	}
	code, b := g.upload(t, g.alice, "batch", ok)
	if code != 200 {
		t.Fatalf("upload: %d %s", code, b)
	}
	var f struct{ ID string }
	_ = json.Unmarshal(b, &f)
	for _, tc := range []struct{ body, param string }{
		{`{"input_file_id":"` + f.ID + `","endpoint":"/v1/embeddings","completion_window":"24h"}`, "input_file_id"},
		{`{"input_file_id":"` + f.ID + `","endpoint":"/v1/chat/completions","completion_window":"1h"}`, "completion_window"},
		{`{"input_file_id":"` + f.ID + `","endpoint":"/v2/x","completion_window":"24h"}`, "endpoint"},
		{`{"endpoint":"/v1/chat/completions","completion_window":"24h"}`, "input_file_id"},
		{`[`, ""},
	} {
		code, b := g.do(t, g.alice, "POST", "/v1/batches", "application/json", []byte(tc.body))
		if code != 400 || !strings.Contains(string(b), `"param":"`+tc.param+`"`) && tc.param != "" {
			t.Errorf("create %s: %d %s", tc.body, code, b)
		}
	}
	if code, b := g.do(t, g.alice, "POST", "/v1/batches", "application/json", []byte(`{"input_file_id":"file-nope","endpoint":"/v1/chat/completions","completion_window":"24h"}`)); code != 404 {
		t.Errorf("unknown file: %d %s", code, b)
	}
	if code, b := g.do(t, g.alice, "GET", "/v1/batches/batch_nope", "", nil); code != 404 || !strings.Contains(string(b), "batch_not_found") {
		t.Errorf("unknown batch: %d %s", code, b)
	}
}

// TestBatchCancel: a cancelled batch starts no new line; it ends cancelled with the
// answers it has.
func TestBatchCancel(t *testing.T) {
	g := start(t, mockllm.Options{Tokens: 3, TTFT: 100 * time.Millisecond}, config.Batch{Concurrency: 1})
	var lines []string
	for i := range 30 {
		lines = append(lines, chatLine(fmt.Sprint("r", i), "glm-4-flash"))
	}
	_, b := g.upload(t, g.alice, "batch", strings.Join(lines, "\n"))
	var f struct{ ID string }
	_ = json.Unmarshal(b, &f)
	d := g.create(t, g.alice, f.ID)
	g.waitFor(t, g.alice, d.ID, func(d batchDoc) bool { return d.RequestCounts.Completed >= 1 })
	if code, b := g.do(t, g.alice, "POST", "/v1/batches/"+d.ID+"/cancel", "", nil); code != 200 || !strings.Contains(string(b), `"status":"cancelling"`) {
		t.Fatalf("cancel: %d %s", code, b)
	}
	d = g.waitFor(t, g.alice, d.ID, func(d batchDoc) bool { return d.Status == "cancelled" })
	if d.CancelledAt == nil || d.RequestCounts.Completed == 0 || d.RequestCounts.Completed >= 30 || d.OutputFileID == nil {
		t.Fatalf("cancelled batch: %+v", d)
	}
	if out := g.results(t, g.alice, *d.OutputFileID); len(out) != d.RequestCounts.Completed {
		t.Errorf("output has %d lines, counts say %d", len(out), d.RequestCounts.Completed)
	}
	time.Sleep(300 * time.Millisecond)
	if again := g.waitFor(t, g.alice, d.ID, func(batchDoc) bool { return true }); again.RequestCounts != d.RequestCounts {
		t.Errorf("lines ran after the cancel: %+v then %+v", d.RequestCounts, again.RequestCounts)
	}
}

// TestBatchLimits: lines run at most batch.concurrency at a time; a line a rate limit refuses
// waits and runs again (it is not answered with the refusal); a line a quota refuses is
// answered with it, in the error file, and the batch still completes.
func TestBatchLimits(t *testing.T) {
	var inflight, most atomic.Int64
	var refusals atomic.Int64
	upstream := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := inflight.Add(1)
			defer inflight.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			next.ServeHTTP(w, r)
		})
	}
	limit := func(httpapi.Limit) httpapi.Stage {
		return func(next httpapi.HandlerFunc) httpapi.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) error {
				if r.URL.Path != "/v1/chat/completions" {
					return next(w, r)
				}
				body, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(body))
				switch {
				case bytes.Contains(body, []byte("hello over-quota")):
					return apierr.New(apierr.CodeQuotaExceeded, "quota exceeded")
				case bytes.Contains(body, []byte("hello limited")) && refusals.Add(1) <= 2:
					return &apierr.Error{Kind: apierr.RateLimited, Message: "rate limit exceeded", RetryAfter: time.Second}
				default:
					return next(w, r)
				}
			}
		}
	}
	g := start(t, mockllm.Options{Tokens: 3, TTFT: 20 * time.Millisecond}, config.Batch{Concurrency: 2}, hooks{upstream: upstream, limit: limit})
	lines := []string{chatLine("limited", "glm-4-flash"), chatLine("over-quota", "glm-4-flash")}
	for i := range 12 {
		lines = append(lines, chatLine(fmt.Sprint("r", i), "glm-4-flash"))
	}
	_, b := g.upload(t, g.alice, "batch", strings.Join(lines, "\n"))
	var f struct{ ID string }
	_ = json.Unmarshal(b, &f)
	d := g.create(t, g.alice, f.ID)
	d = g.waitFor(t, g.alice, d.ID, func(d batchDoc) bool { return d.Status == "completed" })
	if d.RequestCounts.Completed != 13 || d.RequestCounts.Failed != 1 {
		t.Fatalf("counts: %+v", d.RequestCounts)
	}
	if refusals.Load() < 3 {
		t.Errorf("the rate-limited line ran %d times; want two refusals and a success", refusals.Load())
	}
	bad := g.results(t, g.alice, *d.ErrorFileID)
	if len(bad) != 1 || bad[0].CustomID != "over-quota" || bad[0].Response.StatusCode != 429 || !strings.Contains(string(bad[0].Response.Body), "insufficient_quota") {
		t.Errorf("error file: %+v", bad)
	}
	if m := most.Load(); m < 1 || m > 2 {
		t.Errorf("%d lines ran upstream at once; batch.concurrency is 2", m)
	}
}

// TestBatchRevokedKey: lines run as the key that created the batch, as it stands when each
// line runs: once the key is revoked, the remaining lines are answered with an error, and the
// batch still completes.
func TestBatchRevokedKey(t *testing.T) {
	g := start(t, mockllm.Options{Tokens: 3, TTFT: 30 * time.Millisecond}, config.Batch{Concurrency: 1})
	var lines []string
	for i := range 20 {
		lines = append(lines, chatLine(fmt.Sprint("r", i), "glm-4-flash"))
	}
	_, b := g.upload(t, g.alice, "batch", strings.Join(lines, "\n"))
	var f struct{ ID string }
	_ = json.Unmarshal(b, &f)
	d := g.create(t, g.alice, f.ID)
	g.waitFor(t, g.alice, d.ID, func(d batchDoc) bool { return d.RequestCounts.Completed >= 2 })
	code, b := g.do(t, g.alice, "GET", "/v1/batches/"+d.ID, "", nil)
	if code != 200 {
		t.Fatalf("get: %d %s", code, b)
	}
	if _, err := g.st.RevokeKey(context.Background(), g.aliceID); err != nil {
		t.Fatal(err)
	}
	if err := g.auth.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The revoked key can no longer read the batch; the batch is checked in the database.
	if code, _ := g.do(t, g.alice, "GET", "/v1/batches/"+d.ID, "", nil); code != 401 {
		t.Fatalf("revoked key reads its batch: %d", code)
	}
	var status string
	var done, failed int
	for deadline := time.Now().Add(60 * time.Second); status != "completed"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("batch %s", status)
		}
		db := g.st.(*sqlite.Store).ReadDB()
		if err := db.QueryRow(`SELECT status, completed, failed FROM batches WHERE id = ?`, d.ID).Scan(&status, &done, &failed); err != nil {
			t.Fatal(err)
		}
	}
	if done < 2 || failed == 0 || done+failed != 20 {
		t.Fatalf("completed %d, failed %d", done, failed)
	}
	var errLine string
	if err := g.st.(*sqlite.Store).ReadDB().QueryRow(`SELECT result FROM batch_lines WHERE batch_id = ? AND ok = 0 ORDER BY idx DESC LIMIT 1`, d.ID).Scan(&errLine); err != nil {
		t.Fatal(err)
	}
	var r resultLine
	if err := json.Unmarshal([]byte(errLine), &r); err != nil || r.Response != nil || !strings.Contains(string(r.Error), "invalid_api_key") {
		t.Errorf("line run after the revocation: %s", errLine)
	}
}
