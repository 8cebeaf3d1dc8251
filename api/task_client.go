package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/open-autoglm/autoglm/api/sse"
)

// SubmitTask submits a task (POST /v1/tasks) and returns it as queued. A
// non-empty idempotencyKey makes a repeated submission with the same key
// return the first task instead of a new one.
func (c *Client) SubmitTask(ctx context.Context, req *TaskRequest, idempotencyKey string) (*Task, error) {
	var t Task
	if err := c.nativeWith(ctx, http.MethodPost, "/v1/tasks", idemHeader(idempotencyKey), req, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// SubmitCodeTask submits a code-generation task (POST /v1/generate/code);
// idempotencyKey is as for [Client.SubmitTask].
func (c *Client) SubmitCodeTask(ctx context.Context, req *CodeTaskRequest, idempotencyKey string) (*Task, error) {
	var t Task
	if err := c.nativeWith(ctx, http.MethodPost, "/v1/generate/code", idemHeader(idempotencyKey), req, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

func idemHeader(key string) http.Header {
	if key == "" {
		return nil
	}
	return http.Header{"Idempotency-Key": {key}}
}

// GetTask returns the task with the id.
func (c *Client) GetTask(ctx context.Context, id string) (*Task, error) {
	var t Task
	if err := c.native(ctx, http.MethodGet, "/v1/task/"+url.PathEscape(id), nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// CancelTask cancels a queued or running task and returns it. A task that
// has already finished is a *StatusError with code task_finished.
func (c *Client) CancelTask(ctx context.Context, id string) (*Task, error) {
	var t Task
	if err := c.native(ctx, http.MethodPost, "/v1/task/"+url.PathEscape(id)+"/cancel", nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// ListTasksOptions select tasks; empty fields select all.
type ListTasksOptions struct {
	Status TaskStatus
	Model  string
	Kind   string
	Cursor string
	// Limit is the page size, 1 to 100 (default: the server's).
	Limit int
}

// ListTasks lists one page of tasks, newest first.
func (c *Client) ListTasks(ctx context.Context, opt ListTasksOptions) (*TaskPage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"status": string(opt.Status), "model": opt.Model, "kind": opt.Kind, "cursor": opt.Cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if opt.Limit > 0 {
		q.Set("limit", strconv.Itoa(opt.Limit))
	}
	path := "/v1/tasks"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var p TaskPage
	if err := c.native(ctx, http.MethodGet, path, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// followRetries is how many times in a row FollowTask reconnects to a
// stream that broke off without an event in between.
const followRetries = 5

// FollowTask reads a task's events (GET /v1/task/{id}/events) from the
// first one after afterSeq (0: from the start), hands each to fn in order,
// and returns the task from its terminal status event. A stream that breaks
// off is reopened after the last event seen, so fn sees every event once;
// after five failed reconnections in a row the last error is returned. A
// refusal (a *StatusError: no such task, no permission) is returned at once,
// as is fn's error, which stops following. fn may be nil; it must not keep
// the event's Data after it returns.
func (c *Client) FollowTask(ctx context.Context, id string, afterSeq int64, fn func(*TaskEvent) error) (*Task, error) {
	fails := 0
	for {
		t, last, retry, err := c.followOnce(ctx, id, afterSeq, fn)
		switch {
		case t != nil:
			return t, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case !retry:
			return nil, err
		}
		if last > afterSeq {
			afterSeq, fails = last, 0
		}
		fails++
		if fails > followRetries {
			return nil, fmt.Errorf("api: following task %s: %w", id, err)
		}
		select {
		case <-time.After(time.Duration(fails) * 200 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// followOnce reads one connection of a task's event stream. It returns the
// terminal task, or the sequence number of the last event seen, whether to
// reconnect, and why the stream ended.
func (c *Client) followOnce(ctx context.Context, id string, after int64, fn func(*TaskEvent) error) (_ *Task, last int64, retry bool, _ error) {
	var hdr http.Header
	if after > 0 {
		hdr = http.Header{"Last-Event-Id": {strconv.FormatInt(after, 10)}}
	}
	resp, err := c.send(ctx, http.MethodGet, "/v1/task/"+url.PathEscape(id)+"/events", nil, "text/event-stream", hdr)
	if err != nil {
		var se *StatusError
		return nil, after, !errors.As(err, &se) || se.StatusCode >= 500, err
	}
	defer resp.Body.Close()
	events := sse.NewReader(resp.Body)
	for {
		ev, err := events.Next()
		if err == io.EOF {
			return nil, after, true, errors.New("api: the event stream ended before the task finished")
		}
		if err != nil {
			return nil, after, !errors.Is(err, sse.ErrTooLarge), err
		}
		seq, err := strconv.ParseInt(ev.ID, 10, 64)
		if err != nil {
			return nil, after, false, fmt.Errorf("api: task event with id %q", ev.ID)
		}
		if seq <= after {
			continue
		}
		te := TaskEvent{Seq: seq, Type: ev.Type, Data: ev.Data}
		if fn != nil {
			if err := fn(&te); err != nil {
				return nil, after, false, err
			}
		}
		after = seq
		if ev.Type == TaskEventStatus {
			var st TaskStatusEvent
			if err := json.Unmarshal(ev.Data, &st); err != nil {
				return nil, after, false, fmt.Errorf("api: decode status event: %w", err)
			}
			if st.Status.Terminal() && st.Task != nil {
				return st.Task, after, false, nil
			}
		}
	}
}
