// Package bench is the load generator behind `autoglm bench`: closed-loop (a fixed number of
// clients, each sending as soon as its last answer arrived) or open-loop (a constant arrival
// rate, with latency measured from each request's intended send time so a stall is not
// hidden), recording latencies in HDR histograms.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Options describe one benchmark run.
type Options struct {
	URL          string        // API root, e.g. http://127.0.0.1:8080/v1
	Model        string        // model name sent in each request
	APIKey       string        // optional bearer key
	Rate         float64       // requests per second (open loop); 0 = closed loop
	Concurrency  int           // clients in closed loop; in open loop, the cap on requests in flight
	Duration     time.Duration // how long to send
	Warmup       time.Duration // requests in this first period are not recorded
	Stream       bool          // ask for SSE and record TTFT and inter-token latency
	Proto        string        // "http1" or "h2c"
	PromptTokens int           // approximate prompt length in words
	MaxTokens    int           // max_tokens per request
	Temperature  float64       // sent when >= 0; negative leaves it out (the server's default)
	// FromSend measures latency and TTFT from when each request was actually sent, as most
	// load generators (vegeta among them) do, rather than from its intended send time in open
	// loop: for comparing endpoints without the generator's own timer lag (Result.SendLag),
	// which can reach a millisecond on a busy machine. Closed loop is the same either way.
	FromSend bool
	// Interleave, for Compare in open loop, sends to every target within the same stretch of
	// time instead of to each in turn: the schedule's sends (Rate in all, so each of N
	// targets gets Rate/N) go out in cycles of one send to each target, in an order drawn
	// afresh for each cycle. The targets then share every moment of the machine's drift,
	// and Compared.Paired gives, for each pair of targets, the median of the cycles'
	// differences: on a noisy machine a much steadier figure than the difference of two
	// medians taken apart.
	Interleave bool
	// Progress, if set, is called about every 200ms with the elapsed fraction in [0,1].
	Progress func(done float64, requests int64)
}

// Result is what a run measured. Latencies are in microseconds.
type Result struct {
	Requests int64 `json:"requests"`
	// Sent counts the requests sent in the measured period, answered or not: in open loop,
	// the schedule's sends whatever the server did with them.
	Sent      int64            `json:"sent"`
	Errors    int64            `json:"errors"`
	ErrorKind map[string]int64 `json:"errors_by_kind,omitempty"`
	Elapsed   float64          `json:"elapsed_s"`
	RPS       float64          `json:"rps"`
	Latency   Percentiles      `json:"latency_us"`
	// SendLag is how late the open loop sent each request against its schedule: the
	// generator's own delay, which Latency and TTFT include unless Options.FromSend is set.
	SendLag *Percentiles `json:"send_lag_us,omitempty"`
	TTFT    *Percentiles `json:"ttft_us,omitempty"`
	ITL     *Percentiles `json:"itl_us,omitempty"`
	Dropped int64        `json:"dropped,omitempty"` // open loop: sends skipped because Concurrency requests were in flight
}

// Percentiles summarise a histogram.
type Percentiles struct {
	P50  int64   `json:"p50"`
	P90  int64   `json:"p90"`
	P95  int64   `json:"p95"`
	P99  int64   `json:"p99"`
	P999 int64   `json:"p999"`
	Max  int64   `json:"max"`
	Mean float64 `json:"mean"`
}

func summarise(h *hdrhistogram.Histogram) Percentiles {
	return Percentiles{
		P50: h.ValueAtQuantile(50), P90: h.ValueAtQuantile(90), P95: h.ValueAtQuantile(95),
		P99: h.ValueAtQuantile(99), P999: h.ValueAtQuantile(99.9), Max: h.Max(), Mean: h.Mean(),
	}
}

type recorder struct {
	mu      sync.Mutex
	lat     *hdrhistogram.Histogram
	lag     *hdrhistogram.Histogram
	ttft    *hdrhistogram.Histogram
	itl     *hdrhistogram.Histogram
	errs    map[string]int64
	n       int64
	nerr    int64
	started atomic.Int64
	sent    atomic.Int64 // started in the measured period

	// round and roundTTFT, when set, also take the latencies and TTFTs of the round in
	// progress (Compare).
	round, roundTTFT *hdrhistogram.Histogram
}

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, 600_000_000, 3) }

// Run executes the benchmark.
func Run(ctx context.Context, opt Options) (*Result, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	client, err := newClient(opt)
	if err != nil {
		return nil, err
	}
	defer client.CloseIdleConnections()
	rec := newRecorder()
	el := drive(ctx, opt, client, rec, opt.Progress)
	return rec.result(opt, el), nil
}

