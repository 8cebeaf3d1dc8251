package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/store"
)

// Bench runs the shared benchmarks against a driver:
//
//   - Append/batch=N: usage records written N per transaction, as Batcher batches them;
//     reports records/s.
//   - Batcher: records handed to a Batcher (Size 512) from 8 goroutines and flushed;
//     reports records/s end to end.
//   - UsageTotals: one quota check over a day for a key among 100 keys with 50,000 records,
//     from the daily rollup and (a period not of whole days) from the records.
func Bench(b *testing.B, newDB NewDB) {
	ctx := context.Background()
	rec := func(i int) store.UsageRecord {
		r := usageAt(day.Add(time.Duration(i)*time.Millisecond), fmt.Sprintf("key_%03d", i%100), "usr_1",
			"glm-4-flash", int64(i%1000), 200)
		r.TraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		return r
	}
	for _, size := range []int{1, 64, 512} {
		b.Run(fmt.Sprintf("Append/batch=%d", size), func(b *testing.B) {
			s := newDB(b)(b)
			recs := make([]store.UsageRecord, size)
			for i := range recs {
				recs[i] = rec(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for n := range b.N {
				// Each batch is later than the last, as on a live server.
				for i := range recs {
					recs[i].Time = day.Add(time.Duration(n*size+i) * time.Millisecond)
				}
				if err := s.Append(ctx, store.NewBatchID(), recs, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "records/s")
		})
	}
	b.Run("Batcher", func(b *testing.B) {
		s := newDB(b)(b)
		bt := store.NewBatcher(s, store.BatcherOptions{Size: 512, Interval: 50 * time.Millisecond, Queue: 1 << 22})
		b.ReportAllocs()
		b.ResetTimer()
		b.SetParallelism(1)
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				bt.Usage(rec(i))
				i++
			}
		})
		if err := bt.Close(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if st := bt.Stats(); st.Dropped != 0 || st.Failed != 0 || st.Written != int64(b.N) {
			b.Fatalf("batcher stats %+v after %d records", st, b.N)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("UsageTotals", func(b *testing.B) {
		s := newDB(b)(b)
		recs := make([]store.UsageRecord, 0, 50000)
		for i := range cap(recs) {
			recs = append(recs, rec(i*3)) // spread over ~2.5 minutes of one day
		}
		for i := 0; i < len(recs); i += 5000 {
			if err := s.Append(ctx, store.NewBatchID(), recs[i:i+5000], nil); err != nil {
				b.Fatal(err)
			}
		}
		for _, tc := range []struct {
			name string
			f    store.UsageFilter
		}{
			{"rollup", store.UsageFilter{KeyID: "key_042", From: day, To: day.AddDate(0, 0, 1)}},
			{"records", store.UsageFilter{KeyID: "key_042", From: day.Add(time.Microsecond), To: day.AddDate(0, 0, 1)}},
		} {
			b.Run(tc.name, func(b *testing.B) {
				for range b.N {
					t, err := s.UsageTotals(ctx, tc.f)
					if err != nil || t.Requests != 500 {
						b.Fatalf("totals %+v, %v", t, err)
					}
				}
			})
		}
	})
}
