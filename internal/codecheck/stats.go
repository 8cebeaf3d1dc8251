package codecheck

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats counts checks and repairs per language. It is a prometheus.Collector: register it with
// the server's metrics registry. The zero value is ready; it is safe for concurrent use.
type Stats struct {
	mu     sync.Mutex
	byLang map[string]*langStats
}

type langStats struct {
	checks, failures, repairs, rounds float64
}

func (s *Stats) lang(l string) *langStats {
	if s.byLang == nil {
		s.byLang = map[string]*langStats{}
	}
	ls := s.byLang[l]
	if ls == nil {
		ls = &langStats{}
		s.byLang[l] = ls
	}
	return ls
}

// ObserveCheck counts one checked block.
func (s *Stats) ObserveCheck(r Result) {
	if s == nil {
		return
	}
	s.mu.Lock()
	ls := s.lang(r.Language)
	ls.checks++
	if r.Status == StatusFailed {
		ls.failures++
	}
	s.mu.Unlock()
}

// ObserveRepair counts one repair loop of rounds rounds (model calls after the first answer).
func (s *Stats) ObserveRepair(lang string, rounds int) {
	if s == nil || rounds == 0 {
		return
	}
	s.mu.Lock()
	ls := s.lang(lang)
	ls.repairs++
	ls.rounds += float64(rounds)
	s.mu.Unlock()
}

var (
	descChecks   = prometheus.NewDesc("autoglm_code_checks_total", "Code blocks checked, by language.", []string{"language"}, nil)
	descFailures = prometheus.NewDesc("autoglm_code_check_failures_total", "Code blocks whose check found an error (or truncation), by language.", []string{"language"}, nil)
	descRepairs  = prometheus.NewDesc("autoglm_code_repairs_total", "Code tasks that asked the model for at least one repair, by language.", []string{"language"}, nil)
	descRounds   = prometheus.NewDesc("autoglm_code_repair_rounds_total", "Repair rounds (model calls after the first answer), by language.", []string{"language"}, nil)
)

// Describe implements prometheus.Collector.
func (s *Stats) Describe(ch chan<- *prometheus.Desc) {
	ch <- descChecks
	ch <- descFailures
	ch <- descRepairs
	ch <- descRounds
}

// Collect implements prometheus.Collector.
func (s *Stats) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	langs := make([]string, 0, len(s.byLang))
	for l := range s.byLang {
		langs = append(langs, l)
	}
	sort.Strings(langs)
	for _, l := range langs {
		ls := s.byLang[l]
		ch <- prometheus.MustNewConstMetric(descChecks, prometheus.CounterValue, ls.checks, l)
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, ls.failures, l)
		ch <- prometheus.MustNewConstMetric(descRepairs, prometheus.CounterValue, ls.repairs, l)
		ch <- prometheus.MustNewConstMetric(descRounds, prometheus.CounterValue, ls.rounds, l)
	}
}
