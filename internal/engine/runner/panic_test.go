package runner

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/open-autoglm/autoglm/internal/engine/model"
)

// TestSchedulerPanic makes the scheduler panic in one step: the request of
// that step fails with ErrInternal, and the Runner serves the next one
// correctly.
func TestSchedulerPanic(t *testing.T) {
	var armed atomic.Bool
	r := openHooked(t, Options{ContextLength: 512, Parallel: 2}, func([]*model.Seq) {
		if armed.CompareAndSwap(true, false) {
			panic("injected")
		}
	})
	armed.Store(true)
	g := gen(r, Request{Prompt: encode(r, "Once upon a time"), MaxTokens: 8})
	if !errors.Is(g.err, ErrInternal) || !strings.Contains(g.err.Error(), "injected") {
		t.Fatalf("request during the panic: %v, want ErrInternal", g.err)
	}
	after := gen(r, Request{Prompt: encode(r, "Once upon a time"), MaxTokens: 20})
	if after.err != nil || !strings.HasPrefix(storiesContinuation, after.text) || after.res.CompletionTokens != 20 {
		t.Errorf("request after the panic: %q, %+v, %v", after.text, after.res, after.err)
	}
	if after.res.CachedTokens != 0 {
		t.Errorf("the failed step's cache was reused (%d tokens)", after.res.CachedTokens)
	}
	waitStats(t, r, Stats{})
}
