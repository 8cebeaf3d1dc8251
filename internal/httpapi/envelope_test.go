package httpapi_test

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/open-autoglm/autoglm/internal/httpapi"
)

func TestWriteData(t *testing.T) {
	w := httptest.NewRecorder()
	w.Header().Set(httpapi.TraceHeader, "trace-\"1\"")
	r := httptest.NewRequest("GET", "/v1/tasks", nil)
	if err := httpapi.WriteData(w, r, http.StatusCreated, map[string]string{"id": "t_1"}); err != nil {
		t.Fatal(err)
	}
	var env struct {
		Code    string            `json:"code"`
		Success bool              `json:"success"`
		Data    map[string]string `json:"data"`
		Message *string           `json:"message"`
		TraceID string            `json:"trace_id"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
		t.Fatalf("%s: %v", w.Body, err)
	}
	if w.Code != http.StatusCreated || env.Code != "ok" || !env.Success || env.Data["id"] != "t_1" ||
		env.Message == nil || *env.Message != "" || env.TraceID != `trace-"1"` {
		t.Errorf("status %d, envelope %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if cl := w.Header().Get("Content-Length"); cl != itoa(w.Body.Len()) {
		t.Errorf("Content-Length %q for %d bytes", cl, w.Body.Len())
	}
}

// TestWriteDataUnencodable returns the encoding error and writes nothing, so that the server
// answers it as an internal error in the route's shape.
func TestWriteDataUnencodable(t *testing.T) {
	w := httptest.NewRecorder()
	err := httpapi.WriteData(w, httptest.NewRequest("GET", "/", nil), http.StatusOK, math.Inf(1))
	if err == nil || w.Body.Len() != 0 || len(w.Header()) != 0 {
		t.Errorf("err %v, wrote %q %v", err, w.Body, w.Header())
	}
}

func TestRouteLimited(t *testing.T) {
	for _, c := range []struct {
		rt   httpapi.Route
		want bool
	}{
		{httpapi.Route{Permission: "models.use"}, true},
		{httpapi.Route{Permission: "models.use", Limit: httpapi.LimitPrompt}, true},
		{httpapi.Route{Permission: "models.use", Limit: httpapi.Unlimited}, false},
		{httpapi.Route{Permission: httpapi.Public}, false},
		{httpapi.Route{}, true}, // no permission: refused with auth on, limited with auth off
	} {
		if got := c.rt.Limited(); got != c.want {
			t.Errorf("%+v: Limited() = %v", c.rt, got)
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
