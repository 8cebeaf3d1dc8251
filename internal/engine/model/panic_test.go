package model

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/engine/quant"
)

// TestForwardPanic makes an attention chunk panic, on the calling goroutine
// and on a pool worker: Forward returns a *PanicError, the cache keeps its
// length, and the model computes correctly afterwards.
func TestForwardPanic(t *testing.T) {
	f := synthFile(t, kvSpec("llama"))
	ref := loadModel(t, f, Options{Threads: 3, KVType: quant.F16}) // the same options as the models below
	want := runSteps(t, ref, longTokens(14), 12)

	for _, tc := range []struct {
		name string
		hook func(started chan struct{}) func(worker int)
	}{
		{"caller", func(started chan struct{}) func(int) {
			var once sync.Once
			return func(worker int) {
				if worker == 0 {
					once.Do(func() { close(started) })
					panic("injected")
				}
				// Hold the workers' chunks until the caller has taken one: on a
				// busy machine the workers could otherwise take them all, and the
				// panic would never happen.
				select {
				case <-started:
				case <-time.After(10 * time.Second):
				}
			}
		}},
		{"worker", func(started chan struct{}) func(int) {
			var once sync.Once
			return func(worker int) {
				if worker != 0 {
					once.Do(func() { close(started) })
					panic("injected")
				}
				// Hold the caller's first chunk until a worker has
				// taken one, so that the panic is a worker's.
				select {
				case <-started:
				case <-time.After(10 * time.Second):
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := loadModel(t, f, Options{Threads: 3, KVType: quant.F16})
			c := m.NewCache()
			if err := m.Forward(context.Background(), []*Seq{{Cache: c, Tokens: longTokens(3)}}); err != nil {
				t.Fatal(err)
			}
			started := make(chan struct{})
			m.faultHook = tc.hook(started)
			err := m.Forward(context.Background(), []*Seq{{Cache: c, Tokens: longTokens(12)}})
			var pe *PanicError
			if !errors.As(err, &pe) || pe.Value != "injected" || len(pe.Stack) == 0 {
				t.Fatalf("Forward = %v, want a *PanicError of the injected panic", err)
			}
			if c.Len() != 3 {
				t.Errorf("cache length %d after the failed step, want 3", c.Len())
			}
			select {
			case <-started:
			default:
				t.Errorf("the %s never ran a chunk", tc.name)
			}
			m.faultHook = nil
			got := runSteps(t, m, longTokens(14), 12)
			w := make([]float64, len(want))
			for i, v := range want {
				w[i] = float64(v)
			}
			if e := relErr(got, w); e > 0.01 {
				t.Errorf("after the panic: relative error %.3g against a fresh model", e)
			}
		})
	}
}
