package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/autoglm/internal/engine/runner"
	"github.com/open-autoglm/autoglm/internal/engine/sample"
	"github.com/open-autoglm/autoglm/internal/engine/tokenizer"
)

func generateCmd() *cobra.Command {
	var (
		path, prompt    string
		maxTokens       int
		ctxLen, threads int
		params          sample.Params
		stops           []string
		special         bool
		verbose         bool
	)
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Continue a prompt with a GGUF model on the built-in engine, streaming the text",
		Long: `generate tokenizes --prompt (adding BOS when the model does), generates a continuation on
the built-in CPU engine and streams it to stdout as it is produced, followed by a newline.
The prompt itself is not printed; no chat template is applied.

Sampling defaults to greedy decoding (--temperature 0), so the output is reproducible;
with a temperature above 0, --seed fixes the random draws (0 picks a random seed).
Generation stops at an end-of-generation token, at a --stop string, after --max-tokens
tokens, or when the context (--ctx, default the model's metadata) is full.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stderr := cmd.ErrOrStderr()
			opts := runner.Options{ContextLength: ctxLen, Threads: threads, Parallel: 1}
			progress := false
			if f, ok := stderr.(*os.File); ok && isTerminal(f) {
				// On a terminal: read the weights in at load, with a bar.
				progress = true
				name := filepath.Base(path)
				opts.Progress = func(done, total int64) {
					const width = 30
					filled := width
					if total > 0 {
						filled = int(done * width / total)
					}
					fmt.Fprintf(stderr, "\rloading %s [%s%s] %d/%d MiB", name, strings.Repeat("=", filled),
						strings.Repeat(" ", width-filled), done>>20, total>>20)
				}
			}
			start := time.Now()
			r, err := runner.Open(path, opts)
			if progress {
				fmt.Fprint(stderr, "\r\x1b[K")
			}
			if err != nil {
				return err
			}
			defer r.Close()
			loaded := time.Since(start)

			ids := r.Tokenizer().Encode(prompt, tokenizer.EncodeOptions{AddSpecial: true, ParseSpecial: special})
			out := cmd.OutOrStdout()
			var first, end time.Time
			t0 := time.Now()
			res, err := r.Generate(cmd.Context(), runner.Request{
				Prompt:    ids,
				MaxTokens: maxTokens,
				Sample:    params,
				Stop:      stops,
			}, func(ev runner.Event) error {
				if first.IsZero() {
					first = time.Now()
				}
				if ev.Text == "" {
					return nil
				}
				_, err := io.WriteString(out, ev.Text)
				return err
			})
			end = time.Now()
			if first.IsZero() {
				first = end
			}
			if errors.Is(err, runner.ErrContextLength) {
				return fmt.Errorf("%w (raise --ctx)", err)
			}
			if res.CompletionTokens > 0 || err == nil {
				fmt.Fprintln(out)
			}
			if err != nil {
				if errors.Is(err, context.Canceled) {
					return exitError(130)
				}
				return err
			}
			if verbose {
				info := r.Info()
				fmt.Fprintf(stderr, "model %s (%s), context %d, loaded in %s\n", filepath.Base(path), info.Arch, info.ContextLength, loaded.Round(10*time.Microsecond))
				prompt := first.Sub(t0)
				fmt.Fprintf(stderr, "prompt: %d tokens in %s (%.1f tok/s, first token included)\n",
					res.PromptTokens, prompt.Round(time.Microsecond), rate(res.PromptTokens, prompt))
				gen := end.Sub(first)
				fmt.Fprintf(stderr, "generation: %d tokens in %s (%.1f tok/s after the first), finish %s\n",
					res.CompletionTokens, gen.Round(time.Microsecond), rate(res.CompletionTokens-1, gen), res.FinishReason)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&path, "model", "", "GGUF model file (required)")
	f.StringVar(&prompt, "prompt", "", "prompt text (required)")
	f.IntVar(&maxTokens, "max-tokens", 0, "most tokens to generate (0 = until the end of generation or a full context)")
	f.Float32Var(&params.Temperature, "temperature", 0, "sampling temperature (0 = greedy)")
	f.Float32Var(&params.TopP, "top-p", 0, "nucleus sampling mass (0 or 1 = off)")
	f.IntVar(&params.TopK, "top-k", 0, "keep the K most likely tokens (0 = off)")
	f.Float32Var(&params.MinP, "min-p", 0, "drop tokens less likely than this times the top one (0 = off)")
	f.Float32Var(&params.RepeatPenalty, "repeat-penalty", 0, "penalty for repeated tokens (0 or 1 = off)")
	f.Int64Var(&params.Seed, "seed", 0, "random seed (0 = random)")
	f.StringArrayVar(&stops, "stop", nil, "stop string (repeatable)")
	f.IntVar(&ctxLen, "ctx", 0, "context length (0 = the model's metadata)")
	f.IntVar(&threads, "threads", 0, "threads (0 = GOMAXPROCS)")
	f.BoolVar(&special, "special", false, "parse control-token text in the prompt into control tokens")
	f.BoolVarP(&verbose, "verbose", "v", false, "print load time and tokens/s on stderr")
	_ = cmd.MarkFlagRequired("model")
	_ = cmd.MarkFlagRequired("prompt")
	return cmd
}

func rate(n int, d time.Duration) float64 {
	if n <= 0 || d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
