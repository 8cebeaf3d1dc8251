package sqlstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/store/sqlite"
	"github.com/open-autoglm/autoglm/internal/store/sqlstore"
)

// TestAppendPrunesBatchIDs: Append forgets batch ids older than store.BatchMemory by itself,
// at most once a minute: an id stamped long ago is still remembered until a minute has
// passed since the last prune, and forgotten at the first Append after that.
func TestAppendPrunesBatchIDs(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "autoglm.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	sqlstore.SetClock(s.Store, func() time.Time { return now })
	written := int64(0)
	appendAt := func(at time.Time, id string, applied bool) {
		t.Helper()
		now = at
		rec := store.UsageRecord{Time: at, KeyID: "k", Model: "m", PromptTokens: 1}
		if err := s.Append(ctx, id, []store.UsageRecord{rec}, nil); err != nil {
			t.Fatal(err)
		}
		if applied {
			written++
		}
		got, err := s.UsageTotals(ctx, store.UsageFilter{KeyID: "k"})
		if err != nil {
			t.Fatal(err)
		}
		if got.Requests != written {
			t.Fatalf("Append(%s) at %v: %d records in the store, want %d", id, at.Format(time.TimeOnly), got.Requests, written)
		}
	}
	start := now
	appendAt(start, "first", true) // prunes (nothing yet): the last prune is now start
	old := start.Add(-2 * store.BatchMemory)
	appendAt(old, "old", true) // a clock far behind stamps an id that is already due
	appendAt(start.Add(30*time.Second), "old", false)
	appendAt(start.Add(59*time.Second), "old", false) // no prune within the minute
	appendAt(start.Add(time.Minute), "next", true)    // prunes "old"; "first" is recent
	appendAt(start.Add(time.Minute+time.Second), "old", true)
	appendAt(start.Add(time.Minute+2*time.Second), "first", false)
	// An hour and two minutes on, "first" (and the rest but the last) are forgotten.
	appendAt(start.Add(store.BatchMemory+2*time.Minute), "later", true)
	appendAt(start.Add(store.BatchMemory+2*time.Minute+time.Second), "first", true)
	appendAt(start.Add(store.BatchMemory+2*time.Minute+2*time.Second), "later", false)
}
