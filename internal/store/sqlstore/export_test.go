package sqlstore

import "time"

// SetClock replaces the clock of s's Append, for tests; call it before s is used.
func SetClock(s *Store, now func() time.Time) { s.now = now }
