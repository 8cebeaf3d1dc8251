package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/autoglm/internal/eval"
	"github.com/open-autoglm/autoglm/internal/humanevalx"
	"github.com/open-autoglm/autoglm/internal/sandbox"
)

func evalCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "eval", Short: "Run code-generation benchmarks against an OpenAI-compatible endpoint"}
	cmd.AddCommand(evalHumanEvalXCmd())
	return cmd
}

func evalHumanEvalXCmd() *cobra.Command {
	var (
		r        eval.Runner
		data     string
		n        int
		repair   bool
		rounds   int
		asJSON   bool
		useSB    bool
		bwrap    string
		apiKeyEv string
	)
	cmd := &cobra.Command{
		Use:   "humaneval-x",
		Short: "Run HumanEval-X against a model and report pass@1 with and without repair",
		Long: `humaneval-x asks the model at --url (any OpenAI-compatible endpoint, autoglm included) for each
problem's function, checks every answer without running it, and with --repair sends failing
answers back with their diagnostics (as code tasks do). With --sandbox the problems' tests run in
a bubblewrap sandbox and pass@1 is reported; without it, only the share of answers that parse.

The data is HumanEval-X (Apache-2.0, THUDM's CodeGeeX), read from --data: a directory with the
humaneval_<language>.jsonl.gz files.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			valid := false
			for _, l := range humanevalx.Languages {
				valid = valid || l == r.Language
			}
			if !valid {
				return fmt.Errorf("--language must be one of %v", humanevalx.Languages)
			}
			if apiKeyEv != "" {
				r.APIKey = os.Getenv(apiKeyEv)
			}
			if repair {
				r.RepairRounds = rounds
			}
			if useSB {
				r.Sandbox = sandbox.New(cmd.Context(), sandbox.Options{Bwrap: bwrap, Binds: []string{eval.GoCacheDir()}})
				if err := r.Sandbox.Available(); err != nil {
					return fmt.Errorf("--sandbox: %w", err)
				}
			}
			errOut := cmd.ErrOrStderr()
			if f, ok := errOut.(*os.File); ok && isTerminal(f) {
				r.Progress = func(done, total int) { evalProgress(f, done, total) }
			}
			rep, err := r.Run(cmd.Context(), data, n)
			if r.Progress != nil {
				fmt.Fprintln(errOut)
			}
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			printReport(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.URL, "url", "", "the endpoint's base URL, e.g. http://127.0.0.1:8080/v1 (required)")
	f.StringVar(&r.Model, "model", "", "model name (required)")
	f.StringVar(&r.Language, "language", "", "go, js, python, cpp, java or rust (required)")
	f.StringVar(&apiKeyEv, "api-key-env", "", "environment variable holding the endpoint's API key")
	f.StringVar(&data, "data", "../shared/data/humaneval-x", "directory of the HumanEval-X files")
	f.IntVar(&n, "n", 0, "run the first N problems (default all 164)")
	f.BoolVar(&repair, "repair", false, "repair answers that fail their checks")
	f.IntVar(&rounds, "repair-rounds", 2, "repair rounds with --repair (at most 3)")
	f.IntVar(&r.MaxTokens, "max-tokens", 1024, "max_tokens per answer")
	f.IntVar(&r.Concurrency, "concurrency", 4, "problems in flight")
	f.BoolVar(&useSB, "sandbox", false, "run the tests in a bubblewrap sandbox (go, js, python, cpp)")
	f.StringVar(&bwrap, "bwrap", "bwrap", "bubblewrap executable")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	for _, req := range []string{"url", "model", "language"} {
		_ = cmd.MarkFlagRequired(req)
	}
	cmd.PreRunE = func(*cobra.Command, []string) error {
		if rounds < 1 || rounds > 3 {
			return fmt.Errorf("--repair-rounds must be between 1 and 3")
		}
		return nil
	}
	return cmd
}

func evalProgress(w io.Writer, done, total int) {
	const width = 30
	fill := done * width / max(total, 1)
	bar := make([]byte, width)
	for i := range bar {
		bar[i] = '.'
		if i < fill {
			bar[i] = '#'
		}
	}
	fmt.Fprintf(w, "\r[%s] %d/%d", bar, done, total)
}

func pct(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }

func printReport(w io.Writer, rep *eval.Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "HumanEval-X %s, model %s, %d problems (%d errors)\n", rep.Language, rep.Model, rep.Problems, rep.Errors)
	fmt.Fprintln(tw, "\twithout repair\twith repair")
	fmt.Fprintf(tw, "parses\t%s\t%s\n", pct(rep.ParseBefore), pct(rep.ParseAfter))
	if rep.PassAt1Before != nil {
		fmt.Fprintf(tw, "pass@1\t%s\t%s\n", pct(*rep.PassAt1Before), pct(*rep.PassAt1After))
	} else {
		fmt.Fprintln(tw, "pass@1\t(tests not run: --sandbox)\t")
	}
	fmt.Fprintf(tw, "regressions\t\t%d\n", rep.Regressions)
	fmt.Fprintf(tw, "added latency per problem\t\t%.0f ms (%s)\n", rep.AddedLatencyMS, pct(rep.AddedLatencyRate))
	fmt.Fprintf(tw, "added tokens per problem\t\t%.1f (%s)\n", rep.AddedTokens, pct(rep.AddedTokensRate))
	_ = tw.Flush()
}
