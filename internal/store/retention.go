package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/open-autoglm/autoglm/internal/config"
)

// Pruner deletes old records; Store implements it.
type Pruner interface {
	DeleteUsageBefore(ctx context.Context, t time.Time) (int64, error)
	DeleteAuditBefore(ctx context.Context, t time.Time) (int64, error)
}

// Retention deletes usage and audit records older than their retention periods, once at
// start and then periodically. Several replicas running it against one database is harmless:
// the deletions are idempotent.
type Retention struct {
	Store Pruner
	// Audit and Usage are the retention periods; zero keeps those records.
	Audit, Usage time.Duration
	// Every is the pause between runs. Default 1h.
	Every time.Duration
	// Logger reports what was deleted and failures. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// NewRetention returns the Retention the "store" settings ask for, logging to log (the
// server's logger: a running server's lines go where its configuration sends them).
func NewRetention(s Pruner, c config.Store, log *slog.Logger) *Retention {
	return &Retention{Store: s, Audit: c.AuditRetention.D(), Usage: c.UsageRetention.D(), Logger: log}
}

// Run prunes until ctx is done, then returns ctx's error. A failed run is logged and tried
// again at the next tick.
func (r *Retention) Run(ctx context.Context) error {
	every := r.Every
	if every <= 0 {
		every = time.Hour
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := r.Once(ctx); err != nil && ctx.Err() == nil {
			r.logger().Error("store: retention", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Once prunes one time.
func (r *Retention) Once(ctx context.Context) error {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	var errs []error
	if r.Audit > 0 {
		n, err := r.Store.DeleteAuditBefore(ctx, now().Add(-r.Audit))
		if err != nil {
			errs = append(errs, fmt.Errorf("audit: %w", err))
		} else if n > 0 {
			r.logger().Info("store: deleted old audit records", "count", n, "retention", r.Audit)
		}
	}
	if r.Usage > 0 {
		n, err := r.Store.DeleteUsageBefore(ctx, now().Add(-r.Usage))
		if err != nil {
			errs = append(errs, fmt.Errorf("usage: %w", err))
		} else if n > 0 {
			r.logger().Info("store: deleted old usage records", "count", n, "retention", r.Usage)
		}
	}
	return errors.Join(errs...)
}

func (r *Retention) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}
