package router

import (
	"time"

	"github.com/open-autoglm/autoglm/internal/backend"
)

// BackendStatus is a snapshot of one backend's figures, for the admin API and metrics.
type BackendStatus struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Model  string `json:"model"`
	Weight int    `json:"weight"`
	// Health is the last probe result: up, down or unknown.
	Health string `json:"health"`
	// Circuit is closed, open or half_open.
	Circuit string `json:"circuit"`
	// CircuitOpens counts the times the circuit opened.
	CircuitOpens uint64 `json:"circuit_opens"`
	// Available reports whether a new request could be sent now (load aside).
	Available bool `json:"available"`
	// CooldownSeconds is how long an upstream's Retry-After still keeps the backend out.
	CooldownSeconds float64 `json:"cooldown_seconds"`
	Inflight        int     `json:"inflight"`
	Queued          int     `json:"queued"`
	MaxInflight     int     `json:"max_inflight"`
	Queue           int     `json:"queue"`
	// Requests counts attempts sent to the backend; Successes those that ended well.
	Requests  uint64 `json:"requests"`
	Successes uint64 `json:"successes"`
	// Errors counts failed or refused attempts by kind (connect, status_5xx, status_429,
	// ttft_timeout, idle_timeout, total_timeout, stream_broken, queue_full).
	Errors map[string]uint64 `json:"errors"`
	// EWMATTFTMs and EWMALatencyMs are the moving averages of time to first token (streams)
	// and of total latency, in milliseconds; 0 until measured.
	EWMATTFTMs    float64 `json:"ewma_ttft_ms"`
	EWMALatencyMs float64 `json:"ewma_latency_ms"`
	// Memory is what an in-process (local) model holds; absent for other backends.
	Memory *backend.Memory `json:"memory,omitempty"`
}

// SplitStatus is one entry of a canary split.
type SplitStatus struct {
	Model  string `json:"model"`
	Weight int    `json:"weight"`
}

// ModelStatus is a snapshot of one model's scheduling state.
type ModelStatus struct {
	Name      string        `json:"name"`
	Aliases   []string      `json:"aliases"`
	Strategy  string        `json:"strategy"`
	Ready     bool          `json:"ready"`
	Split     []SplitStatus `json:"split,omitempty"`
	Fallbacks []string      `json:"fallbacks"`
	// Requests counts client requests; Retries the tries after the first; RetriesDenied the
	// retries the budget refused; QueueRefusals the times a full queue refused a request.
	Requests      uint64          `json:"requests"`
	Retries       uint64          `json:"retries"`
	RetriesDenied uint64          `json:"retries_denied"`
	QueueRefusals uint64          `json:"queue_refusals"`
	Backends      []BackendStatus `json:"backends"`
}

// Status returns t's figures now.
func (t *Target) Status() BackendStatus {
	now := time.Now().UnixNano()
	s := BackendStatus{
		Name: t.Name, Type: t.Type, Model: t.Model, Weight: t.Weight,
		Health:       t.Health().String(),
		Circuit:      t.br.circuit(now).String(),
		CircuitOpens: t.br.opens.Load(),
		Available:    t.usable(now),
		Inflight:     int(t.inflight.Load()),
		Queued:       int(t.queued.Load()),
		MaxInflight:  t.maxInflight,
		Queue:        t.queue,
		Requests:     t.requests.Load(),
		Successes:    t.successes.Load(),
		Errors:       make(map[string]uint64, numErrorKinds),

		EWMATTFTMs:    t.ewmaTTFT.get() / 1e6,
		EWMALatencyMs: t.ewmaTotal.get() / 1e6,
	}
	if c := t.cooldown.Load(); c > now {
		s.CooldownSeconds = float64(c-now) / 1e9
	}
	for k := range numErrorKinds {
		s.Errors[k.String()] = t.errs[k].Load()
	}
	if mr, ok := t.Backend.(backend.MemoryReporter); ok {
		m := mr.Memory()
		s.Memory = &m
	}
	return s
}

// Status returns m's figures now.
func (m *Model) Status() ModelStatus {
	s := ModelStatus{Name: m.Name, Aliases: m.Aliases, Strategy: m.strategy, Ready: m.Ready(),
		Fallbacks: m.cfg.Fallbacks, Requests: m.requests.Load(), Retries: m.retries.Load(),
		RetriesDenied: m.budgetDenied.Load(), QueueRefusals: m.queueRefusals.Load(),
		Backends: make([]BackendStatus, 0, len(m.Targets))}
	if s.Aliases == nil {
		s.Aliases = []string{}
	}
	if s.Fallbacks == nil {
		s.Fallbacks = []string{}
	}
	if len(m.split) > 0 {
		s.Strategy = "split"
	}
	for _, e := range m.split {
		s.Split = append(s.Split, SplitStatus{Model: e.model.Name, Weight: e.weight})
	}
	for _, t := range m.Targets {
		s.Backends = append(s.Backends, t.Status())
	}
	return s
}

// Status returns every model's figures, in configuration order.
func (r *Registry) Status() []ModelStatus {
	out := make([]ModelStatus, 0, len(r.Models()))
	for _, m := range r.Models() {
		out = append(out, m.Status())
	}
	return out
}
