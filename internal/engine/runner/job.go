package runner

import (
	"sync"
	"time"
)

// job is a request handed from a Generate call to the scheduler.
type job struct {
	req    Request
	prompt []int32 // a private copy: the caller may reuse its slice
	box    mailbox

	goneOnce sync.Once
	gone     chan struct{} // closed when the caller stops listening

	choices // scheduler-only state of N > 1 and prompt logprobs (choices.go)

	// queued is set before the job is queued; admitted and firstToken by the scheduler,
	// read by the caller once the mailbox says done (Request.Timing).
	queued, admitted, firstToken time.Time
}

func newJob(req Request) *job {
	j := &job{req: req, gone: make(chan struct{})}
	j.prompt = append([]int32(nil), req.Prompt...)
	j.req.Prompt = j.prompt
	j.box.ready = make(chan struct{}, 1)
	j.initChoices()
	return j
}

// leave marks the job as abandoned by its caller.
func (j *job) leave() { j.goneOnce.Do(func() { close(j.gone) }) }

// abandoned reports whether the caller has left.
func (j *job) abandoned() bool {
	select {
	case <-j.gone:
		return true
	default:
		return false
	}
}

// mailbox carries one job's events from the scheduler to its caller. put
// never blocks, which is what keeps a slow consumer from stalling the
// scheduler; the queue is bounded by the number of tokens a sequence can
// generate.
type mailbox struct {
	mu     sync.Mutex
	events []Event
	done   bool
	res    Result
	err    error
	ready  chan struct{} // capacity 1: "something was added"
}

func (b *mailbox) put(ev Event) {
	b.mu.Lock()
	b.events = append(b.events, ev)
	b.mu.Unlock()
	b.signal()
}

// finish records the outcome; no events follow it.
func (b *mailbox) finish(res Result, err error) {
	b.mu.Lock()
	b.done, b.res, b.err = true, res, err
	b.mu.Unlock()
	b.signal()
}

func (b *mailbox) signal() {
	select {
	case b.ready <- struct{}{}:
	default:
	}
}

// take moves the queued events into buf (swapping buffers, so neither side
// allocates once both have grown) and reports whether the job has finished.
// Events taken together with done=true are the last ones.
func (b *mailbox) take(buf []Event) (evs []Event, done bool, res Result, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	evs, b.events = b.events, buf[:0]
	return evs, b.done, b.res, b.err
}
