package api

import (
	"encoding/json"
	"fmt"
	"time"
)

// The native task API: asynchronous code-generation, chat and embeddings
// tasks. The server's task system uses these types as its own, so they are
// the wire format by definition.

// TaskStatus is where a task is in its life. Queued and running are live;
// the others are terminal, and a task reaches exactly one of them, once.
type TaskStatus string

// Task statuses.
const (
	TaskQueued    TaskStatus = "queued"
	TaskRunning   TaskStatus = "running"
	TaskSucceeded TaskStatus = "succeeded"
	TaskFailed    TaskStatus = "failed"
	TaskCanceled  TaskStatus = "canceled"
)

// Terminal reports whether s is a final status.
func (s TaskStatus) Terminal() bool {
	return s == TaskSucceeded || s == TaskFailed || s == TaskCanceled
}

// Kinds of task.
const (
	// TaskKindCode is a code-generation task: a per-language instruction
	// wraps the prompt, and the result carries the code blocks of the answer.
	TaskKindCode = "code"
	// TaskKindChat is a chat completion run in the background; the request's
	// Input is its body.
	TaskKindChat = "chat"
	// TaskKindEmbeddings is an embeddings request run in the background; the
	// request's Input is its body.
	TaskKindEmbeddings = "embeddings"
)

// TaskMessage is one chat message of a code task.
type TaskMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// CodeTaskRequest is the body of POST /v1/generate/code ([Client.SubmitCodeTask]).
type CodeTaskRequest struct {
	Model string `json:"model"`
	// Prompt, or Messages, is what to write.
	Prompt   string        `json:"prompt,omitempty"`
	Messages []TaskMessage `json:"messages,omitempty"`
	// Language is the programming language (default python).
	Language string `json:"language,omitempty"`
	// MaxTokens is the most tokens to generate (default: the server's).
	MaxTokens   int      `json:"max_tokens,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
	// Priority orders tasks under the priority policy (-1000 to 1000).
	Priority int `json:"priority,omitempty"`
	// CallbackURL receives the finished task by POST.
	CallbackURL string          `json:"callback_url,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	// Check turns the checks of the answer off (false) or on (true, the
	// default unless the operator turned checks off).
	Check *bool `json:"check,omitempty"`
	// RepairRounds is how many times a failing answer goes back to the
	// model, at most the operator's maximum.
	RepairRounds *int `json:"repair_rounds,omitempty"`
}

// TaskRequest is the body of POST /v1/tasks ([Client.SubmitTask]): a code
// task's fields, or a Kind with its Input. It repeats CodeTaskRequest's
// fields rather than embedding it, so that the server's strict decoder names
// a refused field by its JSON name alone.
type TaskRequest struct {
	Model       string          `json:"model"`
	Prompt      string          `json:"prompt,omitempty"`
	Messages    []TaskMessage   `json:"messages,omitempty"`
	Language    string          `json:"language,omitempty"`
	MaxTokens   int             `json:"max_tokens,omitempty"`
	Temperature *float64        `json:"temperature,omitempty"`
	Priority    int             `json:"priority,omitempty"`
	CallbackURL string          `json:"callback_url,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	// Kind is one of the TaskKind constants (default code).
	Kind string `json:"kind,omitempty"`
	// Input is the OpenAI-shaped request body of a chat or embeddings task;
	// the server sets its "model" and "stream".
	Input json.RawMessage `json:"input,omitempty"`
}

// Task is a task as the server describes it.
type Task struct {
	ID          string          `json:"task_id"`
	Kind        string          `json:"kind"`
	Model       string          `json:"model"`
	Status      TaskStatus      `json:"status"`
	Priority    int             `json:"priority"`
	Progress    TaskProgress    `json:"progress"`
	Attempts    int             `json:"attempts"`
	MaxAttempts int             `json:"max_attempts"`
	CreatedAt   time.Time       `json:"created_at"`
	StartedAt   *time.Time      `json:"started_at,omitempty"`
	FinishedAt  *time.Time      `json:"finished_at,omitempty"`
	UpdatedAt   time.Time       `json:"updated_at"`
	Result      *TaskResult     `json:"result,omitempty"`
	Error       *TaskError      `json:"error,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	CallbackURL string          `json:"callback_url,omitempty"`
	// Webhook is the delivery of the terminal state to CallbackURL, once
	// there is one.
	Webhook *WebhookDelivery `json:"webhook,omitempty"`
	// Owner identifies the key (or user) that submitted the task; empty with
	// authentication off.
	Owner string `json:"owner,omitempty"`
}

// TaskProgress counts what a running task has produced so far.
type TaskProgress struct {
	// Tokens is the number of generated tokens sent as events so far in this
	// attempt.
	Tokens int `json:"tokens"`
}

// TaskResult is a succeeded task's output.
type TaskResult struct {
	// Text is the full generated text (code and chat tasks).
	Text string `json:"text,omitempty"`
	// Code holds the fenced code blocks of Text, in order (code tasks).
	Code []CodeBlock `json:"code,omitempty"`
	// FinishReason is the model's finish_reason, when it sent one.
	FinishReason string `json:"finish_reason,omitempty"`
	// Usage is the token usage of the run.
	Usage *Usage `json:"usage,omitempty"`
	// Response is the model's JSON answer, for kinds whose result is not
	// text (embeddings).
	Response json.RawMessage `json:"response,omitempty"`
	// Checks holds the check of each block of Code, in order (code tasks
	// with checks on).
	Checks []CodeCheck `json:"checks,omitempty"`
	// Repair records the repair loop of a code task whose checks ran.
	Repair *TaskRepair `json:"repair,omitempty"`
}

