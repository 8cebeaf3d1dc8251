package task

import (
	"encoding/json"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/internal/apierr"
)

// The task system's wire types are the public api package's: a client and the server cannot
// disagree on them. The aliases keep this package's names for them.

// Status is where a task is in its life. queued and running are live; the others are terminal,
// and a task reaches exactly one of them, once.
type Status = api.TaskStatus

// Task statuses.
const (
	StatusQueued    = api.TaskQueued
	StatusRunning   = api.TaskRunning
	StatusSucceeded = api.TaskSucceeded
	StatusFailed    = api.TaskFailed
	StatusCanceled  = api.TaskCanceled
)

func validStatus(s string) bool {
	switch Status(s) {
	case StatusQueued, StatusRunning, StatusSucceeded, StatusFailed, StatusCanceled:
		return true
	}
	return false
}

// Kinds of task.
const (
	KindCode       = api.TaskKindCode
	KindChat       = api.TaskKindChat
	KindEmbeddings = api.TaskKindEmbeddings
)

// Message is one chat message of a code or chat task.
type Message = api.TaskMessage

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

// Wire types of tasks.
type (
	Task        = api.Task
	Progress    = api.TaskProgress
	Result      = api.TaskResult
	Repair      = api.TaskRepair
	RepairRound = api.TaskRepairRound
	CodeBlock   = api.CodeBlock
	Usage       = api.Usage
	Error       = api.TaskError
	Delivery    = api.WebhookDelivery
	Attempt     = api.WebhookAttempt
	// Event is one entry of a task's event log; see api.TaskEvent.
	Event = api.TaskEvent
)

// Event types.
const (
	EventStatus = api.TaskEventStatus
	EventTokens = api.TaskEventTokens
	// EventRepair marks the rounds of a code task's check-and-repair loop (data: a
	// repairEvent). The text of repair rounds is not sent as tokens events; the final
	// result carries the answer kept.
	EventRepair = api.TaskEventRepair
)

// statusEvent is the data of a "status" event.
type statusEvent = api.TaskStatusEvent

// tokensEvent is the data of a "tokens" event.
type tokensEvent = api.TaskTokensEvent

// The error a task ends with carries a code of the catalogue (docs/API_ERRORS.md), one per
// condition: canceled, task_timeout, task_interrupted, or the code of the error its last
// attempt failed with.

// errCanceledByClient is the error of a task a client canceled.
func errCanceledByClient() *Error {
	return &Error{Code: string(apierr.CodeCanceled), Message: "canceled by the client"}
}

// failureCode is the code a task records when an attempt fails for good: the failing error's
// own code, or for an error that has none, the code of its kind's condition in a run (a run
// talks to a model, so an upstream's failure, timeout or refusal).
func failureCode(e *apierr.Error) apierr.Code {
	if e.Code != "" {
		return e.Code
	}
	switch e.Kind {
	case apierr.Upstream:
		return apierr.CodeUpstreamError
	case apierr.Timeout:
		return apierr.CodeUpstreamTimeout
	case apierr.RateLimited:
		return apierr.CodeUpstreamRateLimited
	case apierr.Invalid:
		return apierr.CodeInvalidTask
	}
	return apierr.CodeGenerationFailed
}
