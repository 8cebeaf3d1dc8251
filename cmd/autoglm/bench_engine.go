package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/autoglm/internal/engine/gguf"
	"github.com/open-autoglm/autoglm/internal/engine/model"
	"github.com/open-autoglm/autoglm/internal/engine/quant"
)

// engineBench is what bench-engine measures, for one model file.
type engineBench struct {
	Model     string         `json:"model"` // file name
	Arch      string         `json:"arch"`
	Type      string         `json:"type"` // general.file_type, or the type of most weight bytes
	KVType    string         `json:"type_kv"`
	SizeBytes int64          `json:"size_bytes"`
	Params    int64          `json:"params"`
	GoVersion string         `json:"go_version"`
	CPUs      int            `json:"cpus"`
	Results   []engineTiming `json:"results"`
}

// engineTiming is one test at one thread count, like a line of llama-bench.
type engineTiming struct {
	Threads int    `json:"threads"`
	Test    string `json:"test"` // pp128, tg32, or tg32x16 (16 sequences decoded together)
	// Prompt and Gen are the tokens per sequence of the test; Seqs the
	// sequences decoded together; Context the positions each batched
	// sequence held before its timed generation.
	Prompt  int       `json:"n_prompt"`
	Gen     int       `json:"n_gen"`
	Seqs    int       `json:"n_seqs"`
	Context int       `json:"n_context,omitempty"`
	Samples []float64 `json:"samples_ts"` // tokens per second of each repetition
	Avg     float64   `json:"avg_ts"`
	Stddev  float64   `json:"stddev_ts"`
}

// llama.cpp's llama_ftype values, for general.file_type.
var fileTypeNames = map[uint64]string{
	0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
	12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 32: "BF16",
}

