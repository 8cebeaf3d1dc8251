package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/open-autoglm/autoglm/internal/admin"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/store"

	// Store drivers: SQLite, the embedded default, and PostgreSQL.
	_ "github.com/open-autoglm/autoglm/internal/store/postgres"
	_ "github.com/open-autoglm/autoglm/internal/store/sqlite"
)

// adminKeyEnv names the environment variable holding the bootstrap admin key. Setting it turns
// authentication on.
const adminKeyEnv = "AUTOGLM_ADMIN_KEY"

// governance is serve's authentication part: the store, the authenticator refreshing its key
// cache from it, and the admin API. Its zero value means authentication is off.
type governance struct {
	store store.Store
	auth  *auth.Authenticator
	admin *admin.API
	stop  context.CancelFunc
}

// setupAuth turns authentication on when auth.enabled is set or AUTOGLM_ADMIN_KEY is, opening
// the store and loading the keys before the server listens. With authentication off it
// refuses a listen address other than loopback unless insecure is set: an open gateway on a
// network is a mistake far more often than a choice.
func setupAuth(ctx context.Context, cfg *config.Config, dataDir string, insecure bool, log *slog.Logger) (*governance, error) {
	adminKey := os.Getenv(adminKeyEnv)
	if !cfg.Auth.Enabled && adminKey == "" {
		if !loopbackAddr(cfg.Server.Addr) && !insecure {
			return nil, fmt.Errorf("refusing to listen on %s with authentication off: set auth.enabled (or %s), "+
				"listen on 127.0.0.1, or pass --insecure to serve everyone without credentials", cfg.Server.Addr, adminKeyEnv)
		}
		if !loopbackAddr(cfg.Server.Addr) {
			log.Warn("authentication is off and the server listens beyond loopback (--insecure)", "addr", cfg.Server.Addr)
		}
		return &governance{}, nil
	}
	st, err := store.Open(ctx, cfg.Store, dataDir)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	a, err := auth.New(auth.Options{Config: cfg.Auth, Keys: admin.KeyFeed(st), AdminKey: adminKey, Logger: log})
	if err != nil {
		st.Close()
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = a.Refresh(lctx)
	cancel()
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("auth: load keys: %w", err)
	}
	rctx, stop := context.WithCancel(ctx)
	go a.Run(rctx)
	log.Info("authentication on", "keys", a.CachedKeys(), "admin_key", adminKey != "", "jwt", cfg.Auth.JWT.Configured(),
		"key_refresh", cfg.Auth.KeyRefresh.D().String())
	return &governance{
		store: st,
		auth:  a,
		admin: admin.New(admin.Options{Store: st, Roles: a.Roles(), Logger: log, KeysChanged: a.Refresh}),
		stop:  stop,
	}, nil
}

// apply adds authentication and the admin API to the server's options.
func (g *governance) apply(opts *server.Options) {
	if g.auth == nil {
		return
	}
	opts.Auth = g.auth
	opts.Denied = g.admin.Denied
	opts.Routes = append(opts.Routes, g.admin.Routes()...)
}

// Close stops the key refresh and closes the store.
func (g *governance) Close() error {
	if g.stop != nil {
		g.stop()
	}
	if g.store != nil {
		return g.store.Close()
	}
	return nil
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
