package task

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/open-autoglm/autoglm/internal/mockllm"
)

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	ID    int64
	Type  string
	Data  string
	Bytes int
}

// readSSE reads events from a stream until it ends, stop returns true, or ctx ends.
func readSSE(t *testing.T, ctx context.Context, url string, lastID int64, stop func(sseEvent) bool) ([]sseEvent, bool) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if lastID > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(lastID, 10))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.Type != "" {
				out = append(out, cur)
				if stop != nil && stop(cur) {
					return out, false
				}
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			cur.ID, _ = strconv.ParseInt(line[4:], 10, 64)
		case strings.HasPrefix(line, "event: "):
			cur.Type = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.Data = line[6:]
		}
	}
	return out, true
}

func TestEventsResume(t *testing.T) { testEventsResume(t, setup) }

func testEventsResume(t *testing.T, setup setupFunc) {
	e := setup(t, mockllm.Options{Tokens: 80, ITL: 3 * time.Millisecond}, "  event_flush: 10ms\n")
	tk := e.submit(t, `{"model":"coder","prompt":"stream me","max_tokens":80}`)
	url := e.URL + "/v1/task/" + tk.ID + "/events"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// First connection: leave after the third tokens event.
	nTokens := 0
	first, ended := readSSE(t, ctx, url, 0, func(ev sseEvent) bool {
		if ev.Type == EventTokens {
			nTokens++
		}
		return nTokens == 3
	})
	if ended {
		t.Fatal("stream ended before the third tokens event")
	}
	// Second: resume after the last id seen, read to the end.
	rest, ended := readSSE(t, ctx, url, first[len(first)-1].ID, nil)
	if !ended {
		t.Fatal("resumed stream did not end")
	}
	all := append(first, rest...)
	var text strings.Builder
	for i, ev := range all {
		if ev.ID != int64(i+1) {
			t.Fatalf("event %d has id %d: gap or duplicate (ids %v)", i, ev.ID, ids(all))
		}
		if ev.Type == EventTokens {
			var d tokensEvent
			if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
				t.Fatal(err)
			}
			text.WriteString(d.Text)
		}
	}
	last := all[len(all)-1]
	var st statusEvent
	if err := json.Unmarshal([]byte(last.Data), &st); err != nil || st.Status != StatusSucceeded || st.Task == nil {
		t.Fatalf("last event = %s %s", last.Type, last.Data)
	}
	if text.String() != st.Task.Result.Text {
		t.Errorf("streamed text differs from the result:\n%q\n%q", text.String(), st.Task.Result.Text)
	}
	if all[0].Type != EventStatus || !strings.Contains(all[0].Data, `"queued"`) || !strings.Contains(all[1].Data, `"running"`) {
		t.Errorf("first events: %v", all[:2])
	}

	// A finished task's stream replays the log and ends; resuming after the end sends nothing.
	replay, ended := readSSE(t, ctx, url, 0, nil)
	if !ended || len(replay) != len(all) {
		t.Errorf("replay: %d events, ended %v; want %d", len(replay), ended, len(all))
	}
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Last-Event-ID", "x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad Last-Event-ID: %d", resp.StatusCode)
	}
}

func ids(evs []sseEvent) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func TestWebhookRetriesAndSignature(t *testing.T) { testWebhookRetriesAndSignature(t, setup) }

func testWebhookRetriesAndSignature(t *testing.T, setup setupFunc) {
	rc := newReceiver(testSecret)
	rc.fail = 2
	hook := httptest.NewServer(rc)
	defer hook.Close()
	e := setup(t, mockllm.Options{Tokens: 3}, fmt.Sprintf("  webhook_secret: %s\n  webhook_allow: [127.0.0.0/8]\n  webhook_backoff: 20ms\n", testSecret))
	tk := e.submit(t, fmt.Sprintf(`{"model":"coder","prompt":"x","callback_url":"%s/hook"}`, hook.URL))
	done := e.wait(t, tk.ID, 10*time.Second, func(tk Task) bool { return tk.Webhook != nil && tk.Webhook.Status != "pending" })
	if done.Webhook.Status != "delivered" || len(done.Webhook.Attempts) != 3 {
		t.Fatalf("webhook = %+v", done.Webhook)
	}
	for i, a := range done.Webhook.Attempts[:2] {
		if a.StatusCode != 500 || a.Error == "" {
			t.Errorf("attempt %d = %+v", i, a)
		}
	}
	if a := done.Webhook.Attempts[2]; a.StatusCode != 204 || a.Error != "" {
		t.Errorf("last attempt = %+v", a)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) > 0 || len(rc.byTask[tk.ID]) != 1 || rc.byTask[tk.ID][0] != done.Webhook.ID || rc.hits != 3 {
		t.Errorf("receiver: bad %v, deliveries %v (want %s), hits %d", rc.bad, rc.byTask[tk.ID], done.Webhook.ID, rc.hits)
	}
}

func TestWebhookRefusesPrivateTargets(t *testing.T) { testWebhookRefusesPrivateTargets(t, setup) }

