package sqldb

import (
	"context"
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

// TestScanDue: a MIN over no rows is NULL, read as the zero time (nothing waits); a value
// goes through at; a query that fails reports its error.
func TestScanDue(t *testing.T) {
	db := openSQLite(t)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE q (due INTEGER, open INTEGER); INSERT INTO q VALUES (3000, 1), (2000, 1), (1000, 0)`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		open int
		want time.Time
	}{{1, time.UnixMilli(2000)}, {2, time.Time{}}} {
		got, err := ScanDue(db.QueryRowContext(ctx, `SELECT MIN(due) FROM q WHERE open = ?`, c.open), time.UnixMilli)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("open %d: %v, %v; want %v", c.open, got, err, c.want)
		}
	}
	if _, err := ScanDue(db.QueryRowContext(ctx, `SELECT MIN(due) FROM nowhere`), time.UnixMilli); err == nil {
		t.Error("a failing query gave no error")
	}
}
