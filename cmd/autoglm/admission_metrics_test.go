package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/mockllm"
)

// TestAdmissionInMetrics overloads serve with one slot and a queue of one: a request holds
// the slot, a second waits in the queue, a third is refused with 503. /metrics shows each
// step: the request in flight and the one queued while they are, then the counts of admitted,
// queued and refused requests and the queued request's wait once the slot came free.
func TestAdmissionInMetrics(t *testing.T) {
	release := make(chan struct{})
	mock := mockllm.New(mockllm.Options{Tokens: 2})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/chat/completions") {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		mock.ServeHTTP(w, r)
	}))
	defer up.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // serve listens on it itself
	cfg, err := config.Parse([]byte(`
server:
  addr: "`+addr+`"
  admission: {max_in_flight: 1, queue: 1, max_wait: 1m}
  cpu_placement: gather
log: {level: error}
models:
  - name: m
    backends: [{type: openai, base_url: `+up.URL+`/v1}]
    health: {probe: none}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOGC", "100")
	t.Setenv("GOMEMLIMIT", "off")
	base := runServe(t, cfg)
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})

	scrape := func() map[string]*dto.MetricFamily {
		t.Helper()
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("/metrics: %d %s", resp.StatusCode, body)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
		if err != nil {
			t.Fatalf("/metrics: %v", err)
		}
		return fams
	}
	// metric finds the series of name whose labels include labels.
	metric := func(fams map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
		f := fams[name]
		if f == nil {
			return nil
		}
	next:
		for _, m := range f.GetMetric() {
			for k, v := range labels {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == k && l.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			return m
		}
		return nil
	}
	gauge := func(fams map[string]*dto.MetricFamily, name string) float64 {
		t.Helper()
		m := metric(fams, name, nil)
		if m == nil {
			t.Fatalf("%s missing from /metrics", name)
		}
		return m.GetGauge().GetValue()
	}
	counter := func(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
		t.Helper()
		m := metric(fams, name, labels)
		if m == nil {
			t.Fatalf("%s%v missing from /metrics", name, labels)
		}
		return m.GetCounter().GetValue()
	}

	const body = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	post := func() (int, http.Header, string) {
		resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return 0, nil, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	statuses := make(chan int, 2)
	waitGauges := func(inFlight, queued float64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; {
			fams := scrape()
			if gauge(fams, "autoglm_admission_in_flight") == inFlight && gauge(fams, "autoglm_admission_queue_depth") == queued {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("in flight %v, queued %v; want %v, %v", gauge(fams, "autoglm_admission_in_flight"),
					gauge(fams, "autoglm_admission_queue_depth"), inFlight, queued)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	go func() { st, _, _ := post(); statuses <- st }()
	waitGauges(1, 0) // the first holds the slot
	go func() { st, _, _ := post(); statuses <- st }()
	waitGauges(1, 1) // the second waits in the queue
	st, hdr, b := post()
	if st != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(b, "server_overloaded") {
		t.Fatalf("third request, slot and queue full: %d Retry-After %q %s", st, hdr.Get("Retry-After"), b)
	}
	close(release)
	released = true
	for range 2 {
		if st := <-statuses; st != http.StatusOK {
			t.Errorf("admitted request: %d", st)
		}
	}
	waitGauges(0, 0)

	fams := scrape()
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"autoglm_admission_admitted_total", nil, 2},
		{"autoglm_admission_queued_total", nil, 1},
		{"autoglm_admission_refused_total", map[string]string{"reason": "queue_full"}, 1},
		{"autoglm_admission_refused_total", map[string]string{"reason": "wait_exceeded"}, 0},
		{"autoglm_admission_abandoned_total", nil, 0},
	} {
		if got := counter(fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	h := metric(fams, "autoglm_admission_queue_wait_seconds", map[string]string{"result": "admitted"}).GetHistogram()
	if h.GetSampleCount() != 1 || h.GetSampleSum() <= 0 {
		t.Errorf("queue wait of the admitted requests: count %d sum %v; want the one queued request", h.GetSampleCount(), h.GetSampleSum())
	}
	if h := metric(fams, "autoglm_admission_queue_wait_seconds", map[string]string{"result": "wait_exceeded"}).GetHistogram(); h.GetSampleCount() != 0 {
		t.Errorf("queue wait of refused requests: count %d, want 0", h.GetSampleCount())
	}
	// With cpu_placement: gather the threads are gathered where there are CPUs to gather
	// from, and /metrics says so.
	if runtime.GOOS == "linux" && runtime.NumCPU() >= 2 {
		for _, to := range []string{"gathered", "spread", "moved"} {
			if metric(fams, "autoglm_cpu_placement_changes_total", map[string]string{"to": to}) == nil {
				t.Errorf("no autoglm_cpu_placement_changes_total{to=%q}", to)
			}
		}
		if g := metric(fams, "autoglm_cpu_gathered", nil).GetGauge(); g == nil || (g.GetValue() != 0 && g.GetValue() != 1) {
			t.Errorf("autoglm_cpu_gathered: %v", g)
		}
	}
}
