package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/open-autoglm/autoglm/api"
	_ "github.com/open-autoglm/autoglm/internal/backend/openai"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/store"
	_ "github.com/open-autoglm/autoglm/internal/store/sqlite"
	"github.com/open-autoglm/autoglm/internal/task"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// taskServer starts a gateway with the task system over SQLite in a new directory, in front
// of a mock model named "coder", and returns its URL and a function that stops it all.
func taskServer() (string, func(), error) {
	dir, err := os.MkdirTemp("", "autoglm-example-")
	if err != nil {
		return "", nil, err
	}
	mock := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 6}))
	yml := fmt.Sprintf("models:\n  - name: coder\n    backends: [{type: openai, base_url: %s/v1}]\n    health: {probe: none}\n", mock.URL)
	ctx, cancel := context.WithCancel(context.Background())
	var reg *router.Registry
	stopAll := func() {
		cancel()
		if reg != nil {
			reg.Close()
		}
		mock.Close()
		os.RemoveAll(dir)
	}
	cfg, err := config.Parse([]byte(yml), func(string) (string, bool) { return "", false })
	if err != nil {
		stopAll()
		return "", nil, err
	}
	if reg, err = router.New(cfg.Models); err != nil {
		stopAll()
		return "", nil, err
	}
	st, err := store.Open(ctx, cfg.Store, dir)
	if err != nil {
		stopAll()
		return "", nil, err
	}
	db, err := task.DBFor(st)
	if err != nil {
		st.Close()
		stopAll()
		return "", nil, err
	}
	log := telemetry.NewLogger(io.Discard, telemetry.ParseLevel("error"))
	svc, err := task.New(ctx, task.Options{Config: cfg.Tasks, DB: db, Registry: reg, Logger: log})
	if err != nil {
		st.Close()
		stopAll()
		return "", nil, err
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	srv := httptest.NewServer(server.New(cfg.Server, reg, log, svc.Routes()...).Handler())
	return srv.URL, func() { srv.Close(); cancel(); <-done; st.Close(); stopAll() }, nil
}

func ExampleClient_FollowTask() {
	url, stop, err := taskServer()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	c := api.NewClient(url, nil)
	ctx := context.Background()
	t, err := c.SubmitTask(ctx, &api.TaskRequest{Kind: api.TaskKindChat, Model: "coder",
		Input: json.RawMessage(`{"messages":[{"role":"user","content":"Tell me a story."}],"max_tokens":4}`)}, "story-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(t.Status)

	var streamed strings.Builder
	done, err := c.FollowTask(ctx, t.ID, 0, func(ev *api.TaskEvent) error {
		if ev.Type == api.TaskEventTokens {
			var d api.TaskTokensEvent
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				return err
			}
			streamed.WriteString(d.Text)
		}
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(done.Status, done.Result.FinishReason)
	fmt.Printf("%q %v\n", done.Result.Text, streamed.String() == done.Result.Text)
	fmt.Println("completion tokens:", done.Result.Usage.CompletionTokens)

	again, _ := c.GetTask(ctx, t.ID)
	fmt.Println(again.ID == t.ID, again.Status)
	// Output:
	// queued
	// succeeded length
	// "sang box and it" true
	// completion tokens: 4
	// true succeeded
}