func (opt Options) withDefaults() (Options, error) {
	if opt.URL == "" || opt.Model == "" {
		return opt, errors.New("bench: URL and model are required")
	}
	if opt.Duration <= 0 {
		return opt, errors.New("bench: duration must be positive")
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = 1
		if opt.Rate > 0 {
			opt.Concurrency = 10_000
		}
	}
	if opt.MaxTokens <= 0 {
		opt.MaxTokens = 16
	}
	if opt.PromptTokens <= 0 {
		opt.PromptTokens = 16
	}
	return opt, nil
}

func newRecorder() *recorder {
	return &recorder{lat: newHist(), lag: newHist(), ttft: newHist(), itl: newHist(), errs: map[string]int64{}}
}

// elapsed is what one drive measured besides the histograms.
type elapsed struct {
	measured time.Duration
	dropped  int64
}

func (rec *recorder) result(opt Options, el elapsed) *Result {
	secs := el.measured.Seconds()
	res := &Result{
		Requests:  rec.n + rec.nerr,
		Sent:      rec.sent.Load(),
		Errors:    rec.nerr,
		ErrorKind: rec.errs,
		Elapsed:   secs,
		RPS:       float64(rec.n) / secs,
		Latency:   summarise(rec.lat),
		Dropped:   el.dropped,
	}
	if opt.Rate > 0 {
		l := summarise(rec.lag)
		res.SendLag = &l
	}
	if opt.Stream {
		t, i := summarise(rec.ttft), summarise(rec.itl)
		res.TTFT, res.ITL = &t, &i
	}
	return res
}

// drive sends opt's load to opt.URL for opt.Warmup + opt.Duration and records what it measured
// after the warm-up into rec.
func drive(ctx context.Context, opt Options, client *http.Client, rec *recorder, progress func(float64, int64)) elapsed {
	body := requestBody(opt)
	url := strings.TrimRight(opt.URL, "/") + "/chat/completions"

	start := time.Now()
	measureFrom := start.Add(opt.Warmup)
	end := measureFrom.Add(opt.Duration)
	runCtx, cancel := context.WithDeadline(ctx, end)
	defer cancel()

	stopProgress := make(chan struct{})
	var progressDone sync.WaitGroup
	if progress != nil {
		progressDone.Go(func() {
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			total := end.Sub(start)
			for {
				select {
				case <-stopProgress:
					progress(1, rec.started.Load())
					return
				case now := <-t.C:
					progress(min(1, float64(now.Sub(start))/float64(total)), rec.started.Load())
				}
			}
		})
	}

	one := func(intended time.Time) { rec.send(runCtx, client, url, opt, body, intended, measureFrom) }

	var wg sync.WaitGroup
	var dropped atomic.Int64
	if opt.Rate > 0 {
		sem := make(chan struct{}, opt.Concurrency)
		sched := newSchedule(start, opt.Rate)
		for {
			next, ok := sched.wait(runCtx, end)
			if !ok {
				break
			}
			select {
			case sem <- struct{}{}:
			default:
				dropped.Add(1)
				rec.saturated(next, measureFrom)
				continue
			}
			wg.Go(func() {
				defer func() { <-sem }()
				one(next)
			})
		}
	} else {
		for range opt.Concurrency {
			wg.Go(func() {
				for runCtx.Err() == nil {
					one(time.Now())
				}
			})
		}
	}
	wg.Wait()
	close(stopProgress)
	progressDone.Wait()
	return elapsed{measured: min(time.Since(measureFrom), opt.Duration), dropped: dropped.Load()}
}

