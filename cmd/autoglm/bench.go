package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/autoglm/internal/bench"
)

func benchCmd() *cobra.Command {
	var (
		opt     bench.Options
		asJSON  bool
		compare []string
		rounds  int
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load-test an OpenAI-compatible endpoint (autoglm, mockllm or any upstream)",
		Long: `bench sends chat completions to --url and reports latency percentiles from HDR histograms.

--rate R runs open loop at a constant R requests per second, measuring latency from each
request's intended send time, so a stalled server cannot hide its queueing; --concurrency C
runs C clients closed loop. With --stream it also reports time to first token and
inter-token latency.

--compare NAME=URL (repeated) sends the same load to each endpoint in turn, in --rounds
rounds with the order rotated each round, and reports each one's latency and what it adds
over the first: for side-by-side figures on a machine whose load drifts. With --interleave
(open loop only) the endpoints run together instead, one request to each in turn, in an
order drawn afresh each cycle, --rate being the total; each endpoint is then also compared
with each other one cycle by cycle (the median of the differences), which holds steady where
separate medians swing with the machine.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(compare) > 0 {
				targets, err := parseTargets(compare)
				if err != nil {
					return err
				}
				res, err := bench.Compare(cmd.Context(), opt, targets, rounds)
				if err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
				}
				printComparison(cmd.OutOrStdout(), opt, res)
				return nil
			}
			if isTerminal(os.Stderr) && !asJSON {
				opt.Progress = progressBar(cmd.ErrOrStderr(), opt.Duration+opt.Warmup)
			}
			res, err := bench.Run(cmd.Context(), opt)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				return enc.Encode(res)
			}
			printResult(out, opt, res)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opt.URL, "url", "http://127.0.0.1:8080/v1", "API root of the endpoint")
	f.StringVar(&opt.Model, "model", "", "model name to request (required)")
	f.StringVar(&opt.APIKey, "api-key", "", "bearer key to send")
	f.Float64Var(&opt.Rate, "rate", 0, "open loop: requests per second (0 = closed loop)")
	f.IntVar(&opt.Concurrency, "concurrency", 0, "closed loop: clients (default 1); open loop: cap on requests in flight")
	f.DurationVar(&opt.Duration, "duration", 10*time.Second, "measured duration")
	f.DurationVar(&opt.Warmup, "warmup", time.Second, "unmeasured warm-up before the measured duration")
	f.BoolVar(&opt.Stream, "stream", false, "request SSE streams and measure TTFT and inter-token latency")
	f.StringVar(&opt.Proto, "proto", "http1", "protocol: http1 or h2c")
	f.IntVar(&opt.PromptTokens, "prompt-tokens", 16, "prompt length in words")
	f.IntVar(&opt.MaxTokens, "max-tokens", 16, "max_tokens per request")
	f.Float64Var(&opt.Temperature, "temperature", -1, "temperature to send (negative: leave it out)")
	f.BoolVar(&opt.FromSend, "from-send", false, "open loop: measure from each request's actual send, not its intended send time")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	f.StringArrayVar(&compare, "compare", nil, "NAME=URL of an endpoint to compare (repeat; the first is the baseline; replaces --url)")
	f.IntVar(&rounds, "rounds", 4, "with --compare: rounds, each running every endpoint for duration/rounds")
	f.BoolVar(&opt.Interleave, "interleave", false, "with --compare and --rate: send to the endpoints in turn, request by request, and compare them cycle by cycle")
	_ = cmd.MarkFlagRequired("model")
	return cmd
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBar draws a one-line bar on w, redrawn in place.
func progressBar(w io.Writer, total time.Duration) func(float64, int64) {
	start := time.Now()
	return func(done float64, n int64) {
		const width = 30
		filled := int(done * width)
		el := time.Since(start).Round(time.Second)
		fmt.Fprintf(w, "\r[%s%s] %3.0f%%  %s/%s  %d requests", strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
			done*100, el, total, n)
		if done >= 1 {
			fmt.Fprintln(w)
		}
	}
}

func us(v int64) string {
	d := time.Duration(v) * time.Microsecond
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", v)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(v)/1000)
	}
	return fmt.Sprintf("%.2fs", float64(v)/1e6)
}

func printResult(w io.Writer, opt bench.Options, r *bench.Result) {
	mode := fmt.Sprintf("closed loop, %d clients", max(1, opt.Concurrency))
	if opt.Rate > 0 {
		mode = fmt.Sprintf("open loop, %.0f req/s", opt.Rate)
	}
	fmt.Fprintf(w, "%s  model %s  %s  %s  stream=%v\n", opt.URL, opt.Model, mode, opt.Proto, opt.Stream)
	fmt.Fprintf(w, "requests  %d in %.1fs  (%.1f req/s achieved)\n", r.Requests, r.Elapsed, r.RPS)
	fmt.Fprintf(w, "errors    %d", r.Errors)
	for k, v := range r.ErrorKind {
		fmt.Fprintf(w, "  %s=%d", k, v)
	}
	fmt.Fprintln(w)
	row := func(name string, p bench.Percentiles) {
		fmt.Fprintf(w, "%-9s p50 %-9s p90 %-9s p95 %-9s p99 %-9s p99.9 %-9s max %s\n", name,
			us(p.P50), us(p.P90), us(p.P95), us(p.P99), us(p.P999), us(p.Max))
	}
	row("latency", r.Latency)
	if r.TTFT != nil {
		row("ttft", *r.TTFT)
		row("itl", *r.ITL)
	}
}

func parseTargets(specs []string) ([]bench.Target, error) {
	out := make([]bench.Target, 0, len(specs))
	for _, s := range specs {
		name, url, ok := strings.Cut(s, "=")
		if !ok || name == "" || url == "" {
			return nil, fmt.Errorf("--compare %q: want NAME=URL", s)
		}
		out = append(out, bench.Target{Name: name, URL: url})
	}
	return out, nil
}

// printComparison prints each endpoint's latency and what it adds over
// the first endpoint.
func printComparison(w io.Writer, opt bench.Options, res []bench.Compared) {
	mode := fmt.Sprintf("closed loop, %d clients", max(1, opt.Concurrency))
	if opt.Rate > 0 {
		mode = fmt.Sprintf("open loop, %.0f req/s", opt.Rate)
	}
	fmt.Fprintf(w, "model %s  %s  %s  stream=%v\n", opt.Model, mode, opt.Proto, opt.Stream)
	base := res[0].Result
	for _, c := range res {
		r := c.Result
		fmt.Fprintf(w, "%-10s p50 %-9s p90 %-9s p99 %-9s added p50 %-9s p99 %-9s errors %d\n", c.Name,
			us(r.Latency.P50), us(r.Latency.P90), us(r.Latency.P99),
			us(r.Latency.P50-base.Latency.P50), us(r.Latency.P99-base.Latency.P99), r.Errors)
		if r.TTFT != nil {
			fmt.Fprintf(w, "%-10s ttft p50 %-9s p99 %s\n", "", us(r.TTFT.P50), us(r.TTFT.P99))
		}
		for _, p := range c.Paired {
			if p.Against != res[0].Name {
				continue
			}
			// The cycles' median difference against the baseline (--interleave).
			fmt.Fprintf(w, "%-10s paired added p50 %s over %d cycles", "", us(p.P50), p.Pairs)
			if r.TTFT != nil {
				fmt.Fprintf(w, ", ttft %s", us(p.TTFTP50))
			}
			fmt.Fprintln(w)
		}
		if len(c.Rounds) > 1 {
			// Each round's median added over the baseline's in the same round.
			fmt.Fprintf(w, "%-10s added p50 by round:", "")
			for i, rd := range c.Rounds {
				fmt.Fprintf(w, " %s", us(rd.P50-res[0].Rounds[i].P50))
			}
			fmt.Fprintln(w)
		}
	}
}
