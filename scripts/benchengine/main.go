// Command benchengine is what `make bench-engine` runs: it writes random-weight
// Qwen2.5-0.5B-shaped GGUF files with the project's own writer, measures them
// with `autoglm bench-engine`, measures the same files with llama.cpp's
// llama-bench and llama-batched-bench when a reference build is present, and
// prints the figures side by side with the machine's memory bandwidth.
//
// Settings come from the environment (defaults in brackets):
//
//	AUTOGLM       the autoglm binary to measure [bin/autoglm]
//	BENCH_DIR     where the model files are kept between runs [build/bench-engine]
//	TYPES         file types to write and measure [F16,Q8_0,Q4_0,Q4_K_M,Q6_K]
//	THREADS       thread counts [1,2]
//	REPS          repetitions per test [3]
//	PROMPT, GEN   tokens of the pp and tg tests [128, 32]
//	BATCH         sequences decoding together in the batched test ["16"; "" skips it]
//	BATCH_PROMPT  prompt tokens per sequence before the batched test [64]
//	BATCH_REPS    repetitions of the batched test [1, as llama-batched-bench runs once]
//	KV_TYPE       autoglm's KV cache type [f16, as llama-bench's default]
//	LLAMA_CPP     the llama.cpp reference directory [../shared/reference/llama.cpp]
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/open-autoglm/autoglm/internal/engine/synth"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-engine:", err)
		os.Exit(1)
	}
}

func env(k, def string) string {
	if v, ok := os.LookupEnv(k); ok {
		return v
	}
	return def
}

// qwenShape is Qwen2.5-0.5B's shape, written as arch llama (as the issue's
// reference measurements were).
func qwenShape(mixture string) synth.Spec {
	return synth.Spec{
		Arch: "llama", Name: "qwen2.5-0.5b-shape", Dim: 896, Layers: 24, Heads: 14, KVHeads: 2, FFN: 4864,
		Vocab: 151936, Ctx: 4096, Tied: true, RopeBase: 1e6, NormEps: 1e-6, Mixture: mixture, Seed: 1,
	}
}

type timing struct {
	file, test   string
	threads      int
	avg, stddev  float64
	sizeBytes    int64
	llama, llsd  float64
	haveLlama    bool
	bytesPerStep int64
}

