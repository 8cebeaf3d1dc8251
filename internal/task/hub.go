package task

import "sync"

// hub wakes goroutines waiting for something to change in this process: event streams
// waiting for a task's next event, dispatchers waiting for queued work of a model, the
// webhook sender waiting for deliveries. A wake-up carries no data; the waiter reads the
// database, which stays the only source of truth, so a lost or duplicated wake-up costs at
// most one poll interval or one extra query.
type hub struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

func newHub() *hub { return &hub{subs: make(map[string]map[chan struct{}]struct{})} }

// subscribe returns a channel that receives (at most one pending) wake-up each time topic is
// notified, and the function that ends the subscription.
func (h *hub) subscribe(topic string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	m := h.subs[topic]
	if m == nil {
		m = make(map[chan struct{}]struct{})
		h.subs[topic] = m
	}
	m[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(m, ch)
		if len(m) == 0 && h.subs[topic] != nil && len(h.subs[topic]) == 0 {
			delete(h.subs, topic)
		}
		h.mu.Unlock()
	}
}

// notify wakes every subscriber of topic without blocking.
func (h *hub) notify(topic string) {
	h.mu.Lock()
	for ch := range h.subs[topic] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	h.mu.Unlock()
}

// Hub topics.
func taskTopic(id string) string     { return "e:" + id }
func modelTopic(model string) string { return "q:" + model }

const deliveryTopic = "d:"

// cancelPrefix starts a PostgreSQL notification asking the replica running a task to stop
// it; it is not a hub topic.
const cancelPrefix = "c:"

func cancelTopic(id string) string { return cancelPrefix + id }

// notifyAll wakes every subscriber of every topic.
func (h *hub) notifyAll() {
	h.mu.Lock()
	for _, m := range h.subs {
		for ch := range m {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	h.mu.Unlock()
}