func testWebhookRefusesPrivateTargets(t *testing.T, setup setupFunc) {
	rc := newReceiver(testSecret)
	hook := httptest.NewServer(rc)
	defer hook.Close()
	// No allow-list: the receiver on loopback must not be reached, also through a name.
	e := setup(t, mockllm.Options{Tokens: 3}, fmt.Sprintf("  webhook_secret: %s\n  webhook_backoff: 20ms\n", testSecret))
	port := hook.URL[strings.LastIndex(hook.URL, ":")+1:]
	for _, url := range []string{hook.URL + "/hook", "http://localhost:" + port + "/hook"} {
		tk := e.submit(t, fmt.Sprintf(`{"model":"coder","prompt":"x","callback_url":%q}`, url))
		done := e.wait(t, tk.ID, 10*time.Second, func(tk Task) bool { return tk.Webhook != nil && tk.Webhook.Status != "pending" })
		if done.Webhook.Status != "failed" || len(done.Webhook.Attempts) != 1 || !strings.Contains(done.Webhook.Attempts[0].Error, "loopback") {
			t.Errorf("%s: webhook = %+v", url, done.Webhook)
		}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.hits != 0 {
		t.Errorf("the receiver was reached %d times", rc.hits)
	}
}

func TestSignVerify(t *testing.T) {
	body := []byte(`{"task_id":"t"}`)
	now := time.Unix(1700000000, 0)
	sig := Sign([]byte("secret"), now, body)
	if !strings.HasPrefix(sig, "t=1700000000,v1=") || len(sig) != len("t=1700000000,v1=")+64 {
		t.Fatalf("signature %q", sig)
	}
	if err := Verify([]byte("secret"), sig, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Errorf("valid signature refused: %v", err)
	}
	for name, c := range map[string]struct {
		secret, sig string
		body        []byte
		at          time.Time
	}{
		"other secret": {"other", sig, body, now},
		"other body":   {"secret", sig, []byte(`{}`), now},
		"too old":      {"secret", sig, body, now.Add(10 * time.Minute)},
		"malformed":    {"secret", "v1=abc", body, now},
	} {
		if err := Verify([]byte(c.secret), c.sig, c.body, c.at, 5*time.Minute); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// readWS reads WebSocket messages until the server closes the connection (ended) or stop
// returns true.
func readWS(t *testing.T, ctx context.Context, url string, stop func(wsMessage) bool) ([]wsMessage, bool) {
	t.Helper()
	// Ask for gzip as browsers do: the gateway's compression stage must let an upgrade through.
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Accept-Encoding": {"gzip, deflate, br"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	var out []wsMessage
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
				return out, true
			}
			t.Fatalf("read: %v", err)
		}
		var m wsMessage
		if typ != websocket.MessageText || json.Unmarshal(b, &m) != nil {
			t.Fatalf("message %q", b)
		}
		out = append(out, m)
		if stop != nil && stop(m) {
			return out, false
		}
	}
}

func TestWebSocketResume(t *testing.T) { testWebSocketResume(t, setup) }

func testWebSocketResume(t *testing.T, setup setupFunc) {
	e := setup(t, mockllm.Options{Tokens: 80, ITL: 3 * time.Millisecond}, "  event_flush: 10ms\n")
	tk := e.submit(t, `{"model":"coder","prompt":"stream me","max_tokens":80}`)
	url := "ws" + strings.TrimPrefix(e.URL, "http") + "/v1/task/" + tk.ID + "/ws"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := 0
	first, ended := readWS(t, ctx, url, func(m wsMessage) bool {
		if m.Event == EventTokens {
			n++
		}
		return n == 2
	})
	if ended {
		t.Fatal("stream ended early")
	}
	rest, ended := readWS(t, ctx, url+"?last_event_id="+strconv.FormatInt(first[len(first)-1].ID, 10), nil)
	if !ended {
		t.Fatal("resumed stream did not close normally")
	}
	all := append(first, rest...)
	for i, m := range all {
		if m.ID != int64(i+1) {
			t.Fatalf("message %d has id %d: gap or duplicate", i, m.ID)
		}
	}
	if last := all[len(all)-1]; last.Event != EventStatus || !isTerminalEvent(last.Data) {
		t.Errorf("last message = %+v", last)
	}
	// The unknown task is refused before the upgrade.
	resp, _ := do(t, "GET", e.URL+"/v1/task/task_nope/ws", "")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown task: %d", resp.StatusCode)
	}
}

// TestLongStreams: event streams outlive the server's read and write timeouts, which bound
// ordinary requests only.
func TestLongStreams(t *testing.T) {
	e := setup(t, mockllm.Options{Tokens: 150, ITL: 10 * time.Millisecond},
		"  event_flush: 50ms\nserver:\n  read_timeout: 500ms\n  write_timeout: 500ms\n")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tk := e.submit(t, `{"model":"coder","prompt":"long","max_tokens":150}`)
	evs, ended := readSSE(t, ctx, e.URL+"/v1/task/"+tk.ID+"/events", 0, nil)
	if !ended || !isTerminalEvent([]byte(evs[len(evs)-1].Data)) {
		t.Errorf("SSE stream cut short after %d events", len(evs))
	}
	tk = e.submit(t, `{"model":"coder","prompt":"long again","max_tokens":150}`)
	msgs, ended := readWS(t, ctx, "ws"+strings.TrimPrefix(e.URL, "http")+"/v1/task/"+tk.ID+"/ws", nil)
	if !ended || !isTerminalEvent(msgs[len(msgs)-1].Data) {
		t.Errorf("WebSocket stream cut short after %d messages", len(msgs))
	}
}