// send sends one request and records it in rec, unless it was due before measureFrom. It
// returns the latency and TTFT it recorded (TTFT 0 for an answer that was not streamed), and
// false when it recorded nothing or an error.
func (rec *recorder) send(ctx context.Context, client *http.Client, url string, opt Options, body []byte, intended, measureFrom time.Time) (time.Duration, time.Duration, bool) {
	rec.started.Add(1)
	if !intended.Before(measureFrom) {
		rec.sent.Add(1)
	}
	sent := time.Now()
	_, ttft, itls, kind := do(ctx, client, url, opt, body)
	if intended.Before(measureFrom) || kind == "canceled_at_end" {
		return 0, 0, false
	}
	// Latency and TTFT count from when the request should have been sent: in open loop a
	// sender that fell behind shows up as latency instead of vanishing.
	from := intended
	if opt.FromSend {
		from = sent
	}
	lat := time.Since(from)
	streamed := ttft > 0
	ttft += sent.Sub(from)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if kind != "" {
		rec.nerr++
		rec.errs[kind]++
		return 0, 0, false
	}
	rec.n++
	_ = rec.lat.RecordValue(max(1, lat.Microseconds()))
	_ = rec.lag.RecordValue(max(1, sent.Sub(intended).Microseconds()))
	if rec.round != nil {
		_ = rec.round.RecordValue(max(1, lat.Microseconds()))
	}
	if !opt.Stream || !streamed {
		return lat, 0, true
	}
	_ = rec.ttft.RecordValue(max(1, ttft.Microseconds()))
	if rec.roundTTFT != nil {
		_ = rec.roundTTFT.RecordValue(max(1, ttft.Microseconds()))
	}
	for _, d := range itls {
		_ = rec.itl.RecordValue(max(1, d.Microseconds()))
	}
	return lat, ttft, true
}

// saturated records a send the open loop skipped because Concurrency requests were in
// flight: an error of the run, when it was due in the measured period.
func (rec *recorder) saturated(intended, measureFrom time.Time) {
	if intended.Before(measureFrom) {
		return
	}
	rec.mu.Lock()
	rec.nerr++
	rec.errs["client_saturated"]++
	rec.mu.Unlock()
}

// schedule is an open loop's arrival times: start + i/rate, for i = 0, 1, 2, ... Send times
// are computed from the start, never from the previous send, so a late wake-up does not shift
// the rest of the run: the sends it delayed go out at once and count their delay as latency.
type schedule struct {
	start    time.Time
	interval time.Duration
	i        int64
	timer    *time.Timer
}

func newSchedule(start time.Time, rate float64) *schedule {
	return &schedule{start: start, interval: time.Duration(float64(time.Second) / rate)}
}

// wait blocks until the next send time and returns it, or false when it is not before end or
// ctx is done. The runtime's timers may wake it late (up to a millisecond or more on a busy
// machine); the sends that fall due meanwhile then go out at once.
func (s *schedule) wait(ctx context.Context, end time.Time) (time.Time, bool) {
	next := s.start.Add(time.Duration(s.i) * s.interval)
	s.i++
	if !next.Before(end) {
		return next, false
	}
	if d := time.Until(next); d > 0 {
		if s.timer == nil {
			s.timer = time.NewTimer(d)
		} else {
			s.timer.Reset(d)
		}
		select {
		case <-s.timer.C:
		case <-ctx.Done():
			return next, false
		}
	}
	return next, ctx.Err() == nil
}

// Target is one endpoint of a comparison.
type Target struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// Compared is one target's result in a comparison.
type Compared struct {
	Target
	Result *Result `json:"result"`
	// Rounds holds each round's own figures, in the order the rounds ran. Round r of every
	// target ran within the same stretch of time, so a difference between two targets taken
	// round by round leaves out the drift between rounds that the merged Result carries.
	Rounds []Round `json:"rounds"`
	// Paired, with Options.Interleave, compares this target with each other one, cycle by
	// cycle.
	Paired []Pair `json:"paired,omitempty"`
}

// Pair is one target's latency minus another's, taken within each cycle of an interleaved
// comparison (Options.Interleave), where both were answered.
type Pair struct {
	Against string `json:"against"`
	Pairs   int64  `json:"pairs"`  // cycles in which both were answered
	P50     int64  `json:"p50_us"` // median of the differences
	TTFTP50 int64  `json:"ttft_p50_us,omitempty"`
}

// Round is one target's figures over one round of a comparison.
type Round struct {
	Requests int64 `json:"requests"` // answered without error
	P50      int64 `json:"p50_us"`   // 0 when no request was answered
	TTFTP50  int64 `json:"ttft_p50_us,omitempty"`
}

