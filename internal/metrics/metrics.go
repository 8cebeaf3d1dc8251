// Package metrics exposes autoglm's figures in the Prometheus text format at GET /metrics:
// HTTP requests, model requests and tokens (from the usage accounting), the scheduling state of
// every backend, the response cache, rate limits, the usage-record batcher, and the Go runtime.
//
// Counters that other packages already keep (router, cache, limiter, batcher) are read at
// scrape time by collectors, so the request path pays nothing for them; only the per-request
// HTTP and model figures are recorded as requests finish.
package metrics

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/cache"
	"github.com/open-autoglm/autoglm/internal/ratelimit"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/telemetry"
	"github.com/open-autoglm/autoglm/internal/usage"
)

// Sources are the parts whose counters are read at scrape time. Nil parts are skipped.
type Sources struct {
	Registry *router.Registry
	Cache    *cache.Cache
	Limiter  *ratelimit.Limiter
	Batcher  *store.Batcher
	// Collectors are registered as they are (subsystems that keep their own counters).
	Collectors []prometheus.Collector
}

// Metrics is one server's registry. It is not the process-global default registry, so tests
// and several servers in one process do not collide.
type Metrics struct {
	reg      *prometheus.Registry
	http     *prometheus.CounterVec
	httpDur  *prometheus.HistogramVec
	models   *prometheus.CounterVec
	tokens   *prometheus.CounterVec
	modelDur *prometheus.HistogramVec
	ttft     *prometheus.HistogramVec
	tokenGap *prometheus.HistogramVec

	// The OpenTelemetry GenAI semantic conventions' metrics, under their Prometheus names
	// (dots as underscores, the unit as a suffix), for dashboards built on the conventions.
	genTokens *prometheus.HistogramVec // gen_ai.client.token.usage
	genDur    *prometheus.HistogramVec // gen_ai.server.request.duration
	genTTFT   *prometheus.HistogramVec // gen_ai.server.time_to_first_token
	genPerTok *prometheus.HistogramVec // gen_ai.server.time_per_output_token

	httpSeries  sync.Map // httpKey → *httpSeries
	modelSeries sync.Map // modelKey → *modelSeries

	// Observations wait in pending and are folded into their series foldEvery at a time, and
	// before every scrape (Handler), so what a scrape reads is always up to date.
	pendMu      sync.Mutex
	pendModels  []usage.Outcome
	pendHTTP    []httpObservation
	foldMu      sync.Mutex // one fold at a time; guards the spare slices
	spareModels []usage.Outcome
	spareHTTP   []httpObservation
}

// foldEvery is how many observations of a kind wait before the request that adds the last one
// folds them all in.
//
// Why: a request's observations update a dozen counters and histograms, each in memory of its
// own. At the rates a gateway idles between (200 requests/s) that memory has left the cache
// by the next request, and the updates cost several µs of cache misses after the answer has
// gone out, while a client woken on the same core waits (docs/BENCHMARKS.md). Folded in a
// batch, the same memory is touched once per batch.
const foldEvery = 256

// httpObservation is one ObserveHTTP call waiting to be folded in.
type httpObservation struct {
	route, method string
	status        int
	d             time.Duration
}

// genAILabels are the conventions' attributes every gen_ai_* series carries.
var genAILabels = []string{"gen_ai_operation_name", "gen_ai_request_model", "gen_ai_provider_name"}

