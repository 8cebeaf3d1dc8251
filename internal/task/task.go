package task

import (
	"encoding/json"
	"time"

	"github.com/open-autoglm/autoglm/internal/codecheck"
)

// Status is where a task is in its life. queued and running are live; the others are terminal,
// and a task reaches exactly one of them, once.
type Status string

// Task statuses.
const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusCanceled  Status = "canceled"
)

// Terminal reports whether s is a final status.
func (s Status) Terminal() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCanceled
}

func validStatus(s string) bool {
	switch Status(s) {
	case StatusQueued, StatusRunning, StatusSucceeded, StatusFailed, StatusCanceled:
		return true
	}
	return false
}

// Kinds of task.
const (
	// KindCode is a code-generation task (POST /v1/generate/code): a per-language instruction
	// wraps the prompt, and the result carries the code blocks found in the answer.
	KindCode = "code"
	// KindChat is a chat completion run in the background; Input is its request body.
	KindChat = "chat"
	// KindEmbeddings is an embeddings request run in the background; Input is its body.
	KindEmbeddings = "embeddings"
)

// Message is one chat message of a code or chat task.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Spec is what a client asked for: everything a worker needs to run the task. It is stored as
// JSON with the task and never changes afterwards.
type Spec struct {
	Kind        string          `json:"kind"`
	Model       string          `json:"model"`
	Prompt      string          `json:"prompt,omitempty"`
	Messages    []Message       `json:"messages,omitempty"`
	Language    string          `json:"language,omitempty"`
	MaxTokens   int             `json:"max_tokens,omitempty"`
	Temperature *float64        `json:"temperature,omitempty"`
	Priority    int             `json:"priority,omitempty"`
	CallbackURL string          `json:"callback_url,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	// Check turns the checks of a code task's answer off (false) or on (true, the default
	// unless the operator turned checks off). Code tasks only.
	Check *bool `json:"check,omitempty"`
	// RepairRounds is how many times a failing answer goes back to the model, at most the
	// operator's code_check.max_repair_rounds. Default: code_check.repair_rounds.
	RepairRounds *int `json:"repair_rounds,omitempty"`
	// Input is the OpenAI-shaped request body of a chat or embeddings task ("model" and
	// "stream" are set by the worker).
	Input json.RawMessage `json:"input,omitempty"`
}

// Task is a task as clients see it.
type Task struct {
	ID          string          `json:"task_id"`
	Kind        string          `json:"kind"`
	Model       string          `json:"model"`
	Status      Status          `json:"status"`
	Priority    int             `json:"priority"`
	Progress    Progress        `json:"progress"`
	Attempts    int             `json:"attempts"`
	MaxAttempts int             `json:"max_attempts"`
	CreatedAt   time.Time       `json:"created_at"`
	StartedAt   *time.Time      `json:"started_at,omitempty"`
	FinishedAt  *time.Time      `json:"finished_at,omitempty"`
	UpdatedAt   time.Time       `json:"updated_at"`
	Result      *Result         `json:"result,omitempty"`
	Error       *Error          `json:"error,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	CallbackURL string          `json:"callback_url,omitempty"`
	// Webhook is the delivery of the terminal state to CallbackURL, once there is one.
	Webhook *Delivery `json:"webhook,omitempty"`
	// Owner identifies the key (or user) that submitted the task; empty with auth off.
	Owner string `json:"owner,omitempty"`
}

// Progress counts what a running task has produced so far.
type Progress struct {
	// Tokens is the number of generated tokens written as events so far in this attempt.
	Tokens int `json:"tokens"`
}

// Result is a succeeded task's output.
type Result struct {
	// Text is the full generated text (code and chat tasks).
	Text string `json:"text,omitempty"`
	// Code holds the fenced code blocks of Text, in order (code tasks).
	Code []CodeBlock `json:"code,omitempty"`
	// FinishReason is the upstream's finish_reason, when it sent one.
	FinishReason string `json:"finish_reason,omitempty"`
	// Usage is the token usage the upstream reported (or counted chunks when it did not).
	Usage *Usage `json:"usage,omitempty"`
	// Response is the upstream's JSON answer, for kinds whose result is not text
	// (embeddings).
	Response json.RawMessage `json:"response,omitempty"`
	// Checks holds the check of each block of Code, in order (code tasks with checks on).
	Checks []codecheck.Result `json:"checks,omitempty"`
	// Repair records the repair loop of a code task whose checks ran.
	Repair *Repair `json:"repair,omitempty"`
}

// Repair is the record of a code task's check-and-repair loop. Round 0 is the first answer;
// rounds 1… are repairs, each asked of the model with the diagnostics of the best answer so
// far. A repair is kept only when it has strictly fewer errors than that best.
type Repair struct {
	// Rounds is the number of repair rounds run (0 when the first answer passed or repairs
	// are off).
	Rounds int `json:"rounds"`
	// Errors is the error count of each round's answer, round 0 first.
	Errors []int `json:"errors"`
	// Kept is the round whose answer is the result.
	Kept int `json:"kept"`
	// Status is the final answer's state: "passed" (no errors) or "failed".
	Status string `json:"status"`
	// PerRound has each round's detail, round 0 first.
	PerRound []RepairRound `json:"per_round"`
}

// RepairRound is one model call of the repair loop.
type RepairRound struct {
	Round            int    `json:"round"`
	Errors           int    `json:"errors"`
	PromptTokens     int    `json:"prompt_tokens"`
	CompletionTokens int    `json:"completion_tokens"`
	DurationMS       int64  `json:"duration_ms"`
	FinishReason     string `json:"finish_reason,omitempty"`
}

// CodeBlock is one block of code extracted from generated text.
type CodeBlock struct {
	Language string `json:"language"`
	Code     string `json:"code"`
}

// Usage is OpenAI's token usage.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Error is why a task failed or was canceled.
type Error struct {
	// Code is a stable machine-readable reason: timeout, upstream, unavailable, invalid,
	// interrupted, canceled, internal.
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Delivery is the webhook of one task: one delivery id, retried until it succeeds or its
// retry window closes.
type Delivery struct {
	ID string `json:"delivery_id"`
	// Status is pending, delivered or failed.
	Status   string    `json:"status"`
	Attempts []Attempt `json:"attempts"`
}

// Attempt is one try of a delivery.
type Attempt struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
}

// Event is one entry of a task's event log. Seq numbers a task's events 1, 2, 3… without gaps;
// it is the SSE event id, so a client resumes with Last-Event-ID and sees every later event
// once.
//
// Types: "status" (data: {"status", "attempt", and on a terminal status the whole task}),
// "tokens" (data: {"text": the new text, "tokens": the count so far in this attempt}),
// "repair" (data: {"round", "phase": "checked" or "started", "errors", ...}, see EventRepair). A
// "status" event with status "running" starts an attempt: text from an earlier attempt is to
// be discarded.
type Event struct {
	Seq  int64           `json:"seq"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
	At   time.Time       `json:"at"`
}

// Event types.
const (
	EventStatus = "status"
	EventTokens = "tokens"
	// EventRepair marks the rounds of a code task's check-and-repair loop (data: a
	// repairEvent). The text of repair rounds is not sent as tokens events; the final
	// result carries the answer kept.
	EventRepair = "repair"
)

// statusEvent is the data of a "status" event.
type statusEvent struct {
	Status  Status `json:"status"`
	Attempt int    `json:"attempt,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Task    *Task  `json:"task,omitempty"`
}

// tokensEvent is the data of a "tokens" event.
type tokensEvent struct {
	Text   string `json:"text"`
	Tokens int    `json:"tokens"`
}
