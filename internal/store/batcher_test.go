package store

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeAppender records batches; block, if set, makes Append wait for it (or the context),
// fail makes Append fail, and failNext makes that many calls fail.
type fakeAppender struct {
	mu       sync.Mutex
	batches  [][2]int // sizes: usage, audit
	usage    []UsageRecord
	audit    []AuditRecord
	ids      []string // the batch id of every call, in order
	calls    atomic.Int64
	block    chan struct{}
	fail     atomic.Bool
	failNext atomic.Int64
}

func (f *fakeAppender) Append(ctx context.Context, batch string, usage []UsageRecord, audit []AuditRecord) error {
	f.calls.Add(1)
	f.mu.Lock()
	f.ids = append(f.ids, batch)
	f.mu.Unlock()
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.fail.Load() || f.failNext.Add(-1) >= 0 {
		return errors.New("store down")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, [2]int{len(usage), len(audit)})
	f.usage = append(f.usage, usage...)
	f.audit = append(f.audit, audit...)
	return nil
}

func (f *fakeAppender) counts() (batches, usage, audit int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.batches), len(f.usage), len(f.audit)
}

func quietLogger(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, nil))
}

func TestBatcherSizeTriggersWrite(t *testing.T) {
	f := &fakeAppender{}
	b := NewBatcher(f, BatcherOptions{Size: 10, Interval: time.Hour, Queue: 1000})
	defer b.Close(context.Background())
	for i := range 25 {
		b.Usage(UsageRecord{Model: "m", PromptTokens: int64(i)})
	}
	// Without waiting for the (hour-long) interval, records go out until fewer than a batch
	// are left: the writer takes everything queued when woken, so which records are left
	// depends on when it woke (written 10, 10 and 5 left, or 16 and 9 left), but never a
	// full batch.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, u, _ := f.counts(); u >= 25-9 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("full batches were not written before the interval")
		}
		time.Sleep(time.Millisecond)
	}
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, u, _ := f.counts()
	if u != 25 {
		t.Fatalf("%d records written, want 25", u)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range f.usage {
		if r.PromptTokens != int64(i) || r.Time.IsZero() {
			t.Fatalf("record %d out of order or without time: %+v", i, r)
		}
	}
	for _, bt := range f.batches {
		if bt[0]+bt[1] > 10 {
			t.Errorf("batch of %v exceeds Size 10", bt)
		}
	}
}