func run() error {
	autoglm := env("AUTOGLM", "bin/autoglm")
	dir := env("BENCH_DIR", "build/bench-engine")
	types := strings.Split(env("TYPES", "F16,Q8_0,Q4_0,Q4_K_M,Q6_K"), ",")
	threads := env("THREADS", "1,2")
	reps := env("REPS", "3")
	prompt, gen := env("PROMPT", "128"), env("GEN", "32")
	batch := env("BATCH", "16")
	batchPrompt := env("BATCH_PROMPT", "64")
	batchReps := env("BATCH_REPS", "1")
	llamaDir := env("LLAMA_CPP", "../shared/reference/llama.cpp")
	kvType := env("KV_TYPE", "f16")
	llamaRun := filepath.Join(llamaDir, "run")
	haveLlama := false
	if st, err := os.Stat(llamaRun); err == nil && !st.IsDir() {
		haveLlama = true
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}

	fmt.Printf("machine: %d CPUs, %s; %s %s/%s; %s\n", runtime.NumCPU(), cpuModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format("2006-01-02"))
	if c := gitCommit(); c != "" {
		fmt.Printf("commit: %s\n", c)
	}
	var bw []float64
	for _, th := range threadCounts(threads) {
		gbps := memoryBandwidth(th)
		bw = append(bw, gbps)
		fmt.Printf("memory read bandwidth, %d thread(s): %.1f GB/s\n", th, gbps)
	}
	if !haveLlama {
		fmt.Printf("no llama.cpp reference at %s: measuring autoglm only\n", llamaDir)
	}

	var rows []timing
	for _, typ := range types {
		typ = strings.TrimSpace(typ)
		path := filepath.Join(dir, "qwen2.5-0.5b-shape-"+typ+".gguf")
		if err := ensureModel(path, typ); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "measuring %s with autoglm…\n", filepath.Base(path))
		args := []string{"bench-engine", "--model", path, "-p", prompt, "-n", gen, "--threads", threads, "-r", reps, "--batch-prompt", batchPrompt, "--batch-reps", batchReps, "--kv-type", kvType, "--json"}
		if batch != "" {
			args = append(args, "--batch", batch)
		}
		out, err := exec.Command(autoglm, args...).Output()
		if err != nil {
			return fmt.Errorf("%s %s: %w", autoglm, strings.Join(args, " "), exitDetail(err))
		}
		var ours struct {
			SizeBytes int64 `json:"size_bytes"`
			Results   []struct {
				Threads int     `json:"threads"`
				Test    string  `json:"test"`
				Seqs    int     `json:"n_seqs"`
				Avg     float64 `json:"avg_ts"`
				Stddev  float64 `json:"stddev_ts"`
			} `json:"results"`
		}
		if err := json.Unmarshal(out, &ours); err != nil {
			return fmt.Errorf("autoglm bench-engine output: %w", err)
		}
		theirs := map[string][2]float64{} // "test/threads" → avg, stddev
		if haveLlama {
			fmt.Fprintf(os.Stderr, "measuring %s with llama.cpp…\n", filepath.Base(path))
			if err := llamaBench(llamaRun, path, prompt, gen, threads, reps, theirs); err != nil {
				fmt.Fprintln(os.Stderr, "llama-bench:", err)
			}
			if batch != "" {
				if err := llamaBatched(llamaRun, path, batchPrompt, gen, batch, threads, theirs); err != nil {
					fmt.Fprintln(os.Stderr, "llama-batched-bench:", err)
				}
			}
		}
		for _, r := range ours.Results {
			t := timing{file: typ, test: r.Test, threads: r.Threads, avg: r.Avg, stddev: r.Stddev, sizeBytes: ours.SizeBytes}
			if v, ok := theirs[fmt.Sprintf("%s/%d", r.Test, r.Threads)]; ok {
				t.llama, t.llsd, t.haveLlama = v[0], v[1], true
			}
			rows = append(rows, t)
		}
	}

	fmt.Println()
	fmt.Println("| file | size | threads | test | autoglm t/s | llama.cpp t/s | autoglm / llama.cpp | autoglm / bandwidth bound |")
	fmt.Println("|---|---:|---:|---|---:|---:|---:|---:|")
	tcs := threadCounts(threads)
	for _, r := range rows {
		ll, ratio := "–", "–"
		if r.haveLlama {
			ll = fmt.Sprintf("%.2f ± %.2f", r.llama, r.llsd)
			ratio = fmt.Sprintf("%.2f×", r.avg/r.llama)
		}
		// Single-sequence generation reads every weight once per token:
		// bandwidth / file size is its ceiling.
		bound := "–"
		if strings.HasPrefix(r.test, "tg") && !strings.Contains(r.test, "x") {
			for i, th := range tcs {
				if th == r.threads && bw[i] > 0 {
					ceiling := bw[i] * 1e9 / float64(r.sizeBytes)
					bound = fmt.Sprintf("%.0f%% of %.1f", 100*r.avg/ceiling, ceiling)
				}
			}
		}
		fmt.Printf("| %s | %.0f MiB | %d | %s | %.2f ± %.2f | %s | %s | %s |\n", r.file, float64(r.sizeBytes)/(1<<20), r.threads, r.test, r.avg, r.stddev, ll, ratio, bound)
	}
	fmt.Printf("\nppN: prompt tokens/s; tgN: generated tokens/s, one sequence; tgNxB: aggregate generated tokens/s of B sequences decoding together after a %s-token prompt each (llama.cpp: llama-batched-bench S_TG).\n", batchPrompt)
	fmt.Println("bandwidth bound: memory read bandwidth / file size, the most tokens/s a single sequence can reach if every weight is read once per token.")
	return nil
}