// CodeBlock is one block of code extracted from generated text.
type CodeBlock struct {
	Language string `json:"language"`
	Code     string `json:"code"`
}

// TaskRepair is the record of a code task's check-and-repair loop. Round 0
// is the first answer; rounds 1… are repairs, each asked of the model with
// the diagnostics of the best answer so far. A repair is kept only when it
// has strictly fewer errors than that best.
type TaskRepair struct {
	// Rounds is the number of repair rounds run (0 when the first answer
	// passed or repairs are off).
	Rounds int `json:"rounds"`
	// Errors is the error count of each round's answer, round 0 first.
	Errors []int `json:"errors"`
	// Kept is the round whose answer is the result.
	Kept int `json:"kept"`
	// Status is the final answer's state: "passed" (no errors) or "failed".
	Status string `json:"status"`
	// PerRound has each round's detail, round 0 first.
	PerRound []TaskRepairRound `json:"per_round"`
}

// TaskRepairRound is one model call of the repair loop.
type TaskRepairRound struct {
	Round            int    `json:"round"`
	Errors           int    `json:"errors"`
	PromptTokens     int    `json:"prompt_tokens"`
	CompletionTokens int    `json:"completion_tokens"`
	DurationMS       int64  `json:"duration_ms"`
	FinishReason     string `json:"finish_reason,omitempty"`
}

// CodeCheckStatus is the outcome of checking one block of code.
type CodeCheckStatus string

// Code check statuses.
const (
	// CheckPassed: the checker found no error (warnings may remain).
	CheckPassed CodeCheckStatus = "passed"
	// CheckFailed: at least one diagnostic has severity error.
	CheckFailed CodeCheckStatus = "failed"
	// CheckSkipped: the block was not checked (empty, or too large).
	CheckSkipped CodeCheckStatus = "skipped"
	// CheckUnsupported: no checker knows the language.
	CheckUnsupported CodeCheckStatus = "unsupported"
)

// Severity is how bad a diagnostic is. Only errors make a block fail.
type Severity string

// Severities.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// CodeDiagnostic is one finding of a code check. Line and Column are
// 1-based (Column counts bytes); 0 means the position is unknown.
type CodeDiagnostic struct {
	Line     int      `json:"line"`
	Column   int      `json:"column"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
}

func (d CodeDiagnostic) String() string {
	return fmt.Sprintf("%d:%d: %s: %s", d.Line, d.Column, d.Severity, d.Message)
}

// CodeCheck is the outcome of checking one block of code.
type CodeCheck struct {
	// Language is the canonical language name the block was checked as.
	Language string          `json:"language"`
	Status   CodeCheckStatus `json:"status"`
	// Checker names what checked the block ("go/types", "esbuild", ...) and
	// Version its version, so that a result can be reproduced.
	Checker     string           `json:"checker,omitempty"`
	Version     string           `json:"version,omitempty"`
	Diagnostics []CodeDiagnostic `json:"diagnostics"`
	// Truncated is set when the generation stopped at its length limit,
	// whatever the parser said: the block is then counted as failed.
	Truncated bool `json:"truncated,omitempty"`
	// Reason says why a block was skipped or unsupported.
	Reason string `json:"reason,omitempty"`
}

// Errors counts the diagnostics of severity error.
func (r CodeCheck) Errors() int {
	n := 0
	for _, d := range r.Diagnostics {
		if d.Severity == SeverityError {
			n++
		}
	}
	return n
}

// TaskError is why a task failed or was canceled.
type TaskError struct {
	// Code is a stable machine-readable reason from the server's catalogue of
	// error codes: canceled, task_timeout, task_interrupted, or the code of the
	// error the task's last attempt failed with (upstream_status,
	// upstream_unreachable, ...).
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WebhookDelivery is the webhook of one task: one delivery id, retried until
// it succeeds or its retry window closes.
type WebhookDelivery struct {
	ID string `json:"delivery_id"`
	// Status is pending, delivered or failed.
	Status   string           `json:"status"`
	Attempts []WebhookAttempt `json:"attempts"`
}

// WebhookAttempt is one try of a delivery.
type WebhookAttempt struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
}

// TaskPage is one page of a task listing; pass Next as the cursor of the
// following call.
type TaskPage struct {
	Items []Task `json:"items"`
	Next  string `json:"next,omitempty"`
}

// TaskEvent is one entry of a task's event log. Seq numbers a task's events
// 1, 2, 3… without gaps; it is the server-sent event id, so a follower
// resumes after the last one it saw and sees every later event once.
//
// Types: [TaskEventStatus] (Data: a [TaskStatusEvent]), [TaskEventTokens]
// (Data: a [TaskTokensEvent]), [TaskEventRepair] (Data: the round of a code
// task's check-and-repair loop). A status event with status running starts
// an attempt: text from an earlier attempt is to be discarded.
type TaskEvent struct {
	Seq  int64           `json:"seq"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
	// At is when the event was written; zero in events read from the
	// event stream, which does not carry it.
	At time.Time `json:"at"`
}

// Task event types.
const (
	TaskEventStatus = "status"
	TaskEventTokens = "tokens"
	TaskEventRepair = "repair"
)

// TaskStatusEvent is the data of a status event.
type TaskStatusEvent struct {
	Status  TaskStatus `json:"status"`
	Attempt int        `json:"attempt,omitempty"`
	Reason  string     `json:"reason,omitempty"`
	// Task is the whole task, on a terminal status.
	Task *Task `json:"task,omitempty"`
}

// TaskTokensEvent is the data of a tokens event.
type TaskTokensEvent struct {
	// Text is the text generated since the previous tokens event.
	Text string `json:"text"`
	// Tokens is the count of tokens so far in this attempt.
	Tokens int `json:"tokens"`
}
