package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/config"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// parseConfig parses a ratelimit section written in YAML, defaults applied.
func parseConfig(t testing.TB, section string) config.RateLimit {
	t.Helper()
	c, err := config.Parse([]byte("ratelimit:\n"+section), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return c.RateLimit
}

func newLimiter(t testing.TB, section string, o Options) *Limiter {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	l, err := New(parseConfig(t, section), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func kindOf(err error) apierr.Kind {
	var e *apierr.Error
	if !errors.As(err, &e) {
		return apierr.Internal
	}
	return e.Kind
}

func TestGCRA(t *testing.T) {
	now := int64(1e18)
	var tat int64
	for i := 0; i < 600; i++ {
		r := gcraTake(tat, now, 600, 1)
		if !r.ok {
			t.Fatalf("request %d refused", i)
		}
		if r.remaining != int64(599-i) {
			t.Fatalf("request %d: remaining %d, want %d", i, r.remaining, 599-i)
		}
		tat = r.tat
	}
	r := gcraTake(tat, now, 600, 1)
	if r.ok || r.retry != 100*time.Millisecond || r.reset != time.Minute || r.remaining != 0 {
		t.Fatalf("601st: %+v; want refused, retry 100ms, reset 1m", r)
	}
	// One emission interval later exactly one more fits.
	now += int64(100 * time.Millisecond)
	if r = gcraTake(tat, now, 600, 1); !r.ok {
		t.Fatal("refused after one interval")
	}
	if r2 := gcraTake(r.tat, now, 600, 1); r2.ok {
		t.Fatal("two admitted after one interval")
	}
	// Cost zero reads without refusing, even in debt.
	debt := gcraAdjust(r.tat, now, 600, 300)
	if z := gcraTake(debt, now, 600, 0); !z.ok || z.remaining != 0 || z.reset != 90*time.Second {
		t.Fatalf("cost 0 in debt: %+v", z)
	}
	// Debt is capped, and absurd usage does not overflow into a full bucket.
	if got := gcraAdjust(r.tat, now, 1000, 1<<62); got != now+int64(maxDebt) {
		t.Fatalf("huge debt: tat %d ahead, want %v", got-now, maxDebt)
	}
	// A refund never overfills.
	if got := gcraAdjust(r.tat, now, 600, -10000); got != now {
		t.Fatalf("refund past full: tat %d, want %d", got, now)
	}
}

// TestConcurrentClients hammers one limiter from 50 goroutines: exactly the bucket is admitted,
// then exactly the refill.
func TestConcurrentClients(t *testing.T) {
	clk := newFakeClock()
	l := newLimiter(t, `
  roles:
    user: {requests_per_minute: 6000}
`, Options{Now: clk.Now})
	subj := Subject{KeyID: "k1", Role: "user"}
	run := func() int64 {
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 200 {
					tk, _, err := l.Admit(context.Background(), Request{Subject: subj})
					if err == nil {
						admitted.Add(1)
						tk.Finish(true)
					} else if kindOf(err) != apierr.RateLimited {
						t.Errorf("unexpected error %v", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return admitted.Load()
	}
	if got := run(); got != 6000 {
		t.Fatalf("admitted %d of 10000 at once, want the bucket of 6000", got)
	}
	clk.Advance(time.Second)
	if got := run(); got != 100 {
		t.Fatalf("admitted %d after 1s, want 100 (6000/min)", got)
	}
	clk.Advance(30 * time.Second)
	if got := run(); got != 3000 {
		t.Fatalf("admitted %d after 30s, want 3000", got)
	}
	st := l.Stats()
	if st.Admitted != 9100 || st.RateLimited != 3*10000-9100 {
		t.Errorf("stats %+v", st)
	}
}

func TestKeyAndUserLimits(t *testing.T) {
	clk := newFakeClock()
	l := newLimiter(t, `
  roles:
    user: {requests_per_minute: 10}
  users:
    bob: {requests_per_minute: 15}
  keys:
    unlimited: {requests_per_minute: -1}
`, Options{Now: clk.Now})
	ctx := context.Background()
	admit := func(key string) error {
		tk, _, err := l.Admit(ctx, Request{Subject: Subject{KeyID: key, UserID: "bob", Role: "user"}})
		tk.Finish(true)
		return err
	}
	for i := range 10 {
		if err := admit("a"); err != nil {
			t.Fatalf("key a request %d: %v", i, err)
		}
	}
	if err := admit("a"); kindOf(err) != apierr.RateLimited {
		t.Fatalf("key a over its limit: %v", err)
	}
	// Key b has its own 10, but bob's 15 caps both keys together.
	for i := range 5 {
		if err := admit("b"); err != nil {
			t.Fatalf("key b request %d: %v", i, err)
		}
	}
	err := admit("b")
	if kindOf(err) != apierr.RateLimited {
		t.Fatalf("user over his limit: %v", err)
	}
	if msg := err.(*apierr.Error).Message; msg != "rate limit reached: requests per minute for this user" {
		t.Errorf("message %q", msg)
	}
	// A key override of -1 lifts the key's own limit, not the user's.
	if err := admit("unlimited"); kindOf(err) != apierr.RateLimited {
		t.Fatalf("unlimited key escaped the user's limit: %v", err)
	}
	// A JWT principal (no key) is limited as the user alone.
	clk.Advance(time.Minute)
	for i := range 15 {
		if _, _, err := l.Admit(ctx, Request{Subject: Subject{UserID: "bob", Role: "user"}}); err != nil {
			t.Fatalf("user request %d: %v", i, err)
		}
	}
	// An unlimited role takes nothing and sends no headers.
	tk, st, err := l.Admit(ctx, Request{Subject: Subject{KeyID: "x", Role: "admin"}, Tokens: 1e9})
	if err != nil || tk == nil || st != (Status{}) {
		t.Fatalf("admin: %v %v %+v", tk, err, st)
	}
}

func TestTokensReserveAndSettle(t *testing.T) {
	clk := newFakeClock()
	l := newLimiter(t, `
  roles:
    user: {tokens_per_minute: 1000}
`, Options{Now: clk.Now})
	ctx := context.Background()
	subj := Subject{KeyID: "k", Role: "user"}
	tk, st, err := l.Admit(ctx, Request{Subject: subj, Tokens: 600})
	if err != nil {
		t.Fatal(err)
	}
	if st.Tokens.Remaining != 400 || st.Tokens.Limit != 1000 || st.Tokens.Reset != 36*time.Second {
		t.Fatalf("after reserving 600: %+v", st.Tokens)
	}
	// A second request of 600 does not fit while the first holds its reservation.
	_, st, err = l.Admit(ctx, Request{Subject: subj, Tokens: 600})
	if kindOf(err) != apierr.RateLimited || st.Tokens.Remaining != 400 {
		t.Fatalf("second 600: %v %+v", err, st.Tokens)
	}
	if ra := err.(*apierr.Error).RetryAfter; ra != 12*time.Second {
		t.Errorf("retry after %v, want 12s (200 tokens at 1000/min)", ra)
	}
	if d := tk.Settle(100); d != -500 {
		t.Fatalf("Settle(100) = %d, want -500", d)
	}
	tk.Finish(true)
	tk.Finish(true) // idempotent
	_, st, err = l.Admit(ctx, Request{Subject: subj})
	if err != nil || st.Tokens.Remaining != 900 {
		t.Fatalf("after settling 100: %v %+v", err, st.Tokens)
	}

	// Using more than reserved is charged: the bucket goes into debt.
	tk, _, err = l.Admit(ctx, Request{Subject: subj, Tokens: 100})
	if err != nil {
		t.Fatal(err)
	}
	if d := tk.Settle(1500); d != 1400 {
		t.Fatalf("Settle(1500) = %d", d)
	}
	tk.Finish(true)
	_, st, err = l.Admit(ctx, Request{Subject: subj, Tokens: 1})
	if kindOf(err) != apierr.RateLimited || st.Tokens.Remaining != 0 {
		t.Fatalf("in debt: %v %+v", err, st.Tokens)
	}
	// 100 + 1500 used of 1000 per minute: full again 96s after the first reservation.
	if st.Tokens.Reset != 96*time.Second {
		t.Errorf("reset %v, want 96s", st.Tokens.Reset)
	}

	// Unsettled: a failed request is refunded, a successful one keeps its estimate.
	clk.Advance(2 * time.Minute)
	tk, _, _ = l.Admit(ctx, Request{Subject: subj, Tokens: 300})
	tk.Finish(false)
	tk, st, _ = l.Admit(ctx, Request{Subject: subj, Tokens: 300})
	if st.Tokens.Remaining != 700 {
		t.Fatalf("after a refunded failure: %+v", st.Tokens)
	}
	tk.Finish(true)
	_, st, _ = l.Admit(ctx, Request{Subject: subj})
	if st.Tokens.Remaining != 700 {
		t.Fatalf("after an unsettled success: %+v", st.Tokens)
	}

	// An estimate above the limit takes the whole bucket instead of failing forever.
	clk.Advance(2 * time.Minute)
	tk, st, err = l.Admit(ctx, Request{Subject: subj, Tokens: 5000})
	if err != nil || st.Tokens.Remaining != 0 {
		t.Fatalf("oversized estimate: %v %+v", err, st.Tokens)
	}
	if tk.Reserved() != 5000 {
		t.Errorf("Reserved = %d", tk.Reserved())
	}
	tk.Settle(200)
	tk.Finish(true)
	_, st, _ = l.Admit(ctx, Request{Subject: subj})
	if st.Tokens.Remaining != 800 {
		t.Fatalf("after settling an oversized estimate: %+v", st.Tokens)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	l := newLimiter(t, `
  roles:
    user: {concurrent: 2}
`, Options{})
	ctx := context.Background()
	subj := Subject{KeyID: "k", UserID: "u", Role: "user"}
	a, _, err := l.Admit(ctx, Request{Subject: subj})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := l.Admit(ctx, Request{Subject: subj})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = l.Admit(ctx, Request{Subject: subj})
	if kindOf(err) != apierr.RateLimited || err.(*apierr.Error).RetryAfter != time.Second {
		t.Fatalf("third concurrent: %v", err)
	}
	a.Finish(true)
	a.Finish(true) // a second Finish must not free another slot
	c, _, err := l.Admit(ctx, Request{Subject: subj})
	if err != nil {
		t.Fatalf("after one finished: %v", err)
	}
	if _, _, err := l.Admit(ctx, Request{Subject: subj}); err == nil {
		t.Fatal("double Finish freed two slots")
	}
	b.Finish(false)
	c.Finish(true)
	if n := len(l.local.inflight); n != 0 {
		t.Errorf("%d counters left after every request finished", n)
	}
}

// memUsage is an in-memory QuotaUsage: per key (and per "user:<id>"), a list of (time, tokens).
type memUsage struct {
	mu    sync.Mutex
	rows  map[string][]usageRow
	err   error
	reads atomic.Int64
}

type usageRow struct {
	at     time.Time
	tokens int64
}

func (m *memUsage) add(key string, at time.Time, tokens int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rows == nil {
		m.rows = make(map[string][]usageRow)
	}
	m.rows[key] = append(m.rows[key], usageRow{at, tokens})
}

func (m *memUsage) KeyTokens(_ context.Context, key string, since time.Time) (int64, error) {
	m.reads.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return 0, m.err
	}
	var n int64
	for _, r := range m.rows[key] {
		if !r.at.Before(since) {
			n += r.tokens
		}
	}
	return n, nil
}

func (m *memUsage) UserTokens(ctx context.Context, user string, since time.Time) (int64, error) {
	return m.KeyTokens(ctx, "user:"+user, since)
}

// TestUserQuota: a caller with no key (a JWT) is held to its user's quotas, and a user's quota
// counts all of its keys together.
func TestUserQuota(t *testing.T) {
	clk := newFakeClock() // 2026-03-14 12:00 UTC
	usage := &memUsage{}
	usage.add("user:bob", clk.Now().Add(-time.Hour), 990) // bob's usage so far today, in the store
	l := newLimiter(t, `
  quota_refresh: 10s
  roles:
    user: {tokens_per_day: 1000}
  users:
    carol: {tokens_per_day: 1500}
`, Options{Now: clk.Now, Usage: usage})
	ctx := context.Background()

	jwt := Subject{UserID: "alice", Role: "user"}
	tk, _, err := l.Admit(ctx, Request{Subject: jwt, Tokens: 10})
	if err != nil {
		t.Fatal(err)
	}
	tk.Settle(1000)
	tk.Finish(true)
	_, _, err = l.Admit(ctx, Request{Subject: jwt})
	if kindOf(err) != apierr.QuotaExceeded || err.(*apierr.Error).Message != "this user has used its daily quota of 1000 tokens" {
		t.Fatalf("JWT caller over its daily quota: %v", err)
	}

	// The store's total counts from a user's first request.
	tk, _, err = l.Admit(ctx, Request{Subject: Subject{UserID: "bob", Role: "user"}})
	if err != nil {
		t.Fatalf("990 of 1000: %v", err)
	}
	tk.Settle(20)
	tk.Finish(true)
	if _, _, err = l.Admit(ctx, Request{Subject: Subject{UserID: "bob", Role: "user"}}); kindOf(err) != apierr.QuotaExceeded {
		t.Fatalf("1010 of 1000: %v", err)
	}

	// carol's two keys have 1000 each; carol herself 1500 across both.
	k1 := Subject{KeyID: "c1", UserID: "carol", Role: "user"}
	k2 := Subject{KeyID: "c2", UserID: "carol", Role: "user"}
	tk, _, _ = l.Admit(ctx, Request{Subject: k1})
	tk.Settle(1000)
	tk.Finish(true)
	if _, _, err = l.Admit(ctx, Request{Subject: k1}); err == nil || !strings.Contains(err.Error(), "API key") {
		t.Fatalf("key c1 over its quota: %v", err)
	}
	tk, _, err = l.Admit(ctx, Request{Subject: k2})
	if err != nil {
		t.Fatalf("key c2, carol at 1000 of 1500: %v", err)
	}
	tk.Settle(600)
	tk.Finish(true)
	_, _, err = l.Admit(ctx, Request{Subject: k2})
	if kindOf(err) != apierr.QuotaExceeded || err.(*apierr.Error).Message != "this user has used its daily quota of 1500 tokens" {
		t.Fatalf("carol over her quota through her second key: %v", err)
	}
	// The next day starts afresh.
	clk.Set(time.Date(2026, 3, 15, 0, 0, 1, 0, time.UTC))
	if _, _, err = l.Admit(ctx, Request{Subject: jwt}); err != nil {
		t.Fatalf("next day: %v", err)
	}
}

func TestQuota(t *testing.T) {
	clk := newFakeClock() // 2026-03-14 12:00 UTC
	usage := &memUsage{}
	usage.add("k", clk.Now().Add(-time.Hour), 900)                    // today
	usage.add("k", clk.Now().AddDate(0, 0, -3), 5000)                 // this month
	usage.add("k", time.Date(2026, 2, 27, 0, 0, 0, 0, time.UTC), 1e6) // last month
	l := newLimiter(t, `
  quota_refresh: 10s
  roles:
    user: {tokens_per_day: 1000, tokens_per_month: 6500}
`, Options{Now: clk.Now, Usage: usage})
	ctx := context.Background()
	subj := Subject{KeyID: "k", Role: "user"}
	tk, _, err := l.Admit(ctx, Request{Subject: subj, Tokens: 50})
	if err != nil {
		t.Fatalf("900 of 1000 used: %v", err)
	}
	tk.Settle(150)
	tk.Finish(true)
	// The store has not recorded that request yet; the running count has.
	_, _, err = l.Admit(ctx, Request{Subject: subj})
	if kindOf(err) != apierr.QuotaExceeded {
		t.Fatalf("1050 of 1000 used: %v", err)
	}
	if ra := err.(*apierr.Error).RetryAfter; ra != 12*time.Hour {
		t.Errorf("retry after %v, want 12h (until midnight UTC)", ra)
	}
	// The store catching up with the same request does not count it twice.
	usage.add("k", clk.Now(), 150)
	clk.Set(time.Date(2026, 3, 15, 0, 0, 1, 0, time.UTC))
	tk, _, err = l.Admit(ctx, Request{Subject: subj})
	if err != nil {
		t.Fatalf("next day: %v", err)
	}
	tk.Settle(400) // month: 5000 + 900 + 150 + 400 = 6450
	tk.Finish(true)
	tk, _, err = l.Admit(ctx, Request{Subject: subj})
	if err != nil {
		t.Fatalf("6450 of 6500 this month: %v", err)
	}
	tk.Settle(100)
	tk.Finish(true)
	_, _, err = l.Admit(ctx, Request{Subject: subj})
	if kindOf(err) != apierr.QuotaExceeded || err.(*apierr.Error).Message != "this API key has used its monthly quota of 6500 tokens" {
		t.Fatalf("monthly quota: %v", err)
	}
	if st := l.Stats(); st.QuotaExceeded != 2 {
		t.Errorf("stats %+v", st)
	}
	// A new month starts from the store's (empty) total.
	clk.Set(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC))
	if _, _, err = l.Admit(ctx, Request{Subject: subj}); err != nil {
		t.Fatalf("new month: %v", err)
	}
}

// TestQuotaRefresh checks that usage recorded by other replicas is picked up in the background.
func TestQuotaRefresh(t *testing.T) {
	clk := newFakeClock()
	usage := &memUsage{}
	l := newLimiter(t, `
  quota_refresh: 1s
  roles:
    user: {tokens_per_day: 1000}
`, Options{Now: clk.Now, Usage: usage})
	ctx := context.Background()
	subj := Subject{KeyID: "k", Role: "user"}
	if _, _, err := l.Admit(ctx, Request{Subject: subj}); err != nil {
		t.Fatal(err)
	}
	usage.add("k", clk.Now(), 1000) // another replica's usage reaches the store
	if _, _, err := l.Admit(ctx, Request{Subject: subj}); err != nil {
		t.Fatalf("refused before the refresh interval: %v", err)
	}
	clk.Advance(time.Second)
	// This admission starts the background read; later ones see its result.
	for i := 0; ; i++ {
		_, _, err := l.Admit(ctx, Request{Subject: subj})
		if kindOf(err) == apierr.QuotaExceeded {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	// A failing store is counted and the request let through on the in-memory count.
	usage.mu.Lock()
	usage.err = errors.New("store down")
	usage.mu.Unlock()
	clk.Set(clk.Now().AddDate(0, 0, 1))
	if _, _, err := l.Admit(ctx, Request{Subject: subj}); err != nil {
		t.Fatalf("store down: %v", err)
	}
	if st := l.Stats(); st.UsageErrors != 1 {
		t.Errorf("usage errors %d, want 1", st.UsageErrors)
	}
}

func TestStatusChoosesTighterBucket(t *testing.T) {
	clk := newFakeClock()
	l := newLimiter(t, `
  roles:
    user: {requests_per_minute: 100, tokens_per_minute: 10000}
  users:
    u: {requests_per_minute: 3, tokens_per_minute: 100000}
`, Options{Now: clk.Now})
	_, st, err := l.Admit(context.Background(), Request{Subject: Subject{KeyID: "k", UserID: "u", Role: "user"}, Tokens: 1000})
	if err != nil {
		t.Fatal(err)
	}
	want := Status{
		Requests: Window{Limit: 3, Remaining: 2, Reset: 20 * time.Second},
		Tokens:   Window{Limit: 10000, Remaining: 9000, Reset: 6 * time.Second},
	}
	if st != want {
		t.Errorf("status %+v\nwant %+v", st, want)
	}
}

func TestFormatReset(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {-time.Second, "0s"}, {time.Microsecond, "1ms"}, {17 * time.Millisecond, "17ms"},
		{999*time.Millisecond + 1, "1s"}, {time.Second, "1s"}, {1500 * time.Millisecond, "1.5s"},
		{6 * time.Minute, "6m0s"},
	} {
		if got := formatReset(c.d); got != c.want {
			t.Errorf("formatReset(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

func ExampleLimiter_Admit() {
	// A stopped clock keeps the printed numbers exact; servers use the default, time.Now.
	stopped := func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	l, _ := New(config.RateLimit{Roles: map[string]config.Limits{"user": {RequestsPerMinute: 2, TokensPerMinute: 1000}}}, Options{Now: stopped})
	defer l.Close()
	subj := Subject{KeyID: "key-1", Role: "user"}
	for i := 0; i < 3; i++ {
		t, st, err := l.Admit(context.Background(), Request{Subject: subj, Tokens: 300})
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println("admitted; requests left:", st.Requests.Remaining, "tokens left:", st.Tokens.Remaining)
		t.Settle(120) // the upstream's usage: 180 tokens go back to the bucket
		t.Finish(true)
	}
	// Output:
	// admitted; requests left: 1 tokens left: 700
	// admitted; requests left: 0 tokens left: 580
	// rate_limited: rate limit reached: requests per minute for this API key
}

// TestQuotaRefusalHeaders checks that a quota refusal reports the rate buckets (untouched).
func TestQuotaRefusalHeaders(t *testing.T) {
	clk := newFakeClock()
	l := newLimiter(t, `
  roles:
    user: {requests_per_minute: 10, tokens_per_minute: 1000, concurrent: 1, tokens_per_day: 100}
`, Options{Now: clk.Now})
	ctx := context.Background()
	subj := Subject{KeyID: "k", Role: "user"}
	tk, _, err := l.Admit(ctx, Request{Subject: subj, Tokens: 50})
	if err != nil {
		t.Fatal(err)
	}
	tk.Settle(200)
	tk.Finish(true)
	_, st, err := l.Admit(ctx, Request{Subject: subj, Tokens: 50})
	if kindOf(err) != apierr.QuotaExceeded {
		t.Fatalf("over the daily quota: %v", err)
	}
	want := Status{
		Requests: Window{Limit: 10, Remaining: 9, Reset: 6 * time.Second},
		Tokens:   Window{Limit: 1000, Remaining: 800, Reset: 12 * time.Second},
	}
	if st != want {
		t.Errorf("status %+v\nwant %+v", st, want)
	}
	if n := len(l.local.inflight); n != 0 {
		t.Errorf("a quota refusal holds %d concurrency slots", n)
	}
}

// TestSetLimits: limits replaced at run time apply to the next request, to the bucket as it
// is; a role the new limits leave out is unlimited again.
func TestSetLimits(t *testing.T) {
	clk := newFakeClock()
	l := newLimiter(t, "  roles:\n    user: {requests_per_minute: 3}\n", Options{Now: clk.Now})
	ctx := context.Background()
	admit := func() error {
		tk, _, err := l.Admit(ctx, Request{Subject: Subject{KeyID: "k", Role: "user"}})
		tk.Finish(true)
		return err
	}
	for i := range 3 {
		if err := admit(); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if err := admit(); kindOf(err) != apierr.RateLimited {
		t.Fatalf("over the limit: %v", err)
	}
	// Six a minute: half a minute later there is room for three (the old limit would
	// allow one).
	l.SetLimits(parseConfig(t, "  roles:\n    user: {requests_per_minute: 6}\n"))
	clk.Advance(30 * time.Second)
	for i := range 3 {
		if err := admit(); err != nil {
			t.Fatalf("request %d under the raised limit: %v", i, err)
		}
	}
	if err := admit(); kindOf(err) != apierr.RateLimited {
		t.Fatalf("over the raised limit: %v", err)
	}
	if k, _ := l.Limits(Subject{KeyID: "k", Role: "user"}); k.RequestsPerMinute != 6 {
		t.Fatalf("limits in force: %+v", k)
	}
	l.SetLimits(parseConfig(t, "  roles:\n    guest: {requests_per_minute: 1}\n"))
	for i := range 10 {
		if err := admit(); err != nil {
			t.Fatalf("request %d with the role's limit removed: %v", i, err)
		}
	}
}
