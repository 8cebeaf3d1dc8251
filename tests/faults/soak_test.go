package faults_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/internal/testenv"
)

// SoakEnv sets the soak's duration (a Go duration such as 1h or 3m); without it TestSoak is
// skipped. scripts/soak.sh sets it (`make soak`), and scripts/test.sh runs a 3-minute soak.
const soakEnv = "AUTOGLM_SOAK"

// TestSoak runs mixed traffic — chat, streamed chat, tasks, embeddings and admin calls — at a
// steady rate through two replicas on PostgreSQL and Redis, while the upstream is killed
// (SIGKILL) and started again every few minutes. It checks that the replicas' RSS and
// goroutines stay flat, that every error is explained by an upstream outage, and that every
// accepted task reaches a final state.
func TestSoak(t *testing.T) {
	v := os.Getenv(soakEnv)
	if v == "" {
		t.Skipf("%s is not set (make soak, or %s=3m)", soakEnv, soakEnv)
	}
	dur, err := time.ParseDuration(v)
	if err != nil || dur < time.Minute {
		t.Fatalf("%s=%q: want a duration of at least 1m", soakEnv, v)
	}
	redisAddr := testenv.RedisAddr(t)
	dsn := testenv.PostgresDatabaseDSN(t, "soak")
	// The upstream is killed every killEvery and down for downFor each time: about every 3
	// minutes in a long soak, three times in a short one.
	killEvery := min(3*time.Minute, dur/4)
	const downFor = 2 * time.Second
	// The first samples are taken after warmup, when caches, pools and the heap have grown
	// to their working size.
	warmup := min(time.Minute, dur/6)
	const rate = 20 // requests per second, over both replicas

	mockPort := freePort(t)
	// startMock starts the upstream on its fixed port, trying again while the port is not
	// free yet (a killed process's port).
	startMock := func() *proc {
		deadline := time.Now().Add(30 * time.Second)
		for {
			p := startNoWait(t, "mockllm", "mockllm", "--addr", "127.0.0.1:"+strconv.Itoa(mockPort), "--itl", "2ms", "--tokens", "20")
			select {
			case <-p.logs.Ready():
				p.URL = "http://" + p.logs.Addr()
				return p
			case <-p.done:
			case <-time.After(30 * time.Second):
			}
			if time.Now().After(deadline) {
				t.Errorf("mockllm did not listen on port %d within 30s", mockPort)
				return p
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	mock := startMock()
	yml := fmt.Sprintf(`server:
  shutdown_timeout: 5s
store:
  driver: postgres
  dsn: %q
  batch: {interval: 200ms}
ratelimit:
  roles:
    user: {requests_per_minute: 100000}
  redis: {addr: %q, prefix: "soak-%d:", timeout: 1s, fail: local}
cache:
  enabled: true
  redis: {addr: %q, prefix: "soak-cache-%d:"}
models:
  - name: mock
    backends: [{type: openai, base_url: "%s/v1"}]
    health: {probe: none}
    breaker: {open_for: 2s}
tasks:
  workers: 2
  lease: 5s
  max_attempts: 10
  retry_backoff: 1s
  event_flush: 50ms
`, dsn, redisAddr, mockPort, redisAddr, mockPort, mock.URL)
	reps := []*proc{
		serve(t, "A", yml, "", "AUTOGLM_ADMIN_KEY="+adminKey),
		serve(t, "B", yml, "", "AUTOGLM_ADMIN_KEY="+adminKey),
	}
	k, err := api.NewClient(reps[0].URL, client).WithAPIKey(adminKey).CreateKey(context.Background(), &api.CreateKeyRequest{Name: "soak"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the key known to B", func() bool {
		return do(t, "GET", reps[1].URL+"/v1/models", k.Secret, "").status == http.StatusOK
	})

	// Upstream outages, as [killed, back+grace] windows: a request overlapping one may fail
	// with an upstream error, and only then.
	var (
		mu      sync.Mutex
		outages [][2]time.Time
	)
	const grace = 10 * time.Second // the breaker's open_for and a retry or two, generously
	// explained is called once the load and the killer have stopped, with mu held.
	explained := func(sent, recv time.Time) bool {
		for _, o := range outages {
			if !recv.Before(o[0].Add(-time.Second)) && !sent.After(o[1]) {
				return true
			}
		}
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	begin := time.Now()
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { // the upstream killer
		defer bg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(killEvery):
			}
			killed := time.Now()
			mu.Lock()
			outages = append(outages, [2]time.Time{killed, killed.Add(time.Hour)})
			mu.Unlock()
			_ = mock.cmd.Process.Signal(syscall.SIGKILL)
			<-mock.done
			time.Sleep(downFor)
			mock = startMock()
			mu.Lock()
			outages[len(outages)-1][1] = time.Now().Add(grace)
			mu.Unlock()
			t.Logf("upstream killed at +%s, back after %s", killed.Sub(begin).Round(time.Second), time.Since(killed).Round(time.Millisecond))
		}
	}()

	type sampleRow struct {
		at         time.Duration
		rss        [2]int64
		goroutines [2]float64
	}
	var samples []sampleRow
	bg.Add(1)
	go func() { // the sampler
		defer bg.Done()
		tick := time.NewTicker(max(dur/60, 5*time.Second))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			s := sampleRow{at: time.Since(begin).Round(time.Second)}
			for i, r := range reps {
				s.rss[i], s.goroutines[i] = r.rss(t), r.metric(t, "go_goroutines")
			}
			mu.Lock()
			samples = append(samples, s)
			mu.Unlock()
		}
	}()

	type outcome struct {
		op      string
		ok      bool
		detail  string
		sent    time.Time
		recv    time.Time
		upsteam bool // the failure is one an upstream outage causes
	}
	var (
		outcomes []outcome
		tasks    []string
	)
	ops := []string{"chat", "stream", "task", "embeddings", "admin", "chat", "stream", "cached"}
	var load sync.WaitGroup
	tick := time.NewTicker(time.Second / rate)
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		if ctx.Err() != nil {
			break
		}
		op, r := ops[i%len(ops)], reps[i%2]
		load.Add(1)
		go func() {
			defer load.Done()
			o := outcome{op: op, sent: time.Now()}
			var a answer
			switch op {
			case "chat":
				a = do(t, "POST", r.URL+"/v1/chat/completions", k.Secret, fmt.Sprintf(`{"model":"mock","max_tokens":16,"messages":[{"role":"user","content":"soak %d"}]}`, rand.Int()))
				o.ok = a.status == http.StatusOK && bytes.Contains(a.body, []byte(`"choices"`))
			case "cached":
				a = do(t, "POST", r.URL+"/v1/chat/completions", k.Secret, fmt.Sprintf(`{"model":"mock","temperature":0,"max_tokens":16,"messages":[{"role":"user","content":"cached %d"}]}`, rand.IntN(20)))
				o.ok = a.status == http.StatusOK && bytes.Contains(a.body, []byte(`"choices"`))
			case "stream":
				a = do(t, "POST", r.URL+"/v1/chat/completions", k.Secret, `{"model":"mock","stream":true,"max_tokens":16,"messages":[{"role":"user","content":"stream"}]}`)
				o.ok = a.status == http.StatusOK && bytes.Contains(a.body, []byte("data: [DONE]")) && !bytes.Contains(a.body, []byte(`"error"`))
			case "embeddings":
				a = do(t, "POST", r.URL+"/v1/embeddings", k.Secret, `{"model":"mock","input":["soak"]}`)
				o.ok = a.status == http.StatusOK && bytes.Contains(a.body, []byte(`"embedding"`))
			case "admin":
				a = do(t, "GET", r.URL+"/v1/admin/keys", adminKey, "")
				o.ok = a.status == http.StatusOK
			case "task":
				a = do(t, "POST", r.URL+"/v1/generate/code", k.Secret, `{"model":"mock","prompt":"soak","language":"go","max_tokens":16}`)
				var tk struct {
					Data struct {
						ID string `json:"task_id"`
					} `json:"data"`
				}
				o.ok = a.status == http.StatusAccepted && jsonOK(a.body, &tk) && tk.Data.ID != ""
				if o.ok {
					mu.Lock()
					tasks = append(tasks, r.name+" "+tk.Data.ID)
					mu.Unlock()
				}
			}
			o.recv = time.Now()
			if !o.ok {
				o.detail = fmt.Sprintf("%s on %s: %d %.300s", op, r.name, a.status, a.body)
				// An upstream outage shows as a 5xx, or as an error event in a stream.
				o.upsteam = op != "admin" && op != "task" && (a.status/100 == 5 || (op == "stream" && a.status == http.StatusOK))
			}
			mu.Lock()
			outcomes = append(outcomes, o)
			mu.Unlock()
		}()
	}
	tick.Stop()
	load.Wait()
	bg.Wait()

	// Report.
	mu.Lock()
	defer mu.Unlock()
	var report strings.Builder
	counts := map[string][2]int{} // op -> ok, failed
	var unexplained []string
	explainedN := 0
	for _, o := range outcomes {
		c := counts[o.op]
		if o.ok {
			c[0]++
		} else {
			c[1]++
			if o.upsteam && explained(o.sent, o.recv) {
				explainedN++
			} else {
				unexplained = append(unexplained, o.detail)
			}
		}
		counts[o.op] = c
	}
	fmt.Fprintf(&report, "soak of %s: %d requests at %d/s through 2 replicas; upstream killed %d times\n", dur, len(outcomes), rate, len(outages))
	for _, op := range []string{"chat", "cached", "stream", "embeddings", "task", "admin"} {
		fmt.Fprintf(&report, "  %-10s ok %6d  failed %4d\n", op, counts[op][0], counts[op][1])
	}
	fmt.Fprintf(&report, "  failures during upstream outages: %d; unexplained: %d\n", explainedN, len(unexplained))

	// Every accepted task reaches a final state.
	states := map[string]int{}
	var lostTasks []string
	for _, rt := range tasks {
		name, id, _ := strings.Cut(rt, " ")
		r := reps[0]
		if name == "B" {
			r = reps[1]
		}
		var tk struct {
			Status string          `json:"status"`
			Error  json.RawMessage `json:"error"`
		}
		deadline := time.Now().Add(3 * time.Minute)
		for {
			a := do(t, "GET", r.URL+"/v1/task/"+id, k.Secret, "")
			if a.status == http.StatusOK && envelope(t, a.body, &tk) && (tk.Status == "succeeded" || tk.Status == "failed" || tk.Status == "canceled") {
				break
			}
			if time.Now().After(deadline) {
				lostTasks = append(lostTasks, fmt.Sprintf("%s %s (%d %.200s)", id, tk.Status, a.status, a.body))
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		states[tk.Status]++
		if tk.Status == "failed" && !bytes.Contains(bytes.ToLower(tk.Error), []byte("upstream")) {
			unexplained = append(unexplained, fmt.Sprintf("task %s failed: %s", id, tk.Error))
		}
	}
	fmt.Fprintf(&report, "  tasks accepted %d: %v; not finished within 3 minutes of the end: %d\n", len(tasks), states, len(lostTasks))
	fmt.Fprintf(&report, "  %-8s %10s %10s %8s %8s\n", "time", "RSS A MiB", "RSS B MiB", "gor. A", "gor. B")
	for _, s := range samples {
		fmt.Fprintf(&report, "  %-8s %10d %10d %8.0f %8.0f\n", s.at, s.rss[0]>>20, s.rss[1]>>20, s.goroutines[0], s.goroutines[1])
	}
	t.Log("\n" + report.String())
	if p := os.Getenv("AUTOGLM_SOAK_REPORT"); p != "" {
		if err := os.WriteFile(p, []byte(report.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
	for i, u := range unexplained {
		if i == 10 {
			t.Errorf("... and %d more", len(unexplained)-10)
			break
		}
		t.Errorf("unexplained failure: %s", u)
	}
	for _, l := range lostTasks {
		t.Errorf("task not accounted for: %s", l)
	}
	// Flat: the last third of the samples after warm-up against the first third. The
	// margins are generous; a leak of one object per request over the run exceeds them.
	var steady []sampleRow
	for _, s := range samples {
		if s.at >= warmup {
			steady = append(steady, s)
		}
	}
	if len(steady) < 6 {
		t.Fatalf("only %d samples after the warm-up", len(steady))
	}
	third := len(steady) / 3
	for i, r := range reps {
		median := func(rows []sampleRow, f func(sampleRow) float64) float64 {
			v := make([]float64, len(rows))
			for j, s := range rows {
				v[j] = f(s)
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		rss := func(s sampleRow) float64 { return float64(s.rss[i]) }
		gor := func(s sampleRow) float64 { return s.goroutines[i] }
		r0, r1 := median(steady[:third], rss), median(steady[len(steady)-third:], rss)
		g0, g1 := median(steady[:third], gor), median(steady[len(steady)-third:], gor)
		if r1 > r0*1.5+float64(32<<20) {
			t.Errorf("replica %s: RSS grew from %.0f MiB to %.0f MiB (medians of the first and last thirds after warm-up)", r.name, r0/(1<<20), r1/(1<<20))
		}
		if g1 > g0+50 {
			t.Errorf("replica %s: goroutines grew from %.0f to %.0f", r.name, g0, g1)
		}
	}
}

// startNoWait starts a process like start but does not wait for it to listen.
func startNoWait(t *testing.T, name string, args ...string) *proc {
	p := &proc{name: name, logs: testenv.NewServeLog(), done: make(chan struct{})}
	p.cmd = exec.Command(binary(t), args...)
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
	t.Cleanup(func() { p.stop(t) })
	return p
}