func threadCounts(s string) []int {
	var out []int
	for _, p := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(p)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// ensureModel writes the file for a mixture unless it is already there
// (the spec and the writer are deterministic, so a file of that name is the
// same file; the size is checked to catch a write cut short).
func ensureModel(path, mixture string) error {
	spec := qwenShape(mixture)
	if st, err := os.Stat(path); err == nil && st.Size() > 0 {
		if ok, _ := os.ReadFile(path + ".done"); string(ok) == fmt.Sprint(st.Size()) {
			return nil
		}
	}
	fmt.Fprintf(os.Stderr, "writing %s…\n", path)
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := synth.Write(w, spec); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path+".done", []byte(fmt.Sprint(st.Size())), 0o644)
}

func llamaBench(runPath, model, prompt, gen, threads, reps string, into map[string][2]float64) error {
	cmd := exec.Command(runPath, "llama-bench", "-m", model, "-p", prompt, "-n", gen, "-t", threads, "-r", reps, "-o", "json")
	out, err := cmd.Output()
	if err != nil {
		return exitDetail(err)
	}
	var rs []struct {
		Prompt  int     `json:"n_prompt"`
		Gen     int     `json:"n_gen"`
		Threads int     `json:"n_threads"`
		Avg     float64 `json:"avg_ts"`
		Stddev  float64 `json:"stddev_ts"`
	}
	if err := json.Unmarshal(out, &rs); err != nil {
		return err
	}
	for _, r := range rs {
		test := fmt.Sprintf("pp%d", r.Prompt)
		if r.Gen > 0 {
			test = fmt.Sprintf("tg%d", r.Gen)
		}
		into[fmt.Sprintf("%s/%d", test, r.Threads)] = [2]float64{r.Avg, r.Stddev}
	}
	return nil
}

func llamaBatched(runPath, model, npp, ntg, npl, threads string, into map[string][2]float64) error {
	for _, th := range threadCounts(threads) {
		cmd := exec.Command(runPath, "llama-batched-bench", "-m", model, "-c", "4096", "-b", "512", "-ub", "512",
			"-npp", npp, "-ntg", ntg, "-npl", npl, "-t", strconv.Itoa(th), "--output-format", "jsonl")
		out, err := cmd.Output()
		if err != nil {
			return exitDetail(err)
		}
		for _, line := range bytes.Split(out, []byte("\n")) {
			if !bytes.HasPrefix(line, []byte("{")) {
				continue
			}
			var r struct {
				TG      int     `json:"tg"`
				PL      int     `json:"pl"`
				SpeedTG float64 `json:"speed_tg"`
			}
			if json.Unmarshal(line, &r) == nil {
				into[fmt.Sprintf("tg%dx%d/%d", r.TG, r.PL, th)] = [2]float64{r.SpeedTG, 0}
			}
		}
	}
	return nil
}

func exitDetail(err error) error {
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		tail := ee.Stderr
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(tail))
	}
	return err
}

// memoryBandwidth streams a 512 MiB buffer (far larger than any cache) with
// n goroutines, each reading its own share, and returns the best of three
// passes in GB/s. Each goroutine reads its share as four streams side by side
// and loads one word of each 64-byte line (the memory system moves whole
// lines): a loop that adds every word is bound by its own instructions at
// about one core's worth of bandwidth, and one stream leaves the memory
// system idle between the prefetchers' requests, so either would report less
// than the engine's four-stream kernels reach.
func memoryBandwidth(n int) float64 {
	const size = 512 << 20
	buf := make([]uint64, size/8)
	for i := range buf {
		buf[i] = uint64(i)
	}
	best := 0.0
	for range 3 {
		var wg sync.WaitGroup
		sums := make([]uint64, n)
		start := time.Now()
		share := len(buf) / n
		for w := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sums[w] = sumLines(buf[w*share : (w+1)*share])
			}()
		}
		wg.Wait()
		d := time.Since(start)
		if gbps := float64(share*n*8) / d.Seconds() / 1e9; gbps > best {
			best = gbps
		}
	}
	return best
}

// sumLines adds the first word of every 64-byte line of b, reading its four
// quarters side by side.
func sumLines(b []uint64) uint64 {
	const line = 8 // words
	q := len(b) / 4 / line * line
	var s0, s1, s2, s3 uint64
	for i := 0; i < q; i += line {
		s0 += b[i]
		s1 += b[q+i]
		s2 += b[2*q+i]
		s3 += b[3*q+i]
	}
	return s0 + s1 + s2 + s3
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
