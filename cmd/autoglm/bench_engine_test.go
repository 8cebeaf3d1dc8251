package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestBenchEngineCmd(t *testing.T) {
	out, _ := runEngineCmd(t, benchEngineCmd(), "--model", demoModelPath, "-p", "8", "-n", "4", "--threads", "1,2", "--batch", "3", "--batch-prompt", "5", "-r", "2", "--batch-reps", "1", "--json")
	var res engineBench
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json printed %q: %v", out, err)
	}
	if res.Model != "stories260K.gguf" || res.Arch != "llama" || res.Type != "F32" || res.Params < 200_000 || res.SizeBytes != 4*res.Params {
		t.Errorf("model description %+v", res)
	}
	var tests []string
	for _, r := range res.Results {
		tests = append(tests, r.Test)
		want := 2 // -r
		if r.Seqs > 1 {
			want = 1 // --batch-reps
		}
		if len(r.Samples) != want || r.Avg <= 0 {
			t.Errorf("%s at %d threads: samples %v, mean %v", r.Test, r.Threads, r.Samples, r.Avg)
		}
	}
	if got := strings.Join(tests, " "); got != "pp8 tg4 tg4x3 pp8 tg4 tg4x3" {
		t.Errorf("tests %q", got)
	}
	if r := res.Results[2]; r.Seqs != 3 || r.Gen != 4 || r.Context != 5 || res.Results[3].Threads != 2 {
		t.Errorf("batched test %+v", r)
	}

	out, _ = runEngineCmd(t, benchEngineCmd(), "--model", demoModelPath, "-p", "4", "-n", "0", "-r", "1")
	if !strings.HasPrefix(out, "| model | size | params | type | threads | test | t/s |") || !strings.Contains(out, "| F32 |") ||
		!strings.Contains(out, "| pp4 |") || strings.Contains(out, "tg") {
		t.Errorf("table:\n%s", out)
	}
}

func TestBenchEngineCmdFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--threads", "1,x"},
		{"--batch", "0"},
		{"-r", "0"},
	} {
		cmd := benchEngineCmd()
		cmd.SetArgs(append([]string{"--model", demoModelPath}, args...))
		cmd.SetOut(new(strings.Builder))
		cmd.SetErr(new(strings.Builder))
		if err := cmd.Execute(); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
