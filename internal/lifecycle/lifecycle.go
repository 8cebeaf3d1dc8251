// Package lifecycle runs a server as an ordered list of components: each is started in the
// order it was added, and on shutdown each is stopped in the reverse order, after the ones
// added later have stopped. A component's goroutine is owned by the group: Run does not return
// while any is still running.
//
// The order is the contract. Add the store before what uses it and the listener last, and the
// listener stops accepting first, the workers that write to the store stop next, and the store
// closes last, when nothing can use it any more.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Component is one part of the server. Every field but Name is optional.
type Component struct {
	// Name names the component in logs and errors.
	Name string
	// Start runs before any later component starts. An error stops the start-up: the
	// components already started are stopped, in reverse order, and Run returns the error
	// unchanged.
	Start func(ctx context.Context) error
	// Run is the component's goroutine, started once Start has returned. It must return
	// when its ctx is canceled; ctx is canceled only when the group stops this component.
	// A Run that returns nil early has just finished its work (a warm-up); one that returns
	// an error stops the whole group.
	Run func(ctx context.Context) error
	// Stop runs after Run has returned (or after Start, when there is no Run), while the
	// components added before this one are still running. Its ctx bounds it with the
	// group's StopTimeout.
	Stop func(ctx context.Context) error
}

// Group is an ordered list of components. Its zero value is ready; it is not safe for
// concurrent use while being built.
type Group struct {
	// Logger reports each component's start and stop. Default: discard.
	Logger *slog.Logger
	// StopTimeout bounds each component's Stop. Default 30 s.
	StopTimeout time.Duration

	components []Component
}

// Add appends c: it starts after, and stops before, every component added earlier.
func (g *Group) Add(c Component) { g.components = append(g.components, c) }

// Names returns the components' names in start order.
func (g *Group) Names() []string {
	names := make([]string, len(g.components))
	for i, c := range g.components {
		names[i] = c.Name
	}
	return names
}

type running struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Run starts every component in order and runs until ctx is canceled or a component's Run
// fails; then it stops every started component in reverse order and returns. The error is
// the first failure (start, run or stop), or nil after a clean shutdown.
func (g *Group) Run(ctx context.Context) error {
	log := g.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	stopTimeout := g.StopTimeout
	if stopTimeout <= 0 {
		stopTimeout = 30 * time.Second
	}
	failed := make(chan error, len(g.components))
	started := make([]*running, 0, len(g.components))
	var first error
	note := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	for _, c := range g.components {
		if ctx.Err() != nil {
			break
		}
		if c.Start != nil {
			if err := c.Start(ctx); err != nil {
				// The error goes back as it is: it is the reason the server did not start,
				// and says so in its own words; the log names the component.
				log.Error("component failed to start", "component", c.Name, "err", err)
				note(err)
				break
			}
		}
		r := &running{cancel: func() {}, done: make(chan struct{})}
		if c.Run != nil {
			// Each component's context is its own, not ctx: it is canceled when the group
			// reaches the component on the way down, not when the signal arrives.
			rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			r.cancel = cancel
			go func() {
				defer close(r.done)
				if err := c.Run(rctx); err != nil && rctx.Err() == nil {
					r.err = fmt.Errorf("%s: %w", c.Name, err)
					failed <- r.err
				}
			}()
		} else {
			close(r.done)
		}
		started = append(started, r)
		log.Debug("component started", "component", c.Name)
	}
	if first == nil && len(started) == len(g.components) {
		select {
		case <-ctx.Done():
		case err := <-failed:
			note(err)
		}
	}
	for i := len(started) - 1; i >= 0; i-- {
		c, r := g.components[i], started[i]
		r.cancel()
		<-r.done
		note(r.err)
		if c.Stop != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
			err := c.Stop(sctx)
			cancel()
			if err != nil && !errors.Is(err, context.Canceled) {
				note(fmt.Errorf("%s: stop: %w", c.Name, err))
			}
		}
		log.Debug("component stopped", "component", c.Name)
	}
	return first
}
