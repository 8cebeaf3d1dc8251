package sqldb

import (
	"database/sql"
	"time"
)

// IdleLook is the longest a queue poller on SQLite waits without looking (PollWait).
const IdleLook = time.Minute

// PollWait is how long a queue's poller waits before it looks at the queue again. The
// poller is also woken at once by every change its own process makes. poll is its interval
// on a database that other processes change; due, called on SQLite only, gives the time the
// earliest waiting work falls due (the zero time: nothing waits).
//
// On PostgreSQL other replicas change the queue, and a notification that never arrives must
// not strand their work: the poller looks every poll. On SQLite one process owns the file, so
// every change is its own and wakes the poller; what nobody announces is time passing (a
// retry's backoff, a lease running out). The poller there sleeps until the next due time:
// an idle server with empty queues looks once every IdleLook instead of twice a second. A due
// time already past (the work was taken by a racing worker, or no worker was free) is looked
// at again after poll; a failing query falls back to poll too.
func PollWait(d Dialect, poll time.Duration, due func() (time.Time, error)) time.Duration {
	if d.IsPostgres() {
		return poll
	}
	t, err := due()
	switch {
	case err != nil:
		return poll
	case t.IsZero():
		return IdleLook
	}
	w := time.Until(t)
	if w <= 0 {
		return poll
	}
	return min(w, IdleLook)
}

// ScanDue reads the one nullable integer of row, a MIN over a queue's due times (NULL when
// nothing waits), as a due time for PollWait: at(v), or the zero time for NULL.
func ScanDue(row *sql.Row, at func(int64) time.Time) (time.Time, error) {
	var v sql.NullInt64
	if err := row.Scan(&v); err != nil || !v.Valid {
		return time.Time{}, err
	}
	return at(v.Int64), nil
}
