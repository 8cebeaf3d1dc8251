package model

import (
	"fmt"
	"runtime/debug"
	"sync"
)

// PanicError is returned by Forward when the computation panicked, on the
// calling goroutine or on a pool worker: a bug (or a corrupt file that
// validation let through), never the caller's fault. The Model stays usable;
// the caches of the failed call keep their previous length. Stack is the
// panicking goroutine's stack, for the logs.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("model: panic in forward pass: %v", e.Value) }

// panicBox catches the first panic of the chunks of one parallel loop, so
// that a panicking chunk neither kills its worker goroutine (and the
// process) nor leaves the loop waiting for a chunk that never finishes;
// rethrow raises it again on the calling goroutine once the loop is over.
type panicBox struct {
	once sync.Once
	err  *PanicError
}

func (b *panicBox) guard(fn func(worker, lo, hi int)) func(worker, lo, hi int) {
	return func(worker, lo, hi int) {
		defer func() {
			if v := recover(); v != nil {
				b.once.Do(func() { b.err = &PanicError{Value: v, Stack: debug.Stack()} })
			}
		}()
		fn(worker, lo, hi)
	}
}

// rethrow panics with the caught *PanicError, if any. It must run after
// every chunk has returned.
func (b *panicBox) rethrow() {
	if b.err != nil {
		panic(b.err)
	}
}

// recoverForward turns a panic of Forward into *err.
func recoverForward(err *error) {
	v := recover()
	if v == nil {
		return
	}
	if pe, ok := v.(*PanicError); ok {
		*err = pe
		return
	}
	*err = &PanicError{Value: v, Stack: debug.Stack()}
}