// New builds the registry over src.
func New(src Sources) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.http = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "autoglm_http_requests_total",
		Help: "HTTP requests by route, method and status class."}, []string{"route", "method", "code"})
	m.httpDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "autoglm_http_request_duration_seconds",
		Help: "HTTP request duration by route (streams: until the stream ends).", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 12)},
		[]string{"route"})
	m.models = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "autoglm_model_requests_total",
		Help: "Model requests by public model, backend, status and cache result."}, []string{"model", "backend", "code", "cache"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "autoglm_model_tokens_total",
		Help: "Tokens by model and kind (prompt, completion); estimated=true where the upstream reported none."},
		[]string{"model", "kind", "estimated"})
	m.modelDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "autoglm_model_request_duration_seconds",
		Help: "Model request duration by model and whether it streamed.", Buckets: prometheus.ExponentialBuckets(0.001, 3, 12)},
		[]string{"model", "stream"})
	m.ttft = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "autoglm_model_time_to_first_token_seconds",
		Help:    "Time from a streamed request's arrival to its first text event, by model and backend.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, .75, 1, 2.5, 5, 7.5, 10, 30, 60}}, []string{"model", "backend"})
	m.tokenGap = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "autoglm_model_inter_token_seconds",
		Help:    "Mean time between the text events of one streamed answer after the first (one observation per answer), by model and backend.",
		Buckets: []float64{.001, .0025, .005, .01, .02, .04, .06, .08, .1, .15, .2, .3, .5, 1, 2.5}}, []string{"model", "backend"})
	// Bucket boundaries as the conventions advise.
	m.genTokens = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gen_ai_client_token_usage",
		Help:    "Tokens per model call by type (input, output): the GenAI conventions' gen_ai.client.token.usage.",
		Buckets: []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}},
		append(slices.Clone(genAILabels), "gen_ai_token_type"))
	m.genDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gen_ai_server_request_duration_seconds",
		Help:    "Model call duration: the GenAI conventions' gen_ai.server.request.duration (error_type set on failures).",
		Buckets: []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}},
		append(slices.Clone(genAILabels), "error_type"))
	m.genTTFT = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gen_ai_server_time_to_first_token_seconds",
		Help:    "Time to the first token of a streamed answer: the GenAI conventions' gen_ai.server.time_to_first_token.",
		Buckets: []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0}}, genAILabels)
	m.genPerTok = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gen_ai_server_time_per_output_token_seconds",
		Help:    "Mean time per output token after the first of a streamed answer: the GenAI conventions' gen_ai.server.time_per_output_token.",
		Buckets: []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5}}, genAILabels)
	m.reg.MustRegister(m.http, m.httpDur, m.models, m.tokens, m.modelDur, m.ttft, m.tokenGap,
		m.genTokens, m.genDur, m.genTTFT, m.genPerTok,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&sourceCollector{src: src})
	m.reg.MustRegister(src.Collectors...)
	return m
}

// Register adds collectors built after the registry (a component started later).
func (m *Metrics) Register(cs ...prometheus.Collector) { m.reg.MustRegister(cs...) }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		m.Fold()
		return m.reg.Gather()
	}), promhttp.HandlerOpts{})
}

// Fold adds the observations waiting in pending to their series. Handler folds before every
// scrape; a request folds when foldEvery observations of a kind are waiting.
func (m *Metrics) Fold() {
	m.foldMu.Lock()
	defer m.foldMu.Unlock()
	m.pendMu.Lock()
	models, hs := m.pendModels, m.pendHTTP
	m.pendModels, m.pendHTTP = m.spareModels[:0], m.spareHTTP[:0]
	m.pendMu.Unlock()
	for i := range models {
		m.observeModel(&models[i])
	}
	for _, h := range hs {
		m.observeHTTP(h)
	}
	clear(models) // the strings they hold are not kept alive by the spare slice
	m.spareModels, m.spareHTTP = models[:0], hs[:0]
}

// ServeHTTP lets Metrics be a route handler.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	m.Handler().ServeHTTP(w, r)
	return nil
}

// ObserveHTTP records one finished HTTP request. route must come from a fixed set (the route
// table's patterns), never from the raw path, so the label set stays bounded.
func (m *Metrics) ObserveHTTP(route, method string, status int, d time.Duration) {
	m.pendMu.Lock()
	m.pendHTTP = append(m.pendHTTP, httpObservation{route, method, status, d})
	full := len(m.pendHTTP) >= foldEvery
	m.pendMu.Unlock()
	if full {
		m.Fold()
	}
}

func (m *Metrics) observeHTTP(h httpObservation) {
	route, method, status, d := h.route, h.method, h.status, h.d
	k := httpKey{route: route, method: method, class: statusClass(status)}
	sv, ok := m.httpSeries.Load(k)
	if !ok {
		sv, _ = m.httpSeries.LoadOrStore(k, &httpSeries{
			requests: m.http.WithLabelValues(route, method, k.class),
			dur:      m.httpDur.WithLabelValues(route),
		})
	}
	s := sv.(*httpSeries)
	s.requests.Inc()
	s.dur.Observe(d.Seconds())
}

// The per-request figures are recorded through series resolved once per set of label
// values and kept: a vector's WithLabelValues hashes every label and looks the child up under
// a lock, ~0.5 µs each warm and several on a core that idled between requests, and a model
// call records up to ten of them. Label values come from configuration (routes, models,
// backends) and from small fixed sets (status, cache state, operation), so the kept series
// are as many as the registry holds anyway; no series is ever deleted.

