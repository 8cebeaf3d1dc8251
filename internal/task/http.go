package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/api/sse"
	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/httpapi"
)

// Stream timing.
const (
	// streamPing is the gap after which an idle event stream sends a keep-alive.
	streamPing = 15 * time.Second
	// streamWrite bounds the write of one piece of an event stream to a slow client.
	streamWrite = 30 * time.Second
	// eventBatch is how many events one read of the log returns.
	eventBatch = 256
)

// Routes returns the native task API. Every route answers in the envelope; the caller sees
// only its own tasks unless it is an admin (or authentication is off).
func (s *Service) Routes() []httpapi.Route {
	return []httpapi.Route{
		{Method: "POST", Pattern: "/v1/generate/code", Shape: apierr.ShapeEnvelope, Permission: auth.ModelsUse, Handler: s.handleGenerateCode},
		{Method: "POST", Pattern: "/v1/tasks", Shape: apierr.ShapeEnvelope, Permission: auth.ModelsUse, Handler: s.handleSubmit},
		{Method: "GET", Pattern: "/v1/tasks", Shape: apierr.ShapeEnvelope, Permission: auth.ModelsUse, Handler: s.handleList},
		{Method: "GET", Pattern: "/v1/task/{task_id}", Shape: apierr.ShapeEnvelope, Permission: auth.ModelsUse, Handler: s.handleGet},
		{Method: "POST", Pattern: "/v1/task/{task_id}/cancel", Shape: apierr.ShapeEnvelope, Permission: auth.ModelsUse, Handler: s.handleCancel},
		{Method: "GET", Pattern: "/v1/task/{task_id}/events", Shape: apierr.ShapeEnvelope, Permission: auth.ModelsUse, Handler: s.handleEvents},
		{Method: "GET", Pattern: "/v1/task/{task_id}/ws", Shape: apierr.ShapeEnvelope, Permission: auth.ModelsUse, Handler: s.handleWS},
	}
}

// CallerOf returns the task caller of a request from its principal: an API key owns its
// tasks, a token its user's; admins see everything, and so does everyone when no principal
// is set (authentication off).
func CallerOf(r *http.Request) Caller {
	p, ok := auth.FromContext(r.Context())
	if !ok || p == nil {
		return Caller{All: true}
	}
	c := Caller{All: p.Role == auth.RoleAdmin || p.Method == auth.MethodAdminKey, KeyID: p.KeyID, UserID: p.UserID}
	if p.KeyID != "" {
		c.Owner = "key:" + p.KeyID
	} else {
		c.Owner = "user:" + p.UserID
	}
	return c
}

// codeRequest is the body of POST /v1/generate/code; taskRequest of POST /v1/tasks.
type (
	codeRequest = api.CodeTaskRequest
	taskRequest = api.TaskRequest
)

// taskCode is a task request's code fields.
func taskCode(t taskRequest) codeRequest {
	return codeRequest{Model: t.Model, Prompt: t.Prompt, Messages: t.Messages, Language: t.Language, MaxTokens: t.MaxTokens,
		Temperature: t.Temperature, Priority: t.Priority, CallbackURL: t.CallbackURL, Metadata: t.Metadata}
}

// decodeStrict decodes one JSON value into v, refusing unknown fields. Its errors are
// public: apierr.FromDecode words them, the decoder's own text goes only to the log.
func decodeStrict(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apierr.FromDecode(err)
	}
	if dec.More() {
		return apierr.New(apierr.CodeInvalidJSON, "the request body holds more than one JSON value")
	}
	return nil
}

func (s *Service) handleGenerateCode(w http.ResponseWriter, r *http.Request) error {
	var req codeRequest
	if err := decodeStrict(r, &req); err != nil {
		return err
	}
	return s.submitHTTP(w, r, codeSpec(req, KindCode, nil))
}

func (s *Service) handleSubmit(w http.ResponseWriter, r *http.Request) error {
	var req taskRequest
	if err := decodeStrict(r, &req); err != nil {
		return err
	}
	return s.submitHTTP(w, r, codeSpec(taskCode(req), req.Kind, req.Input))
}

