package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/trace"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/internal/codecheck"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/sandbox"
	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/task"
	"github.com/open-autoglm/autoglm/internal/usage"
)

// taskSystem is serve's asynchronous task part: the task service over the store's database.
// serve builds it with newTasks, adds Routes to the server, runs the service's workers as a
// component and calls closeStore on the way out.
type taskSystem struct {
	svc *task.Service
	// checker and codeStats check code tasks' answers and POST /v1/code/check's code.
	checker   *codecheck.Checker
	codeStats *codecheck.Stats
	st        store.Store // the database of the tasks, stored responses and batches
	owned     bool        // st was opened here, when serve had none open
}

// newTasks opens the task tables in st's database (opening the configured store when st is
// nil, i.e. when authentication is off). It starts nothing: svc.Run runs the workers of every
// model. sink, when not nil, receives the outcome of every model call of a task run (pass the
// server's usage sink); codeStats, when not nil, counts code checks and repairs; tracer, when
// not nil, traces task runs and webhook deliveries.
func newTasks(ctx context.Context, cfg *config.Config, dataDir string, st store.Store, reg *router.Registry,
	sink usage.Sink, codeStats *codecheck.Stats, log *slog.Logger, tracer trace.TracerProvider) (*taskSystem, error) {
	if codeStats == nil {
		codeStats = &codecheck.Stats{}
	}
	ts := &taskSystem{checker: codecheck.New(), codeStats: codeStats, st: st}
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
		ts.st, err = store.Open(ctx, cfg.Store, dataDir)
		if err != nil {
			return nil, fmt.Errorf("tasks: store: %w", err)
		}
		ts.owned = true
	}
	db, err := task.DBFor(ts.st)
	if err != nil {
		ts.closeStore()
		return nil, err
	}
	svc, err := task.New(ctx, task.Options{Config: cfg.Tasks, DB: db, Registry: reg, Usage: sink, Logger: log,
		CodeCheck: cfg.CodeCheck, Checker: ts.checker, CodeStats: ts.codeStats, Tracing: tracer})
	if err != nil {
		ts.closeStore()
		return nil, err
	}
	ts.svc = svc
	log.Info("tasks on", "driver", cfg.Store.Driver, "policy", cfg.Tasks.Policy, "workers_per_model", cfg.Tasks.Workers,
		"webhooks", cfg.Tasks.WebhookSecret != "")
	return ts, nil
}

// Routes are the native task routes.
func (ts *taskSystem) Routes() []httpapi.Route { return ts.svc.Routes() }

// store is the database the tasks live in.
func (ts *taskSystem) store() store.Store { return ts.st }

// closeStore closes the store if it was opened here. The workers must have stopped.
func (ts *taskSystem) closeStore() error {
	if ts.owned {
		return ts.st.Close()
	}
	return nil
}

// taskCmd submits and follows tasks on a running server, through the public Go client.
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
	client := func() *api.Client {
		key := apiKey
		if key == "" {
			key = os.Getenv("AUTOGLM_API_KEY")
		}
		return api.NewClient(baseURL, nil).WithAPIKey(key)
	}
	printJSON := func(cmd *cobra.Command, v any) error {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	show := func(cmd *cobra.Command, t *api.Task) error {
		if asJSON {
			return printJSON(cmd, t)
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
			c := client()
			t, err := c.SubmitCodeTask(cmd.Context(), &api.CodeTaskRequest{Model: model, Prompt: args[0], Language: language,
				MaxTokens: maxTokens, Priority: priority, CallbackURL: callback}, idem)
			if err != nil {
				return err
			}
			if !wait {
				if asJSON {
					return show(cmd, t)
				}
				fmt.Fprintln(cmd.OutOrStdout(), t.ID)
				return nil
			}
			final, err := follow(cmd.Context(), c, t.ID, cmd.ErrOrStderr())
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
			t, err := client().GetTask(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return show(cmd, t)
		},
	}
	watch := &cobra.Command{
		Use:   "watch TASK_ID",
		Short: "Follow a task's events until it finishes (generated text to stderr), then print it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := follow(cmd.Context(), client(), args[0], cmd.ErrOrStderr())
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
			t, err := client().CancelTask(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return show(cmd, t)
		},
	}
	var status, listModel, cursor string
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List tasks, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			page, err := client().ListTasks(cmd.Context(), api.ListTasksOptions{Status: api.TaskStatus(status), Model: listModel,
				Cursor: cursor, Limit: limit})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd, page)
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

// follow follows a task to its end, writing its generated text to progress (and a marker
// when a new attempt starts), and returns the finished task.
func follow(ctx context.Context, c *api.Client, id string, progress io.Writer) (*api.Task, error) {
	t, err := c.FollowTask(ctx, id, 0, func(ev *api.TaskEvent) error {
		switch ev.Type {
		case api.TaskEventTokens:
			var d api.TaskTokensEvent
			if json.Unmarshal(ev.Data, &d) == nil {
				fmt.Fprint(progress, d.Text)
			}
		case api.TaskEventStatus:
			var d api.TaskStatusEvent
			if json.Unmarshal(ev.Data, &d) == nil && d.Status == api.TaskRunning && d.Attempt > 1 {
				fmt.Fprintf(progress, "\n[attempt %d]\n", d.Attempt)
			}
		}
		return nil
	})
	if t != nil {
		fmt.Fprintln(progress)
	}
	return t, err
}

func printTask(w io.Writer, t *api.Task) {
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

// sandboxOptions turns the configuration's sandbox section into the sandbox's options.
func sandboxOptions(sc config.Sandbox) sandbox.Options {
	return sandbox.Options{Bwrap: sc.Bwrap, Limits: sandbox.Limits{Timeout: sc.Timeout.D(), MemoryBytes: int64(sc.MemoryMB) << 20,
		Processes: sc.MaxProcesses, OutputBytes: sc.MaxOutputBytes}}
}
