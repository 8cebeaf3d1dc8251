package cpuplace

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	p := Policy{Every: 100 * time.Millisecond, Spread: 0.4, Gather: 0.1, Calm: 2 * time.Second}
	for _, c := range []struct {
		name     string
		gathered bool
		use      float64
		calm     time.Duration
		want     bool
	}{
		{"gathered, light load stays", true, 0.05, 0, true},
		{"gathered, below Spread stays", true, 0.39, 0, true},
		{"gathered, at Spread spreads", true, 0.4, 0, false},
		{"gathered, busy spreads", true, 1.7, 0, false},
		{"spread, busy stays", false, 0.9, 0, false},
		{"spread, quiet but not for long stays", false, 0.02, time.Second, false},
		{"spread, quiet for Calm gathers", false, 0.02, 2 * time.Second, true},
		{"spread, between the thresholds stays", false, 0.2, time.Minute, false},
	} {
		if got := p.decide(c.gathered, c.use, c.calm); got != c.want {
			t.Errorf("%s: decide(%v, %.2f, %v) = %v, want %v", c.name, c.gathered, c.use, c.calm, got, c.want)
		}
	}
}