func codeSpec(c codeRequest, kind string, input json.RawMessage) Spec {
	return Spec{Kind: kind, Model: c.Model, Prompt: c.Prompt, Messages: c.Messages, Language: c.Language,
		MaxTokens: c.MaxTokens, Temperature: c.Temperature, Priority: c.Priority, CallbackURL: c.CallbackURL,
		Metadata: c.Metadata, Input: input, Check: c.Check, RepairRounds: c.RepairRounds}
}

func (s *Service) submitHTTP(w http.ResponseWriter, r *http.Request, sp Spec) error {
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdemKeyLen {
		return apierr.New(apierr.CodeInvalidIdempotencyKey, fmt.Sprintf("Idempotency-Key is longer than %d bytes", maxIdemKeyLen))
	}
	c := CallerOf(r)
	if p, ok := auth.FromContext(r.Context()); ok && p != nil && sp.Model != "" {
		name := sp.Model
		if m, ok := s.reg.Lookup(sp.Model); ok {
			name = m.Name
		}
		if !p.AllowsModel(sp.Model) && !p.AllowsModel(name) {
			return p.CheckModel(sp.Model)
		}
	}
	t, replayed, err := s.Submit(r.Context(), c, Submission{Spec: sp, IdempotencyKey: key})
	if err != nil {
		return apiError(err)
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Location", "/v1/task/"+t.ID)
	return httpapi.WriteData(w, r, http.StatusAccepted, t)
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request) error {
	t, err := s.Get(r.Context(), CallerOf(r), r.PathValue("task_id"))
	if err != nil {
		return apiError(err)
	}
	return httpapi.WriteData(w, r, http.StatusOK, t)
}

func (s *Service) handleCancel(w http.ResponseWriter, r *http.Request) error {
	t, err := s.Cancel(r.Context(), CallerOf(r), r.PathValue("task_id"))
	if err != nil {
		return apiError(err)
	}
	return httpapi.WriteData(w, r, http.StatusOK, t)
}

// listPage is the data of GET /v1/tasks.
type listPage = api.TaskPage

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p := ListParams{Status: q.Get("status"), Model: q.Get("model"), Kind: q.Get("kind"), Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidLimit, Param: "limit", Message: "limit must be between 1 and 100"}
		}
		p.Limit = n
	}
	items, next, err := s.List(r.Context(), CallerOf(r), p)
	if err != nil {
		return apiError(err)
	}
	return httpapi.WriteData(w, r, http.StatusOK, listPage{Items: items, Next: next})
}

// handleEvents streams a task's events as server-sent events, from the one after
// Last-Event-ID (or ?last_event_id=) to the terminal status event, after which the stream
// ends. Event ids are the events' sequence numbers, so a reconnect resumes without gaps or
// duplicates; the log is read from the database, so the watcher may be connected to any
// replica.
func (s *Service) handleEvents(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("task_id")
	if _, err := s.Get(r.Context(), CallerOf(r), id); err != nil {
		return apiError(err)
	}
	after, err := lastEventID(r)
	if err != nil {
		return err
	}
	release, err := s.watch()
	if err != nil {
		return err
	}
	defer release()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	var buf []byte
	write := func() error {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWrite))
		if _, err := w.Write(buf); err != nil {
			return err
		}
		return rc.Flush()
	}
	_ = s.follow(r.Context(), id, after, func(events []Event) error {
		buf = buf[:0]
		for _, e := range events {
			var err error
			buf, err = sse.AppendEvent(buf, sse.Event{ID: strconv.FormatInt(e.Seq, 10), Type: e.Type, Data: e.Data})
			if err != nil {
				return err
			}
		}
		return write()
	}, func() error {
		buf = append(sse.AppendComment(buf[:0], "ping"), '\n')
		return write()
	})
	return nil // the stream has started: a failure is only logged
}

