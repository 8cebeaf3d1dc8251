package scaleout_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/internal/testenv"
)

const (
	// adminKey is the bootstrap admin key every replica gets in AUTOGLM_ADMIN_KEY.
	adminKey = "scaleout-admin-0123456789abcdef"
	// rpm is the role user's request rate. The GCRA bucket holds one minute's worth, so a
	// fresh key is admitted rpm requests at once and then one every minute/rpm (50 ms).
	rpm = 1200
	// steady is how long the rate-limit clients keep going after the first refusal (the
	// bucket is empty from then on). The tolerance of the ±2% check, as time, is 2% of the
	// whole run: about 0.4 s, far more than the loopback latency that blurs its ends.
	steady = 20 * time.Second
	// slowTokens at slowITL make the slow mock answer in about 5 s: long enough to kill the
	// replica running a task in the middle of it.
	slowTokens = 500
	slowITL    = 10 * time.Millisecond
	// taskLease is short so the task of a killed replica is taken over within seconds.
	taskLease = 2 * time.Second
	// batchInterval bounds how long a usage record waits in a replica's batcher.
	batchInterval = 100 * time.Millisecond
)

// TestScaleOut runs three `autoglm serve` replicas on one PostgreSQL database and one Redis,
// in front of two `autoglm mockllm` processes (one fast, one slow), and checks what replicas
// must share: keys, rate limits, revocations, usage and tasks.
func TestScaleOut(t *testing.T) {
	redisAddr := testenv.RedisAddr(t)
	start := time.Now()
	c := &cluster{bin: buildBinary(t), hc: &http.Client{
		Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
		Timeout:   60 * time.Second,
	}}
	t.Logf("built autoglm in %s", time.Since(start).Round(time.Millisecond))
	t.Cleanup(c.hc.CloseIdleConnections)
	dsn := testenv.PostgresDatabaseDSN(t, "scaleout")

	c.fast = c.launch(t, "mockllm", nil, "mockllm", "--addr", "127.0.0.1:0")
	c.slow = c.launch(t, "mockllm-slow", nil, "mockllm", "--addr", "127.0.0.1:0",
		"--itl", slowITL.String(), "--tokens", strconv.Itoa(slowTokens))
	c.fast.waitReady(t)
	c.slow.waitReady(t)

	cfg := filepath.Join(t.TempDir(), "autoglm.yaml")
	yml := fmt.Sprintf(`server:
  shutdown_timeout: 2s
store:
  driver: postgres
  dsn: %q
  batch: {interval: %s}
auth:
  key_refresh: 500ms
ratelimit:
  roles:
    user: {requests_per_minute: %d}
  # A Redis that does not answer in time must show as 503s, not as requests admitted
  # uncounted (the default fail mode is open).
  redis: {addr: %q, prefix: %q, timeout: 1s, fail: closed}
models:
  - name: mock
    backends: [{type: openai, base_url: "%s/v1"}]
    health: {probe: none}
  - name: slow
    backends: [{type: openai, base_url: "%s/v1"}]
    health: {probe: none}
tasks:
  workers: 2
  lease: %s
  event_flush: 50ms
`, dsn, batchInterval, rpm, redisAddr, "scaleout-"+randomHex(6)+":", c.fast.URL, c.slow.URL, taskLease)
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	// Port 0: each process binds a free port itself and logs it, so no other process on the
	// machine can take the port between choosing and binding it.
	for _, name := range []string{"A", "B", "C"} {
		c.reps = append(c.reps, c.launch(t, name, []string{"AUTOGLM_ADMIN_KEY=" + adminKey},
			"serve", "--config", cfg, "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()))
	}
	for _, r := range c.reps {
		r.waitReady(t)
	}
	t.Logf("3 replicas ready %s after the start", time.Since(start).Round(time.Millisecond))

	// The key of the task subtests; made by the first subtest, through the CLI.
	var userKey string
	t.Run("KeyOnEveryReplica", func(t *testing.T) { userKey = testKeyOnEveryReplica(t, c) })
	t.Run("SharedRateLimit", func(t *testing.T) { testSharedRateLimit(t, c) })
	t.Run("Revocation", func(t *testing.T) { testRevocation(t, c) })
	t.Run("Usage", func(t *testing.T) { testUsage(t, c) })
	if userKey == "" {
		t.Fatal("no key for the task subtests")
	}
	t.Run("TaskEventsAcrossReplicas", func(t *testing.T) { testTaskEventsAcrossReplicas(t, c, userKey) })
	// Last: it kills a replica.
	t.Run("TaskSurvivesSIGKILL", func(t *testing.T) { testTaskSurvivesSIGKILL(t, c, userKey) })
	t.Logf("whole test %s", time.Since(start).Round(time.Millisecond))
}

// testKeyOnEveryReplica creates a key with `autoglm keys create` against replica A and checks
// that B and C accept it within a few key refreshes. It returns the key.
func testKeyOnEveryReplica(t *testing.T, c *cluster) string {
	a := c.reps[0]
	out, err := exec.Command(c.bin, "keys", "create", "--url", a.URL, "--admin-key", adminKey,
		"--json", "--name", "everywhere", "--models", "mock,slow").Output()
	if err != nil {
		t.Fatalf("autoglm keys create: %v (%s)", err, stderrOf(err))
	}
	created := time.Now()
	var k api.APIKey
	if err := json.Unmarshal(out, &k); err != nil || k.Secret == "" || k.ID == "" {
		t.Fatalf("autoglm keys create printed %q: %v", out, err)
	}
	for _, r := range c.reps {
		d := c.waitAccepted(t, r, k.Secret, 5*time.Second)
		t.Logf("key %s accepted by %s %s after its creation on A", k.ID, r.name, d(created))
	}
	// A key not known anywhere is refused everywhere: the acceptance above is the key's own.
	for _, r := range c.reps {
		if st := c.chat(t, r, "sk-not-a-key-"+randomHex(8)).status; st != http.StatusUnauthorized {
			t.Errorf("%s: unknown key answered %d, want 401", r.name, st)
		}
	}
	return k.Secret
}

// sample is one rate-limited request as a client saw it.
type sample struct {
	rep        int
	sent, recv time.Time
	status     int
	problem    string // a header missing or wrong
}

// testSharedRateLimit sends requests of one key from many clients to all three replicas and
// counts what the shared GCRA bucket admits.
//
// The expected count: a bucket holds one minute's worth (rpm units) and gets one unit back
// every T = 1min/rpm, but never holds more than rpm. The warm-up takes one unit on each
// replica; between its first admission (t0) and the moment the clients start (ts) the bucket
// refills towards rpm and stops there — units that would come back while it is full are not
// kept. So at ts it holds B = min(rpm, rpm - warm-ups + floor((ts - t0) / T)), and while the
// clients keep it empty — they always have a request waiting — the number admitted up to the
// last request at time tL is
//
//	N = warm-ups + B + floor((tL - ts) / T)
//
// give or take a few units (whether a full bucket holds rpm or rpm-1, and the request that
// happens to arrive as a unit comes back). Redis decides
// each request between the moment the client sent it and the moment the answer arrived, so
// t0 lies within the first admitted request's send and receive times and tL within the last
// send and the last receive. The test checks N against both ends of those intervals (a hard
// bound that latency cannot break), and checks that the rate beyond the bucket's content at
// ts, (N - warm-ups - B) / (tL - ts) with tL taken at the middle of its interval, is rpm within
// ±2%. The clients run for `steady` after the first refusal, so the bucket is drained whatever
// the machine's speed and the run has a well-defined steady part.
func testSharedRateLimit(t *testing.T, c *cluster) {
	k := c.createKey(t, c.reps[0], "ratelimit")
	var (
		mu      sync.Mutex
		samples []sample
	)
	record := func(s sample) {
		mu.Lock()
		samples = append(samples, s)
		mu.Unlock()
	}
	// Warm-up: one request on each replica in turn, repeated while the replica does not know
	// the key yet (a 401 is refused before the limit stage and takes nothing from the bucket).
	// The first of these is the bucket's first admission, t0.
	for i, r := range c.reps {
		deadline := time.Now().Add(5 * time.Second)
		for {
			s := c.limitedChat(t, i, r, k.Secret)
			if s.status == http.StatusUnauthorized && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			if s.status != http.StatusOK {
				t.Fatalf("warm-up on %s: status %d %s", r.name, s.status, s.problem)
			}
			record(s)
			break
		}
	}
	first := samples[0]

	const (
		clients      = 12
		refusalPause = 10 * time.Millisecond
	)
	var stopAt atomic.Int64 // Unix ns; 0 until the first refusal
	start := time.Now()     // ts: no client request is sent before it
	hardStop := start.Add(40 * time.Second)
	var firstRefusal atomic.Int64
	var wg sync.WaitGroup
	for g := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep := g % len(c.reps)
			var mine []sample
			for {
				now := time.Now()
				if s := stopAt.Load(); (s != 0 && now.UnixNano() >= s) || now.After(hardStop) {
					break
				}
				s := c.limitedChat(t, rep, c.reps[rep], k.Secret)
				mine = append(mine, s)
				if s.status == http.StatusTooManyRequests {
					if firstRefusal.CompareAndSwap(0, s.recv.UnixNano()) {
						stopAt.Store(s.recv.Add(steady).UnixNano())
					}
					// A short pause after a refusal spares the shared machine's CPU: the
					// clients together still send a request every millisecond or so, far
					// more often than the bucket frees a unit (every 50 ms).
					time.Sleep(refusalPause)
				}
			}
			mu.Lock()
			samples = append(samples, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstRefusal.Load() == 0 {
		t.Fatalf("no request was refused in %s: the bucket of %d never emptied", time.Since(first.sent).Round(time.Millisecond), rpm)
	}

	var (
		admitted            int
		perRep              [3][2]int // [replica][0: 200, 1: 429]
		lastSent, lastRecv  time.Time
		other, badHeaders   int
		firstOther, firstBH string
	)
	for _, s := range samples {
		switch s.status {
		case http.StatusOK:
			admitted++
			perRep[s.rep][0]++
		case http.StatusTooManyRequests:
			perRep[s.rep][1]++
		default:
			if other++; other == 1 {
				firstOther = fmt.Sprintf("%d from %s %s", s.status, c.reps[s.rep].name, s.problem)
			}
		}
		if s.problem != "" && s.status/100 != 5 {
			if badHeaders++; badHeaders == 1 {
				firstBH = fmt.Sprintf("status %d from %s: %s", s.status, c.reps[s.rep].name, s.problem)
			}
		}
		if s.sent.After(lastSent) {
			lastSent = s.sent
		}
		if s.recv.After(lastRecv) {
			lastRecv = s.recv
		}
	}
	if other > 0 {
		t.Errorf("%d answers were neither 200 nor 429; the first: %s", other, firstOther)
	}
	if badHeaders > 0 {
		t.Errorf("%d answers lacked the rate-limit headers; the first: %s", badHeaders, firstBH)
	}
	for i, n := range perRep {
		if n[0] == 0 || n[1] == 0 {
			t.Errorf("replica %s admitted %d and refused %d: the load did not reach every replica both ways", c.reps[i].name, n[0], n[1])
		}
	}

	T := time.Minute / rpm
	warm := len(c.reps)
	// The bucket's content when the clients started, at least and at most (see above).
	bucketLo := min(rpm, rpm-warm+int(start.Sub(first.recv)/T))
	bucketHi := min(rpm, rpm-warm+int(start.Sub(first.sent)/T)+1)
	// ±3 units of slack: the limiter's bucket may hold rpm or rpm-1 units when full and a
	// unit may come back just before or after a request; a real error is far larger.
	lo := warm + bucketLo + int(lastSent.Sub(start)/T) - 3
	hi := warm + bucketHi + int(lastRecv.Sub(start)/T) + 3
	mid := func(a, b time.Time) time.Time { return a.Add(b.Sub(a) / 2) }
	elapsed := mid(lastSent, lastRecv).Sub(start)
	want := float64(rpm) * elapsed.Seconds() / 60
	beyond := float64(admitted-warm) - float64(bucketLo+bucketHi)/2
	t.Logf("%d requests from %d clients over %s (drained %s after they started; warm-up %s): %d admitted = %d warm-up + bucket %d..%d + %.0f at %.2f/s (configured %.2f/s, %+.2f%%); "+
		"hard bounds [%d, %d]; per replica 200/429: A %v B %v C %v",
		len(samples), clients, elapsed.Round(time.Millisecond), time.Unix(0, firstRefusal.Load()).Sub(start).Round(time.Millisecond),
		start.Sub(first.sent).Round(time.Millisecond), admitted, warm, bucketLo, bucketHi, beyond, beyond/elapsed.Seconds(),
		float64(rpm)/60, 100*(beyond-want)/want, lo, hi, perRep[0], perRep[1], perRep[2])
	if admitted < lo || admitted > hi {
		t.Errorf("admitted %d, outside the bounds [%d, %d] the shared bucket allows over this run", admitted, lo, hi)
	}
	if math.Abs(beyond-want) > 0.02*want {
		t.Errorf("admitted %.0f beyond the bucket's content over %s, want %.1f ±2%% (rate %d/min)", beyond, elapsed, want, rpm)
	}
}

// limitedChat sends one small chat request and checks the rate-limit headers: every answer
// carries the limit; a refusal also Retry-After and an empty bucket.
func (c *cluster) limitedChat(t *testing.T, rep int, r *proc, key string) sample {
	s := sample{rep: rep, sent: time.Now()}
	a := c.chat(t, r, key)
	s.recv, s.status = time.Now(), a.status
	h := a.header
	var problems []string
	if s.status == http.StatusOK || s.status == http.StatusTooManyRequests {
		if v := h.Get("X-Ratelimit-Limit-Requests"); v != strconv.Itoa(rpm) {
			problems = append(problems, fmt.Sprintf("x-ratelimit-limit-requests %q", v))
		}
		if h.Get("X-Ratelimit-Remaining-Requests") == "" || h.Get("X-Ratelimit-Reset-Requests") == "" {
			problems = append(problems, "no x-ratelimit-remaining-requests or x-ratelimit-reset-requests")
		}
	}
	if s.status == http.StatusTooManyRequests {
		if n, err := strconv.Atoi(h.Get("Retry-After")); err != nil || n < 0 {
			problems = append(problems, fmt.Sprintf("Retry-After %q", h.Get("Retry-After")))
		}
		if v := h.Get("X-Ratelimit-Remaining-Requests"); v != "0" {
			problems = append(problems, fmt.Sprintf("refused with x-ratelimit-remaining-requests %q", v))
		}
		if !bytes.Contains(a.body, []byte(`"error"`)) {
			problems = append(problems, "refusal without an error object: "+string(a.body))
		}
	}
	if s.status/100 == 5 || s.status == 0 {
		problems = append(problems, string(a.body))
	}
	s.problem = strings.Join(problems, "; ")
	return s
}

// testRevocation revokes a key through replica B while A and C are being polled with it: every
// poll sent one second or more after the revocation was acknowledged must be refused.
//
// The clock starts when B acknowledges the revocation, because that is when the revocation
// exists (its commit is inside the request); auth.key_refresh is 500ms, so the other replicas
// have two refreshes within the second.
func testRevocation(t *testing.T, c *cluster) {
	a, b, cc := c.reps[0], c.reps[1], c.reps[2]
	k := c.createKey(t, a, "revoked-soon")
	for _, r := range c.reps {
		c.waitAccepted(t, r, k.Secret, 5*time.Second)
	}
	type poll struct {
		sent   time.Time
		status int
	}
	var revokedAt atomic.Int64
	polls := make([][]poll, 2)
	var wg sync.WaitGroup
	for i, r := range []*proc{a, cc} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if at := revokedAt.Load(); at != 0 && time.Since(time.Unix(0, at)) > 1500*time.Millisecond {
					return
				}
				p := poll{sent: time.Now()}
				p.status = c.get(t, r, "/v1/models", k.Secret).status
				polls[i] = append(polls[i], p)
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // some polls before the revocation
	revokeSent := time.Now()
	if _, err := api.NewClient(b.URL, c.hc).WithAPIKey(adminKey).RevokeKey(context.Background(), k.ID); err != nil {
		revokedAt.Store(time.Now().UnixNano())
		wg.Wait()
		t.Fatalf("revoke on B: %v", err)
	}
	at := time.Now()
	revokedAt.Store(at.UnixNano())
	wg.Wait()
	if st := c.get(t, b, "/v1/models", k.Secret).status; st != http.StatusUnauthorized {
		t.Errorf("B, right after revoking the key: status %d, want 401", st)
	}
	for i, name := range []string{"A", "C"} {
		var firstRefused time.Duration = -1
		for _, p := range polls[i] {
			since := p.sent.Sub(at)
			switch {
			case p.status == http.StatusUnauthorized:
				if firstRefused < 0 {
					firstRefused = since
				}
			case p.status != http.StatusOK:
				t.Errorf("%s: poll %s after the revocation answered %d", name, since.Round(time.Millisecond), p.status)
			case firstRefused >= 0:
				t.Errorf("%s: accepted the key again %s after the revocation (refused first at %s)", name, since.Round(time.Millisecond), firstRefused.Round(time.Millisecond))
			case since >= time.Second:
				t.Errorf("%s: accepted the revoked key %s after the revocation", name, since.Round(time.Millisecond))
			}
			if p.status == http.StatusUnauthorized && p.sent.Before(revokeSent) {
				t.Errorf("%s: refused the key in a poll sent before the revocation", name)
			}
		}
		if firstRefused < 0 {
			t.Errorf("%s: never refused the revoked key (%d polls)", name, len(polls[i]))
			continue
		}
		t.Logf("%s: first refusal in a poll sent %s after the revocation was acknowledged by B (%d polls)",
			name, firstRefused.Round(time.Millisecond), len(polls[i]))
	}
}

// testUsage sends N successful requests of one key through the three replicas and reads the
// key's usage back from every replica once the batchers have written it.
func testUsage(t *testing.T, c *cluster) {
	const n = 30
	k := c.createKey(t, c.reps[0], "usage")
	traces := map[string]bool{}
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; len(traces) < n; {
		r := c.reps[i%3]
		a := c.chat(t, r, k.Secret)
		if a.status == http.StatusUnauthorized && time.Now().Before(deadline) {
			// Not loaded on this replica yet: refused before the handler, so no usage record.
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if a.status != http.StatusOK {
			t.Fatalf("request %d on %s: status %d %s", i, r.name, a.status, a.body)
		}
		traces[a.header.Get("X-Trace-Id")] = true
		i++
	}
	want := n
	type usageAnswer struct {
		Totals struct {
			Requests int `json:"requests"`
		} `json:"totals"`
		Items []struct {
			KeyID   string `json:"key_id"`
			Model   string `json:"model"`
			Status  int    `json:"status"`
			TraceID string `json:"trace_id"`
		} `json:"items"`
	}
	read := func(r *proc) usageAnswer {
		var ans usageAnswer
		a := c.get(t, r, "/v1/admin/usage?limit=100&key_id="+url.QueryEscape(k.ID), adminKey)
		if a.status != http.StatusOK {
			t.Fatalf("usage on %s: %d %s", r.name, a.status, a.body)
		}
		decodeEnvelope(t, a.body, &ans)
		return ans
	}
	sent := time.Now()
	for _, r := range c.reps {
		var ans usageAnswer
		deadline := time.Now().Add(10 * time.Second)
		for ans = read(r); ans.Totals.Requests < want && time.Now().Before(deadline); ans = read(r) {
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("%s reports %d requests for the key %s after the last one", r.name, ans.Totals.Requests, time.Since(sent).Round(time.Millisecond))
		if ans.Totals.Requests != want || len(ans.Items) != want {
			t.Errorf("%s: usage totals %d, %d records; want %d", r.name, ans.Totals.Requests, len(ans.Items), want)
		}
		seen := map[string]bool{}
		for _, it := range ans.Items {
			if it.KeyID != k.ID || it.Model != "mock" || it.Status != http.StatusOK || seen[it.TraceID] {
				t.Errorf("%s: usage record %+v (duplicate trace id: %v)", r.name, it, seen[it.TraceID])
			}
			seen[it.TraceID] = true
		}
		for tr := range traces {
			if !seen[tr] {
				t.Errorf("%s: no usage record for the request with trace id %s", r.name, tr)
			}
		}
	}
	// Nothing is written twice later (a batcher retrying a batch it already wrote).
	time.Sleep(4 * batchInterval)
	if got := read(c.reps[1]).Totals.Requests; got != want {
		t.Errorf("usage totals moved to %d after the batchers were done, want %d", got, want)
	}
}

// testTaskEventsAcrossReplicas submits a code task on A, which runs it (see submitSlowOnA),
// and watches its events on C: they reach C through the database and PostgreSQL
// notifications. The slow model makes the run last long enough (about 0.6 s) that the events
// arrive live, not as the replay of a finished task. The text streamed in tokens events must
// add up to the task's result.
func testTaskEventsAcrossReplicas(t *testing.T, c *cluster, key string) {
	const tokens = 60
	cc := c.reps[2]
	id, runner := c.submitSlowOnA(t, key, fmt.Sprintf(`{"model":"slow","prompt":"a function that adds two numbers","language":"go","max_tokens":%d}`, tokens))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var arrivals []time.Time
	events, err := c.watch(ctx, cc, key, id, func(sseEvent) { arrivals = append(arrivals, time.Now()) })
	if err != nil {
		t.Fatalf("events on C: %v", err)
	}
	final := checkEventLog(t, events)
	if final.Status != "succeeded" {
		t.Fatalf("task ended %q on C's stream; events: %v", final.Status, events)
	}
	var text strings.Builder
	var firstText time.Time
	for i, e := range events {
		if e.Type != "tokens" {
			continue
		}
		var d struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal([]byte(e.Data), &d); err != nil {
			t.Fatalf("tokens event %s: %v", e, err)
		}
		text.WriteString(d.Text)
		if firstText.IsZero() {
			firstText = arrivals[i]
		}
	}
	if firstText.IsZero() {
		t.Fatalf("no tokens event on C's stream: %v", events)
	}
	// Streamed as it was generated: the first text came well before the end.
	if lead := arrivals[len(arrivals)-1].Sub(firstText); lead < 200*time.Millisecond {
		t.Errorf("the first text reached C only %s before the final status: not streamed live", lead)
	}
	var tk task
	got := c.get(t, cc, "/v1/task/"+id, key)
	decodeEnvelope(t, got.body, &tk)
	if tk.Status != "succeeded" || tk.Result == nil || tk.Result.Text == "" {
		t.Fatalf("task read on C: %s", got.body)
	}
	if text.String() != tk.Result.Text {
		t.Errorf("the tokens events carry %q, the result is %q", text.String(), tk.Result.Text)
	}
	t.Logf("task %s submitted on A, run by %s: %d events watched live on C over %s, %d chars of text",
		id, c.reps[runner].name, len(events), arrivals[len(arrivals)-1].Sub(arrivals[0]).Round(time.Millisecond), len(tk.Result.Text))
}

// testTaskSurvivesSIGKILL submits a slow task on A, kills the replica running it with SIGKILL
// once its text reaches a watcher on another replica, and checks that another replica
// finishes it: one final status, reached once, by a second attempt.
func testTaskSurvivesSIGKILL(t *testing.T, c *cluster, key string) {
	before := c.slowRequests(t)
	id, runner := c.submitSlowOnA(t, key, fmt.Sprintf(`{"model":"slow","prompt":"a long program","language":"go","max_tokens":%d}`, slowTokens))
	run := c.reps[runner]
	watcher := c.reps[(runner+1)%3]
	other := c.reps[(runner+2)%3]

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type result struct {
		events []sseEvent
		err    error
	}
	textSeen := make(chan struct{})
	done := make(chan result, 1)
	go func() {
		var once sync.Once
		ev, err := c.watch(ctx, watcher, key, id, func(e sseEvent) {
			if e.Type == "tokens" {
				once.Do(func() { close(textSeen) })
			}
		})
		done <- result{ev, err}
	}()
	select {
	case <-textSeen:
	case res := <-done:
		t.Fatalf("the stream on %s ended before any text: %v %v", watcher.name, res.err, res.events)
	case <-time.After(20 * time.Second):
		t.Fatalf("no text reached the watcher on %s", watcher.name)
	}
	run.kill(t)
	killed := time.Now()
	res := <-done
	if res.err != nil {
		t.Fatalf("stream on %s after the kill: %v", watcher.name, res.err)
	}
	final := checkEventLog(t, res.events)
	runs, interrupted := 0, false
	for _, e := range res.events {
		var st statusData
		if e.Type == "status" && json.Unmarshal([]byte(e.Data), &st) == nil {
			if st.Status == "running" {
				runs++
			}
			if st.Reason == "interrupted" {
				interrupted = true
			}
		}
	}
	if final.Status != "succeeded" || runs != 2 || !interrupted {
		t.Errorf("after the kill: final %q, %d runs, interrupted event %v; want succeeded, 2, true", final.Status, runs, interrupted)
	}
	var tk task
	decodeEnvelope(t, c.get(t, other, "/v1/task/"+id, key).body, &tk)
	if tk.Status != "succeeded" || tk.Attempts != 2 || tk.Result == nil || tk.Result.Text == "" {
		t.Errorf("task read on %s: status %s, attempts %d", other.name, tk.Status, tk.Attempts)
	}
	after := c.slowRequests(t)
	if after[runner] != -1 || after[(runner+1)%3]+after[(runner+2)%3] <= before[(runner+1)%3]+before[(runner+2)%3] {
		t.Errorf("slow backend requests before %v, after %v: the second run was not on a surviving replica", before, after)
	}
	t.Logf("task %s ran on %s, killed mid-run; finished %s later on a surviving replica, %d events on %s's stream",
		id, run.name, time.Since(killed).Round(time.Millisecond), len(res.events), watcher.name)

	// The whole log again, from the other survivor: the same events, one final status.
	again, err := c.watch(ctx, other, key, id, nil)
	if err != nil {
		t.Fatalf("replay on %s: %v", other.name, err)
	}
	checkEventLog(t, again)
	if len(again) != len(res.events) {
		t.Errorf("replay on %s has %d events, the live stream had %d", other.name, len(again), len(res.events))
	}
}

// statusData is the data of a task's status event.
type statusData struct {
	Status string `json:"status"`
	Reason string `json:"reason"`
}

// task is the part of a task the test reads.
type task struct {
	ID       string `json:"task_id"`
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
	Result   *struct {
		Text string `json:"text"`
	} `json:"result"`
}

// checkEventLog checks a task's complete event log: numbered 1, 2, 3… without gaps, exactly
// one final status, and that one last. It returns the final status event's data.
func checkEventLog(t *testing.T, events []sseEvent) statusData {
	t.Helper()
	var final statusData
	terminal := 0
	for i, e := range events {
		if e.ID != int64(i+1) {
			t.Errorf("event %d has id %d: a gap or a duplicate", i+1, e.ID)
		}
		var st statusData
		if e.Type == "status" && json.Unmarshal([]byte(e.Data), &st) == nil {
			switch st.Status {
			case "succeeded", "failed", "canceled":
				terminal++
				final = st
				if i != len(events)-1 {
					t.Errorf("final status %q is event %d of %d", st.Status, i+1, len(events))
				}
			}
		}
	}
	if terminal != 1 {
		t.Errorf("%d final status events, want exactly 1", terminal)
	}
	return final
}

// cluster is the processes of the test and a client for them.
type cluster struct {
	bin        string
	hc         *http.Client
	fast, slow *proc
	reps       []*proc // A, B, C
}

// answer is an HTTP answer, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (c *cluster) do(t *testing.T, method string, r *proc, path, key, body string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, r.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// A transport failure is an answer the caller checks (status 0), not a reason to stop
		// a client goroutine with t.Fatal.
		return answer{body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{body: []byte(err.Error())}
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

func (c *cluster) get(t *testing.T, r *proc, path, key string) answer {
	return c.do(t, "GET", r, path, key, "")
}

func (c *cluster) chat(t *testing.T, r *proc, key string) answer {
	return c.do(t, "POST", r, "/v1/chat/completions", key, `{"model":"mock","max_tokens":8,"messages":[{"role":"user","content":"Hello"}]}`)
}

// createKey makes a user key of no user through r's admin API.
func (c *cluster) createKey(t *testing.T, r *proc, name string) *api.APIKey {
	t.Helper()
	k, err := api.NewClient(r.URL, c.hc).WithAPIKey(adminKey).CreateKey(context.Background(), &api.CreateKeyRequest{Name: name})
	if err != nil {
		t.Fatalf("create key on %s: %v", r.name, err)
	}
	return k
}

// waitAccepted sends chat requests with key to r until one succeeds; the key may not be
// loaded there yet (401). It returns a function giving the wait measured from a given time.
func (c *cluster) waitAccepted(t *testing.T, r *proc, key string, limit time.Duration) func(time.Time) time.Duration {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		a := c.chat(t, r, key)
		if a.status == http.StatusOK {
			at := time.Now()
			return func(from time.Time) time.Duration { return at.Sub(from).Round(time.Millisecond) }
		}
		if a.status != http.StatusUnauthorized || time.Now().After(deadline) {
			t.Fatalf("%s: the key answered %d %s", r.name, a.status, a.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// submit queues a code task on r and returns its id.
func (c *cluster) submit(t *testing.T, r *proc, key, body string) string {
	t.Helper()
	a := c.do(t, "POST", r, "/v1/generate/code", key, body)
	if a.status != http.StatusAccepted {
		t.Fatalf("submit on %s: %d %s", r.name, a.status, a.body)
	}
	var tk task
	decodeEnvelope(t, a.body, &tk)
	if tk.ID == "" {
		t.Fatalf("submit on %s: no task id in %s", r.name, a.body)
	}
	return tk.ID
}

// submitSlowOnA submits a task of the slow model on replica A and returns its id and the
// index of the replica that runs it: the one whose slow backend got a request.
//
// The replicas race to claim a task (A's workers are woken in-process, the others' by a
// notification), so B and C are paused with SIGSTOP while A claims it. They are resumed as
// soon as A's slow backend got the task's request, or after 5 s whatever happened (a paused
// replica could hold a lock A waits for); so A is the runner unless that went wrong, which
// the caller sees in the index.
func (c *cluster) submitSlowOnA(t *testing.T, key, body string) (string, int) {
	t.Helper()
	a := c.reps[0]
	before := c.slowRequests(t)
	for _, r := range c.reps[1:] {
		r.signal(t, syscall.SIGSTOP)
	}
	paused := true
	resume := func() {
		if paused {
			paused = false
			for _, r := range c.reps[1:] {
				r.signal(t, syscall.SIGCONT)
			}
		}
	}
	defer resume()
	id := c.submit(t, a, key, body)
	for deadline := time.Now().Add(5 * time.Second); c.slowRequestsOf(t, a) == before[0] && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	resume()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runner := -1
		now := c.slowRequests(t)
		for i := range now {
			if now[i] > before[i] {
				if runner >= 0 {
					t.Fatalf("two replicas sent the task upstream: %v -> %v", before, now)
				}
				runner = i
			}
		}
		if runner >= 0 {
			if runner != 0 {
				t.Logf("the task submitted on A was claimed by %s", c.reps[runner].name)
			}
			return id, runner
		}
		if time.Now().After(deadline) {
			t.Fatal("no replica started the slow task within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// slowRequests returns how many requests each replica sent to the slow model's backend (-1
// for a replica that exited).
func (c *cluster) slowRequests(t *testing.T) []int {
	t.Helper()
	n := make([]int, len(c.reps))
	for i, r := range c.reps {
		n[i] = c.slowRequestsOf(t, r)
	}
	return n
}

// slowRequestsOf returns how many requests r sent to the slow model's backend, from its
// admin API (-1 when r exited).
func (c *cluster) slowRequestsOf(t *testing.T, r *proc) int {
	t.Helper()
	if r.exited() {
		return -1
	}
	a := c.get(t, r, "/v1/admin/backends", adminKey)
	if a.status != http.StatusOK {
		t.Fatalf("backends of %s: %d %s", r.name, a.status, a.body)
	}
	var st struct {
		Models []struct {
			Name     string `json:"name"`
			Backends []struct {
				Requests int `json:"requests"`
			} `json:"backends"`
		} `json:"models"`
	}
	decodeEnvelope(t, a.body, &st)
	for _, m := range st.Models {
		if m.Name == "slow" && len(m.Backends) == 1 {
			return m.Backends[0].Requests
		}
	}
	t.Fatalf("backends of %s: no model slow with one backend: %s", r.name, a.body)
	return 0
}

// sseEvent is one server-sent event of a task's stream.
type sseEvent struct {
	ID   int64
	Type string
	Data string
}

func (e sseEvent) String() string { return fmt.Sprintf("%d %s %.120s", e.ID, e.Type, e.Data) }

// watch reads a task's event stream on r from the start until the server ends it, calling fn
// (when not nil) with each event as it arrives.
func (c *cluster) watch(ctx context.Context, r *proc, key, id string, fn func(sseEvent)) ([]sseEvent, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", r.URL+"/v1/task/"+id+"/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Accept", "text/event-stream")
	// The client's overall timeout would cut a long stream; the context bounds it instead.
	hc := &http.Client{Transport: c.hc.Transport}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	var events []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.Type != "" || cur.Data != "" {
				events = append(events, cur)
				if fn != nil {
					fn(cur)
				}
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "id:"):
			cur.ID, _ = strconv.ParseInt(strings.TrimSpace(line[3:]), 10, 64)
		case strings.HasPrefix(line, "event:"):
			cur.Type = strings.TrimSpace(line[6:])
		case strings.HasPrefix(line, "data:"):
			cur.Data += strings.TrimPrefix(line[5:], " ")
		}
	}
	return events, sc.Err()
}

// decodeEnvelope decodes the data of a native envelope into v.
func decodeEnvelope(t *testing.T, body []byte, v any) {
	t.Helper()
	var env struct {
		Success bool            `json:"success"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || !env.Success {
		t.Fatalf("not a successful envelope (%v): %s", err, body)
	}
	if err := json.Unmarshal(env.Data, v); err != nil {
		t.Fatalf("envelope data: %v: %s", err, env.Data)
	}
}

// proc is a child process of the test: a mockllm or a replica.
type proc struct {
	name string
	cmd  *exec.Cmd
	logs *testenv.ServeLog
	done chan struct{}
	URL  string // http://host:port, once ready
}

// launch starts the binary with args and stops it when the test ends: SIGTERM, then SIGKILL
// if it has not exited within 15 s. Its output is kept and shown when the test failed.
func (c *cluster) launch(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, logs: testenv.NewServeLog(), done: make(chan struct{})}
	p.cmd = exec.Command(c.bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Dir = t.TempDir()
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(15 * time.Second):
				t.Errorf("%s did not stop within 15s of SIGTERM; killing it", name)
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			t.Logf("%s output (last 8 KiB):\n%s", name, p.logs.Tail(8<<10))
		}
	})
	return p
}

// waitReady waits for the process to log its listening address.
func (p *proc) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-p.logs.Ready():
		p.URL = "http://" + p.logs.Addr()
	case <-p.done:
		t.Fatalf("%s exited before listening: %v\n%s", p.name, p.cmd.ProcessState, p.logs.Tail(8<<10))
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not listen within 60s:\n%s", p.name, p.logs.Tail(8<<10))
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process.
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s to %s: %v", sig, p.name, err)
	}
}

// kill ends the process with SIGKILL and waits for it.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", p.name, err)
	}
	<-p.done
}

// buildBinary builds autoglm from the module root (two levels up from this package).
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "autoglm")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/autoglm")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// stderrOf returns the standard error of a failed command run by Output.
func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
