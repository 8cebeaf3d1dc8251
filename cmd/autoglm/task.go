package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/trace"

	"github.com/open-autoglm/autoglm/internal/codecheck"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/sandbox"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/task"
)

// taskSystem is serve's asynchronous task part: the task service over the store's database
// and its workers. serve starts it with startTasks, adds Routes to the server and calls Close
// on the way out.
type taskSystem struct {
	svc *task.Service
	// checker and codeStats check code tasks' answers and POST /v1/code/check's code.
	checker   *codecheck.Checker
	codeStats *codecheck.Stats
	owned     store.Store // the store opened here, when serve had none open
	stop      context.CancelFunc
	done      chan struct{}
}

// startTasks opens the task tables in st's database (opening the configured store when st is
// nil, i.e. when authentication is off) and starts the workers of every model. usage, when
// not nil, receives a usage record per task run (pass the governance batcher's Usage).
func startTasks(ctx context.Context, cfg *config.Config, dataDir string, st store.Store, reg *router.Registry,
	usage func(store.UsageRecord), log *slog.Logger, tracer trace.TracerProvider) (*taskSystem, error) {
	ts := &taskSystem{checker: codecheck.New(), codeStats: &codecheck.Stats{}}
	if sc := cfg.CodeCheck.Sandbox; sc.Enabled {
		sb := sandbox.New(ctx, sandboxOptions(sc))
		if err := sb.Available(); err != nil {
			log.Warn("code_check.sandbox is enabled but cannot run: sandboxed checks are off", "err", err)
		} else if sc.ExternalCheckers {
			ts.checker = ts.checker.WithExternal(sandbox.NewExternal(sb))
			log.Info("sandboxed external code checkers on", "bwrap", sc.Bwrap)
		}
	}
	if st == nil {
		var err error
		st, err = store.Open(ctx, cfg.Store, dataDir)
		if err != nil {
			return nil, fmt.Errorf("tasks: store: %w", err)
		}
		ts.owned = st
	}
	db, err := task.DBFor(st)
	if err != nil {
		ts.closeStore()
		return nil, err
	}
	svc, err := task.New(ctx, task.Options{Config: cfg.Tasks, DB: db, Registry: reg, Usage: usage, Logger: log,
		CodeCheck: cfg.CodeCheck, Checker: ts.checker, CodeStats: ts.codeStats, Tracing: tracer})
	if err != nil {
		ts.closeStore()
		return nil, err
	}
	ts.svc = svc
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	ts.stop = stop
	ts.done = make(chan struct{})
	go func() {
		defer close(ts.done)
		if err := svc.Run(rctx); err != nil {
			log.Error("task workers stopped", "err", err)
		}
	}()
	log.Info("tasks on", "driver", cfg.Store.Driver, "policy", cfg.Tasks.Policy, "workers_per_model", cfg.Tasks.Workers,
		"webhooks", cfg.Tasks.WebhookSecret != "")
	return ts, nil
}

// Routes are the native task routes.
func (ts *taskSystem) Routes() []server.Route { return ts.svc.Routes() }

// Close stops the workers, which hand their running tasks back to the queue, and closes the
// store if it was opened here.
func (ts *taskSystem) Close() error {
	if ts.stop != nil {
		ts.stop()
		<-ts.done
	}
	return ts.closeStore()
}

func (ts *taskSystem) closeStore() error {
	if ts.owned != nil {
		return ts.owned.Close()
	}
	return nil
}

