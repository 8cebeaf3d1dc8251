package task

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

type promMetric = prometheus.Metric

func metricValue(m prometheus.Metric, name, lang string) (float64, bool) {
	if !strings.Contains(m.Desc().String(), `"`+name+`"`) {
		return 0, false
	}
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		return 0, false
	}
	for _, l := range pb.Label {
		if l.GetName() == "language" && l.GetValue() == lang {
			return pb.GetCounter().GetValue(), true
		}
	}
	return 0, false
}
