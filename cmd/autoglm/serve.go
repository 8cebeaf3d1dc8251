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
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/trace"

	"github.com/open-autoglm/autoglm/internal/admission"
	"github.com/open-autoglm/autoglm/internal/batch"
	"github.com/open-autoglm/autoglm/internal/cache"
	"github.com/open-autoglm/autoglm/internal/codeapi"
	"github.com/open-autoglm/autoglm/internal/codecheck"
	"github.com/open-autoglm/autoglm/internal/codecomplete"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/cpuplace"
	"github.com/open-autoglm/autoglm/internal/gctune"
	"github.com/open-autoglm/autoglm/internal/grpcapi"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/hugetext"
	"github.com/open-autoglm/autoglm/internal/lifecycle"
	"github.com/open-autoglm/autoglm/internal/metrics"
	"github.com/open-autoglm/autoglm/internal/modelstore"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/respstore"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/telemetry"
	"github.com/open-autoglm/autoglm/internal/usage"
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
			return serve(cmd.Context(), cfg, source, dataDir, insecure, serveFlags{Addr: addr})
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "configuration file (default: the embedded configuration)")
	f.StringVar(&addr, "addr", "", "listen address, overriding server.addr (default 127.0.0.1:8080)")
	f.StringVar(&dataDir, "data-dir", "./data", "directory for the server's data files")
	f.BoolVar(&insecure, "insecure", false, "allow a non-loopback address with authentication off")
	return cmd
}

// serveMemoryLimit is serve's soft memory limit unless GOMEMLIMIT is set: it keeps a large
// heap (thousands of open streams) from growing GOGC-fold before a collection.
const serveMemoryLimit = 2 << 30

// tuneGC sets the collector up for serve unless the environment does. GOGC follows the
// allocation rate (internal/gctune): Go's default 100 at a low request rate, where the smaller
// heap's warmer memory took about 10 µs off the median added latency, rising to 400 as the
// rate grows, where rarer collections keep the tail lower (at one client closed loop, p99 499
// against 622 µs for a fixed 100). GOGC set in the environment fixes it and turns the tuning
// off. It returns what undoes the tuning.
func tuneGC(log *slog.Logger) (stop func()) {
	gogc, limit := os.Getenv("GOGC"), os.Getenv("GOMEMLIMIT")
	stop = func() {}
	if gogc == "" {
		// Go's default at a low rate; at most one collection a second while that takes
		// GOGC no higher than the 400 that measured the lower tail under load.
		p := gctune.Policy{Low: 100, High: 400, Every: time.Second}
		stop = gctune.Start(p, log).Stop
		gogc = fmt.Sprintf("%d-%d, following the allocation rate", p.Low, p.High)
	}
	if limit == "" {
		debug.SetMemoryLimit(serveMemoryLimit)
		limit = strconv.Itoa(serveMemoryLimit)
	}
	log.Info("garbage collector", "gogc", gogc, "memory_limit", limit)
	return stop
}

// placeCode moves the server's machine code onto huge pages when server.code_pages asks for
// it (the default) and the kernel allows it; either way the log says where the code runs from.
func placeCode(pages string, log *slog.Logger) {
	if pages == config.CodePagesNormal {
		return
	}
	n, err := hugetext.Remap()
	if err != nil {
		log.Info("machine code stays on normal pages", "reason", err.Error())
		return
	}
	log.Info("machine code moved onto huge pages", "mib", n>>20)
}

