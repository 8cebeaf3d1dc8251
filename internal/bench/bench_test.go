package bench_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/bench"
	"github.com/open-autoglm/autoglm/internal/mockllm"
)

func mock(t *testing.T, o mockllm.Options) string {
	t.Helper()
	ts := httptest.NewServer(mockllm.New(o))
	t.Cleanup(ts.Close)
	return ts.URL + "/v1"
}

func TestClosedLoop(t *testing.T) {
	url := mock(t, mockllm.Options{Tokens: 4})
	var progress []float64
	// Runs last a second: on a starved machine (race detector, busy cores) a shorter one may
	// see no request come back at all.
	res, err := bench.Run(context.Background(), bench.Options{URL: url, Model: "m", Concurrency: 2,
		Duration: time.Second, Warmup: 100 * time.Millisecond,
		Progress: func(done float64, _ int64) { progress = append(progress, done) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != 0 || res.RPS <= 0 {
		t.Fatalf("result %+v", res)
	}
	l := res.Latency
	if !(l.P50 > 0 && l.P50 <= l.P90 && l.P90 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("percentiles out of order: %+v", l)
	}
	if res.TTFT != nil {
		t.Error("TTFT reported for a non-stream run")
	}
	if len(progress) == 0 || progress[len(progress)-1] != 1 {
		t.Errorf("progress %v does not end at 1", progress)
	}
}

// TestOpenLoopRate checks the open loop's count: requests whose intended send time fell in the
// measured second, not how many came back (on a loaded machine a new connection's SYN may wait a
// second in the listen queue).
func TestOpenLoopRate(t *testing.T) {
	url := mock(t, mockllm.Options{Tokens: 2})
	res, err := bench.Run(context.Background(), bench.Options{URL: url, Model: "m", Rate: 200,
		Duration: time.Second, Warmup: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// 200 intended sends in the measured second; the last few may be cut by the end of the run.
	// The schedule itself is checked exactly in TestSchedule; here only that the run used it
	// (a loaded machine may stall the sender for part of the second).
	if res.Sent < 1 || res.Sent > 200 || res.Errors != 0 || res.Requests > res.Sent {
		t.Errorf("open loop at 200/s for 1 s: %d sent, %d answered, %d errors", res.Sent, res.Requests, res.Errors)
	}
	if res.SendLag == nil {
		t.Error("open loop without its send lag")
	}
}

func TestStreamAndErrors(t *testing.T) {
	url := mock(t, mockllm.Options{Tokens: 6, ITL: time.Millisecond})
	res, err := bench.Run(context.Background(), bench.Options{URL: url, Model: "m", Concurrency: 1, Stream: true,
		Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.TTFT == nil || res.ITL == nil || res.TTFT.P50 <= 0 || res.ITL.P50 < 900 || res.Errors != 0 {
		t.Errorf("stream result %+v ttft %+v itl %+v", res, res.TTFT, res.ITL)
	}

	failing := mock(t, mockllm.Options{FailRate: 1})
	res, err = bench.Run(context.Background(), bench.Options{URL: failing, Model: "m", Concurrency: 1, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors == 0 || res.Errors != res.Requests || res.ErrorKind["http_500"] != res.Errors {
		t.Errorf("failing upstream: %+v", res)
	}

	if _, err := bench.Run(context.Background(), bench.Options{URL: url, Model: "m", Duration: time.Second, Proto: "spdy"}); err == nil {
		t.Error("unknown protocol accepted")
	}
}

// TestCompare checks that each endpoint of a comparison gets its own measurements, merged
// over the rounds: a failing endpoint's errors stay with it.
func TestCompare(t *testing.T) {
	good := mock(t, mockllm.Options{Tokens: 2})
	failing := mock(t, mockllm.Options{FailRate: 1})
	res, err := bench.Compare(context.Background(), bench.Options{Model: "m", Rate: 100, FromSend: true,
		Duration: 400 * time.Millisecond, Warmup: 50 * time.Millisecond},
		[]bench.Target{{Name: "good", URL: good}, {Name: "failing", URL: failing}}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Name != "good" || res[1].Name != "failing" {
		t.Fatalf("targets %+v", res)
	}
	g, f := res[0].Result, res[1].Result
	// 100/s for two rounds of 200 ms each: 40 sends per endpoint.
	if g.Sent < 30 || g.Sent > 40 || g.Errors != 0 || g.Elapsed < 0.35 {
		t.Errorf("good endpoint: %+v", g)
	}
	if f.Requests == 0 || f.Errors != f.Requests || f.ErrorKind["http_500"] != f.Errors {
		t.Errorf("failing endpoint: %+v", f)
	}
	if _, err := bench.Compare(context.Background(), bench.Options{Model: "m", Duration: time.Second}, nil, 1); err == nil {
		t.Error("a comparison without endpoints accepted")
	}
}

// TestCompareRounds: each round's median is the endpoint's own, round by round. One mock
// holds every answer's first token 15 ms, so its medians, and only its, are at least that, and
// the merged median lies between its rounds' medians.
func TestCompareRounds(t *testing.T) {
	fast := mock(t, mockllm.Options{Tokens: 2})
	slow := mock(t, mockllm.Options{Tokens: 2, TTFT: 15 * time.Millisecond})
	const rounds = 3
	res, err := bench.Compare(context.Background(), bench.Options{Model: "m", Rate: 50, FromSend: true, Stream: true,
		Duration: 600 * time.Millisecond, Warmup: 20 * time.Millisecond},
		[]bench.Target{{Name: "fast", URL: fast}, {Name: "slow", URL: slow}}, rounds)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res {
		if len(c.Rounds) != rounds {
			t.Fatalf("%s: %d rounds, want %d", c.Name, len(c.Rounds), rounds)
		}
		var n int64
		lo, hi := c.Rounds[0].P50, c.Rounds[0].P50
		for i, r := range c.Rounds {
			n += r.Requests
			lo, hi = min(lo, r.P50), max(hi, r.P50)
			slowRound := r.P50 >= 15_000 && r.TTFTP50 >= 15_000
			if r.Requests == 0 || slowRound != (c.Name == "slow") {
				t.Errorf("%s round %d: %+v", c.Name, i, r)
			}
		}
		if n != c.Result.Requests {
			t.Errorf("%s: rounds count %d requests, the merged result %d", c.Name, n, c.Result.Requests)
		}
		// The merged median lies between the rounds' medians (within the histogram's 0.1 %).
		if p := c.Result.Latency.P50; p < lo-lo/500 || p > hi+hi/500 {
			t.Errorf("%s: merged p50 %d outside the rounds' %d..%d", c.Name, p, lo, hi)
		}
	}
}

// TestCompareInterleaved: the targets share one schedule, cycle by cycle, and the paired
// figures find a slow target's delay.
func TestCompareInterleaved(t *testing.T) {
	fast := mock(t, mockllm.Options{Tokens: 2})
	slow := mock(t, mockllm.Options{Tokens: 2, TTFT: 15 * time.Millisecond})
	const rounds, rate = 3, 60
	opt := bench.Options{Model: "m", Rate: rate, FromSend: true, Stream: true, Interleave: true,
		Duration: time.Second, Warmup: 50 * time.Millisecond}
	targets := []bench.Target{{Name: "fast", URL: fast}, {Name: "slow", URL: slow}}
	res, err := bench.Compare(context.Background(), opt, targets, rounds)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]bench.Compared{}
	for _, c := range res {
		byName[c.Name] = c
		r := c.Result
		// The rate is the total: each of the two targets gets half the sends.
		if r.Errors != 0 || r.Requests < rate/2-3 || r.Requests > rate/2+3 {
			t.Errorf("%s: %d requests, %d errors; want about %d, none failed", c.Name, r.Requests, r.Errors, rate/2)
		}
		if len(c.Rounds) != rounds {
			t.Fatalf("%s: %d rounds, want %d", c.Name, len(c.Rounds), rounds)
		}
		// Rounds hold the cycles begun after the warm-up; a cycle that straddles its end is
		// in the merged figures only.
		var n int64
		for i, rd := range c.Rounds {
			n += rd.Requests
			if rd.Requests == 0 || (rd.P50 >= 15_000) != (c.Name == "slow") {
				t.Errorf("%s round %d: %+v", c.Name, i, rd)
			}
		}
		if n > r.Requests || n < r.Requests-1 {
			t.Errorf("%s: rounds count %d requests, the merged result %d", c.Name, n, r.Requests)
		}
		if len(c.Paired) != 1 {
			t.Fatalf("%s: paired with %+v, want the other target only", c.Name, c.Paired)
		}
	}
	s, f := byName["slow"].Paired[0], byName["fast"].Paired[0]
	if s.Against != "fast" || f.Against != "slow" {
		t.Fatalf("paired against %q and %q", s.Against, f.Against)
	}
	if s.Pairs < rate/2-4 || s.Pairs != f.Pairs {
		t.Errorf("pairs %d and %d, want about %d each, the same", s.Pairs, f.Pairs, rate/2)
	}
	// The slow mock waits 15 ms before its first token; nothing else differs.
	for _, v := range []int64{s.P50, s.TTFTP50} {
		if v < 15_000 || v > 40_000 {
			t.Errorf("slow minus fast %d µs, want the 15 ms delay: %+v", v, s)
		}
	}
	if f.P50 > -15_000 || f.TTFTP50 > -15_000 {
		t.Errorf("fast minus slow: %+v, want about -15 ms", f)
	}

	opt.Rate = 0
	if _, err := bench.Compare(context.Background(), opt, targets, rounds); err == nil {
		t.Error("interleaving a closed loop: no error")
	}
}