// taskCmd submits and follows tasks on a running server.
func taskCmd() *cobra.Command {
	var baseURL, apiKey string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "task",
		Short: "Submit, follow, list and cancel asynchronous tasks on a running server",
		Long: `task calls the native task API of a running autoglm server. The credential comes from
--api-key, or from the AUTOGLM_API_KEY environment variable when the flag is not given.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&baseURL, "url", "http://127.0.0.1:8080", "server base URL")
	pf.StringVar(&apiKey, "api-key", "", "API key or token (default: $AUTOGLM_API_KEY)")
	pf.BoolVar(&asJSON, "json", false, "print JSON instead of text")
	tc := func() *taskClient {
		key := apiKey
		if key == "" {
			key = os.Getenv("AUTOGLM_API_KEY")
		}
		return &taskClient{base: strings.TrimRight(baseURL, "/"), key: key, http: http.DefaultClient}
	}
	show := func(cmd *cobra.Command, t *task.Task) error {
		if asJSON {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(t)
		}
		printTask(cmd.OutOrStdout(), t)
		return nil
	}

	var (
		model, language, callback, idem string
		maxTokens, priority             int
		wait                            bool
	)
	submit := &cobra.Command{
		Use:   "submit PROMPT",
		Short: "Submit a code-generation task and print its id (or, with --wait, its result)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{"model": model, "prompt": args[0], "language": language, "priority": priority}
			if maxTokens > 0 {
				body["max_tokens"] = maxTokens
			}
			if callback != "" {
				body["callback_url"] = callback
			}
			c := tc()
			var t task.Task
			if err := c.call(cmd.Context(), "POST", "/v1/generate/code", body, idem, &t); err != nil {
				return err
			}
			if !wait {
				if asJSON {
					return show(cmd, &t)
				}
				fmt.Fprintln(cmd.OutOrStdout(), t.ID)
				return nil
			}
			final, err := c.follow(cmd.Context(), t.ID, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return show(cmd, final)
		},
	}
	sf := submit.Flags()
	sf.StringVar(&model, "model", "", "model name (required)")
	sf.StringVar(&language, "language", "python", "programming language")
	sf.IntVar(&maxTokens, "max-tokens", 0, "most tokens to generate (default: the server's)")
	sf.IntVar(&priority, "priority", 0, "priority under the priority policy (-1000 to 1000)")
	sf.StringVar(&callback, "callback-url", "", "URL the finished task is POSTed to")
	sf.StringVar(&idem, "idempotency-key", "", "submit at most once under this key")
	sf.BoolVar(&wait, "wait", false, "follow the task's events (generated text to stderr) and print the result")
	_ = submit.MarkFlagRequired("model")

	get := &cobra.Command{
		Use:   "get TASK_ID",
		Short: "Print a task",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t task.Task
			if err := tc().call(cmd.Context(), "GET", "/v1/task/"+url.PathEscape(args[0]), nil, "", &t); err != nil {
				return err
			}
			return show(cmd, &t)
		},
	}
	watch := &cobra.Command{
		Use:   "watch TASK_ID",
		Short: "Follow a task's events until it finishes (generated text to stderr), then print it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := tc().follow(cmd.Context(), args[0], cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return show(cmd, t)
		},
	}
	cancel := &cobra.Command{
		Use:   "cancel TASK_ID",
		Short: "Cancel a queued or running task",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t task.Task
			if err := tc().call(cmd.Context(), "POST", "/v1/task/"+url.PathEscape(args[0])+"/cancel", nil, "", &t); err != nil {
				return err
			}
			return show(cmd, &t)
		},
	}
	var status, listModel, cursor string
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List tasks, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"status": status, "model": listModel, "cursor": cursor} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if limit > 0 {
				q.Set("limit", fmt.Sprint(limit))
			}
			var page struct {
				Items []task.Task `json:"items"`
				Next  string      `json:"next"`
			}
			if err := tc().call(cmd.Context(), "GET", "/v1/tasks?"+q.Encode(), nil, "", &page); err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(page)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tKIND\tMODEL\tSTATUS\tTOKENS\tCREATED")
			for _, t := range page.Items {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", t.ID, t.Kind, t.Model, t.Status, t.Progress.Tokens, t.CreatedAt.Local().Format(time.DateTime))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if page.Next != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "more: --cursor %s\n", page.Next)
			}
			return nil
		},
	}
	lf := list.Flags()
	lf.StringVar(&status, "status", "", "only tasks with this status")
	lf.StringVar(&listModel, "model", "", "only tasks of this model")
	lf.StringVar(&cursor, "cursor", "", "continue after a previous page")
	lf.IntVar(&limit, "limit", 20, "page size (1-100)")
	cmd.AddCommand(submit, get, watch, cancel, list)
	return cmd
}

func printTask(w io.Writer, t *task.Task) {
	fmt.Fprintf(w, "%s  %s  %s  %s  attempts %d/%d  tokens %d\n", t.ID, t.Kind, t.Model, t.Status, t.Attempts, t.MaxAttempts, t.Progress.Tokens)
	if t.Error != nil {
		fmt.Fprintf(w, "error: %s: %s\n", t.Error.Code, t.Error.Message)
	}
	if t.Result != nil {
		for _, b := range t.Result.Code {
			fmt.Fprintf(w, "```%s\n%s\n```\n", b.Language, b.Code)
		}
		if len(t.Result.Code) == 0 && t.Result.Text != "" {
			fmt.Fprintln(w, t.Result.Text)
		}
	}
	if t.Webhook != nil {
		fmt.Fprintf(w, "webhook %s: %s after %d attempt(s)\n", t.Webhook.ID, t.Webhook.Status, len(t.Webhook.Attempts))
	}
}

// taskClient speaks the native task API.
type taskClient struct {
	base, key string
	http      *http.Client
}

func (c *taskClient) request(ctx context.Context, method, path string, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	return req, nil
}

// call sends one request and decodes the envelope's data into out.
func (c *taskClient) call(ctx context.Context, method, path string, body any, idem string, out any) error {
	req, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Code    string          `json:"code"`
		Success bool            `json:"success"`
		Data    json.RawMessage `json:"data"`
		Message string          `json:"message"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&env); err != nil {
		return fmt.Errorf("%s %s: HTTP %d: unreadable answer: %w", method, path, resp.StatusCode, err)
	}
	if !env.Success {
		return fmt.Errorf("%s %s: HTTP %d: %s: %s", method, path, resp.StatusCode, env.Code, env.Message)
	}
	return json.Unmarshal(env.Data, out)
}

