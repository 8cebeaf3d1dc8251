package router

import (
	"testing"
	"time"
)

// BenchmarkPick measures what the balancer costs per request: finding the candidates,
// choosing one by the strategy and claiming its breaker admission, over four backends.
func BenchmarkPick(b *testing.B) {
	fakes := map[string]*fake{"a": {do: jsonOK}, "b": {do: jsonOK}, "c": {do: jsonOK}, "d": {do: jsonOK}}
	for _, strategy := range []string{"weighted", "latency", "least_outstanding", "sticky"} {
		b.Run(strategy, func(b *testing.B) {
			yaml := "models:\n  - name: m\n    strategy: " + strategy + "\n"
			if strategy == "sticky" {
				yaml = "models:\n  - name: m\n    sticky: {by: header, header: X-User}\n"
			}
			r := newTestRegistry(b, yaml+backends("a", "b", "c", "d"), fakes)
			m, _ := r.Lookup("m")
			for i, t := range m.Targets {
				t.ewmaTotal.observe(float64(time.Duration(i+1) * time.Millisecond))
				t.ewmaTTFT.observe(float64(time.Duration(i+1) * time.Millisecond))
			}
			key := hashKey("user-42")
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					now := time.Now().UnixNano()
					mask, _, _ := m.candidates(0, now)
					t, _ := m.pick(mask, true, now, key, strategy == "sticky")
					if t == nil {
						b.Fatal("no pick")
					}
				}
			})
		})
	}
}
