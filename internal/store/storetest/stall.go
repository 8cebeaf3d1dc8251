package storetest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/store"
)

// BatcherStall checks a Batcher against a real store that stops writing: stall blocks every
// write to the usage records (a lock held elsewhere) until release is called. While stalled,
// handing over records stays instant, the queue's bound holds and the overflow is counted;
// once released, everything queued is written, once: an attempt whose deadline expires just
// as the release lets its COMMIT through looks failed to the Batcher, and its retry, under
// the same batch id, must not write the records again.
func BatcherStall(t *testing.T, s store.Store, stall func(t *testing.T) (release func())) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const queue, sent = 1000, 5000
	b := store.NewBatcher(s, store.BatcherOptions{Size: 50, Interval: 5 * time.Millisecond, Queue: queue,
		WriteTimeout: 100 * time.Millisecond, Attempts: 1000, Logger: slog.New(slog.DiscardHandler)})
	defer b.Close(ctx)

	release := stall(t)
	start := time.Now()
	for i := range sent {
		b.Usage(usageAt(day.Add(time.Duration(i)*time.Millisecond), "stalled", "u", "m", 1, 1))
	}
	// Generous for a loaded machine under -race; the real cost is about 100 ns a record.
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("handing over %d records to a stalled store took %v", sent, d)
	}
	time.Sleep(200 * time.Millisecond) // some write attempts time out meanwhile
	st := b.Stats()
	if st.Written != 0 || st.Queued > 2*queue || st.Queued+st.Dropped != sent {
		t.Errorf("while stalled: %+v", st)
	}
	release()
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st = b.Stats()
	if st.Written != st.Queued || st.Failed != 0 || st.Pending != 0 {
		t.Errorf("after the stall: %+v", st)
	}
	tot := try(s.UsageTotals(ctx, store.UsageFilter{KeyID: "stalled"})).must(t)
	if tot.Requests != st.Written {
		t.Errorf("%d records in the store, %d written", tot.Requests, st.Written)
	}
}