// follow streams a task's events, writing generated text to progress, resuming after a
// dropped connection with Last-Event-ID, and returns the task from its terminal event.
func (c *taskClient) follow(ctx context.Context, id string, progress io.Writer) (*task.Task, error) {
	var last string
	var once sync.Once
	for attempt := 0; ; attempt++ {
		t, lastSeen, err := c.followOnce(ctx, id, last, progress)
		if t != nil || ctx.Err() != nil {
			once.Do(func() { fmt.Fprintln(progress) })
			return t, err
		}
		if lastSeen != "" {
			last = lastSeen
			attempt = 0
		}
		if attempt >= 5 {
			return nil, fmt.Errorf("following task %s: %w", id, err)
		}
		select {
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (c *taskClient) followOnce(ctx context.Context, id, last string, progress io.Writer) (*task.Task, string, error) {
	req, err := c.request(ctx, "GET", "/v1/task/"+url.PathEscape(id)+"/events", nil)
	if err != nil {
		return nil, last, err
	}
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, last, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, last, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var evID, evType, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			evID = line[4:]
		case strings.HasPrefix(line, "event: "):
			evType = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		case line == "" && evType != "":
			last = evID
			switch evType {
			case task.EventTokens:
				var d struct {
					Text string `json:"text"`
				}
				if json.Unmarshal([]byte(data), &d) == nil {
					fmt.Fprint(progress, d.Text)
				}
			case task.EventStatus:
				var d struct {
					Status  task.Status `json:"status"`
					Attempt int         `json:"attempt"`
					Task    *task.Task  `json:"task"`
				}
				if json.Unmarshal([]byte(data), &d) == nil {
					if d.Status == task.StatusRunning && d.Attempt > 1 {
						fmt.Fprintf(progress, "\n[attempt %d]\n", d.Attempt)
					}
					if d.Status.Terminal() && d.Task != nil {
						return d.Task, last, nil
					}
				}
			}
			evType, data = "", ""
		}
	}
	if err := sc.Err(); err != nil {
		return nil, last, err
	}
	return nil, last, errors.New("the event stream ended before the task finished")
}

// sandboxOptions turns the configuration's sandbox section into the sandbox's options.
func sandboxOptions(sc config.Sandbox) sandbox.Options {
	return sandbox.Options{Bwrap: sc.Bwrap, Limits: sandbox.Limits{Timeout: sc.Timeout.D(), MemoryBytes: int64(sc.MemoryMB) << 20,
		Processes: sc.MaxProcesses, OutputBytes: sc.MaxOutputBytes}}
}
