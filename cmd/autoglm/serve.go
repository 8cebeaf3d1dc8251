package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/open-autoglm/autoglm/internal/batch"
	"github.com/open-autoglm/autoglm/internal/cache"
	"github.com/open-autoglm/autoglm/internal/codeapi"
	"github.com/open-autoglm/autoglm/internal/codecomplete"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/grpcapi"
	"github.com/open-autoglm/autoglm/internal/metrics"
	"github.com/open-autoglm/autoglm/internal/modelstore"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/respstore"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/telemetry"
	"github.com/open-autoglm/autoglm/models"
	"github.com/open-autoglm/autoglm/web"
)

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func serveCmd() *cobra.Command {
	var cfgPath, addr, dataDir string
	var insecure bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the OpenAI-compatible API",
		Long: `serve starts the gateway. Without --config it runs the embedded default configuration,
which serves the bundled demo model when the local engine is built in.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var (
				cfg *config.Config
				err error
			)
			source := "embedded default configuration"
			if cfgPath != "" {
				cfg, err = config.Load(cfgPath)
				source = cfgPath
			} else {
				cfg, err = config.Parse(config.DefaultYAML(), os.LookupEnv)
				if err == nil {
					err = useBundledDemo(cfg, dataDir)
				}
			}
			if err != nil {
				return err
			}
			if addr != "" {
				cfg.Server.Addr = addr
				if err := cfg.Validate(); err != nil {
					return err
				}
			}
			return serve(cmd.Context(), cfg, source, dataDir, insecure)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "configuration file (default: the embedded configuration)")
	f.StringVar(&addr, "addr", "", "listen address, overriding server.addr (default 127.0.0.1:8080)")
	f.StringVar(&dataDir, "data-dir", "./data", "directory for the server's data files")
	f.BoolVar(&insecure, "insecure", false, "allow a non-loopback address with authentication off")
	return cmd
}

// Garbage-collector defaults for serve, used unless GOGC or GOMEMLIMIT are set. A gateway's
// live heap is small and its garbage is per request, so the default GOGC=100 collects every few
// milliseconds under load and each collection lands in some request's tail: measured with
// `autoglm bench` at one client, GOGC=400 cut the added p99 from ~730 µs to ~450 µs at the same
// p50. The memory limit keeps a large heap (thousands of open streams) from growing five-fold
// before a collection.
const (
	serveGCPercent   = 400
	serveMemoryLimit = 2 << 30
)

func tuneGC(log interface{ Info(string, ...any) }) {
	gogc, limit := os.Getenv("GOGC"), os.Getenv("GOMEMLIMIT")
	if gogc == "" {
		debug.SetGCPercent(serveGCPercent)
		gogc = strconv.Itoa(serveGCPercent)
	}
	if limit == "" {
		debug.SetMemoryLimit(serveMemoryLimit)
		limit = strconv.Itoa(serveMemoryLimit)
	}
	log.Info("garbage collector", "gogc", gogc, "memory_limit", limit)
}

// profileContention turns on the mutex and block profiles server.profile_mutex_fraction and
// server.profile_block_rate ask for (both off by default: sampling costs a little on every
// contended lock and blocking operation).
func profileContention(s config.Server, log *slog.Logger) {
	if s.ProfileMutexFraction > 0 {
		runtime.SetMutexProfileFraction(s.ProfileMutexFraction)
	}
	if s.ProfileBlockRate > 0 {
		runtime.SetBlockProfileRate(int(max(s.ProfileBlockRate.D().Nanoseconds(), 1)))
	}
	if s.ProfileMutexFraction > 0 || s.ProfileBlockRate > 0 {
		log.Info("contention profiling on", "mutex_fraction", s.ProfileMutexFraction, "block_rate", s.ProfileBlockRate.D().String())
	}
}

func serve(ctx context.Context, cfg *config.Config, source, dataDir string, insecure bool) error {
	log := telemetry.NewLogger(os.Stderr, telemetry.ParseLevel(cfg.Log.Level))
	// Backends built by their registered factories (a local model's load progress and
	// memory) log through the default logger: make it this one.
	slog.SetDefault(log)
	tuneGC(log)
	profileContention(cfg.Server, log)
	if err := prepareDataDir(dataDir, log); err != nil {
		return err
	}
	modelStore := &modelstore.Store{Dir: modelstore.DefaultDir(dataDir)}
	if err := resolvePulledModels(cfg, modelStore); err != nil {
		return err
	}
	reg, err := router.New(cfg.Models, router.Options{Logger: log})
	if err != nil {
		return err
	}
	defer reg.Close()
	var respCache *cache.Cache
	if cfg.Cache.Enabled {
		respCache, err = cache.New(cfg.Cache, log)
		if err != nil {
			return fmt.Errorf("cache: %w", err)
		}
		defer respCache.Close()
	}
	log.Info("configuration loaded", "source", source, "models", len(cfg.Models), "data_dir", dataDir)

	// Probe once before listening so /readyz is meaningful from the first request, then keep
	// probing in the background.
	reg.Probe(ctx, 2*time.Second, log)
	hctx, stopHealth := context.WithCancel(ctx)
	defer stopHealth()
	go reg.RunHealth(hctx, 10*time.Second, 2*time.Second, log)

	gov, err := setupGovernance(ctx, cfg, dataDir, insecure, log)
	if err != nil {
		return err
	}
	defer gov.Close()
	opts := server.Options{Cache: respCache}
	gov.apply(&opts)
	tasks, err := startTasks(ctx, cfg, dataDir, gov.store, reg, gov.batcher.Usage, log)
	if err != nil {
		return err
	}
	defer tasks.Close()
	// Webhooks never call the gateway itself: its configured address is refused from the
	// start (deliveries left from an earlier run may be due now), the bound one once known.
	if ap, err := netip.ParseAddrPort(cfg.Server.Addr); err == nil && ap.Port() != 0 {
		tasks.svc.RefuseListener(net.TCPAddrFromAddrPort(ap))
	}
	opts.Routes = append(opts.Routes, tasks.Routes()...)
	// The web console at / and /ui/, GET /v1/me (who the caller is) and GET /v1/admin/engine
	// (the local engine's models).
	opts.Routes = append(opts.Routes, web.New(web.Options{Auth: gov.auth, Registry: reg, Models: cfg.Models}).Routes()...)
	opts.Routes = append(opts.Routes, modelStore.Routes()...)
	// Code completions run through the server's own completions handler, built below.
	var srv *server.Server
	opts.Routes = append(opts.Routes, codecomplete.Routes(func(w http.ResponseWriter, r *http.Request) error { return srv.Completions(w, r) })...)
	opts.Routes = append(opts.Routes, codeapi.Routes(tasks.checker, tasks.codeStats)...)
	// Stored responses of the Responses API live in the same database as the tasks.
	st := gov.store
	if st == nil {
		st = tasks.owned
	}
	responses, err := respstore.Open(ctx, st)
	if err != nil {
		return err
	}
	defer responses.Close()
	opts.Responses = responses
	// Files and batches live there too; each batch line is served by the server's own
	// handler (built below) as the caller that created the batch.
	bopts := batch.Options{Config: cfg.Batch, Handler: func() http.Handler { return srv.Handler() }, Logger: log}
	if opts.Auth != nil && opts.Auth.Enabled() {
		bopts.Principal = opts.Auth.PrincipalOf
	}
	batches, err := batch.Open(ctx, st, bopts)
	if err != nil {
		return err
	}
	defer batches.Close()
	opts.Routes = append(opts.Routes, batches.Routes()...)
	// The batch workers start once the server listens, and stop before the store closes.
	bctx, stopBatches := context.WithCancel(ctx)
	var batchWorkers sync.WaitGroup
	defer func() {
		stopBatches()
		batchWorkers.Wait()
	}()
	// The gRPC API serves each call through the server's own handler, built just below.
	opts.Routes = append(opts.Routes, grpcapi.Routes(func() http.Handler { return srv.Handler() }, grpcapi.Options{MaxBytes: cfg.Server.MaxBodyBytes, Auth: opts.Auth})...)
	// grpc.health.v1 (from the server's readiness) and server reflection, for gRPC tooling.
	opts.Routes = append(opts.Routes, grpcapi.ConventionRoutes(func() bool { return srv.Ready() }, grpcapi.Options{MaxBytes: cfg.Server.MaxBodyBytes})...)
	m := metrics.New(metrics.Sources{Registry: reg, Cache: respCache, Limiter: gov.limiter, Batcher: gov.batcher,
		Collectors: []prometheus.Collector{tasks.codeStats}})
	opts.Metrics, opts.Observe = m.ServeHTTP, m.ObserveHTTP
	account := opts.Usage
	opts.Usage = func(ctx context.Context, o openai.Outcome) {
		account(ctx, o)
		m.ObserveModel(ctx, o)
	}
	srv = server.NewWith(cfg.Server, reg, log, opts)
	return srv.ListenAndServe(ctx, func(a net.Addr) {
		tasks.svc.RefuseListener(a)
		batchWorkers.Go(func() { batches.Run(bctx) })
		protocols := "http/1.1,h2c"
		if srv.Scheme() == "https" {
			protocols = "http/1.1,h2"
		}
		log.Info(fmt.Sprintf("autoglm %s listening on %s://%s (%s): %s", versionString(), srv.Scheme(), a, srv.Protocols(), describeModels(cfg)),
			"addr", a.String(), "protocols", protocols, "models", modelNames(cfg))
		if respCache != nil && cfg.Cache.WarmupFile != "" {
			go func() {
				n, err := srv.Warmup(ctx, cfg.Cache.WarmupFile)
				if err != nil {
					log.Warn("cache warm-up stopped", "file", cfg.Cache.WarmupFile, "cached", n, "err", err)
					return
				}
				log.Info("cache warmed up", "file", cfg.Cache.WarmupFile, "requests", n)
			}()
		}
	})
}

// useBundledDemo points the default configuration's demo model at the copy embedded in the
// binary when the repository's models/ folder is not beside the working directory: the copy is
// written once to the data directory.
func useBundledDemo(cfg *config.Config, dataDir string) error {
	for i := range cfg.Models {
		for j := range cfg.Models[i].Backends {
			b := &cfg.Models[i].Backends[j]
			if b.Type != config.BackendLocal || filepath.Base(b.Path) != models.DemoFile {
				continue
			}
			if _, err := os.Stat(b.Path); err == nil {
				continue
			}
			dst := filepath.Join(dataDir, "models", models.DemoFile)
			if st, err := os.Stat(dst); err != nil || st.Size() != int64(len(models.Demo)) {
				if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
					return err
				}
				tmp := dst + ".tmp"
				if err := os.WriteFile(tmp, models.Demo, 0o640); err != nil {
					return err
				}
				if err := os.Rename(tmp, dst); err != nil {
					return err
				}
			}
			b.Path = dst
		}
	}
	return nil
}

func modelNames(cfg *config.Config) []string {
	names := make([]string, len(cfg.Models))
	for i, m := range cfg.Models {
		names[i] = m.Name
	}
	return names
}

func describeModels(cfg *config.Config) string {
	if len(cfg.Models) == 0 {
		return "no models configured (add some with --config FILE; see the README)"
	}
	parts := make([]string, len(cfg.Models))
	for i, m := range cfg.Models {
		s := m.Name
		if len(m.Aliases) > 0 {
			s += " (alias " + strings.Join(m.Aliases, ", ") + ")"
		}
		s += fmt.Sprintf(" via %d backend", len(m.Backends))
		if len(m.Backends) != 1 {
			s += "s"
		}
		parts[i] = s
	}
	return "serving " + strings.Join(parts, "; ")
}

// resolvePulledModels points every local backend that names a pulled model (model:
// owner/name[:QUANT|:FILE], no path) at its file in the store, or fails naming the backend
// and the pull command that would fetch it.
func resolvePulledModels(cfg *config.Config, st *modelstore.Store) error {
	for i := range cfg.Models {
		for j := range cfg.Models[i].Backends {
			b := &cfg.Models[i].Backends[j]
			if b.Type != config.BackendLocal || b.Path != "" {
				continue
			}
			p, err := st.Path(b.Model)
			if err != nil {
				return fmt.Errorf("models[%d].backends[%d].model: %w", i, j, err)
			}
			b.Path = p
		}
	}
	return nil
}
