package router

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"time"

	"github.com/open-autoglm/autoglm/internal/config"
)

// candidates returns the mask of backends a new request may go to at now, leaving out
// those in exclude: first those with a free in-flight slot; when none has one, those whose
// queue has room (queued is then true). An empty mask means nothing can take the request;
// full then reports that some backend was left out only because its queue is full.
func (m *Model) candidates(exclude uint64, now int64) (mask uint64, queued, full bool) {
	var waitable uint64
	for i, t := range m.Targets {
		bit := uint64(1) << i
		if exclude&bit != 0 || !t.usable(now) {
			continue
		}
		switch {
		case !t.saturated():
			mask |= bit
		case t.queueRoom():
			waitable |= bit
		default:
			full = true
		}
	}
	if mask != 0 {
		return mask, false, false
	}
	return waitable, waitable != 0, full && waitable == 0
}

// pick chooses a backend among mask by the model's strategy (or by the sticky key when
// sticky is set) and claims its breaker admission. It returns nil when the mask empties
// because every remaining half-open trial was taken by someone else.
func (m *Model) pick(mask uint64, stream bool, now int64, key uint64, sticky bool) (t *Target, trial bool) {
	for mask != 0 {
		var i int
		switch {
		case sticky:
			i = m.pickSticky(mask, key)
		case m.strategy == config.StrategyLatency:
			i = m.pickLatency(mask, stream, now)
		case m.strategy == config.StrategyLeastOutstanding:
			i = m.pickLeastOutstanding(mask)
		default:
			i = m.pickWeighted(mask)
		}
		t = m.Targets[i]
		trial, ok := t.br.claim(now)
		if ok {
			t.lastPick.Store(now)
			return t, trial
		}
		mask &^= 1 << i
	}
	return nil, false
}

// pickWeighted is smooth weighted round-robin (nginx's): over any run of requests every
// candidate is chosen in proportion to its weight, evenly interleaved.
func (m *Model) pickWeighted(mask uint64) int {
	if mask&(mask-1) == 0 {
		return bits.TrailingZeros64(mask)
	}
	m.mu.Lock()
	best, total := -1, 0
	for rest := mask; rest != 0; rest &= rest - 1 {
		i := bits.TrailingZeros64(rest)
		t := m.Targets[i]
		t.current += t.Weight
		total += t.Weight
		if best < 0 || t.current > m.Targets[best].current {
			best = i
		}
	}
	m.Targets[best].current -= total
	m.mu.Unlock()
	return best
}

// pickLatency is the power of two choices on live latency. A candidate not picked for
// latencyProbeEvery is taken at once, so stale figures are measured again one request at a
// time. Otherwise two distinct candidates are drawn, each with probability proportional to
// 1/cost, and the cheaper wins; cost is the moving latency (time to first token for streams)
// times the requests in flight plus one, and a backend not measured yet is assumed to cost
// the mean of the others. Drawing by speed sends nearly all traffic to the fastest backend,
// while a recovering backend, whose figure still carries its failures, is drawn rarely and
// earns traffic back as its measurements improve: it is probed, not flooded.
func (m *Model) pickLatency(mask uint64, stream bool, now int64) int {
	if mask&(mask-1) == 0 {
		return bits.TrailingZeros64(mask)
	}
	var (
		idx  [64]int
		cost [64]float64
		n    int
		sum  float64
		cnt  int
	)
	for rest := mask; rest != 0; rest &= rest - 1 {
		i := bits.TrailingZeros64(rest)
		t := m.Targets[i]
		if now-t.lastPick.Load() > int64(latencyProbeEvery) {
			return i
		}
		e := t.latency(stream)
		if e > 0 {
			sum += e
			cnt++
		}
		idx[n], cost[n] = i, e
		n++
	}
	prior := float64(time.Millisecond)
	if cnt > 0 {
		prior = sum / float64(cnt)
	}
	var total float64
	for k := range n {
		if cost[k] == 0 {
			cost[k] = prior
		}
		cost[k] *= float64(m.Targets[idx[k]].inflight.Load() + 1)
		total += 1 / cost[k]
	}
	a := drawInverse(cost[:n], total, -1)
	b := drawInverse(cost[:n], total-1/cost[a], a)
	if cost[b] < cost[a] {
		a = b
	}
	return idx[a]
}

// drawInverse draws k ≠ skip with probability (1/cost[k]) / total.
func drawInverse(cost []float64, total float64, skip int) int {
	u := rand.Float64() * total
	last := -1
	for k, c := range cost {
		if k == skip {
			continue
		}
		last = k
		if u -= 1 / c; u < 0 {
			return k
		}
	}
	return last // rounding left u just above zero
}

// pickLeastOutstanding takes the candidate with the fewest requests in flight per unit of
// weight, starting the scan at a random candidate so that ties spread.
func (m *Model) pickLeastOutstanding(mask uint64) int {
	n := bits.OnesCount64(mask)
	if n == 1 {
		return bits.TrailingZeros64(mask)
	}
	// Rotate the mask so that the scan starts at a random position.
	s := rand.IntN(len(m.Targets))
	best := -1
	var bestIn, bestW int64
	for k := range len(m.Targets) {
		i := (s + k) % len(m.Targets)
		if mask&(1<<i) == 0 {
			continue
		}
		t := m.Targets[i]
		in, w := int64(t.inflight.Load()), int64(max(t.Weight, 1))
		if best < 0 || in*bestW < bestIn*w {
			best, bestIn, bestW = i, in, w
		}
	}
	return best
}

// pickSticky is weighted rendezvous hashing: the key always maps to the same candidate while
// that candidate stays available, and only the keys of a backend that leaves move.
func (m *Model) pickSticky(mask uint64, key uint64) int {
	best, bestScore := -1, math.Inf(-1)
	for rest := mask; rest != 0; rest &= rest - 1 {
		i := bits.TrailingZeros64(rest)
		if s := rendezvous(key, uint64(i), m.Targets[i].Weight); s > bestScore {
			best, bestScore = i, s
		}
	}
	return best
}

// rendezvous scores one (key, node) pair: weight / -ln(u) with u uniform in (0, 1) from the
// mixed hash. The node with the highest score wins.
func rendezvous(key, node uint64, weight int) float64 {
	h := mix64(key ^ mix64(node+0x9e3779b97f4a7c15))
	u := (float64(h>>11) + 0.5) / (1 << 53)
	return float64(max(weight, 1)) / -math.Log(u)
}

// mix64 is the splitmix64 finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// nthBit returns the index of the n-th (from 0) set bit of mask.
func nthBit(mask uint64, n int) int {
	for ; n > 0; n-- {
		mask &= mask - 1
	}
	return bits.TrailingZeros64(mask)
}

// hashKey hashes a sticky identity with FNV-1a, a fixed function, so that every gateway
// replica and every restart maps a client to the same backend.
func hashKey(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix64(h)
}