type httpKey struct{ route, method, class string }

type httpSeries struct {
	requests prometheus.Counter
	dur      prometheus.Observer
}

type modelKey struct {
	model, backend, cache string
	status                int
	op                    backend.Op
	stream, estimated     bool
}

// modelSeries are one label set's series. Each is made on first use, as WithLabelValues
// would make it, so that a series never observed does not appear in the exposition.
type modelSeries struct {
	mu                           sync.Mutex
	requests, prompt, completion prometheus.Counter
	dur, ttft, gap               prometheus.Observer
	genDur, genIn, genOut        prometheus.Observer
	genTTFT, genPerTok           prometheus.Observer
}

// ObserveModel records one finished model call (an OpenAI-compatible request or a task run),
// as the usage Recorder hands it over.
func (m *Metrics) ObserveModel(_ context.Context, o usage.Outcome) {
	m.pendMu.Lock()
	m.pendModels = append(m.pendModels, o)
	full := len(m.pendModels) >= foldEvery
	m.pendMu.Unlock()
	if full {
		m.Fold()
	}
}

func (m *Metrics) observeModel(o *usage.Outcome) {
	k := modelKey{model: o.Model, backend: o.Backend, cache: o.Cache, status: o.Status, op: o.Op,
		stream: o.Stream, estimated: o.Usage.Estimated}
	sv, ok := m.modelSeries.Load(k)
	if !ok {
		sv, _ = m.modelSeries.LoadOrStore(k, &modelSeries{})
	}
	s := sv.(*modelSeries)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.requests == nil {
		s.requests = m.models.WithLabelValues(o.Model, o.Backend, strconv.Itoa(o.Status), o.Cache)
		s.dur = m.modelDur.WithLabelValues(o.Model, strconv.FormatBool(o.Stream))
	}
	s.requests.Inc()
	if o.Usage.PromptTokens > 0 {
		if s.prompt == nil {
			s.prompt = m.tokens.WithLabelValues(o.Model, "prompt", strconv.FormatBool(o.Usage.Estimated))
		}
		s.prompt.Add(float64(o.Usage.PromptTokens))
	}
	if o.Usage.CompletionTokens > 0 {
		if s.completion == nil {
			s.completion = m.tokens.WithLabelValues(o.Model, "completion", strconv.FormatBool(o.Usage.Estimated))
		}
		s.completion.Add(float64(o.Usage.CompletionTokens))
	}
	s.dur.Observe(o.Latency.Seconds())
	if o.TTFT > 0 {
		if s.ttft == nil {
			s.ttft = m.ttft.WithLabelValues(o.Model, o.Backend)
		}
		s.ttft.Observe(o.TTFT.Seconds())
	}
	if o.TextEvents > 1 {
		if s.gap == nil {
			s.gap = m.tokenGap.WithLabelValues(o.Model, o.Backend)
		}
		s.gap.Observe(o.TokenGap.Seconds())
	}
	m.observeGenAI(s, *o)
}

// observeGenAI records the call under the GenAI conventions' metrics. A cache hit is not a
// model call and is left out.
func (m *Metrics) observeGenAI(s *modelSeries, o usage.Outcome) {
	if o.Cache == "hit" {
		return
	}
	op, provider := telemetry.GenAIOperation(o.Op.String()), "autoglm"
	if o.Backend != "" {
		provider = o.Backend
	}
	errType := ""
	if o.Status >= 400 {
		errType = strconv.Itoa(o.Status)
	}
	if s.genDur == nil {
		s.genDur = m.genDur.WithLabelValues(op, o.Model, provider, errType)
	}
	s.genDur.Observe(o.Latency.Seconds())
	if errType != "" {
		return
	}
	if o.Usage.PromptTokens > 0 {
		if s.genIn == nil {
			s.genIn = m.genTokens.WithLabelValues(op, o.Model, provider, "input")
		}
		s.genIn.Observe(float64(o.Usage.PromptTokens))
	}
	if o.Usage.CompletionTokens > 0 {
		if s.genOut == nil {
			s.genOut = m.genTokens.WithLabelValues(op, o.Model, provider, "output")
		}
		s.genOut.Observe(float64(o.Usage.CompletionTokens))
	}
	if o.TTFT > 0 {
		if s.genTTFT == nil {
			s.genTTFT = m.genTTFT.WithLabelValues(op, o.Model, provider)
		}
		s.genTTFT.Observe(o.TTFT.Seconds())
	}
	if o.TextEvents > 1 {
		if s.genPerTok == nil {
			s.genPerTok = m.genPerTok.WithLabelValues(op, o.Model, provider)
		}
		s.genPerTok.Observe(o.TokenGap.Seconds())
	}
}

