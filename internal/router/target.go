package router

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"time"

	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/evloop"
)

// Health is what the last active probe of a backend found.
type Health int32

const (
	HealthUnknown Health = iota // not probed yet, or the backend is not probed
	HealthUp
	HealthDown
)

func (h Health) String() string {
	switch h {
	case HealthUp:
		return "up"
	case HealthDown:
		return "down"
	}
	return "unknown"
}

// ErrorKind classifies a failed or refused attempt for the per-backend figures.
type ErrorKind int

const (
	FailConnect   ErrorKind = iota // no answer: connection refused, reset, connect timeout
	FailStatus5xx                  // the upstream answered 5xx
	FailStatus429                  // the upstream answered 429
	FailTTFT                       // no first byte within the TTFT timeout
	FailIdle                       // a gap between chunks exceeded the idle timeout
	FailTotal                      // the total timeout ended the request
	FailBroken                     // the body broke off before its end
	FailQueueFull                  // refused: in-flight cap reached and the queue full
	numErrorKinds
)

var errorKindNames = [numErrorKinds]string{
	FailConnect:   "connect",
	FailStatus5xx: "status_5xx",
	FailStatus429: "status_429",
	FailTTFT:      "ttft_timeout",
	FailIdle:      "idle_timeout",
	FailTotal:     "total_timeout",
	FailBroken:    "stream_broken",
	FailQueueFull: "queue_full",
}

func (k ErrorKind) String() string {
	if k >= 0 && k < numErrorKinds {
		return errorKindNames[k]
	}
	return "unknown"
}

// ewmaAlpha is the weight of a new latency sample: about the last ten samples matter.
const ewmaAlpha = 0.2

// ewma is an exponentially weighted moving average of durations in nanoseconds, updated
// lock-free. Zero means no sample yet.
type ewma struct{ bits atomic.Uint64 }

func (e *ewma) get() float64 { return math.Float64frombits(e.bits.Load()) }

func (e *ewma) observe(ns float64) {
	for {
		old := e.bits.Load()
		v := math.Float64frombits(old)
		next := ns
		if v != 0 {
			next = v + ewmaAlpha*(ns-v)
		}
		if e.bits.CompareAndSwap(old, math.Float64bits(next)) {
			return
		}
	}
}

// Target is one backend of one model, with what the router knows about it.
type Target struct {
	// Name labels the backend in logs and the admin API.
	Name string
	// Type is the backend type ("openai", "local").
	Type string
	// Model is the model name the backend knows.
	Model string
	// Weight is the backend's share of traffic.
	Weight int
	// Backend does the work.
	Backend backend.Backend
	// NativeResponses is set when the upstream serves the Responses API itself
	// (config.Backend.Responses "native").
	NativeResponses bool

	cfg          config.Backend  // the section the target was built from
	idx          int             // position in the model's Targets: its bit in exclusion masks
	timeouts     config.Timeouts // resolved for this backend
	maxInflight  int             // 0: no cap
	queue        int
	queueTimeout time.Duration

	health    atomic.Int32 // Health
	br        *breaker
	slots     chan struct{} // nil when there is no cap
	inflight  atomic.Int32
	queued    atomic.Int32
	cooldown  atomic.Int64 // Unix nanoseconds before which Retry-After asks us to stay away
	lastPick  atomic.Int64 // Unix nanoseconds of the last pick, for latency probing
	ewmaTTFT  ewma
	ewmaTotal ewma

	requests  atomic.Uint64
	successes atomic.Uint64
	errs      [numErrorKinds]atomic.Uint64

	// current is the smooth weighted round-robin counter, guarded by the model's mutex.
	current int
}

// Health returns the latest probe result.
func (t *Target) Health() Health { return Health(t.health.Load()) }

// Circuit returns the state of the backend's circuit breaker.
func (t *Target) Circuit() Circuit { return t.br.circuit(time.Now().UnixNano()) }

// Config returns the configuration section the backend was built from.
func (t *Target) Config() config.Backend { return t.cfg }

// Inflight returns the number of requests the backend is serving.
func (t *Target) Inflight() int { return int(t.inflight.Load()) }

// usable reports whether a new request may be sent to t at now, whatever its load.
func (t *Target) usable(now int64) bool {
	return Health(t.health.Load()) != HealthDown && now >= t.cooldown.Load() && t.br.available(now)
}

// saturated reports whether every in-flight slot is taken.
func (t *Target) saturated() bool {
	return t.slots != nil && int(t.inflight.Load()) >= t.maxInflight
}

// queueRoom reports whether a request could wait for a slot.
func (t *Target) queueRoom() bool { return int(t.queued.Load()) < t.queue }

// tryAcquire takes an in-flight slot without waiting.
func (t *Target) tryAcquire() bool {
	if t.slots == nil {
		t.inflight.Add(1)
		return true
	}
	select {
	case t.slots <- struct{}{}:
		t.inflight.Add(1)
		return true
	default:
		return false
	}
}

var errQueueFull = errors.New("backend queue full")

// acquire takes an in-flight slot, waiting in the bounded queue up to the queue timeout.
func (t *Target) acquire(ctx context.Context) error {
	if t.tryAcquire() {
		return nil
	}
	if int(t.queued.Add(1)) > t.queue {
		t.queued.Add(-1)
		return errQueueFull
	}
	defer t.queued.Add(-1)
	var err error
	evloop.Block(ctx, func() { // off an event loop: the requests whose ends free slots may be on it
		timer := time.NewTimer(t.queueTimeout)
		defer timer.Stop()
		select {
		case t.slots <- struct{}{}:
			t.inflight.Add(1)
		case <-ctx.Done():
			err = ctx.Err()
		case <-timer.C:
			err = errQueueFull
		}
	})
	return err
}

// release gives back an in-flight slot.
func (t *Target) release() {
	t.inflight.Add(-1)
	if t.slots != nil {
		<-t.slots
	}
}

// latencyProbeEvery is how often the latency strategy sends a request to a backend it has
// not picked lately, so that a backend whose figures are stale (it was slow, or failing) is
// measured again without being flooded.
const latencyProbeEvery = 2 * time.Second

// failurePenalty is the latency sample a failed attempt contributes, so that a backend that
// fails fast does not look fast.
const failurePenalty = float64(time.Second)

// latency is the moving latency the latency strategy compares: time to first token for
// streams (when measured), total latency otherwise; 0 when not measured.
func (t *Target) latency(stream bool) float64 {
	if stream {
		if v := t.ewmaTTFT.get(); v > 0 {
			return v
		}
	}
	return t.ewmaTotal.get()
}

func (t *Target) countError(k ErrorKind) { t.errs[k].Add(1) }
