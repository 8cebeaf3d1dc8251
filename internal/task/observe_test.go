package task

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// TestTaskMetricsAndSpans runs a task whose webhook fails once, then reads the task metrics
// and the spans: queue depth by state, one wait and one run observation, webhook attempts by
// outcome; the task's span with its queue wait, its run and the model request under the run,
// and a span per delivery attempt.
func TestTaskMetricsAndSpans(t *testing.T) {
	rc := newReceiver(testSecret)
	rc.fail = 1
	hook := httptest.NewServer(rc)
	defer hook.Close()
	spans := tracetest.NewInMemoryExporter()
	tp := telemetry.NewTracing(sdktrace.WithSyncer(spans))
	e := setupWith(t, mockllm.Options{Tokens: 3}, fmt.Sprintf("  webhook_secret: %s\n  webhook_allow: [127.0.0.0/8]\n  webhook_backoff: 20ms\n", testSecret),
		func(c *setupConfig) { c.opts = func(o *Options) { o.Tracing = tp.Provider() } })
	tk := e.submit(t, fmt.Sprintf(`{"model":"coder","prompt":"x","callback_url":"%s/hook"}`, hook.URL))
	done := e.wait(t, tk.ID, 10*time.Second, func(tk Task) bool { return tk.Webhook != nil && tk.Webhook.Status != "pending" })
	if done.Status != StatusSucceeded || done.Webhook.Status != "delivered" {
		t.Fatalf("task %s, webhook %+v", done.Status, done.Webhook)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(e.svc.Collector())
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		byName[f.GetName()] = f
	}
	find := func(name string, labels ...string) *dto.Metric {
		t.Helper()
	next:
		for _, m := range byName[name].GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for i := 0; i < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue next
				}
			}
			return m
		}
		t.Fatalf("no %s%v", name, labels)
		return nil
	}
	for state, want := range map[string]float64{"succeeded": 1, "queued": 0, "running": 0} {
		if v := find("autoglm_task_queue_depth", "state", state).GetGauge().GetValue(); v != want {
			t.Errorf("depth %s = %g, want %g", state, v, want)
		}
	}
	wait := find("autoglm_task_queue_wait_seconds", "model", "coder").GetHistogram()
	run := find("autoglm_task_run_duration_seconds", "model", "coder", "outcome", "succeeded").GetHistogram()
	if wait.GetSampleCount() != 1 || wait.GetSampleSum() < 0 || run.GetSampleCount() != 1 || run.GetSampleSum() <= 0 {
		t.Errorf("wait %d/%g, run %d/%g: want one observation each", wait.GetSampleCount(), wait.GetSampleSum(), run.GetSampleCount(), run.GetSampleSum())
	}
	for outcome, want := range map[string]float64{"retry": 1, "delivered": 1} {
		if v := find("autoglm_task_webhook_attempts_total", "outcome", outcome).GetCounter().GetValue(); v != want {
			t.Errorf("webhook %s = %g, want %g", outcome, v, want)
		}
	}

	byNameSpan := map[string][]tracetest.SpanStub{}
	for _, s := range spans.GetSpans() {
		byNameSpan[s.Name] = append(byNameSpan[s.Name], s)
	}
	one := func(name string) tracetest.SpanStub {
		t.Helper()
		if len(byNameSpan[name]) != 1 {
			t.Fatalf("%d %s spans, want 1 (spans: %v)", len(byNameSpan[name]), name, byNameSpan)
		}
		return byNameSpan[name][0]
	}
	root, queue, runSpan, up := one(telemetry.SpanTask), one(telemetry.SpanTaskQueue), one(telemetry.SpanTaskRun), one(telemetry.SpanUpstream)
	if root.Parent.IsValid() {
		t.Error("the task span has a parent")
	}
	if queue.Parent.SpanID() != root.SpanContext.SpanID() || runSpan.Parent.SpanID() != root.SpanContext.SpanID() {
		t.Error("queue wait and run are not children of the task span")
	}
	if up.Parent.SpanID() != runSpan.SpanContext.SpanID() {
		t.Error("the model request is not under the run")
	}
	if queue.EndTime.After(runSpan.StartTime) || root.StartTime.After(queue.StartTime) {
		t.Errorf("queue [%v, %v] run starts %v task starts %v: out of order", queue.StartTime, queue.EndTime, runSpan.StartTime, root.StartTime)
	}
	hooks := byNameSpan[telemetry.SpanWebhook]
	if len(hooks) != 2 {
		t.Fatalf("%d webhook spans, want 2", len(hooks))
	}
	if hooks[0].Status.Code.String() != "Error" || hooks[1].Status.Code.String() == "Error" {
		t.Errorf("webhook span statuses %v, %v: want the first failed, the second not", hooks[0].Status, hooks[1].Status)
	}
}