func TestBatcherIntervalTriggersWrite(t *testing.T) {
	f := &fakeAppender{}
	b := NewBatcher(f, BatcherOptions{Size: 1000, Interval: 10 * time.Millisecond})
	defer b.Close(context.Background())
	b.Audit(AuditRecord{Actor: "a", Action: "x", Result: "ok"})
	b.Usage(UsageRecord{Model: "m"})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if n, u, a := f.counts(); n == 1 && u == 1 && a == 1 {
			break // one transaction with both kinds
		}
		if time.Now().After(deadline) {
			t.Fatalf("records not written after the interval: %v", f.batches)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBatcherRestsWhileIdle: with nothing queued the writer's clock stops (an idle server
// does not wake every Interval), and a record queued after a quiet spell is still written
// without a Flush, each time.
func TestBatcherRestsWhileIdle(t *testing.T) {
	f := &fakeAppender{}
	b := NewBatcher(f, BatcherOptions{Size: 1000, Interval: 10 * time.Millisecond})
	defer b.Close(context.Background())
	resting := func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.resting
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatal(what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for i := range 3 {
		waitFor("the writer did not rest with nothing queued", resting)
		calls := f.calls.Load()
		time.Sleep(50 * time.Millisecond) // five intervals
		if n := f.calls.Load(); n != calls {
			t.Fatalf("quiet spell %d: %d writes with nothing queued", i, n-calls)
		}
		if i%2 == 0 {
			b.Usage(UsageRecord{Model: "m"})
		} else {
			b.Audit(AuditRecord{Actor: "a", Action: "x", Result: "ok"})
		}
		waitFor("a record queued after a quiet spell was not written", func() bool {
			_, u, a := f.counts()
			return u+a == i+1
		})
	}
}

// TestBatcherNeverBlocks: with the store hanging, the request path keeps going at full speed;
// records beyond the queue are dropped and counted, and a log line says so.
func TestBatcherNeverBlocks(t *testing.T) {
	f := &fakeAppender{block: make(chan struct{})}
	var logs bytes.Buffer
	b := NewBatcher(f, BatcherOptions{Size: 10, Interval: time.Millisecond, Queue: 100, Logger: quietLogger(&logs)})
	start := time.Now()
	for range 10000 {
		b.Usage(UsageRecord{Model: "m"})
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("10000 calls took %v with the store hanging", d)
	}
	st := b.Stats()
	if st.Dropped == 0 || st.Queued+st.Dropped != 10000 || st.Queued > 2*100 {
		t.Errorf("stats with a hanging store: %+v", st)
	}
	if !bytes.Contains(logs.Bytes(), []byte("dropping records")) {
		t.Errorf("no log line about dropped records: %q", logs.String())
	}
	// Flush waits for the store, but only as long as its context allows.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Flush with a hanging store: %v", err)
	}
	// Close gives up when its context ends, abandoning what it could not write.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if err := b.Close(ctx2); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close with a hanging store: %v", err)
	}
	st = b.Stats()
	if st.Written != 0 || st.Failed != st.Queued || st.Pending != 0 {
		t.Errorf("after abandoned Close: %+v", st)
	}
	// A closed Batcher drops.
	b.Usage(UsageRecord{})
	b.Audit(AuditRecord{})
	if got := b.Stats().Dropped; got != st.Dropped+2 {
		t.Errorf("records after Close: dropped %d, want %d", got, st.Dropped+2)
	}
	if err := b.Flush(context.Background()); err == nil {
		t.Error("Flush after Close succeeded")
	}
	if err := b.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestBatcherRetries: a failing store is retried; a batch that keeps failing is given up and
// counted, and the Batcher goes on with later records once the store is back.
func TestBatcherRetries(t *testing.T) {
	f := &fakeAppender{}
	f.fail.Store(true)
	var logs bytes.Buffer
	b := NewBatcher(f, BatcherOptions{Size: 5, Interval: time.Millisecond, Attempts: 2, Logger: quietLogger(&logs)})
	for range 3 {
		b.Usage(UsageRecord{Model: "lost"})
	}
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := b.Stats()
	if st.Failed != 3 || st.Written != 0 || f.calls.Load() != 2 {
		t.Errorf("after a failing store: %+v, %d calls (want 2 attempts)", st, f.calls.Load())
	}
	if !bytes.Contains(logs.Bytes(), []byte("giving up")) {
		t.Errorf("no log line about the lost batch: %q", logs.String())
	}
	f.fail.Store(false)
	b.Usage(UsageRecord{Model: "kept"})
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Written != 1 || st.Failed != 3 {
		t.Errorf("after recovery: %+v", st)
	}

	// A transient failure is retried until it succeeds.
	f2 := &fakeAppender{}
	f2.fail.Store(true)
	b2 := NewBatcher(f2, BatcherOptions{Size: 5, Interval: time.Millisecond, Attempts: 5})
	defer b2.Close(context.Background())
	b2.Usage(UsageRecord{Model: "m"})
	for f2.calls.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	f2.fail.Store(false)
	if err := b2.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := b2.Stats(); st.Written != 1 || st.Failed != 0 {
		t.Errorf("after a transient failure: %+v", st)
	}
}

// TestBatcherRetrySameID: every attempt at a batch carries the same batch id, so that the
// store applies it once however many attempts reach it; another batch has another id.
func TestBatcherRetrySameID(t *testing.T) {
	f := &fakeAppender{}
	f.failNext.Store(2)
	b := NewBatcher(f, BatcherOptions{Size: 5, Interval: time.Hour, Attempts: 100})
	defer b.Close(context.Background())
	b.Usage(UsageRecord{Model: "m"})
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.Usage(UsageRecord{Model: "m"})
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	ids := slices.Clone(f.ids)
	f.mu.Unlock()
	if len(ids) != 4 {
		t.Fatalf("%d calls (%q), want 3 attempts at the first batch and 1 at the second", len(ids), ids)
	}
	first, second := ids[:len(ids)-1], ids[len(ids)-1]
	for i, id := range first {
		if !strings.HasPrefix(id, "bat_") || len(id) != len("bat_")+26 || id != first[0] {
			t.Errorf("attempt %d at the first batch has id %q, want %q on every attempt", i+1, id, first[0])
		}
	}
	if second == first[0] || !strings.HasPrefix(second, "bat_") {
		t.Errorf("the second batch has id %q, the first %q: want a new id", second, first[0])
	}
	if st := b.Stats(); st.Written != 2 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestBatcherRetryBound: no attempt starts whose deadline falls more than retryFor after
// the batch's first attempt, whatever Attempts says, so that every retry still finds the
// batch id the store remembers for BatchMemory.
func TestBatcherRetryBound(t *testing.T) {
	if retryFor > BatchMemory/2 {
		t.Fatalf("retries may go on for %v, too close to the %v the store remembers batch ids", retryFor, BatchMemory)
	}
	f := &fakeAppender{}
	f.fail.Store(true)
	var logs bytes.Buffer
	// A second attempt would start after the 100 ms backoff and could run until retryFor
	// plus that: refused.
	b := NewBatcher(f, BatcherOptions{Size: 5, Interval: time.Hour, Attempts: 3, WriteTimeout: retryFor,
		Logger: quietLogger(&logs)})
	defer b.Close(context.Background())
	b.Usage(UsageRecord{Model: "m"})
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); f.calls.Load() != 1 || st.Failed != 1 {
		t.Errorf("%d attempts, stats %+v; want one attempt, then the batch given up", f.calls.Load(), st)
	}
}

func TestBatcherConcurrent(t *testing.T) {
	f := &fakeAppender{}
	b := NewBatcher(f, BatcherOptions{Size: 64, Interval: time.Millisecond})
	var wg sync.WaitGroup
	for w := range 50 {
		wg.Go(func() {
			for i := range 200 {
				if i%10 == 0 {
					b.Audit(AuditRecord{Actor: "w", Action: "x", Result: "ok"})
				} else {
					b.Usage(UsageRecord{Model: "m", CompletionTokens: int64(w)})
				}
				if i == 100 && w%10 == 0 {
					_ = b.Flush(context.Background())
				}
			}
		})
	}
	wg.Wait()
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, u, a := f.counts()
	if u != 50*180 || a != 50*20 {
		t.Errorf("written %d usage, %d audit; want %d, %d", u, a, 50*180, 50*20)
	}
	if st := b.Stats(); st.Queued != 10000 || st.Written != 10000 || st.Dropped != 0 || st.Pending != 0 {
		t.Errorf("stats %+v", st)
	}
}

// BenchmarkBatcherUsage is the cost the request path pays per usage record.
func BenchmarkBatcherUsage(b *testing.B) {
	bt := NewBatcher(discard{}, BatcherOptions{Size: 512, Interval: 10 * time.Millisecond, Queue: 1 << 20})
	defer bt.Close(context.Background())
	r := UsageRecord{KeyID: "key_0123456789", UserID: "usr_0123456789", Model: "glm-4-flash", Backend: "vllm-a",
		PromptTokens: 100, CompletionTokens: 200, Latency: time.Second, Status: 200, TraceID: "0123456789abcdef"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bt.Usage(r)
		}
	})
}

type discard struct{}

func (discard) Append(context.Context, string, []UsageRecord, []AuditRecord) error { return nil }
