package admin_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/open-autoglm/autoglm/internal/admin"
	"github.com/open-autoglm/autoglm/internal/store"
)

func TestUsageSummary(t *testing.T) {
	e := newEnv(t, nil)
	var alice, bob admin.CreatedKey
	var u store.User
	e.call(t, adminKey, "POST", "/v1/admin/users", admin.CreateUserRequest{Name: "alice"}, &u)
	e.call(t, adminKey, "POST", "/v1/admin/keys", admin.CreateKeyRequest{UserID: u.ID, Name: "a"}, &alice)
	e.call(t, adminKey, "POST", "/v1/admin/keys", admin.CreateKeyRequest{Name: "b"}, &bob)
	e.refresh(t)

	t0 := time.Date(2026, 3, 1, 23, 0, 0, 0, time.UTC)
	rec := func(min int, key admin.CreatedKey, model string, status int, latency time.Duration, completion int64) store.UsageRecord {
		return store.UsageRecord{Time: t0.Add(time.Duration(min) * time.Minute), KeyID: key.ID, UserID: key.UserID, Model: model,
			PromptTokens: 10, CompletionTokens: completion, Latency: latency, Status: status}
	}
	recs := []store.UsageRecord{
		rec(5, alice, "glm", 200, 100*time.Millisecond, 20),
		rec(20, alice, "glm", 200, 300*time.Millisecond, 40),
		rec(50, alice, "stories", 500, 1000*time.Millisecond, 0),
		rec(70, bob, "glm", 200, 200*time.Millisecond, 10),  // next day (UTC), second hour
		rec(200, bob, "glm", 200, 200*time.Millisecond, 10), // outside the window
		rec(-5, bob, "glm", 200, 200*time.Millisecond, 10),  // before it
	}
	if err := e.st.Append(context.Background(), "", recs, nil); err != nil {
		t.Fatal(err)
	}
	window := url.Values{"from": {t0.Format(time.RFC3339)}, "to": {t0.Add(2 * time.Hour).Format(time.RFC3339)}, "step": {"1h"}}

	var sum admin.UsageSummary
	if st, env := e.call(t, adminKey, "GET", "/v1/admin/usage/summary?"+window.Encode(), nil, &sum); st != 200 {
		t.Fatalf("summary: %d %+v", st, env)
	}
	type point struct {
		Requests, Errors, Completion int64
		AvgMs                        float64
	}
	var got []point
	for _, p := range sum.Series {
		got = append(got, point{p.Requests, p.Errors, p.CompletionTokens, p.LatencyAvgMs})
	}
	want := []point{{3, 1, 60, (100 + 300 + 1000) / 3.0}, {1, 0, 10, 200}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
	if !sum.Series[1].Time.Equal(t0.Add(time.Hour)) || sum.StepSeconds != 3600 {
		t.Errorf("series times: %v step %d", sum.Series[1].Time, sum.StepSeconds)
	}
	if sum.Totals.Requests != 4 || sum.Totals.Errors != 1 || sum.Totals.PromptTokens != 40 || sum.Records != 4 || sum.Truncated {
		t.Errorf("totals %+v records %d truncated %v", sum.Totals, sum.Records, sum.Truncated)
	}
	if sum.Totals.LatencyP95Ms != 1000 {
		t.Errorf("p95 = %v ms, want the slowest of four requests", sum.Totals.LatencyP95Ms)
	}
	names := func(gs []admin.UsageGroup) []string {
		var out []string
		for _, g := range gs {
			out = append(out, g.Name)
		}
		return out
	}
	if diff := cmp.Diff([]string{"glm", "stories"}, names(sum.ByModel)); diff != "" {
		t.Errorf("by model, most requests first (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"2026-03-01", "2026-03-02"}, names(sum.ByDay)); diff != "" {
		t.Errorf("by day, in order (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{alice.ID, bob.ID}, names(sum.ByKey)); diff != "" {
		t.Errorf("by key (-want +got):\n%s", diff)
	}
	// glm in the window: 70 completion tokens over 0.6 s of requests.
	if tps := sum.ByModel[0].TokensPerSecond; tps < 116.6 || tps > 116.7 {
		t.Errorf("glm tokens/s = %v, want 116.7", tps)
	}

	// Filters narrow it; a user sees only their own usage, whatever they ask for.
	window.Set("model", "stories")
	e.call(t, adminKey, "GET", "/v1/admin/usage/summary?"+window.Encode(), nil, &sum)
	if sum.Totals.Requests != 1 || sum.Filter["model"] != "stories" {
		t.Errorf("model filter: %+v %v", sum.Totals, sum.Filter)
	}
	window.Del("model")
	var mine admin.UsageSummary
	if st, env := e.call(t, alice.Secret, "GET", "/v1/me/usage/summary?"+window.Encode()+"&key_id="+bob.ID, nil, &mine); st != 200 {
		t.Fatalf("me summary: %d %+v", st, env)
	}
	if mine.Totals.Requests != 3 || len(mine.ByKey) != 1 || mine.ByKey[0].Name != alice.ID {
		t.Errorf("alice's summary: %+v by key %+v", mine.Totals, mine.ByKey)
	}
	if st, _ := e.call(t, alice.Secret, "GET", "/v1/admin/usage/summary", nil, nil); st != 403 {
		t.Errorf("a user read everyone's summary: %d", st)
	}

	// The read is audited like the other admin reads.
	found := false
	for _, a := range e.st.Audit() {
		found = found || a.Action == "usage.summary"
	}
	if !found {
		t.Error("no usage.summary audit record")
	}
}

func TestUsageSummaryWindow(t *testing.T) {
	e := newEnv(t, nil)
	for _, c := range []struct {
		query string
		code  int
		step  int64
		n     int
	}{
		{"", 200, 15 * 60, 97}, // the last 24 hours by 15 minutes: 96 steps, plus the partial one
		{"?from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z", 200, 60, 60}, // an hour by the minute
		{"?from=2026-01-01T00:00:00Z&to=2026-01-31T00:00:00Z", 200, 6 * 3600, 120},
		{"?from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z&step=1s", 400, 0, 0},
		{"?step=banana", 400, 0, 0},
		{"?step=0s", 400, 0, 0},
		{"?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", 400, 0, 0},
		{"?from=yesterday", 400, 0, 0},
	} {
		var sum admin.UsageSummary
		st, env := e.call(t, adminKey, "GET", "/v1/admin/usage/summary"+c.query, nil, &sum)
		if st != c.code {
			t.Errorf("%q: status %d, want %d (%s)", c.query, st, c.code, env.Message)
			continue
		}
		if st != 200 {
			if env.Code != "invalid_request" || env.Message == "" {
				t.Errorf("%q: error %+v", c.query, env)
			}
			continue
		}
		if sum.StepSeconds != c.step || len(sum.Series) != c.n {
			t.Errorf("%q: step %d with %d points, want %d with %d", c.query, sum.StepSeconds, len(sum.Series), c.step, c.n)
		}
	}
}
