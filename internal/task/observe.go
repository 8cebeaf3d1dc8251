package task

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// observer holds the task system's own figures: how long tasks wait and run, and how webhook
// attempts end. The queue's depth is read from the database at scrape time.
type observer struct {
	wait     *prometheus.HistogramVec
	run      *prometheus.HistogramVec
	webhooks *prometheus.CounterVec
}

// newObserver makes the figures, with a zero series for each model and each webhook outcome
// so that rates and dashboards start from zero rather than from the first event.
func newObserver(models []string) *observer {
	buckets := prometheus.ExponentialBuckets(0.01, 3, 12) // 10ms .. ~30min
	o := &observer{
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "autoglm_task_queue_wait_seconds",
			Help: "Time a task waited in the queue before a worker took it (each attempt), by model.", Buckets: buckets}, []string{"model"}),
		run: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "autoglm_task_run_duration_seconds",
			Help: "Time a task attempt ran, by model and how it ended.", Buckets: buckets}, []string{"model", "outcome"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "autoglm_task_webhook_attempts_total",
			Help: "Webhook delivery attempts by outcome: delivered, retry (failed, tried again later), failed (given up or refused)."},
			[]string{"outcome"}),
	}
	for _, m := range models {
		o.wait.WithLabelValues(m)
		o.run.WithLabelValues(m, "succeeded")
	}
	for _, out := range []string{"delivered", "retry", "failed"} {
		o.webhooks.WithLabelValues(out)
	}
	return o
}

var descTaskDepth = prometheus.NewDesc("autoglm_task_queue_depth", "Tasks by state (queued, running, and the terminal states).", []string{"state"}, nil)

// Collector returns the task system's metrics: autoglm_task_queue_depth (read from the
// database at scrape time), autoglm_task_queue_wait_seconds, autoglm_task_run_duration_seconds
// and autoglm_task_webhook_attempts_total.
func (s *Service) Collector() prometheus.Collector { return (*taskCollector)(s) }

type taskCollector Service

func (c *taskCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTaskDepth
	c.obs.wait.Describe(ch)
	c.obs.run.Describe(ch)
	c.obs.webhooks.Describe(ch)
}

func (c *taskCollector) Collect(ch chan<- prometheus.Metric) {
	s := (*Service)(c)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts := map[string]float64{}
	for _, st := range []Status{StatusQueued, StatusRunning} {
		counts[string(st)] = 0
	}
	rows, err := s.db.R.QueryContext(ctx, `SELECT status, COUNT(*) FROM tasks GROUP BY status`)
	if err == nil {
		for rows.Next() {
			var st string
			var n int64
			if rows.Scan(&st, &n) == nil {
				counts[st] = float64(n)
			}
		}
		rows.Close()
	} else {
		s.log.Warn("metrics: counting tasks failed", "err", err)
	}
	for st, n := range counts {
		ch <- prometheus.MustNewConstMetric(descTaskDepth, prometheus.GaugeValue, n, st)
	}
	c.obs.wait.Collect(ch)
	c.obs.run.Collect(ch)
	c.obs.webhooks.Collect(ch)
}

// startRun opens the spans of one claimed attempt: the task's span from when it was queued,
// its queue wait as a finished child, and the run, under which the model request's spans go.
// Tracing off: ctx comes back as it is and the spans record nothing.
func (s *Service) startRun(ctx context.Context, c *claimed, model string, claimedAt time.Time) (context.Context, trace.Span, trace.Span) {
	queued := claimedAt
	if c.queuedAt > 0 {
		queued = time.UnixMicro(c.queuedAt)
		s.obs.wait.WithLabelValues(model).Observe(max(claimedAt.Sub(queued), 0).Seconds())
	}
	if s.tracer == nil {
		span := trace.SpanFromContext(ctx)
		return ctx, span, span
	}
	ctx, task := telemetry.StartRoot(ctx, s.tracer, telemetry.SpanTask, trace.WithTimestamp(queued),
		trace.WithAttributes(telemetry.AttrTaskID.String(c.id), telemetry.AttrTaskAttempt.Int(c.attempt),
			telemetry.GenAIRequestModel.String(model)))
	_, wait := telemetry.StartSpan(ctx, telemetry.SpanTaskQueue, trace.WithTimestamp(queued))
	wait.End(trace.WithTimestamp(claimedAt))
	ctx, run := telemetry.StartSpan(ctx, telemetry.SpanTaskRun, trace.WithTimestamp(claimedAt))
	return ctx, task, run
}

// runOutcome names how an attempt ended, in the order execute decides it.
func runOutcome(err, cause, flushErr, timeoutErr error) string {
	switch {
	case errors.Is(cause, errLeaseLost) || errors.Is(flushErr, errLeaseLost):
		return "lease_lost"
	case err == nil:
		return "succeeded"
	case errors.Is(cause, errShutdown):
		return "shutdown"
	case errors.Is(cause, errCanceled):
		return "canceled"
	case errors.Is(timeoutErr, context.DeadlineExceeded):
		return "timeout"
	}
	return "error"
}

func modelNames(reg *router.Registry) []string {
	if reg == nil {
		return nil
	}
	var names []string
	for _, m := range reg.Models() {
		names = append(names, m.Name)
	}
	return names
}