func benchEngineCmd() *cobra.Command {
	var (
		path                  string
		prompt, gen, reps     int
		threadList, batchList string
		batchPrompt           int
		batchReps             int
		kvType                string
		asJSON                bool
	)
	cmd := &cobra.Command{
		Use:   "bench-engine",
		Short: "Measure the built-in engine's prompt and generation speed on a GGUF file, like llama-bench",
		Long: `bench-engine loads a GGUF model on the built-in engine and measures, for each thread count:

  ppP      a P-token prompt processed in one pass from an empty cache (prompt tokens/s);
  tgN      N tokens decoded one at a time from an empty cache (generation tokens/s);
  tgNxB    B sequences, each holding a --batch-prompt token prompt, decoding N tokens
           together, one token per sequence per step (aggregate generation tokens/s,
           as llama-batched-bench's S_TG).

Token ids are drawn at random (the speed does not depend on them); one untimed pass warms
the weights up before each thread count. Each test runs -r times and prints mean ± standard
deviation. -p 0 or -n 0 skips a test.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			threads, err := intList(threadList, "--threads")
			if err != nil {
				return err
			}
			batches, err := intList(batchList, "--batch")
			if err != nil {
				return err
			}
			if len(threads) == 0 {
				threads = []int{runtime.GOMAXPROCS(0)}
			}
			if prompt < 0 || gen < 0 || batchPrompt < 1 || reps < 1 || batchReps < 0 {
				return fmt.Errorf("-p, -n and --batch-reps must be ≥ 0, --batch-prompt and -r ≥ 1")
			}
			if batchReps == 0 {
				batchReps = reps
			}
			kv, err := model.ParseKVType(kvType)
			if err != nil {
				return err
			}
			res, err := benchEngine(cmd.Context(), path, benchEngineParams{
				prompt: prompt, gen: gen, reps: reps, threads: threads, batches: batches, batchPrompt: batchPrompt, kv: kv,
				batchReps: batchReps,
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			printEngineBench(out, res)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&path, "model", "", "GGUF model file (required)")
	f.IntVarP(&prompt, "prompt", "p", 128, "prompt tokens of the pp test (0 = skip)")
	f.IntVarP(&gen, "gen", "n", 32, "generated tokens of the tg and batched tests (0 = skip)")
	f.StringVar(&threadList, "threads", "", "comma-separated thread counts (default GOMAXPROCS)")
	f.StringVar(&batchList, "batch", "", "comma-separated sequence counts of batched generation tests (default none)")
	f.IntVar(&batchPrompt, "batch-prompt", 64, "prompt tokens each sequence holds before a batched test")
	f.IntVar(&batchReps, "batch-reps", 0, "repetitions of each batched test (0 = as -r)")
	f.IntVarP(&reps, "reps", "r", 3, "repetitions of each test")
	f.StringVar(&kvType, "kv-type", "f32", "KV cache type: f32, f16 or q8_0")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	_ = cmd.MarkFlagRequired("model")
	return cmd
}

func intList(s, flag string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		n, err := strconv.Atoi(part)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q is not a positive integer", flag, part)
		}
		out = append(out, n)
	}
	return out, nil
}

type benchEngineParams struct {
	prompt, gen, reps int
	threads, batches  []int
	batchPrompt       int
	batchReps         int
	kv                quant.Type
}

func benchEngine(ctx context.Context, path string, p benchEngineParams) (*engineBench, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res := &engineBench{Model: filepath.Base(path), GoVersion: runtime.Version(), CPUs: runtime.NumCPU()}
	for i := range f.Tensors {
		res.SizeBytes += f.Tensors[i].Size
		res.Params += int64(f.Tensors[i].Elements())
	}
	need := max(p.prompt, p.gen, 1)
	if len(p.batches) > 0 {
		need = max(need, p.batchPrompt+p.gen)
	}
	for _, th := range p.threads {
		m, err := model.Load(f, model.Options{ContextLength: need, Threads: th, KVType: p.kv})
		if err != nil {
			return nil, err
		}
		cfg := m.Config()
		res.Arch = cfg.Arch
		res.Type = cfg.WeightType.String()
		res.KVType = cfg.KVType.String()
		if ft, ok := f.Uint("general.file_type"); ok && fileTypeNames[ft] != "" {
			res.Type = fileTypeNames[ft]
		}
		timings, err := benchThreads(ctx, m, th, p)
		m.Close()
		if err != nil {
			return nil, err
		}
		res.Results = append(res.Results, timings...)
	}
	return res, nil
}

// benchThreads runs every test on m, loaded with th threads.
func benchThreads(ctx context.Context, m *model.Model, th int, p benchEngineParams) ([]engineTiming, error) {
	vocab := m.Config().Vocab
	rng := rand.New(rand.NewPCG(1, 2))
	tokens := func(n int) []int32 {
		t := make([]int32, n)
		for i := range t {
			t[i] = int32(rng.IntN(vocab))
		}
		return t
	}
	c := m.NewCache()
	// Warm-up: one token touches every weight, paging the file in.
	if err := m.Forward(ctx, []*model.Seq{{Cache: c, Tokens: tokens(1)}}); err != nil {
		return nil, err
	}
	var out []engineTiming
	measure := func(t engineTiming, tokensPerRep int, run func() (time.Duration, error)) error {
		reps := p.reps
		if t.Seqs > 1 || t.Context > 0 {
			reps = max(p.batchReps, 1)
		}
		for range reps {
			d, err := run()
			if err != nil {
				return err
			}
			t.Samples = append(t.Samples, float64(tokensPerRep)/d.Seconds())
		}
		t.Avg, t.Stddev = meanStddev(t.Samples)
		out = append(out, t)
		return nil
	}
	if p.prompt > 0 {
		ids := tokens(p.prompt)
		err := measure(engineTiming{Threads: th, Test: fmt.Sprintf("pp%d", p.prompt), Prompt: p.prompt, Seqs: 1}, p.prompt, func() (time.Duration, error) {
			c.Reset()
			start := time.Now()
			err := m.Forward(ctx, []*model.Seq{{Cache: c, Tokens: ids}})
			return time.Since(start), err
		})
		if err != nil {
			return nil, err
		}
	}
	if p.gen > 0 {
		ids := tokens(p.gen)
		err := measure(engineTiming{Threads: th, Test: fmt.Sprintf("tg%d", p.gen), Gen: p.gen, Seqs: 1}, p.gen, func() (time.Duration, error) {
			c.Reset()
			s := &model.Seq{Cache: c}
			start := time.Now()
			for i := range ids {
				s.Tokens = ids[i : i+1]
				if err := m.Forward(ctx, []*model.Seq{s}); err != nil {
					return 0, err
				}
			}
			return time.Since(start), nil
		})
		if err != nil {
			return nil, err
		}
	}
	for _, b := range p.batches {
		if p.gen == 0 {
			break
		}
		seqs := make([]*model.Seq, b)
		for i := range seqs {
			seqs[i] = &model.Seq{Cache: m.NewCache()}
		}
		prompts := make([][]int32, b)
		for i := range prompts {
			prompts[i] = tokens(p.batchPrompt)
		}
		next := tokens(p.gen * b)
		t := engineTiming{Threads: th, Test: fmt.Sprintf("tg%dx%d", p.gen, b), Prompt: p.batchPrompt, Gen: p.gen, Seqs: b, Context: p.batchPrompt}
		err := measure(t, p.gen*b, func() (time.Duration, error) {
			for i, s := range seqs {
				s.Cache.Reset()
				s.Tokens = prompts[i]
			}
			// The prompts go in one untimed pass, as one batch.
			if err := m.Forward(ctx, seqs); err != nil {
				return 0, err
			}
			start := time.Now()
			for step := range p.gen {
				for i, s := range seqs {
					k := step*b + i
					s.Tokens = next[k : k+1]
				}
				if err := m.Forward(ctx, seqs); err != nil {
					return 0, err
				}
			}
			return time.Since(start), nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func meanStddev(xs []float64) (mean, sd float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 {
		return mean, 0
	}
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(xs)-1))
}

// printEngineBench prints res as a Markdown table in llama-bench's layout.
func printEngineBench(w io.Writer, res *engineBench) {
	fmt.Fprintln(w, "| model | size | params | type | threads | test | t/s |")
	fmt.Fprintln(w, "| ----- | ---: | -----: | ---- | ------: | ---: | --: |")
	for _, r := range res.Results {
		fmt.Fprintf(w, "| %s %s | %.2f MiB | %.2f M | %s | %d | %s | %.2f ± %.2f |\n",
			res.Model, res.Arch, float64(res.SizeBytes)/(1<<20), float64(res.Params)/1e6, res.Type, r.Threads, r.Test, r.Avg, r.Stddev)
	}
	fmt.Fprintf(w, "\n%s, %d CPUs, KV cache %s", res.GoVersion, res.CPUs, res.KVType)
	for _, r := range res.Results {
		if r.Context > 0 {
			fmt.Fprintf(w, "; tgNxB: B sequences decoding together, each after a %d-token prompt (aggregate t/s)", r.Context)
			break
		}
	}
	fmt.Fprintln(w)
}
