package plugin

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts each plugin's hook calls, failures and time. One Metrics outlives the
// chains built with it, so the series go on across configuration reloads.
type Metrics struct {
	calls    *prometheus.CounterVec
	errors   *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics returns the plugin metrics; register it as a prometheus.Collector.
func NewMetrics() *Metrics {
	return &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autoglm_plugin_calls_total",
			Help: "Plugin hook calls, by plugin and hook (request, response, chunk).",
		}, []string{"plugin", "hook"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autoglm_plugin_errors_total",
			Help: "Plugin hook calls that failed (error, panic or time limit), by plugin and hook. Refusals are not failures.",
		}, []string{"plugin", "hook"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "autoglm_plugin_duration_seconds",
			Help:    "Time spent in a plugin hook call, by plugin and hook.",
			Buckets: []float64{1e-6, 5e-6, 25e-6, 100e-6, 500e-6, 2.5e-3, 10e-3, 50e-3, 250e-3, 1},
		}, []string{"plugin", "hook"}),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.calls.Describe(ch)
	m.errors.Describe(ch)
	m.duration.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.calls.Collect(ch)
	m.errors.Collect(ch)
	m.duration.Collect(ch)
}

// hookObservers are one plugin hook's series, resolved once when the chain is built.
type hookObservers struct {
	calls, errors prometheus.Counter
	duration      prometheus.Observer
}

func (m *Metrics) observers(plugin, hook string) hookObservers {
	if m == nil {
		return hookObservers{}
	}
	return hookObservers{
		calls:    m.calls.WithLabelValues(plugin, hook),
		errors:   m.errors.WithLabelValues(plugin, hook),
		duration: m.duration.WithLabelValues(plugin, hook),
	}
}

func (o hookObservers) observe(d time.Duration, failed bool) {
	if o.calls == nil {
		return
	}
	o.calls.Inc()
	if failed {
		o.errors.Inc()
	}
	o.duration.Observe(d.Seconds())
}
