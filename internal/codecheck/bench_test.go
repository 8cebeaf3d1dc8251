package codecheck

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// goBlock100 is a 100-line Go file of the kind a model writes: imports, a type, methods,
// loops and error handling.
func goBlock100() string {
	var b strings.Builder
	b.WriteString("package main\n\nimport (\n\t\"errors\"\n\t\"fmt\"\n\t\"sort\"\n\t\"strings\"\n)\n\n")
	b.WriteString("// Store keeps counts by key.\ntype Store struct {\n\tcounts map[string]int\n}\n\n")
	b.WriteString("// NewStore returns an empty store.\nfunc NewStore() *Store { return &Store{counts: map[string]int{}} }\n\n")
	for i := 0; strings.Count(b.String(), "\n") < 92; i++ {
		fmt.Fprintf(&b, "// Add%d adds words.\nfunc (s *Store) Add%d(text string) error {\n\tif text == \"\" {\n\t\treturn errors.New(\"empty\")\n\t}\n", i, i)
		fmt.Fprintf(&b, "\tfor _, w := range strings.Fields(text) {\n\t\ts.counts[strings.ToLower(w)] += %d\n\t}\n\treturn nil\n}\n\n", i+1)
	}
	b.WriteString("func (s *Store) Top() []string {\n\tkeys := make([]string, 0, len(s.counts))\n\tfor k := range s.counts {\n\t\tkeys = append(keys, k)\n\t}\n\tsort.Strings(keys)\n\tfmt.Println(len(keys))\n\treturn keys\n}\n")
	return b.String()
}

// BenchmarkCheckGo100 measures checking a 100-line Go block (parse, gofmt comparison and full
// type check against the embedded standard library), after the first check has loaded it.
// It reports the p50 of the iterations as p50-ms.
func BenchmarkCheckGo100(b *testing.B) {
	src := goBlock100()
	if n := strings.Count(src, "\n"); n < 95 || n > 105 {
		b.Fatalf("block has %d lines", n)
	}
	c := New()
	ctx := context.Background()
	if res := c.Check(ctx, Request{Language: "go", Code: src}); res.Status != StatusPassed {
		b.Fatalf("benchmark block does not pass: %v", res.Diagnostics)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	durs := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		c.Check(ctx, Request{Language: "go", Code: src})
		durs = append(durs, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
	b.ReportMetric(float64(durs[len(durs)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(durs[len(durs)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkCheckGo100Tokenizer is the same text through the tokenizer-level check: a
// baseline in the same run, which shows what parsing and type-checking add on this machine.
func BenchmarkCheckGo100Tokenizer(b *testing.B) {
	src := goBlock100()
	c := New()
	for b.Loop() {
		c.Check(context.Background(), Request{Language: "python", Code: src})
	}
}

func BenchmarkCheckJS(b *testing.B) {
	src := strings.Repeat("function f(a, b) {\n  return [a, b].map((x) => x * 2);\n}\n", 33)
	c := New()
	for b.Loop() {
		c.Check(context.Background(), Request{Language: "javascript", Code: src})
	}
}
