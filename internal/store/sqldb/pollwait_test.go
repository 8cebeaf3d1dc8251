package sqldb

import (
	"errors"
	"testing"
	"time"
)

func TestPollWait(t *testing.T) {
	const poll = 500 * time.Millisecond
	at := func(t time.Time, err error) func() (time.Time, error) {
		return func() (time.Time, error) { return t, err }
	}
	now := time.Now()
	for _, c := range []struct {
		name     string
		due      func() (time.Time, error)
		min, max time.Duration
	}{
		{"nothing waits: look again after IdleLook", at(time.Time{}, nil), IdleLook, IdleLook},
		{"due in 3s: sleep until then", at(now.Add(3*time.Second), nil), 2 * time.Second, 3 * time.Second},
		{"due in 10ms: sooner than the poll interval", at(now.Add(10*time.Millisecond), nil), 0, 10 * time.Millisecond},
		{"due in an hour: no longer than IdleLook", at(now.Add(time.Hour), nil), IdleLook, IdleLook},
		{"due already but not taken: poll", at(now.Add(-time.Second), nil), poll, poll},
		{"the query failed: poll", at(time.Time{}, errors.New("locked")), poll, poll},
	} {
		if got := PollWait(SQLite, poll, c.due); got < c.min || got > c.max {
			t.Errorf("SQLite, %s: %v, want %v to %v", c.name, got, c.min, c.max)
		}
	}
	asked := false
	if got := PollWait(Postgres, poll, func() (time.Time, error) { asked = true; return time.Time{}, nil }); got != poll || asked {
		t.Errorf("PostgreSQL: %v (due asked: %v), want the poll interval without asking", got, asked)
	}
}
