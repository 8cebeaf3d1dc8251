package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

const demoModelPath = "../../models/stories260K.gguf"

// runEngineCmd runs a command in-process and returns its stdout.
func runEngineCmd(t *testing.T, cmd *cobra.Command, args ...string) (string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("%s %v: %v\nstderr: %s", cmd.Name(), args, err, errOut.String())
	}
	return out.String(), errOut.String()
}

func TestTokenizeCmd(t *testing.T) {
	out, _ := runEngineCmd(t, tokenizeCmd(), "--model", demoModelPath, "--text", "Once upon a time")
	if out != "[1,403,407,261,378]\n" {
		t.Errorf("tokenize printed %q", out)
	}
	out, _ = runEngineCmd(t, tokenizeCmd(), "--model", demoModelPath, "--text", "")
	if out != "[1]\n" {
		t.Errorf("tokenize of empty text printed %q", out)
	}
}

func TestGenerateCmd(t *testing.T) {
	const want = ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high."
	out, errOut := runEngineCmd(t, generateCmd(), "--model", demoModelPath, "--prompt", "Once upon a time", "--max-tokens", "60", "--threads", "1")
	if !strings.HasPrefix(out, want) || !strings.HasSuffix(out, "\n") {
		t.Errorf("generate printed %q", out)
	}
	if errOut != "" {
		t.Errorf("stderr without --verbose: %q", errOut)
	}
	// Stop strings, and the summary with --verbose.
	out, errOut = runEngineCmd(t, generateCmd(), "--model", demoModelPath, "--prompt", "Once upon a time", "--stop", " Lily", "--verbose")
	if out != ", there was a little girl named\n" {
		t.Errorf("generate with --stop printed %q", out)
	}
	if !strings.Contains(errOut, "tok/s") || !strings.Contains(errOut, "finish stop") {
		t.Errorf("--verbose summary %q", errOut)
	}
	// Seeded sampling is reproducible.
	args := []string{"--model", demoModelPath, "--prompt", "Once upon a time", "--max-tokens", "20", "--temperature", "1", "--seed", "5"}
	a, _ := runEngineCmd(t, generateCmd(), args...)
	b, _ := runEngineCmd(t, generateCmd(), args...)
	if a != b {
		t.Errorf("same seed, different output:\n%q\n%q", a, b)
	}
}

func TestLogitsCmd(t *testing.T) {
	out, _ := runEngineCmd(t, logitsCmd(), "--model", demoModelPath, "--text", "Once upon a time")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	wantIDs := []string{"1", "403", "407", "261", "378"}
	if len(lines) != len(wantIDs) {
		t.Fatalf("%d lines, want %d", len(lines), len(wantIDs))
	}
	for pos, line := range lines {
		fields := strings.Split(line, " ")
		if len(fields) != 512+2 {
			t.Fatalf("line %d: %d fields, want %d", pos, len(fields), 514)
		}
		if fields[0] != strconv.Itoa(pos) || fields[1] != wantIDs[pos] {
			t.Errorf("line %d starts %q %q", pos, fields[0], fields[1])
		}
		best, bestV := -1, 0.0
		for i, s := range fields[2:] {
			v, err := strconv.ParseFloat(s, 32)
			if err != nil {
				t.Fatalf("line %d logit %d: %v", pos, i, err)
			}
			if dot := strings.IndexByte(s, '.'); dot < 0 || len(s)-dot-1 != 6 {
				t.Fatalf("line %d logit %d %q: want six decimals", pos, i, s)
			}
			if best < 0 || v > bestV {
				best, bestV = i, v
			}
		}
		// The last position predicts the greedy continuation's first
		// token, "," (id 432: "Once upon a time," ends with it).
		if pos == len(lines)-1 && best != 432 {
			t.Errorf("argmax at the last position %d, want 432", best)
		}
	}
}
