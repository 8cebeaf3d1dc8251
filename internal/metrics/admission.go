package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/open-autoglm/autoglm/internal/admission"
)

var (
	descAdmissionAdmitted = prometheus.NewDesc("autoglm_admission_admitted_total",
		"Requests the admission stage let through (at once or after queueing).", nil, nil)
	descAdmissionQueued = prometheus.NewDesc("autoglm_admission_queued_total",
		"Requests that found every slot taken and waited in the admission queue.", nil, nil)
	descAdmissionRefused = prometheus.NewDesc("autoglm_admission_refused_total",
		"Requests the admission stage refused with 503, by reason (queue_full, wait_exceeded).", []string{"reason"}, nil)
	descAdmissionAbandoned = prometheus.NewDesc("autoglm_admission_abandoned_total",
		"Requests whose client went away while they waited in the admission queue.", nil, nil)
	descAdmissionInFlight = prometheus.NewDesc("autoglm_admission_in_flight",
		"Requests holding an admission slot now.", nil, nil)
	descAdmissionQueueDepth = prometheus.NewDesc("autoglm_admission_queue_depth",
		"Requests waiting in the admission queue now.", nil, nil)
	descAdmissionWait = prometheus.NewDesc("autoglm_admission_queue_wait_seconds",
		"Time requests spent in the admission queue, by how the wait ended (admitted, wait_exceeded, client_left).", []string{"result"}, nil)
)

// Admission returns a collector of the admission stage's figures, read from l at scrape time
// (the request path keeps only its atomic counters). Nil l: a collector of nothing.
func Admission(l *admission.Limiter) prometheus.Collector { return admissionCollector{l} }

type admissionCollector struct{ l *admission.Limiter }

func (c admissionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAdmissionAdmitted, descAdmissionQueued, descAdmissionRefused,
		descAdmissionAbandoned, descAdmissionInFlight, descAdmissionQueueDepth, descAdmissionWait} {
		ch <- d
	}
}

func (c admissionCollector) Collect(ch chan<- prometheus.Metric) {
	if c.l == nil {
		return
	}
	s := c.l.Stats()
	ch <- prometheus.MustNewConstMetric(descAdmissionAdmitted, prometheus.CounterValue, float64(s.Admitted))
	ch <- prometheus.MustNewConstMetric(descAdmissionQueued, prometheus.CounterValue, float64(s.Queued))
	ch <- prometheus.MustNewConstMetric(descAdmissionRefused, prometheus.CounterValue, float64(s.RefusedFull), admission.QueueFull.String())
	ch <- prometheus.MustNewConstMetric(descAdmissionRefused, prometheus.CounterValue, float64(s.RefusedWait), admission.WaitedTooLong.String())
	ch <- prometheus.MustNewConstMetric(descAdmissionAbandoned, prometheus.CounterValue, float64(s.Abandoned))
	ch <- prometheus.MustNewConstMetric(descAdmissionInFlight, prometheus.GaugeValue, float64(s.InFlight))
	ch <- prometheus.MustNewConstMetric(descAdmissionQueueDepth, prometheus.GaugeValue, float64(s.Waiting))
	bounds := admission.WaitBuckets()
	for _, w := range c.l.Waits() {
		buckets := make(map[float64]uint64, len(bounds))
		var cum uint64
		for i, b := range bounds {
			cum += w.Counts[i]
			buckets[b.Seconds()] = cum
		}
		ch <- prometheus.MustNewConstHistogram(descAdmissionWait, w.Count, w.Sum.Seconds(), buckets, w.End.String())
	}
}
