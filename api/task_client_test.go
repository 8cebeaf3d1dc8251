package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestFollowTaskResumes: a stream that breaks off is reopened with Last-Event-ID after the
// last event seen, so the callback sees every event once, in order, and the terminal task
// comes back.
func TestFollowTaskResumes(t *testing.T) {
	var mu sync.Mutex
	var lastIDs []string
	events := []string{
		"id: 1\nevent: status\ndata: {\"status\":\"running\",\"attempt\":1}\n\n",
		"id: 2\nevent: tokens\ndata: {\"text\":\"hel\",\"tokens\":1}\n\n",
		": ping\n\n",
		"id: 3\r\nevent: tokens\r\ndata: {\"text\":\"lo\",\r\ndata: \"tokens\":2}\r\n\r\n",
		"id: 4\nevent: status\ndata: {\"status\":\"succeeded\",\"task\":{\"task_id\":\"task_1\",\"status\":\"succeeded\",\"result\":{\"text\":\"hello\"}}}\n\n",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/task/task_1/events" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		call := len(lastIDs)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		from := 0
		fmt.Sscan(r.Header.Get("Last-Event-ID"), &from)
		// The first connection breaks off after two events, the second after none.
		end := len(events)
		switch call {
		case 1:
			end = 2
		case 2:
			end = from
		}
		for _, ev := range events[min(from, end):end] {
			fmt.Fprint(w, ev)
		}
		w.(http.Flusher).Flush()
		if call <= 2 {
			// A body shorter than its Content-Length: the client sees the stream break.
			panic(http.ErrAbortHandler)
		}
	}))
	defer srv.Close()

	var got []string
	task, err := NewClient(srv.URL, nil).FollowTask(context.Background(), "task_1", 0, func(ev *TaskEvent) error {
		got = append(got, fmt.Sprintf("%d %s %s", ev.Seq, ev.Type, ev.Data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if task.ID != "task_1" || task.Status != TaskSucceeded || task.Result.Text != "hello" {
		t.Errorf("task %+v", task)
	}
	want := []string{
		`1 status {"status":"running","attempt":1}`,
		`2 tokens {"text":"hel","tokens":1}`,
		"3 tokens {\"text\":\"lo\",\n\"tokens\":2}",
		`4 status {"status":"succeeded","task":{"task_id":"task_1","status":"succeeded","result":{"text":"hello"}}}`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"", "2", "2"}, lastIDs); diff != "" {
		t.Errorf("Last-Event-ID of each connection (-want +got):\n%s", diff)
	}
}

// TestFollowTaskRefused: a refusal is returned at once, not retried, and a callback's error
// stops following.
func TestFollowTaskRefused(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if strings.Contains(r.URL.Path, "missing") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"code":"task_not_found","success":false,"message":"no task task_missing","trace_id":"t1"}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "id: 1\nevent: status\ndata: {\"status\":\"running\"}\n\n")
	}))
	defer srv.Close()
	c := NewClient(srv.URL, nil)
	_, err := c.FollowTask(context.Background(), "task_missing", 0, nil)
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound || se.Code != "task_not_found" || calls != 1 {
		t.Errorf("err %v after %d calls; want one call and a 404 task_not_found", err, calls)
	}
	stop := errors.New("enough")
	calls = 0
	if _, err := c.FollowTask(context.Background(), "task_1", 0, func(*TaskEvent) error { return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("err %v after %d calls; want the callback's error after one call", err, calls)
	}
}

// TestSubmitTaskSendsIdempotencyKey: the key travels as the Idempotency-Key header, the body
// as the task request, and the envelope's data comes back as the task.
func TestSubmitTaskSendsIdempotencyKey(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req TaskRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"code":"ok","success":true,"data":{"task_id":"task_9","kind":%q,"model":%q,"status":"queued","owner":%q},"message":"","trace_id":"t"}`,
			req.Kind, req.Model, r.Header.Get("Idempotency-Key"))
	}))
	defer srv.Close()
	got, err := NewClient(srv.URL, nil).SubmitTask(context.Background(), &TaskRequest{Kind: TaskKindChat, Model: "m"}, "key-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "task_9" || got.Kind != "chat" || got.Model != "m" || got.Status != TaskQueued || got.Owner != "key-1" {
		t.Errorf("task %+v", got)
	}
}
