package cpuplace

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	p := Policy{Every: 100 * time.Millisecond, Spread: 0.4, Gather: 0.1, Calm: 2 * time.Second}
	for _, c := range []struct {
		name      string
		gathered  bool
		use, mean float64
		span      time.Duration
		want      bool
	}{
		{"gathered, light load stays", true, 0.05, 0.05, time.Second, true},
		{"gathered, below Spread stays", true, 0.39, 0.3, time.Second, true},
		{"gathered, at Spread spreads", true, 0.4, 0.05, time.Second, false},
		{"gathered, busy spreads", true, 1.7, 1.7, 0, false},
		{"spread, busy stays", false, 0.9, 0.9, 3 * time.Second, false},
		{"spread, quiet but not for long stays", false, 0.02, 0.02, time.Second, false},
		{"spread, quiet for Calm gathers", false, 0.02, 0.02, 2 * time.Second, true},
		{"spread, one busy reading in a quiet span gathers", false, 0.35, 0.06, 2 * time.Second, true},
		{"spread, between the thresholds stays", false, 0.2, 0.2, time.Minute, false},
	} {
		if got := p.decide(c.gathered, c.use, c.mean, c.span); got != c.want {
			t.Errorf("%s: decide(%v, %.2f, %.2f, %v) = %v, want %v", c.name, c.gathered, c.use, c.mean, c.span, got, c.want)
		}
	}
}

func TestResting(t *testing.T) {
	p := Policy{Every: 25 * time.Millisecond, Rest: 0.02, RestEvery: 250 * time.Millisecond}
	for _, c := range []struct {
		name      string
		resting   bool
		use, mean float64
		spanEnded bool
		want      bool
	}{
		{"a quiet span ends: rest", false, 0.01, 0.01, true, true},
		{"a quiet span, not yet ended: the pace stays", false, 0.01, 0.01, false, false},
		{"a span with some use ends: no rest", false, 0.01, 0.05, true, false},
		{"one quiet reading in a busier span does not rest", false, 0, 0.3, true, false},
		{"resting, quiet readings keep it", true, 0.005, 0.3, false, true},
		{"resting, a reading at Rest ends it at once", true, 0.02, 0.001, false, false},
		{"resting, a busy reading at a span's end ends it", true, 0.6, 0.001, true, false},
		{"resting, a quiet span's end keeps it", true, 0.001, 0.001, true, true},
	} {
		if got := p.resting(c.resting, c.use, c.mean, c.spanEnded); got != c.want {
			t.Errorf("%s: resting(%v, %.3f, %.3f, %v) = %v, want %v", c.name, c.resting, c.use, c.mean, c.spanEnded, got, c.want)
		}
	}
	p.RestEvery = 0
	if p.resting(true, 0, 0, true) {
		t.Error("with RestEvery 0 a placer rested")
	}
}
