package main

import (
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/bench"
	"github.com/open-autoglm/autoglm/internal/mockllm"
)

// TestBenchCompareCmd: `autoglm bench --compare` prints each endpoint's added latency, and,
// over several rounds, the added median of each round; --json carries the rounds.
func TestBenchCompareCmd(t *testing.T) {
	fast := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 2}))
	defer fast.Close()
	slow := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 2, TTFT: 20 * time.Millisecond}))
	defer slow.Close()
	args := []string{"--compare", "fast=" + fast.URL + "/v1", "--compare", "slow=" + slow.URL + "/v1", "--model", "m",
		"--rate", "40", "--from-send", "--duration", "600ms", "--warmup", "20ms", "--rounds", "3"}

	out, _ := runEngineCmd(t, benchCmd(), args...)
	var byRound []string
	for _, line := range strings.Split(out, "\n") {
		if _, rest, ok := strings.Cut(line, "added p50 by round:"); ok {
			byRound = append(byRound, strings.TrimSpace(rest))
		}
	}
	// The baseline adds nothing to itself in any round; the slow mock adds its 20 ms in each.
	if len(byRound) != 2 || byRound[0] != "0µs 0µs 0µs" || len(strings.Fields(byRound[1])) != 3 ||
		strings.Count(byRound[1], "ms") != 3 {
		t.Errorf("rounds lines %q in:\n%s", byRound, out)
	}

	out, _ = runEngineCmd(t, benchCmd(), append(args, "--json")...)
	var res []bench.Compared
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json printed %q: %v", out, err)
	}
	if len(res) != 2 || len(res[0].Rounds) != 3 || len(res[1].Rounds) != 3 || res[1].Rounds[2].P50 < 20_000 {
		t.Errorf("--json: %s", out)
	}

	// Interleaved: the slow mock's 20 ms shows as its paired figure over the baseline, and
	// only the slow one has that line (the baseline is not paired with itself).
	out, _ = runEngineCmd(t, benchCmd(), append(args, "--interleave")...)
	var paired []string
	for _, line := range strings.Split(out, "\n") {
		if _, rest, ok := strings.Cut(line, "paired added p50 "); ok {
			paired = append(paired, rest)
		}
	}
	if len(paired) != 1 {
		t.Fatalf("paired lines %q in:\n%s", paired, out)
	}
	if ms, err := strconv.ParseFloat(strings.TrimSuffix(strings.Fields(paired[0])[0], "ms"), 64); err != nil || ms < 20 || ms > 60 {
		t.Errorf("paired line %q: want the slow mock's 20 ms added", paired[0])
	}
}
