package ratelimit

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/testenv"
)

// benchLimits limit requests, tokens and concurrency for key and user: every bucket a request
// can take from. The rates are high enough never to refuse during a benchmark.
const benchLimits = `  roles:
    user: {requests_per_minute: 1000000000, tokens_per_minute: 1000000000000, concurrent: 100000}
`

// benchCheck is one request's whole cost to the limiter: Admit, Settle, Finish.
func benchCheck(b *testing.B, l *Limiter, parallel bool) {
	ctx := context.Background()
	var keys atomic.Int64
	one := func(subj Subject) {
		tk, _, err := l.Admit(ctx, Request{Subject: subj, Tokens: 600})
		if err != nil {
			b.Fatal(err)
		}
		tk.Settle(400)
		tk.Finish(true)
	}
	b.Cleanup(func() {
		if st := l.Stats(); st.StoreErrors != 0 || st.FailedOpen != 0 {
			b.Errorf("the store failed: %+v", st)
		}
	})
	b.ReportAllocs()
	if !parallel {
		subj := Subject{KeyID: "key-0", UserID: "user-0", Role: "user"}
		for b.Loop() {
			one(subj)
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		// A key of its own per goroutine: clients of one gateway are mostly different keys.
		n := keys.Add(1)
		subj := Subject{KeyID: fmt.Sprint("key-", n), UserID: fmt.Sprint("user-", n), Role: "user"}
		for pb.Next() {
			one(subj)
		}
	})
}

func BenchmarkCheckLocal(b *testing.B) {
	l := newLimiter(b, benchLimits, Options{})
	b.Run("serial", func(b *testing.B) { benchCheck(b, l, false) })
	b.Run("parallel", func(b *testing.B) { benchCheck(b, l, true) })
}

// BenchmarkCheckRedis is the round trips of one request: the admission script and the
// settle-and-release script.
func BenchmarkCheckRedis(b *testing.B) {
	addr := testenv.RedisAddr(b)
	l := newLimiter(b, redisSection(addr, testPrefix(b), "", benchLimits), Options{})
	b.Run("serial", func(b *testing.B) { benchCheck(b, l, false) })
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(8) // many requests in flight share pipelined connections
		benchCheck(b, l, true)
	})
}

// BenchmarkMiddleware is a typical chat request through an empty handler, without the
// middleware ("bare") and with it (body read, estimate, admission, headers, settle, finish):
// the difference is what rate limiting adds in memory.
func BenchmarkMiddleware(b *testing.B) {
	l := newLimiter(b, benchLimits, Options{})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Settle(r.Context(), 100)
	})
	body := `{"model":"glm-4","messages":[{"role":"user","content":"` + strings.Repeat("hello ", 200) + `"}],"max_tokens":256}`
	for _, c := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", handler},
		{"limited", l.Middleware(MiddlewareOptions{Subject: subjectFromHeader}, apierr.ShapeOpenAI)(handler)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				r := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body))
				r.Header.Set("X-Key", "k")
				w := httptest.NewRecorder()
				c.h.ServeHTTP(w, r)
			}
		})
	}
}

func BenchmarkEstimateTokens(b *testing.B) {
	body := []byte(`{"model":"glm-4","messages":[{"role":"user","content":"` + strings.Repeat("hello ", 600) + `"}],"temperature":0.7,"max_tokens":256}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		EstimateTokens(httpapi.LimitTokens, body, 512)
	}
}