// Compare sends the same load (opt, without its URL) to each target in turn, in rounds: round
// r runs every target for opt.Duration/rounds after its own warm-up, in an order rotated each
// round, and each target's measurements are merged over the rounds. On a machine whose load
// drifts, the drift then falls on every target alike instead of on whichever ran last; each
// round's own median is kept as well (Compared.Rounds), for differences taken round by round.
// Each target keeps its own client, so keep-alive connections survive from one round to the
// next.
func Compare(ctx context.Context, opt Options, targets []Target, rounds int) ([]Compared, error) {
	if len(targets) == 0 {
		return nil, errors.New("bench: no targets to compare")
	}
	rounds = max(rounds, 1)
	first := opt
	first.URL = targets[0].URL
	first, err := first.withDefaults()
	if err != nil {
		return nil, err
	}
	slice := first.Duration / time.Duration(rounds)
	if slice <= 0 {
		return nil, errors.New("bench: duration too short for the rounds")
	}
	clients := make([]*http.Client, len(targets))
	recs := make([]*recorder, len(targets))
	measured := make([]elapsed, len(targets))
	perRound := make([][]Round, len(targets))
	for i := range targets {
		if clients[i], err = newClient(first); err != nil {
			return nil, err
		}
		defer clients[i].CloseIdleConnections()
		recs[i] = newRecorder()
	}
	if first.Interleave {
		if first.Rate <= 0 {
			return nil, errors.New("bench: interleaving needs an open loop (a rate)")
		}
		return compareInterleaved(ctx, first, targets, rounds, clients, recs)
	}
	for r := range rounds {
		for k := range targets {
			i := (k + r) % len(targets)
			o := first
			o.URL, o.Duration = targets[i].URL, slice
			rec := recs[i]
			rec.mu.Lock()
			rec.round, rec.roundTTFT = newHist(), newHist()
			rec.mu.Unlock()
			el := drive(ctx, o, clients[i], rec, nil)
			measured[i].measured += el.measured
			measured[i].dropped += el.dropped
			rec.mu.Lock()
			rd := Round{Requests: rec.round.TotalCount()}
			if rd.Requests > 0 {
				rd.P50 = rec.round.ValueAtQuantile(50)
			}
			if rec.roundTTFT.TotalCount() > 0 {
				rd.TTFTP50 = rec.roundTTFT.ValueAtQuantile(50)
			}
			rec.round, rec.roundTTFT = nil, nil
			rec.mu.Unlock()
			perRound[i] = append(perRound[i], rd)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
	}
	out := make([]Compared, len(targets))
	for i, t := range targets {
		out[i] = Compared{Target: t, Result: recs[i].result(first, measured[i]), Rounds: perRound[i]}
	}
	return out, nil
}

// compareInterleaved is Compare with Options.Interleave: one open loop whose sends go to the
// targets cycle by cycle. Round r is the cycles that began in the r-th part of the measured
// duration.
func compareInterleaved(ctx context.Context, opt Options, targets []Target, rounds int, clients []*http.Client, recs []*recorder) ([]Compared, error) {
	n := len(targets)
	body := requestBody(opt)
	urls := make([]string, n)
	for i, t := range targets {
		urls[i] = strings.TrimRight(t.URL, "/") + "/chat/completions"
	}
	start := time.Now()
	measureFrom := start.Add(opt.Warmup)
	end := measureFrom.Add(opt.Duration)
	runCtx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	slice := opt.Duration / time.Duration(rounds)

	// A cycle's figures, per target, in µs; 0 where the target's request was not answered.
	type cycle struct {
		round     int
		lat, ttft []int64
	}
	var (
		mu      sync.Mutex // guards the cycles' figures
		cycles  []*cycle
		cur     *cycle
		wg      sync.WaitGroup
		dropped = make([]int64, n)
		order   = rand.Perm(n)
		sem     = make(chan struct{}, opt.Concurrency)
		sched   = newSchedule(start, opt.Rate)
	)
	for seq := 0; ; seq++ {
		next, ok := sched.wait(runCtx, end)
		if !ok {
			break
		}
		k := seq % n
		if k == 0 {
			rand.Shuffle(n, func(a, b int) { order[a], order[b] = order[b], order[a] })
			cur = nil
			if !next.Before(measureFrom) {
				cur = &cycle{round: min(int(next.Sub(measureFrom)/slice), rounds-1), lat: make([]int64, n), ttft: make([]int64, n)}
				cycles = append(cycles, cur)
			}
		}
		i, c := order[k], cur
		select {
		case sem <- struct{}{}:
		default:
			dropped[i]++
			recs[i].saturated(next, measureFrom)
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			lat, ttft, ok := recs[i].send(runCtx, clients[i], urls[i], opt, body, next, measureFrom)
			if ok && c != nil {
				mu.Lock()
				c.lat[i], c.ttft[i] = max(1, lat.Microseconds()), ttft.Microseconds()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	measured := min(time.Since(measureFrom), opt.Duration)
	out := make([]Compared, n)
	for i, t := range targets {
		out[i] = Compared{Target: t, Result: recs[i].result(opt, elapsed{measured: measured, dropped: dropped[i]})}
		byRound := make([][]int64, rounds)
		byRoundTTFT := make([][]int64, rounds)
		for _, c := range cycles {
			if c.lat[i] > 0 {
				byRound[c.round] = append(byRound[c.round], c.lat[i])
			}
			if c.ttft[i] > 0 {
				byRoundTTFT[c.round] = append(byRoundTTFT[c.round], c.ttft[i])
			}
		}
		for r := range rounds {
			out[i].Rounds = append(out[i].Rounds, Round{Requests: int64(len(byRound[r])), P50: median(byRound[r]), TTFTP50: median(byRoundTTFT[r])})
		}
		for j, u := range targets {
			if j == i {
				continue
			}
			var d, dt []int64
			for _, c := range cycles {
				if c.lat[i] > 0 && c.lat[j] > 0 {
					d = append(d, c.lat[i]-c.lat[j])
				}
				if c.ttft[i] > 0 && c.ttft[j] > 0 {
					dt = append(dt, c.ttft[i]-c.ttft[j])
				}
			}
			out[i].Paired = append(out[i].Paired, Pair{Against: u.Name, Pairs: int64(len(d)), P50: median(d), TTFTP50: median(dt)})
		}
	}
	return out, nil
}

// median is the middle value of v (the upper of the two middle ones for an even count), or 0
// for none; v is sorted in place.
func median(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func newClient(opt Options) (*http.Client, error) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        opt.Concurrency + 16,
		MaxIdleConnsPerHost: opt.Concurrency + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	switch opt.Proto {
	case "", "http1":
	case "h2c":
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	default:
		return nil, fmt.Errorf("bench: unknown protocol %q (want http1 or h2c)", opt.Proto)
	}
	return &http.Client{Transport: tr}, nil
}

var words = strings.Fields("the quick brown fox jumps over a lazy dog while seven wizards quietly hex jolly")

func requestBody(opt Options) []byte {
	var prompt strings.Builder
	for i := range opt.PromptTokens {
		if i > 0 {
			prompt.WriteByte(' ')
		}
		prompt.WriteString(words[i%len(words)])
	}
	b := []byte(`{"model":`)
	b = strconv.AppendQuote(b, opt.Model)
	b = append(b, `,"messages":[{"role":"user","content":`...)
	b = strconv.AppendQuote(b, prompt.String())
	b = append(b, `}],"max_tokens":`...)
	b = strconv.AppendInt(b, int64(opt.MaxTokens), 10)
	if opt.Temperature >= 0 {
		b = append(b, `,"temperature":`...)
		b = strconv.AppendFloat(b, opt.Temperature, 'g', -1, 64)
	}
	if opt.Stream {
		b = append(b, `,"stream":true`...)
	}
	return append(b, '}')
}

// do sends one request. kind is "" on success, else a short error class.
func do(ctx context.Context, c *http.Client, url string, opt Options, body []byte) (lat, ttft time.Duration, itls []time.Duration, kind string) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, nil, "request"
	}
	req.Header.Set("Content-Type", "application/json")
	if opt.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+opt.APIKey)
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, 0, nil, "canceled_at_end"
		}
		return 0, 0, nil, "connect"
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		_, _ = io.Copy(io.Discard, resp.Body)
		return 0, 0, nil, "http_" + strconv.Itoa(resp.StatusCode)
	}
	if !opt.Stream {
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			if ctx.Err() != nil {
				return 0, 0, nil, "canceled_at_end"
			}
			return 0, 0, nil, "read"
		}
		return time.Since(start), 0, nil, ""
	}
	r := bufio.NewReaderSize(resp.Body, 16<<10)
	var last time.Time
	done := false
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 6 && bytes.HasPrefix(line, []byte("data: ")) {
			now := time.Now()
			if bytes.HasPrefix(line[6:], []byte("[DONE]")) {
				done = true
			} else if bytes.Contains(line, []byte(`"content"`)) {
				if ttft == 0 {
					ttft = now.Sub(start)
				} else {
					itls = append(itls, now.Sub(last))
				}
				last = now
			}
		}
		if err != nil {
			if err == io.EOF && done {
				return time.Since(start), ttft, itls, ""
			}
			if ctx.Err() != nil {
				return 0, 0, nil, "canceled_at_end"
			}
			if err == io.EOF {
				return 0, 0, nil, "stream_incomplete"
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			return 0, 0, nil, "read"
		}
	}
}
