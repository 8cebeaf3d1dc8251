package lifecycle_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/open-autoglm/autoglm/internal/lifecycle"
)

// journal records what the components did, in order.
type journal struct {
	mu  sync.Mutex
	log []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	j.log = append(j.log, s)
	j.mu.Unlock()
}

func (j *journal) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.log)
}

// component starts, runs until canceled and stops, writing each step to j. The run's end is
// written before Stop is called, so the journal shows that Stop waited for Run.
func component(j *journal, name string, started chan<- string) lifecycle.Component {
	return lifecycle.Component{
		Name:  name,
		Start: func(context.Context) error { j.add("start " + name); return nil },
		Run: func(ctx context.Context) error {
			if started != nil {
				started <- name
			}
			<-ctx.Done()
			j.add("ran " + name)
			return nil
		},
		Stop: func(context.Context) error { j.add("stop " + name); return nil },
	}
}

func TestOrder(t *testing.T) {
	defer goleak.VerifyNone(t)
	var j journal
	started := make(chan string, 3)
	var g lifecycle.Group
	for _, n := range []string{"store", "workers", "listener"} {
		g.Add(component(&j, n, started))
	}
	if got := g.Names(); !slices.Equal(got, []string{"store", "workers", "listener"}) {
		t.Fatalf("Names() = %v", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	for range 3 {
		<-started
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := []string{"start store", "start workers", "start listener",
		"ran listener", "stop listener", "ran workers", "stop workers", "ran store", "stop store"}
	if got := j.get(); !slices.Equal(got, want) {
		t.Errorf("journal\n got %v\nwant %v", got, want)
	}
}

// TestStartFailure stops what had started, in reverse order, and starts nothing after.
func TestStartFailure(t *testing.T) {
	defer goleak.VerifyNone(t)
	var j journal
	var g lifecycle.Group
	g.Add(component(&j, "a", nil))
	g.Add(component(&j, "b", nil))
	boom := errors.New("boom")
	g.Add(lifecycle.Component{Name: "c", Start: func(context.Context) error { return boom },
		Stop: func(context.Context) error { j.add("stop c"); return nil }})
	g.Add(component(&j, "d", nil))
	err := g.Run(context.Background())
	if err != boom {
		t.Fatalf("Run = %v", err)
	}
	want := []string{"start a", "start b", "ran b", "stop b", "ran a", "stop a"}
	if got := j.get(); !slices.Equal(got, want) {
		t.Errorf("journal\n got %v\nwant %v", got, want)
	}
}

// TestRunFailure: a component whose Run fails stops the group; one whose Run returns nil
// early does not.
func TestRunFailure(t *testing.T) {
	defer goleak.VerifyNone(t)
	var j journal
	var g lifecycle.Group
	g.Add(component(&j, "store", nil))
	warmed := make(chan struct{})
	g.Add(lifecycle.Component{Name: "warm-up", Run: func(context.Context) error {
		defer close(warmed)
		j.add("warmed")
		return nil
	}})
	fail := make(chan error)
	g.Add(lifecycle.Component{Name: "listener", Run: func(ctx context.Context) error {
		<-warmed
		return <-fail
	}})
	done := make(chan error, 1)
	go func() { done <- g.Run(context.Background()) }()
	fail <- errors.New("address in use")
	err := <-done
	if err == nil || err.Error() != "listener: address in use" {
		t.Fatalf("Run = %v", err)
	}
	want := []string{"start store", "warmed", "ran store", "stop store"}
	if got := j.get(); !slices.Equal(got, want) {
		t.Errorf("journal\n got %v\nwant %v", got, want)
	}
}

// TestCanceledBeforeStart starts nothing.
func TestCanceledBeforeStart(t *testing.T) {
	var j journal
	var g lifecycle.Group
	g.Add(component(&j, "a", nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := j.get(); len(got) != 0 {
		t.Errorf("journal %v", got)
	}
}