// placeThreads gathers the server's threads on one CPU while it is lightly loaded
// (internal/cpuplace) unless server.cpu_placement says spread, or a model runs on the
// built-in engine, whose threads must have every CPU from the first token. It returns the
// placer, whose Stop spreads them again; nil when there is none. The choice is made at
// start; a reload does not change it.
//
// Gathering is the default: at 200 requests/s it took 60-120 µs off the median the server
// adds. It was opt-in while make bench's step test, each endpoint climbed in turn, put the
// gathering server below nginx in four runs of five; climbed side by side, rate by rate, the
// gathering and the spread server sustained the same rate in each run (docs/BENCHMARKS.md,
// "Section 2 climbed together").
func placeThreads(cfg *config.Config, log *slog.Logger) *cpuplace.Placer {
	if cfg.Server.CPUPlacement == config.CPUPlacementSpread {
		log.Info("threads placed by the kernel", "reason", "server.cpu_placement is spread")
		return nil
	}
	for _, m := range cfg.Models {
		for _, b := range m.Backends {
			if b.Type == config.BackendLocal {
				log.Info("threads placed by the kernel", "reason", "model "+m.Name+" runs on the built-in engine")
				return nil
			}
		}
	}
	// GOMAXPROCS stays what it is now, from every CPU the process may use: set explicitly,
	// the runtime no longer follows the CPU set, which gathering narrows for a while.
	runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	p := cpuplace.DefaultPolicy()
	pl, err := cpuplace.Start(p, log)
	if err != nil {
		log.Info("threads placed by the kernel", "reason", err.Error())
		return nil
	}
	log.Info("threads gathered on one CPU while lightly loaded", "gather_below", p.Gather, "spread_at", p.Spread)
	return pl
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

func serve(ctx context.Context, cfg *config.Config, source, dataDir string, insecure bool, flags serveFlags) error {
	// The level is a variable so that a configuration reload can change it.
	flags.Level = new(slog.LevelVar)
	flags.Level.Set(telemetry.ParseLevel(cfg.Log.Level))
	log := telemetry.NewLogger(os.Stderr, flags.Level)
	// Backends built by their registered factories (a local model's load progress and
	// memory) log through the default logger: make it this one.
	slog.SetDefault(log)
	defer tuneGC(log)()
	placeCode(cfg.Server.CodePages, log)
	profileContention(cfg.Server, log)
	if err := prepareDataDir(dataDir, log); err != nil {
		return err
	}
	log.Info("configuration loaded", "source", source, "models", len(cfg.Models), "data_dir", dataDir)
	return serveGroup(cfg, source, dataDir, insecure, log, nil, flags).Run(ctx)
}

// serveGroup is the server as its components, in start order. On shutdown (SIGTERM cancels
// the context of Run) they stop in the reverse order, each after every component added after
// it has stopped, so this list is also the order of shutdown read from the bottom up:
//
//	http listener, cache warm-up   stop first: no new requests; in-flight ones finish
//	batch workers                  stop claiming batch lines; running lines finish
//	routes                         (the composition; nothing to stop)
//	batches, stored responses      their tables are closed
//	configuration reload           SIGHUP and the file watch stop
//	tasks                          workers hand running tasks back; group commits finish
//	thread placement               the threads spread over every CPU again
//	health probes, key refresh, retention
//	response cache, models         backends close
//	store                          the batcher writes its queued records, then the store
//	                               closes, last, when nothing can use it any more
//
// ready, when not nil, is told the listener's address once it is bound, and the routes served.
// flags are the command-line settings a configuration reload applies again.
func serveGroup(cfg *config.Config, source, dataDir string, insecure bool, log *slog.Logger, ready func(net.Addr, []httpapi.Route), flags serveFlags) *lifecycle.Group {
	var (
		gov        *governance
		reg        *router.Registry
		respCache  *cache.Cache
		tasks      *taskSystem
		responses  *respstore.Store
		batches    *batch.Service
		srv        *server.Server
		oa         *openai.Handler
		ln         net.Listener
		modelStore = &modelstore.Store{Dir: modelstore.DefaultDir(dataDir)}
		m          *metrics.Metrics
		sink       usage.Sink
		tracing    *telemetry.Tracing
		tracer     trace.TracerProvider
		plug       *plugins
		rl         *reloader
		placer     *cpuplace.Placer
	)
	g := &lifecycle.Group{Logger: log}
	// Tracing starts first and stops last, so the last requests' and tasks' spans go out.
	g.Add(lifecycle.Component{Name: "tracing",
		Start: func(ctx context.Context) (err error) {
			tracing, err = telemetry.StartTracing(ctx, cfg.Telemetry.Tracing, versionString(), os.LookupEnv)
			if err != nil || tracing == nil {
				return err
			}
			tracer = tracing.Provider()
			log.Info("tracing on: spans exported over OTLP")
			return nil
		},
		Stop: func(ctx context.Context) error {
			if tracing == nil {
				return nil
			}
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := tracing.Shutdown(sctx); err != nil {
				log.Warn("tracing: exporting the last spans failed", "err", err)
			}
			return nil
		}})
	g.Add(lifecycle.Component{Name: "store",
		Start: func(ctx context.Context) (err error) {
			gov, err = setupGovernance(ctx, cfg, dataDir, insecure, log)
			return err
		},
		Stop: func(context.Context) error { return gov.Close() }})
	g.Add(lifecycle.Component{Name: "models",
		Start: func(context.Context) (err error) {
			if err := resolvePulledModels(cfg, modelStore); err != nil {
				return err
			}
			reg, err = router.New(cfg.Models, router.Options{Logger: log})
			return err
		},
		Stop: func(context.Context) error { return reg.Close() }})
	// Plugins run around every model request.
	g.Add(lifecycle.Component{Name: "plugins",
		Start: func(ctx context.Context) (err error) {
			plug, err = startPlugins(ctx, cfg, source, reg, log)
			return err
		},
		Stop: func(context.Context) error { plug.Close(); return nil }})
	if cfg.Cache.Enabled {
		g.Add(lifecycle.Component{Name: "response cache",
			Start: func(context.Context) (err error) {
				respCache, err = cache.New(cfg.Cache, log)
				if err != nil {
					return fmt.Errorf("cache: %w", err)
				}
				return nil
			},
			Stop: func(context.Context) error { respCache.Close(); return nil }})
	}
	g.Add(lifecycle.Component{Name: "retention",
		Run: func(ctx context.Context) error {
			store.NewRetention(gov.store, cfg.Store, log).Run(ctx)
			return nil
		}})
	g.Add(lifecycle.Component{Name: "key refresh",
		Run: func(ctx context.Context) error {
			if gov.auth != nil {
				gov.auth.Run(ctx)
			}
			return nil
		}})
	g.Add(lifecycle.Component{Name: "health probes",
		// Probe once before listening so /readyz is meaningful from the first request, then
		// keep probing.
		Start: func(ctx context.Context) error { reg.Probe(ctx, 2*time.Second, log); return nil },
		Run: func(ctx context.Context) error {
			reg.RunHealth(ctx, 10*time.Second, 2*time.Second, log)
			return nil
		}})
	// Threads gathered on one CPU while the server is lightly loaded (placeThreads), from
	// before the first request until the last has been served.
	g.Add(lifecycle.Component{Name: "thread placement",
		Start: func(context.Context) error { placer = placeThreads(cfg, log); return nil },
		Stop: func(context.Context) error {
			if placer != nil {
				placer.Stop()
			}
			return nil
		}})
	g.Add(lifecycle.Component{Name: "tasks",
		Start: func(ctx context.Context) (err error) {
			// One sink for the outcome of every model call, HTTP requests and task runs alike:
			// quota settlement, usage records and the autoglm_model_* metrics.
			codeStats := &codecheck.Stats{}
			m = metrics.New(metrics.Sources{Registry: reg, Cache: respCache, Limiter: gov.limiter, Batcher: gov.batcher,
				Collectors: []prometheus.Collector{codeStats, plug.metrics}})
			sink = gov.usageSink(m.ObserveModel)
			tasks, err = newTasks(ctx, cfg, dataDir, gov.store, reg, sink, codeStats, log, tracer)
			if err != nil {
				return err
			}
			m.Register(tasks.svc.Collector())
			if placer != nil {
				m.Register(metrics.Placement(placer))
			}
			// Webhooks never call the gateway itself: its configured address is refused from
			// the start (deliveries left from an earlier run may be due now), the bound one
			// once known.
			if ap, err := netip.ParseAddrPort(cfg.Server.Addr); err == nil && ap.Port() != 0 {
				tasks.svc.RefuseListener(net.TCPAddrFromAddrPort(ap))
			}
			return nil
		},
		Run:  func(ctx context.Context) error { return tasks.svc.Run(ctx) },
		Stop: func(context.Context) error { return tasks.closeStore() }})
	// One reload path for the whole configuration file: SIGHUP, or a change to the file,
	// puts its reloadable sections (models, plugins, rate limits, log level) in force together
	// or refuses the file (serve_reload.go). The models and plugins it swaps stop after it.
	g.Add(lifecycle.Component{Name: "configuration reload",
		Start: func(context.Context) error {
			file := ""
			if st, err := os.Stat(source); err == nil && st.Mode().IsRegular() {
				file = source
			}
			rl = newReloader(file, cfg, flags, log, reg, plug, gov.limiter, modelStore)
			m.Register(rl)
			return nil
		},
		Run: func(ctx context.Context) error { rl.Run(ctx, configWatchInterval); return nil }})
	// Stored responses, files and batches live in the same database as the tasks.
	g.Add(lifecycle.Component{Name: "stored responses",
		Start: func(ctx context.Context) (err error) {
			responses, err = respstore.Open(ctx, tasks.store())
			return err
		},
		Stop: func(context.Context) error { return responses.Close() }})
	g.Add(lifecycle.Component{Name: "batches",
		Start: func(ctx context.Context) (err error) {
			// Each batch line is served by the server's own handler, as the caller that
			// created the batch; the workers start once the handler is built (below).
			bopts := batch.Options{Config: cfg.Batch, Handler: func() http.Handler { return srv.Handler() }, Logger: log}
			if gov.auth != nil {
				bopts.Principal = gov.auth.PrincipalOf
			}
			batches, err = batch.Open(ctx, tasks.store(), bopts)
			return err
		},
		Stop: func(context.Context) error { return batches.Close() }})
	g.Add(lifecycle.Component{Name: "routes",
		Start: func(context.Context) error {
			srv, oa = composeRoutes(cfg, log, gov, reg, respCache, m, sink, tracer, tasks, responses, batches, modelStore)
			return nil
		}})
	g.Add(lifecycle.Component{Name: "batch workers",
		Run: func(ctx context.Context) error { batches.Run(ctx); return nil }})
	g.Add(lifecycle.Component{Name: "http listener",
		Start: func(context.Context) (err error) {
			ln, err = net.Listen("tcp", cfg.Server.Addr)
			if err != nil {
				return err
			}
			a := ln.Addr()
			tasks.svc.RefuseListener(a)
			protocols := "http/1.1,h2c"
			if srv.Scheme() == "https" {
				protocols = "http/1.1,h2"
			}
			log.Info(fmt.Sprintf("autoglm %s listening on %s://%s (%s): %s", versionString(), srv.Scheme(), a, srv.Protocols(), describeModels(cfg)),
				"addr", a.String(), "protocols", protocols, "models", modelNames(cfg))
			if ready != nil {
				ready(a, srv.Routes())
			}
			return nil
		},
		// Serve drains in-flight requests and streams (server.shutdown_timeout) when its
		// context is canceled.
		Run: func(ctx context.Context) error { return srv.Serve(ctx, ln) }})
	if cfg.Cache.Enabled && cfg.Cache.WarmupFile != "" {
		g.Add(lifecycle.Component{Name: "cache warm-up",
			Run: func(ctx context.Context) error {
				n, err := oa.Warmup(ctx, cfg.Cache.WarmupFile, cfg.Server.MaxBodyBytes)
				if err != nil {
					log.Warn("cache warm-up stopped", "file", cfg.Cache.WarmupFile, "cached", n, "err", err)
					return nil // a failed warm-up leaves the cache cold; the server serves on
				}
				log.Info("cache warmed up", "file", cfg.Cache.WarmupFile, "requests", n)
				return nil
			}})
	}
	return g
}

// composeRoutes builds the server from the routes every feature package exports: the
// OpenAI-compatible ones first, then the native and admin ones.
func composeRoutes(cfg *config.Config, log *slog.Logger, gov *governance, reg *router.Registry, respCache *cache.Cache,
	m *metrics.Metrics, sink usage.Sink, tracer trace.TracerProvider, tasks *taskSystem, responses *respstore.Store, batches *batch.Service, modelStore *modelstore.Store) (*server.Server, *openai.Handler) {
	var srv *server.Server
	var opts server.Options
	oaOpts := openai.Options{StreamWriteTimeout: cfg.Server.StreamWriteTimeout.D(), Logger: log, Cache: respCache, Responses: responses}
	gov.apply(&opts, &oaOpts)
	opts.Metrics, opts.Observe = m.ServeHTTP, m.ObserveHTTP
	// Each model request's outcome settles its rate-limit reservation, is recorded as usage
	// and is observed in the metrics, through the sink the task system shares.
	oaOpts.OnDone = sink
	oa := openai.New(reg, oaOpts)
	grpcOpts := grpcapi.Options{MaxBytes: cfg.Server.MaxBodyBytes, Auth: opts.Auth}
	opts.Routes = slices.Concat(
		oa.Routes(),
		opts.Routes, // the admin API, when authentication is on
		tasks.Routes(),
		// The web console at / and /ui/, GET /v1/me (who the caller is) and GET
		// /v1/admin/engine (the local engine's models).
		web.New(web.Options{Auth: gov.auth, Registry: reg}).Routes(),
		modelStore.Routes(),
		codeapi.Routes(tasks.checker, tasks.codeStats),
		batches.Routes(),
		// Code completions run a completion in-process on behalf of a request already
		// authenticated and admitted, so that it is accounted like one sent to
		// /v1/completions.
		codecomplete.Routes(oa.Completions),
		// The gRPC API serves each call through the server's own handler.
		grpcapi.Routes(func() http.Handler { return srv.Handler() }, grpcOpts),
		// grpc.health.v1 (from the server's readiness) and server reflection.
		grpcapi.ConventionRoutes(func() bool { return srv.Ready() }, grpcapi.Options{MaxBytes: cfg.Server.MaxBodyBytes}),
	)
	if a := cfg.Server.Admission; a.MaxInFlight > 0 {
		queue := a.MaxInFlight
		if a.Queue != nil {
			queue = *a.Queue
		}
		opts.Admission = admission.New(admission.Config{MaxInFlight: a.MaxInFlight, QueueDepth: queue, MaxWait: a.MaxWait.D()})
		if m != nil {
			m.Register(metrics.Admission(opts.Admission))
		}
	}
	opts.Tracing = tracer
	srv = server.NewWith(cfg.Server, reg, log, opts)
	return srv, oa
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
