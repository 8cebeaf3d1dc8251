package admin_test

import (
	"errors"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/admin"
	"github.com/open-autoglm/autoglm/internal/admin/admintest"
	"github.com/open-autoglm/autoglm/internal/apierr"
)

// FuzzUsageSummaryQuery sends the summary any from, to and step: the answer is a summary
// of at most 1000 points or an invalid_request error, never a panic or a huge allocation.
func FuzzUsageSummaryQuery(f *testing.F) {
	f.Add("", "", "")
	f.Add("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "1h")
	f.Add("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "")
	f.Add("2026-01-01T00:00:00+14:00", "2026-01-01T00:00:00-12:00", "1s")
	f.Add("2026-01-01T00:00:00Z", "", "-5m")
	f.Add("", "2026-01-01T00:00:00Z", "9223372036s")
	api := admin.New(admin.Options{Store: admintest.NewStore(), Now: func() time.Time { return time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC) }})
	var h func(*httptest.ResponseRecorder, *url.Values) error
	for _, rt := range api.Routes() {
		if rt.Pattern == "/v1/admin/usage/summary" {
			handler := rt.Handler
			h = func(w *httptest.ResponseRecorder, q *url.Values) error {
				return handler(w, httptest.NewRequest("GET", "/v1/admin/usage/summary?"+q.Encode(), nil))
			}
		}
	}
	f.Fuzz(func(t *testing.T, from, to, step string) {
		q := url.Values{}
		for k, v := range map[string]string{"from": from, "to": to, "step": step} {
			if v != "" {
				q.Set(k, v)
			}
		}
		w := httptest.NewRecorder()
		err := h(w, &q)
		if err != nil {
			var e *apierr.Error
			if !errors.As(err, &e) || e.Kind != apierr.Invalid || e.Message == "" {
				t.Fatalf("%v: error %v, want an invalid_request with a message", q, err)
			}
			return
		}
		if w.Code != 200 || w.Body.Len() > 200_000 {
			t.Fatalf("%v: status %d, %d bytes", q, w.Code, w.Body.Len())
		}
	})
}