func statusClass(code int) string {
	switch {
	case code >= 500 && code < 600:
		return "5xx"
	case code == 499:
		return "499"
	case code == 429:
		return "429"
	case code >= 400:
		return "4xx"
	case code >= 300:
		return "3xx"
	default:
		return "2xx"
	}
}

// sourceCollector reads the counters of the other packages at scrape time.
type sourceCollector struct{ src Sources }

var (
	descBackendRequests = prometheus.NewDesc("autoglm_backend_requests_total", "Attempts sent to a backend.", []string{"model", "backend"}, nil)
	descBackendErrors   = prometheus.NewDesc("autoglm_backend_errors_total", "Failed or refused attempts by kind.", []string{"model", "backend", "kind"}, nil)
	descBackendInflight = prometheus.NewDesc("autoglm_backend_inflight", "Requests in flight to a backend.", []string{"model", "backend"}, nil)
	descBackendQueued   = prometheus.NewDesc("autoglm_backend_queued", "Requests waiting for a backend's in-flight limit.", []string{"model", "backend"}, nil)
	descBackendCircuit  = prometheus.NewDesc("autoglm_backend_circuit_state", "1 for the backend's current circuit state.", []string{"model", "backend", "state"}, nil)
	descBackendUp       = prometheus.NewDesc("autoglm_backend_up", "1 when the last probe reached the backend, 0 when it did not, -1 unknown.", []string{"model", "backend"}, nil)
	descBackendTTFT     = prometheus.NewDesc("autoglm_backend_ewma_ttft_seconds", "Moving average of time to first token.", []string{"model", "backend"}, nil)
	descBackendLatency  = prometheus.NewDesc("autoglm_backend_ewma_latency_seconds", "Moving average of total latency.", []string{"model", "backend"}, nil)
	descRetries         = prometheus.NewDesc("autoglm_model_retries_total", "Retries after a first try, and retries the budget refused.", []string{"model", "result"}, nil)
	descCache           = prometheus.NewDesc("autoglm_cache_events_total", "Response cache events.", []string{"event"}, nil)
	descLimits          = prometheus.NewDesc("autoglm_ratelimit_decisions_total", "Rate limiter decisions.", []string{"decision"}, nil)
	descBatcher         = prometheus.NewDesc("autoglm_usage_records_total", "Usage and audit records: queued (accepted in memory), then written or failed (given up after retries); dropped were never queued (queue full).", []string{"state"}, nil)
	descBatcherPending  = prometheus.NewDesc("autoglm_usage_records_pending", "Records waiting in memory to be written.", nil, nil)

	engineLabels        = []string{"model", "backend"}
	descEnginePrompt    = prometheus.NewDesc("autoglm_engine_prompt_tokens_total", "Prompt tokens the local engine computed.", engineLabels, nil)
	descEngineCached    = prometheus.NewDesc("autoglm_engine_cached_prompt_tokens_total", "Prompt tokens the local engine reused from a KV cache (prefix reuse) instead of computing them.", engineLabels, nil)
	descEngineGenerated = prometheus.NewDesc("autoglm_engine_generated_tokens_total", "Tokens the local engine generated; rate() of it is tokens per second.", engineLabels, nil)
	descEngineForward   = prometheus.NewDesc("autoglm_engine_forward_seconds_total", "Time the local engine spent in forward passes; tokens over it are tokens per busy second.", engineLabels, nil)
	descEngineBatch     = prometheus.NewDesc("autoglm_engine_batch_size", "Sequences per forward step of the local engine (continuous batching).", engineLabels, nil)
	descEnginePrefix    = prometheus.NewDesc("autoglm_engine_prefix_cache_requests_total", "Requests whose prompt did (hit) or did not (miss) reuse a cached prefix.", []string{"model", "backend", "result"}, nil)
	descEngineRunning   = prometheus.NewDesc("autoglm_engine_running_sequences", "Sequences holding a slot of the local engine.", engineLabels, nil)
	descEngineQueue     = prometheus.NewDesc("autoglm_engine_queue_depth", "Requests waiting for a slot of the local engine.", engineLabels, nil)
	descEngineKVCache   = prometheus.NewDesc("autoglm_engine_kv_cache_bytes", "Memory held by the local engine's KV caches now.", engineLabels, nil)
)

