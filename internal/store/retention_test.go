package store

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/config"
)

type fakePruner struct {
	mu           sync.Mutex
	usage, audit []time.Time
	fail         error
}

func (f *fakePruner) DeleteUsageBefore(_ context.Context, t time.Time) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.usage = append(f.usage, t)
	return 1, f.fail
}

func (f *fakePruner) DeleteAuditBefore(_ context.Context, t time.Time) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.audit = append(f.audit, t)
	return 2, f.fail
}

func (f *fakePruner) auditRuns() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.audit)
}

func TestRetention(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f := &fakePruner{}
	r := NewRetention(f, config.Store{AuditRetention: config.Duration(24 * time.Hour), UsageRetention: config.Duration(48 * time.Hour)}, slog.New(slog.DiscardHandler))
	r.Now = func() time.Time { return now }
	if err := r.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(f.audit) != 1 || !f.audit[0].Equal(now.Add(-24*time.Hour)) || len(f.usage) != 1 || !f.usage[0].Equal(now.Add(-48*time.Hour)) {
		t.Errorf("cut-offs: audit %v, usage %v", f.audit, f.usage)
	}
	f.fail = errors.New("down")
	if err := r.Once(context.Background()); err == nil {
		t.Error("a failing store is not reported")
	}

	// Run prunes at once and then every tick, until canceled.
	f2 := &fakePruner{}
	r2 := &Retention{Store: f2, Audit: time.Hour, Every: time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r2.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		if f2.auditRuns() >= 3 {
			break
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
	if len(f2.audit) < 3 || len(f2.usage) != 0 {
		t.Errorf("runs: %d audit prunes, %d usage prunes (usage retention 0 keeps records)", len(f2.audit), len(f2.usage))
	}
}