// wsMessage is one event on the WebSocket stream.
type wsMessage struct {
	ID    int64           `json:"id"`
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

// handleWS streams a task's events over a WebSocket, one JSON text message per event
// ({"id", "event", "data"}, the same events and ids as the SSE stream), and closes normally
// after the terminal status event. A client resumes with ?last_event_id=<id> (or the
// Last-Event-ID header). Messages from the client are not expected; pings keep the
// connection alive.
func (s *Service) handleWS(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("task_id")
	if _, err := s.Get(r.Context(), CallerOf(r), id); err != nil {
		return apiError(err)
	}
	after, err := lastEventID(r)
	if err != nil {
		return err
	}
	release, err := s.watch()
	if err != nil {
		return err
	}
	defer release()
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return nil // Accept has answered
	}
	defer c.CloseNow()
	ctx := c.CloseRead(r.Context())
	err = s.follow(ctx, id, after, func(events []Event) error {
		for _, e := range events {
			b, err := json.Marshal(wsMessage{ID: e.Seq, Event: e.Type, Data: e.Data})
			if err != nil {
				return err
			}
			wctx, cancel := context.WithTimeout(ctx, streamWrite)
			err = c.Write(wctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				return err
			}
		}
		return nil
	}, func() error {
		pctx, cancel := context.WithTimeout(ctx, streamWrite)
		defer cancel()
		return c.Ping(pctx)
	})
	if err == nil {
		_ = c.Close(websocket.StatusNormalClosure, "task finished")
	}
	return nil
}

// watch takes one of the process's tasks.max_watchers event-stream slots, or refuses the
// stream with a 503 that says why; release gives the slot back.
func (s *Service) watch() (release func(), err error) {
	if s.watchers.Add(1) > int64(s.cfg.MaxWatchers) {
		s.watchers.Add(-1)
		return nil, &apierr.Error{Kind: apierr.Unavailable, Code: apierr.CodeTooManyWatchers, RetryAfter: time.Second,
			Message: "this server is already streaming as many task events as it allows; retry later"}
	}
	return func() { s.watchers.Add(-1) }, nil
}

// follow hands send each batch of a task's events after seq after, in order, until it has
// sent the terminal status event (then it returns nil), ctx ends, or send fails. ping is
// called when nothing was sent for streamPing. The log is read from the database, woken by
// the hub (and by other replicas through it) and polled as a fallback.
func (s *Service) follow(ctx context.Context, id string, after int64, send func([]Event) error, ping func() error) error {
	wake, unsub := s.hub.subscribe(taskTopic(id))
	defer unsub()
	poll := time.NewTicker(s.poll)
	defer poll.Stop()
	lastSend := time.Now()
	for {
		events, err := s.Events(ctx, id, after, eventBatch)
		if err != nil {
			return err
		}
		if len(events) > 0 {
			if err := send(events); err != nil {
				return err
			}
			lastSend = time.Now()
			after = events[len(events)-1].Seq
			for _, e := range events {
				if e.Type == EventStatus && isTerminalEvent(e.Data) {
					return nil
				}
			}
			if len(events) == eventBatch {
				continue
			}
		} else if time.Since(lastSend) >= streamPing {
			if err := ping(); err != nil {
				return err
			}
			lastSend = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-poll.C:
		}
	}
}

// lastEventID reads where a stream resumes: the Last-Event-ID header, or the last_event_id
// query parameter for clients that cannot set headers; 0 means from the start.
func lastEventID(r *http.Request) (int64, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("last_event_id")
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0, &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidLastEventID, Param: "Last-Event-ID",
			Message: "Last-Event-ID must be the id of an event of this stream"}
	}
	return n, nil
}

func isTerminalEvent(data []byte) bool {
	var e struct {
		Status Status `json:"status"`
	}
	return json.Unmarshal(data, &e) == nil && e.Status.Terminal()
}

// apiError maps the service's errors to API errors.
func apiError(err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return apierr.New(apierr.CodeTaskNotFound, "no task with this id")
	case errors.Is(err, ErrIdempotencyMismatch):
		return apierr.New(apierr.CodeIdempotencyKeyReused, "this Idempotency-Key was used with a different request")
	case errors.Is(err, ErrFinished):
		return apierr.New(apierr.CodeTaskFinished, "the task has already finished")
	case errors.Is(err, errInvalid):
		return apierr.New(apierr.CodeInvalidTask, strings.TrimPrefix(err.Error(), errInvalid.Error()+": "))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return apierr.From(err)
	}
	// Anything else is the database failing (down, restarting, full): worth retrying, so a
	// 503 with Retry-After rather than a 500; the cause goes to the log only.
	return &apierr.Error{Kind: apierr.Unavailable, Code: apierr.CodeTaskStoreUnavailable, RetryAfter: time.Second,
		Message: "the task store is unavailable; retry shortly", Err: err}
}
