package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

func mockllmCmd() *cobra.Command {
	var (
		addr     string
		opt      mockllm.Options
		models   []string
		fixtures string
	)
	cmd := &cobra.Command{
		Use:   "mockllm",
		Short: "Run an OpenAI-compatible mock model server for tests and benchmarks",
		Long: `mockllm answers chat completions, completions (JSON and SSE), embeddings and the model
list with deterministic text, at the speed and failure rate you ask for. It stands in for a
remote model in tests and benchmarks; it is not a model.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opt.Models = models
			if err := opt.Validate(); err != nil {
				return err
			}
			log := telemetry.NewLogger(os.Stderr, slog.LevelInfo)
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			var h http.Handler = mockllm.New(opt)
			if fixtures != "" {
				fx, err := mockllm.LoadFixtures(fixtures)
				if err != nil {
					return err
				}
				h = mockllm.WithFixtures(h.(*mockllm.Server), fx)
				log.Info("fixture mode", "file", fixtures, "fixtures", len(fx.Fixtures))
			}
			srv := &http.Server{
				Handler:           h,
				ReadHeaderTimeout: 10 * time.Second,
				IdleTimeout:       120 * time.Second,
			}
			var p http.Protocols
			p.SetHTTP1(true)
			p.SetUnencryptedHTTP2(true)
			srv.Protocols = &p
			log.Info(fmt.Sprintf("mockllm listening on http://%s/v1", ln.Addr()),
				"addr", ln.Addr().String(), "ttft", opt.TTFT.String(), "itl", opt.ITL.String(),
				"tokens", opt.Tokens, "fail_rate", opt.FailRate, "seed", opt.Seed)
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return err
			case <-cmd.Context().Done():
			}
			ctx, cancel := contextWithTimeout(5 * time.Second)
			defer cancel()
			return srv.Shutdown(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:9001", "listen address")
	f.DurationVar(&opt.TTFT, "ttft", 0, "delay before the first token")
	f.DurationVar(&opt.ITL, "itl", 0, "delay between tokens")
	f.IntVar(&opt.Tokens, "tokens", 16, "tokens generated per answer (max_tokens caps it)")
	f.Float64Var(&opt.FailRate, "fail-rate", 0, "fraction of requests answered with 500, in [0, 1]")
	f.Int64Var(&opt.Seed, "seed", 0, "seed for text, embeddings and failures")
	f.StringVar(&opt.APIKey, "api-key", "", "require this bearer key")
	f.StringSliceVar(&models, "model", nil, "model ids to list (repeatable; default mock-model)")
	f.IntVar(&opt.EmbeddingDim, "embedding-dim", 8, "embedding vector length")
	f.BoolVar(&opt.ToolCalls, "tool-calls", false, "answer chat requests that offer tools with a call of one of them")
	f.StringVar(&fixtures, "fixtures", "", "answer chat completions with the canned answers of this fixture file (YAML; see internal/mockllm/fixtures.go)")
	return cmd
}
