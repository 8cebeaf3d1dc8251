package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/evloop"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/server"
)

// The plain listener serves HTTP/1.1 (the lean server, on event loops by default or with a
// goroutine per connection, or net/http's with server.http1: net), h2c with prior knowledge
// and Expect: 100-continue on the same port.
func TestPlainListenerProtocols(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 4})
	for _, mode := range []string{"loop", "lean", "net"} {
		t.Run(mode, func(t *testing.T) {
			g := startGateway(t, "server: {http1: "+mode+"}\n"+oneModel(mockURL, ""), nil)
			chat := `{"model":"glm-4-flash","messages":[{"role":"user","content":"hi"}]}`

			resp, body := post(t, g.URL+"/v1/chat/completions", chat)
			if resp.StatusCode != 200 || resp.Proto != "HTTP/1.1" || !strings.Contains(string(body), `"chat.completion"`) {
				t.Fatalf("HTTP/1.1: %s %d %s", resp.Proto, resp.StatusCode, body)
			}

			var h2 http.Protocols
			h2.SetUnencryptedHTTP2(true)
			c2 := &http.Client{Transport: &http.Transport{Protocols: &h2}}
			defer c2.CloseIdleConnections()
			r2, err := c2.Post(g.URL+"/v1/chat/completions", "application/json", strings.NewReader(chat))
			if err != nil {
				t.Fatal(err)
			}
			b2, _ := io.ReadAll(r2.Body)
			r2.Body.Close()
			if r2.StatusCode != 200 || r2.Proto != "HTTP/2.0" || !strings.Contains(string(b2), `"chat.completion"`) {
				t.Fatalf("h2c: %s %d %s", r2.Proto, r2.StatusCode, b2)
			}

			ce := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 10 * time.Second}}
			defer ce.CloseIdleConnections()
			req, _ := http.NewRequest("POST", g.URL+"/v1/chat/completions", strings.NewReader(chat))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Expect", "100-continue")
			r3, err := ce.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b3, _ := io.ReadAll(r3.Body)
			r3.Body.Close()
			if r3.StatusCode != 200 || !strings.Contains(string(b3), `"chat.completion"`) {
				t.Fatalf("Expect: 100-continue: %d %s", r3.StatusCode, b3)
			}
		})
	}
}

// A client that leaves in the middle of a stream cancels the upstream request.
func TestClientLeavingStreamCancelsUpstream(t *testing.T) {
	for _, mode := range []string{"loop", "lean", "net"} {
		t.Run(mode, func(t *testing.T) {
			canceled := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				for i := 0; ; i++ {
					chunk := fmt.Sprintf(`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"t%d "},"finish_reason":null}]}`, i)
					if _, err := io.WriteString(w, "data: "+chunk+"\n\n"); err != nil {
						break
					}
					w.(http.Flusher).Flush()
					select {
					case <-r.Context().Done():
						close(canceled)
						return
					case <-time.After(10 * time.Millisecond):
					}
				}
				<-r.Context().Done()
				close(canceled)
			}))
			t.Cleanup(up.Close)
			g := startGateway(t, "server: {http1: "+mode+"}\n"+oneModel(up.URL+"/v1", ""), nil)
			c, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			body := `{"model":"glm-4-flash","stream":true,"messages":[{"role":"user","content":"hi"}]}`
			fmt.Fprintf(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("stream: %v %v", resp, err)
			}
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "data: ") {
				t.Fatalf("first event: %q %v", line, err)
			}
			c.Close()
			select {
			case <-canceled:
			case <-time.After(10 * time.Second):
				t.Fatal("the upstream request was not canceled after the client left")
			}
		})
	}
}

