package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/open-autoglm/autoglm/internal/admin"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/ratelimit"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/usage"

	// Store drivers: SQLite, the embedded default, and PostgreSQL.
	_ "github.com/open-autoglm/autoglm/internal/store/postgres"
	_ "github.com/open-autoglm/autoglm/internal/store/sqlite"
)

// adminKeyEnv names the environment variable holding the bootstrap admin key. Setting it turns
// authentication on.
const adminKeyEnv = "AUTOGLM_ADMIN_KEY"

// governance is serve's accounting and access part: the store (always open: SQLite under the
// data dir by default), the batcher that writes usage and audit records off the request path,
// the rate limiter, and — when authentication is on — the authenticator and the admin API. It
// starts no goroutine: serve runs the retention and the key refresh as components.
type governance struct {
	store   store.Store
	batcher *store.Batcher
	limiter *ratelimit.Limiter
	auth    *auth.Authenticator
	admin   *admin.API
	log     *slog.Logger
}

// setupGovernance opens the store and builds the limiter; it turns authentication on when
// auth.enabled is set or AUTOGLM_ADMIN_KEY is, loading the keys before the server listens.
// With authentication off it refuses a listen address other than loopback unless insecure is
// set: an open gateway on a network is a mistake far more often than a choice.
func setupGovernance(ctx context.Context, cfg *config.Config, dataDir string, insecure bool, log *slog.Logger) (_ *governance, err error) {
	adminKey := os.Getenv(adminKeyEnv)
	authOn := cfg.Auth.Enabled || adminKey != ""
	if !authOn {
		if !loopbackAddr(cfg.Server.Addr) && !insecure {
			return nil, fmt.Errorf("refusing to listen on %s with authentication off: set auth.enabled (or %s), "+
				"listen on 127.0.0.1, or pass --insecure to serve everyone without credentials", cfg.Server.Addr, adminKeyEnv)
		}
		if !loopbackAddr(cfg.Server.Addr) {
			log.Warn("authentication is off and the server listens beyond loopback (--insecure)", "addr", cfg.Server.Addr)
		}
	}
	g := &governance{log: log}
	defer func() {
		if err != nil {
			g.Close()
		}
	}()
	g.store, err = store.Open(ctx, cfg.Store, dataDir)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	bo := store.BatcherOptionsFrom(cfg.Store.Batch)
	bo.Logger = log
	g.batcher = store.NewBatcher(g.store, bo)
	g.limiter, err = ratelimit.New(cfg.RateLimit, ratelimit.Options{Logger: log, Usage: quotaUsage{g.store}})
	if err != nil {
		return nil, fmt.Errorf("ratelimit: %w", err)
	}
	if !authOn {
		return g, nil
	}
	g.auth, err = auth.New(auth.Options{Config: cfg.Auth, Keys: admin.KeyFeed(g.store), AdminKey: adminKey, Logger: log})
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = g.auth.Refresh(lctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("auth: load keys: %w", err)
	}
	log.Info("authentication on", "keys", g.auth.CachedKeys(), "admin_key", adminKey != "", "jwt", cfg.Auth.JWT.Configured(),
		"key_refresh", cfg.Auth.KeyRefresh.D().String())
	g.admin = admin.New(admin.Options{Store: g.store, Roles: g.auth.Roles(), Logger: log, KeysChanged: g.auth.Refresh})
	return g, nil
}

// usageSink is the one sink of model-call outcomes, HTTP requests and task runs alike: it
// settles quota reservations, queues usage records in the batcher and hands each outcome to
// observe (the metrics) when that is not nil.
func (g *governance) usageSink(observe func(context.Context, usage.Outcome)) usage.Sink {
	return usage.NewRecorder(g.batcher, observe).Record
}

// apply connects governance to the server and the model routes: authentication, admin routes,
// the limit stage and a usage sink without metrics (serve replaces it with one that also
// observes the metrics, shared with the task system).
//
// Limits are charged to a caller's key and user, so without authentication no request has
// anyone to charge (subjectOf) and the limit stage would only pass every request on: the
// routes are then built without it, one layer and two context searches fewer per request.
func (g *governance) apply(opts *server.Options, oa *openai.Options) {
	oa.OnDone = g.usageSink(nil)
	if g.auth == nil {
		return
	}
	opts.Limit = g.limiter.Stage(ratelimit.MiddlewareOptions{Subject: subjectOf})
	opts.Auth = g.auth
	opts.Denied = g.admin.Denied
	opts.Routes = append(opts.Routes, g.admin.Routes()...)
}

// subjectOf charges a request to its key and user; without a principal (auth off) the request
// is not limited.
func subjectOf(r *http.Request) (ratelimit.Subject, bool) {
	p, ok := auth.FromContext(r.Context())
	if !ok || p == nil {
		return ratelimit.Subject{}, false
	}
	return ratelimit.Subject{KeyID: p.KeyID, UserID: p.UserID, Role: p.Role}, true
}

// Close writes the queued records and closes the store. The background work over the store
// (retention, key refresh) is serve's to run and must have stopped.
func (g *governance) Close() error {
	if g.batcher != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := g.batcher.Close(ctx); err != nil {
			g.log.Warn("usage and audit records not all written at shutdown", "err", err)
		}
		cancel()
	}
	if g.limiter != nil {
		_ = g.limiter.Close()
	}
	if g.store != nil {
		return g.store.Close()
	}
	return nil
}

// quotaUsage gives quota checks the store's usage totals.
type quotaUsage struct{ st store.Store }

func (q quotaUsage) KeyTokens(ctx context.Context, keyID string, since time.Time) (int64, error) {
	t, err := q.st.UsageTotals(ctx, store.UsageFilter{KeyID: keyID, From: since})
	if err != nil {
		return 0, err
	}
	return t.Tokens(), nil
}

func (q quotaUsage) UserTokens(ctx context.Context, userID string, since time.Time) (int64, error) {
	t, err := q.st.UsageTotals(ctx, store.UsageFilter{UserID: userID, From: since})
	if err != nil {
		return 0, err
	}
	return t.Tokens(), nil
}

// loopbackAddr reports whether a listen address only accepts local connections. An empty
// host listens everywhere; host names other than localhost are not trusted to stay local.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
