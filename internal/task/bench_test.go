package task

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/store/sqlite"
)

// BenchmarkSubmit measures accepted tasks per second and submit latency through a real
// gateway listener: POST /v1/generate/code from 1 and from 32 concurrent clients until b.N
// tasks are committed. Workers are not started, so the figure is the queue's intake alone.
func BenchmarkSubmit(b *testing.B) {
	for _, clients := range []int{1, 32} {
		b.Run(fmt.Sprintf("sqlite/clients=%d", clients), func(b *testing.B) {
			st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			db, err := DBFor(st)
			if err != nil {
				b.Fatal(err)
			}
			benchSubmit(b, db, clients)
		})
		b.Run(fmt.Sprintf("postgres/clients=%d", clients), func(b *testing.B) {
			benchSubmit(b, pgDB(b, pgSchemaDSN(b)), clients)
		})
	}
}

func benchSubmit(b *testing.B, db DB, clients int) {
	cfg, err := config.Parse([]byte("models:\n  - name: coder\n    backends: [{type: openai, base_url: http://127.0.0.1:9/v1}]\n    health: {probe: none}\n"),
		func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	reg, err := router.New(cfg.Models)
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := New(context.Background(), Options{Config: cfg.Tasks, DB: db, Registry: reg, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = server.New(cfg.Server, reg, log, svc.Routes()...).Serve(ctx, ln)
	}()
	defer func() { cancel(); <-done }()
	url := "http://" + ln.Addr().String() + "/v1/generate/code"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	body := `{"model":"coder","prompt":"write a function that reverses a linked list","language":"go","max_tokens":256}`

	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	next := make(chan struct{}, b.N)
	for range b.N {
		next <- struct{}{}
	}
	close(next)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for range next {
				t0 := time.Now()
				resp, err := client.Post(url, "application/json", strings.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(int(p*float64(len(lat))), len(lat)-1)].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "tasks/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	if testing.Verbose() {
		fmt.Printf("%s: %d tasks in %s\n", b.Name(), len(lat), elapsed)
	}
}

// BenchmarkClaim measures taking the next task (fairness and policy included) from a model's
// queue holding about `queued` tasks of 10 keys, on SQLite.
func BenchmarkClaim(b *testing.B) {
	for _, queued := range []int{100, 10000} {
		b.Run(fmt.Sprintf("queued=%d", queued), func(b *testing.B) {
			st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "claim.db"), sqlite.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			db, err := DBFor(st)
			if err != nil {
				b.Fatal(err)
			}
			cfg := (&config.Config{}).WithDefaults().Tasks
			s, err := New(context.Background(), Options{Config: cfg, DB: db})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			fill := func(n int) {
				var wg sync.WaitGroup
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						c := Caller{Owner: fmt.Sprintf("key:%d", i%10)}
						if _, _, err := s.Submit(ctx, c, Submission{Spec: Spec{Kind: KindCode, Model: "m", Prompt: "x"}}); err != nil {
							b.Error(err)
						}
					}()
				}
				wg.Wait()
			}
			fill(queued + b.N)
			b.ResetTimer()
			for range b.N {
				c, err := s.claim(ctx, "m")
				if err != nil || c == nil {
					b.Fatalf("claim: %v %v", c, err)
				}
			}
		})
	}
}
