package store

import (
	"cmp"
	"slices"
	"time"
)

// Both drivers keep, besides the usage records, a daily rollup: one row per key, user and UTC
// day with the day's totals, maintained in the same transaction as the records it sums (by
// Append and by retention deletes). A quota check over a month then reads at most 31 rows
// per key instead of every request of the month. UsageTotals reads the rollup whenever the
// filter allows it (RollupCovers) and the records otherwise; both give the same answer.

// DayTotal is one row of the daily rollup. Drivers use it.
type DayTotal struct {
	KeyID, UserID string
	// Day is the UTC midnight starting the day.
	Day time.Time
	UsageTotals
}

// Day returns the UTC midnight starting t's UTC day.
func Day(t time.Time) time.Time {
	// The zero time is a UTC midnight, so truncating to whole days counts from one.
	return t.UTC().Truncate(24 * time.Hour)
}

// Daily sums records into rollup rows sorted by key, user and day: the order in which
// drivers update them, so that concurrent transactions lock rows in one order and cannot
// deadlock. A record without a time counts at at, as Append stores it.
func Daily(recs []UsageRecord, at time.Time) []DayTotal {
	type k struct {
		key, user string
		day       time.Time
	}
	var out []DayTotal
	idx := make(map[k]int)
	for i := range recs {
		r := &recs[i]
		t := r.Time
		if t.IsZero() {
			t = at
		}
		kk := k{r.KeyID, r.UserID, Day(t)}
		j, ok := idx[kk]
		if !ok {
			j = len(out)
			idx[kk] = j
			out = append(out, DayTotal{KeyID: r.KeyID, UserID: r.UserID, Day: kk.day})
		}
		d := &out[j]
		d.Requests++
		d.PromptTokens += r.PromptTokens
		d.CompletionTokens += r.CompletionTokens
	}
	slices.SortFunc(out, func(a, b DayTotal) int {
		return cmp.Or(cmp.Compare(a.KeyID, b.KeyID), cmp.Compare(a.UserID, b.UserID), a.Day.Compare(b.Day))
	})
	return out
}

// RollupCovers reports whether the daily rollup can answer UsageTotals for f: no model
// filter, and a period whose ends are open or UTC midnights.
func RollupCovers(f UsageFilter) bool {
	aligned := func(t time.Time) bool { return t.IsZero() || t.Equal(Day(t)) }
	return f.Model == "" && aligned(f.From) && aligned(f.To)
}
