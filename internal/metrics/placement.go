package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/open-autoglm/autoglm/internal/cpuplace"
)

var (
	descCPUGathered = prometheus.NewDesc("autoglm_cpu_gathered",
		"1 while the server's threads are gathered on one CPU (server.cpu_placement: gather), 0 while spread.", nil, nil)
	descCPUPlacementChanges = prometheus.NewDesc("autoglm_cpu_placement_changes_total",
		"Times the server's threads were gathered on one CPU (to=gathered), spread over all again (to=spread), or moved, gathered, to a quieter CPU (to=moved).", []string{"to"}, nil)
)

// Placement returns a collector of a thread placer's figures, read at scrape time.
func Placement(pl interface{ Stats() cpuplace.Stats }) prometheus.Collector {
	return placementCollector{pl}
}

type placementCollector struct {
	pl interface{ Stats() cpuplace.Stats }
}

func (c placementCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descCPUGathered
	ch <- descCPUPlacementChanges
}

func (c placementCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pl.Stats()
	g := 0.0
	if s.Gathered {
		g = 1
	}
	ch <- prometheus.MustNewConstMetric(descCPUGathered, prometheus.GaugeValue, g)
	ch <- prometheus.MustNewConstMetric(descCPUPlacementChanges, prometheus.CounterValue, float64(s.Gathers), "gathered")
	ch <- prometheus.MustNewConstMetric(descCPUPlacementChanges, prometheus.CounterValue, float64(s.Spreads), "spread")
	ch <- prometheus.MustNewConstMetric(descCPUPlacementChanges, prometheus.CounterValue, float64(s.Moves), "moved")
}