// Oversized heads are refused by the server before any stage runs; oversized bodies, with a
// Content-Length or chunked, get the route's 413.
func TestOversizedRequestsRefused(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 4})
	g := startGateway(t, "server: {max_body_bytes: 1024}\n"+oneModel(mockURL, ""), nil)
	addr := strings.TrimPrefix(g.URL, "http://")
	send := func(raw string) (*http.Response, []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		go io.WriteString(c, raw)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, b := send("GET /v1/models HTTP/1.1\r\nHost: g\r\nX-Pad: " + strings.Repeat("p", 70<<10) + "\r\n\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("70 KiB head: %d %s", resp.StatusCode, b)
	}
	big := `{"model":"glm-4-flash","messages":[{"role":"user","content":"` + strings.Repeat("x", 2048) + `"}]}`
	for name, raw := range map[string]string{
		"length":  fmt.Sprintf("POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(big), big),
		"chunked": fmt.Sprintf("POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(big), big),
	} {
		resp, b := send(raw)
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || e.Error.Code != "body_too_large" {
			t.Errorf("%s: %d %s, want 413 body_too_large", name, resp.StatusCode, b)
		}
	}
}

// With server.http1 loop (the default where there are loops), a route marked OnLoop runs on
// its connection's event loop, its upstream dialled from there; any other route runs off
// the loop, where it may wait on whatever it likes.
func TestRoutesOnAndOffTheLoop(t *testing.T) {
	if !evloop.Supported {
		t.Skip("no event loops on this platform")
	}
	_, mockURL := startMock(t, mockllm.Options{Tokens: 4})
	ran := make(chan string, 4)
	probe := func(name string) httpapi.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) error {
			where := "off"
			if evloop.FromContext(r.Context()) != nil {
				where = "on"
			}
			ran <- name + " " + where
			_, _ = io.WriteString(w, "{}")
			return nil
		}
	}
	g := startGateway(t, oneModel(mockURL, ""), nil,
		httpapi.Route{Method: "GET", Pattern: "/probe/inline", Shape: apierr.ShapeEnvelope, Permission: httpapi.Public,
			Handler: probe("inline"), OnLoop: true},
		httpapi.Route{Method: "GET", Pattern: "/probe/other", Shape: apierr.ShapeEnvelope, Permission: httpapi.Public,
			Handler: probe("other")})
	for _, path := range []string{"/probe/inline", "/probe/other"} {
		resp, err := http.Get(g.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if got := []string{<-ran, <-ran}; got[0] != "inline on" || got[1] != "other off" {
		t.Fatalf("handlers ran %q, want the OnLoop route on its loop and the other off it", got)
	}
	// The chat route is OnLoop, and its model's upstream plain HTTP: the answer comes back
	// through the loop's own upstream connection.
	chat := `{"model":"glm-4-flash","messages":[{"role":"user","content":"hi"}]}`
	for range 3 {
		resp, body := post(t, g.URL+"/v1/chat/completions", chat)
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"chat.completion"`) {
			t.Fatalf("chat on the loop: %d %s", resp.StatusCode, body)
		}
	}
}

// The startup line says how plain HTTP/1.1 is served: on how many event loops, or not.
func TestProtocolsNameTheLoops(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"server: {http1: lean}\n", "HTTP/1.1 and h2c"},
		{"server: {http1: net}\n", "HTTP/1.1 and h2c"},
		{"server: {http1: loop, event_loops: 1}\n", "HTTP/1.1 on 1 event loop, and h2c"},
		{"server: {http1: loop, event_loops: 3}\n", "HTTP/1.1 on 3 event loops, and h2c"},
	} {
		cfg, err := config.Parse([]byte(c.yaml+oneModel("http://127.0.0.1:9/v1", "")), nil)
		if err != nil {
			t.Fatal(err)
		}
		want := c.want
		if !evloop.Supported {
			want = "HTTP/1.1 and h2c"
		}
		if got := server.New(cfg.Server, nil, slog.New(slog.DiscardHandler)).Protocols(); got != want {
			t.Errorf("%q: %q, want %q", c.yaml, got, want)
		}
	}
}