func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBackendRequests, descBackendErrors, descBackendInflight, descBackendQueued,
		descBackendCircuit, descBackendUp, descBackendTTFT, descBackendLatency, descRetries, descCache, descLimits,
		descBatcher, descBatcherPending, descEnginePrompt, descEngineCached, descEngineGenerated, descEngineForward,
		descEngineBatch, descEnginePrefix, descEngineRunning, descEngineQueue, descEngineKVCache} {
		ch <- d
	}
}

func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if r := c.src.Registry; r != nil {
		for _, m := range r.Status() {
			counter(descRetries, float64(m.Retries), m.Name, "retried")
			counter(descRetries, float64(m.RetriesDenied), m.Name, "denied")
			for _, b := range m.Backends {
				counter(descBackendRequests, float64(b.Requests), m.Name, b.Name)
				for kind, n := range b.Errors {
					counter(descBackendErrors, float64(n), m.Name, b.Name, kind)
				}
				gauge(descBackendInflight, float64(b.Inflight), m.Name, b.Name)
				gauge(descBackendQueued, float64(b.Queued), m.Name, b.Name)
				for _, st := range []string{"closed", "open", "half_open"} {
					v := 0.0
					if b.Circuit == st {
						v = 1
					}
					gauge(descBackendCircuit, v, m.Name, b.Name, st)
				}
				up := -1.0
				switch b.Health {
				case "up":
					up = 1
				case "down":
					up = 0
				}
				gauge(descBackendUp, up, m.Name, b.Name)
				gauge(descBackendTTFT, b.EWMATTFTMs/1000, m.Name, b.Name)
				gauge(descBackendLatency, b.EWMALatencyMs/1000, m.Name, b.Name)
			}
		}
	}
	if r := c.src.Registry; r != nil {
		for _, m := range r.Models() {
			for _, t := range m.Targets {
				if er, ok := t.Backend.(backend.EngineReporter); ok {
					collectEngine(ch, m.Name, t.Name, er.Engine())
				}
			}
		}
	}
	if cc := c.src.Cache; cc != nil {
		s := cc.Stats()
		for ev, v := range map[string]int64{"hit": s.Hits, "miss": s.Misses, "bypass": s.Bypasses, "coalesced": s.Coalesced,
			"store": s.Stores, "l2_hit": s.L2Hits, "l2_error": s.L2Errors} {
			counter(descCache, float64(v), ev)
		}
	}
	if l := c.src.Limiter; l != nil {
		s := l.Stats()
		for d, v := range map[string]uint64{"admitted": s.Admitted, "rate_limited": s.RateLimited, "quota_exceeded": s.QuotaExceeded,
			"store_error": s.StoreErrors, "failed_open": s.FailedOpen, "failed_closed": s.FailedClosed, "failed_local": s.FailedLocal} {
			counter(descLimits, float64(v), d)
		}
	}
	if b := c.src.Batcher; b != nil {
		s := b.Stats()
		counter(descBatcher, float64(s.Queued), "queued")
		counter(descBatcher, float64(s.Written), "written")
		counter(descBatcher, float64(s.Dropped), "dropped")
		counter(descBatcher, float64(s.Failed), "failed")
		gauge(descBatcherPending, float64(s.Pending))
	}
}

// collectEngine reports one in-process engine's figures.
func collectEngine(ch chan<- prometheus.Metric, model, name string, e backend.Engine) {
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, model, name)
	}
	counter(descEnginePrompt, float64(e.PromptTokens), model, name)
	counter(descEngineCached, float64(e.CachedTokens), model, name)
	counter(descEngineGenerated, float64(e.GeneratedTokens), model, name)
	counter(descEngineForward, e.ForwardSeconds, model, name)
	counter(descEnginePrefix, float64(e.PrefixHits), model, name, "hit")
	counter(descEnginePrefix, float64(e.PrefixMisses), model, name, "miss")
	buckets := make(map[float64]uint64, len(e.BatchBounds))
	for i, b := range e.BatchBounds {
		buckets[b] = e.BatchCounts[i]
	}
	ch <- prometheus.MustNewConstHistogram(descEngineBatch, e.Steps, float64(e.BatchSum), buckets, model, name)
	gauge(descEngineRunning, float64(e.Running))
	gauge(descEngineQueue, float64(e.Waiting))
	gauge(descEngineKVCache, float64(e.KVCacheBytes))
}
