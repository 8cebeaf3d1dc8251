package openai

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"

	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// Warmup preloads the response cache from a file of requests, one JSON object per line:
//
//	{"path": "/v1/chat/completions", "body": {"model": "glm4", "temperature": 0, "messages": [...]}}
//
// Each request goes to the handler directly (it is the server's own request, so
// authentication and rate limits do not apply) and its answer is discarded; the cache keeps
// it. A line may hold up to maxLine bytes (the server's body limit). Blank lines and lines
// starting with # are skipped. It returns how many requests were answered 200 and stops at the
// first malformed line, or when ctx is done.
func (h *Handler) Warmup(ctx context.Context, path string, maxLine int64) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), int(maxLine)+1024)
	ok, line := 0, 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 || text[0] == '#' {
			continue
		}
		var item struct {
			Path string          `json:"path"`
			Body json.RawMessage `json:"body"`
		}
		if err := json.Unmarshal(text, &item); err != nil || len(item.Body) == 0 {
			return ok, fmt.Errorf("%s:%d: want {\"path\": ..., \"body\": {...}}", path, line)
		}
		var serve func(http.ResponseWriter, *http.Request) error
		switch item.Path {
		case "/v1/chat/completions":
			serve = h.ChatCompletions
		case "/v1/completions":
			serve = h.Completions
		case "/v1/embeddings":
			serve = h.Embeddings
		default:
			return ok, fmt.Errorf("%s:%d: path %q cannot be cached", path, line, item.Path)
		}
		rctx := telemetry.WithRequestInfo(telemetry.WithTraceID(ctx, telemetry.NewTraceID()), &telemetry.RequestInfo{})
		req, err := http.NewRequestWithContext(rctx, http.MethodPost, item.Path, bytes.NewReader(item.Body))
		if err != nil {
			return ok, err
		}
		req.Header.Set("Content-Type", "application/json")
		w := &discardWriter{header: http.Header{}}
		if err := serve(w, req); err == nil && (w.status == 0 || w.status == http.StatusOK) {
			ok++
		} else if ctx.Err() != nil {
			return ok, ctx.Err()
		}
	}
	return ok, sc.Err()
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	header http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(code int)        { d.status = code }
func (d *discardWriter) Flush()                      {}
