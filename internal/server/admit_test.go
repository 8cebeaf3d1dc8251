package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/admission"
	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/testenv"
)

// TestAdmissionRefusesExcess fills a server with one slot and no queue: the excess is refused
// with 503 and Retry-After in each route's own error shape, probes still answer, and the
// admitted request and those after it succeed once the slot is free.
func TestAdmissionRefusesExcess(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 2})
	cfg, err := config.Parse([]byte(oneModel(mockURL, "")), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry(t, cfg)
	entered, release := make(chan struct{}, 4), make(chan struct{})
	hold := httpapi.Route{Method: "GET", Pattern: "/v1/test/hold", Shape: apierr.ShapeOpenAI,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			entered <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
				return r.Context().Err()
			}
			_, _ = io.WriteString(w, "held")
			return nil
		}}
	lim := admission.New(admission.Config{MaxInFlight: 1, QueueDepth: 0, MaxWait: time.Second})
	srv := server.NewWith(cfg.Server, reg, slog.New(slog.DiscardHandler), server.Options{Routes: append([]httpapi.Route{hold}, openai.New(reg, openai.Options{}).Routes()...), Admission: lim})
	addr := testenv.ServeLoopback(t, srv.Serve)
	base := "http://" + addr

	held := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Get(base + "/v1/test/hold")
		if err != nil {
			t.Error(err)
		}
		held <- resp
	}()
	<-entered

	resp, body := post(t, base+"/v1/chat/completions", `{"model":"glm-4-flash","messages":[{"role":"user","content":"hi"}]}`)
	var oa struct {
		Error struct{ Code, Type string } `json:"error"`
	}
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || json.Unmarshal(body, &oa) != nil || oa.Error.Code != "server_overloaded" {
		t.Errorf("OpenAI route over the limit: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	resp, body = get(t, base+"/v1/admin/backends")
	var env struct {
		Code    string `json:"code"`
		Success bool   `json:"success"`
		TraceID string `json:"trace_id"`
	}
	if resp.StatusCode != 503 || json.Unmarshal(body, &env) != nil || env.Code != "server_overloaded" || env.Success || env.TraceID == "" {
		t.Errorf("envelope route over the limit: %d %s", resp.StatusCode, body)
	}
	for _, probe := range []string{"/healthz", "/readyz"} {
		if resp, body := get(t, base+probe); resp.StatusCode != 200 {
			t.Errorf("%s while full: %d %s", probe, resp.StatusCode, body)
		}
	}

	close(release)
	r := <-held
	if b, _ := io.ReadAll(r.Body); r.StatusCode != 200 || string(b) != "held" {
		t.Errorf("admitted request: %d %q", r.StatusCode, b)
	}
	r.Body.Close()
	// The slot is free again: the next requests are served, and none is left taken.
	for range 3 {
		if resp, body := post(t, base+"/v1/chat/completions", `{"model":"glm-4-flash","messages":[{"role":"user","content":"hi"}]}`); resp.StatusCode != 200 {
			t.Fatalf("after the slot was freed: %d %s", resp.StatusCode, body)
		}
	}
	// A client that leaves while admitted gives its slot back.
	cctx, ccancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(cctx, "GET", base+"/v1/test/hold", nil)
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	ccancel()
	waitFor(t, "the slot of a client that left", func() bool { return lim.Stats().InFlight == 0 })
	if resp, body := get(t, base+"/v1/models"); resp.StatusCode != 200 {
		t.Errorf("after a client left: %d %s", resp.StatusCode, body)
	}
	st := lim.Stats()
	if st.InFlight != 0 || st.Waiting != 0 || st.RefusedFull != 2 {
		t.Errorf("stats at the end: %+v (want nothing in flight or waiting, 2 refused)", st)
	}
	// Handler, used for requests made on behalf of an admitted one, is not admitted again.
	if srv.Handler() == nil {
		t.Fatal("no handler")
	}
}
