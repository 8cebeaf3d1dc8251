package openapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/open-autoglm/autoglm/internal/auth"
)

// obj is a JSON object of the document.
type obj = map[string]any

// Error shapes of a route.
const (
	shapeOpenAI    = "openai"
	shapeEnvelope  = "envelope"
	shapeAnthropic = "anthropic"
)

// Content types.
const (
	typeJSON = "application/json"
	typeSSE  = "text/event-stream"
)

// op is one operation: a route as registered with the server and what it reads and answers.
type op struct {
	method, pattern string // as registered: a ServeMux pattern
	id, tag         string
	summary         string
	desc            string
	shape           string // error shape: shapeOpenAI, shapeEnvelope or shapeAnthropic
	query           []param
	// body is the request body's schema (typeJSON unless bodyType says otherwise).
	body     any
	bodyType string
	// status is the success status (200 when zero); data its schema. For envelope routes,
	// data is the envelope's data; for the others, the whole JSON body.
	status int
	data   any
	// sse: the success answer may instead be a stream of server-sent events.
	sse bool
	// raw: the success answer is not JSON but these content types (any body).
	raw []string
	// headers are extra headers of the success answer, by name.
	headers obj
	// more are further documented answers, by status.
	more obj
}

// param is a query parameter.
type param struct {
	name, desc string
	schema     any
}

func q(name, desc string, schema any) param { return param{name, desc, schema} }

var (
	str     = obj{"type": "string"}
	integer = obj{"type": "integer"}
	boolean = obj{"type": "boolean"}
	number  = obj{"type": "number"}
	anyJSON = obj{}
)

func ref(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

func arr(items any) obj { return obj{"type": "array", "items": items} }

// object is an object schema with the given required properties. Properties not named are
// allowed: answers may gain fields without breaking clients (additive changes, see the
// versioning policy).
func object(required []string, props obj) obj {
	o := obj{"type": "object", "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func nullable(s obj) obj {
	t, _ := s["type"].(string)
	c := obj{}
	for k, v := range s {
		c[k] = v
	}
	c["type"] = []string{t, "null"}
	return c
}

func enum(vals ...string) obj { return obj{"type": "string", "enum": vals} }

// pagination is the query of a paginated list.
var pagination = []param{
	q("limit", "Page size, 1 to 100.", obj{"type": "integer", "minimum": 1, "maximum": 100}),
	q("cursor", "The next value of the previous page.", str),
}

// usageQuery filters usage records.
var usageQuery = append([]param{
	q("from", "Start of the window (RFC 3339), inclusive.", obj{"type": "string", "format": "date-time"}),
	q("to", "End of the window (RFC 3339), exclusive.", obj{"type": "string", "format": "date-time"}),
	q("model", "Only this model.", str),
	q("key_id", "Only this key.", str),
	q("user_id", "Only this user.", str),
}, pagination...)

// operations lists every HTTP route. The order is the document's order within a path.
var operations = []op{
	// OpenAI-compatible inference.
	{method: "POST", pattern: "/v1/chat/completions", id: "createChatCompletion", tag: "openai", shape: shapeOpenAI,
		summary: "Create a chat completion", desc: "OpenAI's chat completions. With \"stream\": true the answer is a stream of server-sent events of chat.completion.chunk objects, ended by `data: [DONE]`.",
		body: ref("ChatCompletionRequest"), data: ref("ChatCompletion"), sse: true},
	{method: "POST", pattern: "/v1/completions", id: "createCompletion", tag: "openai", shape: shapeOpenAI,
		summary: "Create a text completion", body: ref("CompletionRequest"), data: ref("Completion"), sse: true},
	{method: "POST", pattern: "/v1/embeddings", id: "createEmbedding", tag: "openai", shape: shapeOpenAI,
		summary: "Create embeddings", body: ref("EmbeddingRequest"), data: ref("EmbeddingList")},
	{method: "GET", pattern: "/v1/models", id: "listModels", tag: "openai", shape: shapeOpenAI,
		summary: "List the models the caller may use", data: ref("ModelList")},
	{method: "GET", pattern: "/v1/models/{id...}", id: "retrieveModel", tag: "openai", shape: shapeOpenAI,
		summary: "Describe a model", desc: "The id may contain slashes.", data: ref("Model")},
	{method: "POST", pattern: "/v1/responses", id: "createResponse", tag: "openai", shape: shapeOpenAI,
		summary: "Create a model response (Responses API)", body: ref("ResponseRequest"), data: ref("Response"), sse: true},
	{method: "GET", pattern: "/v1/responses/{id}", id: "getResponse", tag: "openai", shape: shapeOpenAI,
		summary: "Get a stored response", data: ref("Response")},
	{method: "DELETE", pattern: "/v1/responses/{id}", id: "deleteResponse", tag: "openai", shape: shapeOpenAI,
		summary: "Delete a stored response", data: ref("Deleted")},
	{method: "GET", pattern: "/v1/responses/{id}/input_items", id: "listInputItems", tag: "openai", shape: shapeOpenAI,
		summary: "List a stored response's input items", data: ref("List")},
	{method: "POST", pattern: "/v1/files", id: "createFile", tag: "openai", shape: shapeOpenAI,
		summary: "Upload a file (purpose \"batch\")", bodyType: "multipart/form-data",
		body: object([]string{"file", "purpose"}, obj{"file": obj{"type": "string", "contentMediaType": "application/octet-stream"}, "purpose": str}),
		data: ref("File")},
	{method: "GET", pattern: "/v1/files", id: "listFiles", tag: "openai", shape: shapeOpenAI,
		summary: "List the caller's files", data: ref("List"),
		query: []param{q("purpose", "Only files of this purpose.", str), q("limit", "Page size.", integer), q("after", "A file id: list files after it.", str), q("order", "asc or desc by creation time.", enum("asc", "desc"))}},
	{method: "GET", pattern: "/v1/files/{id}", id: "retrieveFile", tag: "openai", shape: shapeOpenAI,
		summary: "Describe a file", data: ref("File")},
	{method: "GET", pattern: "/v1/files/{id}/content", id: "downloadFile", tag: "openai", shape: shapeOpenAI,
		summary: "Download a file's content", raw: []string{"application/octet-stream", "application/jsonl"}},
	{method: "DELETE", pattern: "/v1/files/{id}", id: "deleteFile", tag: "openai", shape: shapeOpenAI,
		summary: "Delete a file", data: ref("Deleted")},
	{method: "POST", pattern: "/v1/batches", id: "createBatch", tag: "openai", shape: shapeOpenAI,
		summary: "Create a batch", body: object([]string{"input_file_id", "endpoint", "completion_window"}, obj{
			"input_file_id": str, "endpoint": str, "completion_window": str, "metadata": obj{"type": []string{"object", "null"}}}),
		data: ref("Batch")},
	{method: "GET", pattern: "/v1/batches", id: "listBatches", tag: "openai", shape: shapeOpenAI,
		summary: "List the caller's batches", data: ref("List"),
		query: []param{q("limit", "Page size.", integer), q("after", "A batch id: list batches after it.", str)}},
	{method: "GET", pattern: "/v1/batches/{id}", id: "retrieveBatch", tag: "openai", shape: shapeOpenAI,
		summary: "Describe a batch", data: ref("Batch")},
	{method: "POST", pattern: "/v1/batches/{id}/cancel", id: "cancelBatch", tag: "openai", shape: shapeOpenAI,
		summary: "Cancel a batch", data: ref("Batch")},
	{method: "POST", pattern: "/v1/messages", id: "createMessage", tag: "anthropic", shape: shapeAnthropic,
		summary: "Create a message (Anthropic Messages API)", body: ref("MessagesRequest"), data: ref("Message"), sse: true},
	{method: "POST", pattern: "/v1/messages/count_tokens", id: "countMessageTokens", tag: "anthropic", shape: shapeAnthropic,
		summary: "Count a message request's input tokens", body: ref("MessagesRequest"),
		data: object([]string{"input_tokens"}, obj{"input_tokens": integer})},

	// Native: tasks and code.
	{method: "POST", pattern: "/v1/generate/code", id: "generateCode", tag: "tasks", shape: shapeEnvelope,
		summary: "Submit a code-generation task", body: ref("CodeTaskRequest"), status: http.StatusAccepted, data: ref("Task"),
		desc: "An Idempotency-Key header makes a retried submission return the first task instead of a new one."},
	{method: "POST", pattern: "/v1/tasks", id: "submitTask", tag: "tasks", shape: shapeEnvelope,
		summary: "Submit a task of any kind", body: ref("TaskRequest"), status: http.StatusAccepted, data: ref("Task")},
	{method: "GET", pattern: "/v1/tasks", id: "listTasks", tag: "tasks", shape: shapeEnvelope,
		summary: "List the caller's tasks, newest first", data: ref("TaskPage"),
		query: append([]param{q("status", "Only tasks in this state.", ref("TaskStatus")), q("model", "Only this model.", str), q("kind", "Only this kind.", str)}, pagination...)},
	{method: "GET", pattern: "/v1/task/{task_id}", id: "getTask", tag: "tasks", shape: shapeEnvelope,
		summary: "Get a task", data: ref("Task")},
	{method: "POST", pattern: "/v1/task/{task_id}/cancel", id: "cancelTask", tag: "tasks", shape: shapeEnvelope,
		summary: "Cancel a task", data: ref("Task")},
	{method: "GET", pattern: "/v1/task/{task_id}/events", id: "streamTaskEvents", tag: "tasks", shape: shapeEnvelope,
		summary: "Follow a task's events (server-sent events)",
		desc:    "Each event has an id; reconnect with Last-Event-ID (or ?after=) to resume. The stream ends after the terminal status event.",
		raw:     []string{typeSSE}, query: []param{q("after", "Resume after this event id.", integer)}},
	{method: "GET", pattern: "/v1/task/{task_id}/ws", id: "watchTask", tag: "tasks", shape: shapeEnvelope,
		summary: "Follow a task's events over a WebSocket", status: http.StatusSwitchingProtocols,
		query: []param{q("after", "Resume after this event id.", integer)}},
	{method: "POST", pattern: "/v1/code/check", id: "checkCode", tag: "code", shape: shapeEnvelope,
		summary: "Check code for syntax and type errors without running it", body: ref("CodeCheckRequest"), data: ref("CodeCheckResult")},
	{method: "POST", pattern: "/v1/code/complete", id: "completeCode", tag: "code", shape: shapeEnvelope,
		summary: "Complete code between a prefix and a suffix (fill in the middle)", body: ref("CodeCompleteRequest"), data: ref("CodeCompletion"), sse: true},

	// Native: the caller.
	{method: "GET", pattern: "/v1/me", id: "getMe", tag: "me", shape: shapeEnvelope,
		summary: "Who the caller is and what its role may do", desc: "Open to all: without a credential it answers authenticated: false.", data: ref("Me")},
	{method: "GET", pattern: "/v1/me/keys", id: "listMyKeys", tag: "me", shape: shapeEnvelope,
		summary: "The caller's own API keys", data: ref("KeyPage")},
	{method: "GET", pattern: "/v1/me/usage", id: "listMyUsage", tag: "me", shape: shapeEnvelope,
		summary: "The caller's own usage records", data: ref("UsageAnswer"), query: usageQuery},
	{method: "GET", pattern: "/v1/me/usage/summary", id: "summarizeMyUsage", tag: "me", shape: shapeEnvelope,
		summary: "The caller's own usage over time", data: ref("UsageSummary"), query: summaryQuery},

	// Native: administration.
	{method: "GET", pattern: "/v1/admin/backends", id: "listBackends", tag: "admin", shape: shapeEnvelope,
		summary: "Every model's scheduling state and per-backend figures", data: object([]string{"models"}, obj{"models": arr(ref("ModelStatus"))})},
	{method: "GET", pattern: "/v1/admin/engine", id: "describeEngine", tag: "admin", shape: shapeEnvelope,
		summary: "The local engine's loaded models and the process's memory", data: object([]string{"models"}, obj{"models": arr(anyJSON), "process": anyJSON})},
	{method: "POST", pattern: "/v1/admin/users", id: "createUser", tag: "admin", shape: shapeEnvelope,
		summary: "Create a user", body: ref("CreateUserRequest"), status: http.StatusCreated, data: ref("User")},
	{method: "GET", pattern: "/v1/admin/users", id: "listUsers", tag: "admin", shape: shapeEnvelope,
		summary: "List users", data: ref("UserPage"), query: pagination},
	{method: "GET", pattern: "/v1/admin/users/{id}", id: "getUser", tag: "admin", shape: shapeEnvelope,
		summary: "Get a user", data: ref("User")},
	{method: "PATCH", pattern: "/v1/admin/users/{id}", id: "updateUser", tag: "admin", shape: shapeEnvelope,
		summary: "Change a user's name, e-mail or role", body: object(nil, obj{"name": str, "email": str, "role": str}), data: ref("User")},
	{method: "POST", pattern: "/v1/admin/users/{id}/disable", id: "disableUser", tag: "admin", shape: shapeEnvelope,
		summary: "Disable a user: its keys stop working", data: ref("User")},
	{method: "POST", pattern: "/v1/admin/keys", id: "createKey", tag: "admin", shape: shapeEnvelope,
		summary: "Create an API key; the secret is in this answer only", body: ref("CreateKeyRequest"), status: http.StatusCreated, data: ref("CreatedKey")},
	{method: "GET", pattern: "/v1/admin/keys", id: "listKeys", tag: "admin", shape: shapeEnvelope,
		summary: "List API keys", data: ref("KeyPage"), query: append([]param{q("user_id", "Only this user's keys.", str)}, pagination...)},
	{method: "DELETE", pattern: "/v1/admin/keys/{id}", id: "revokeKey", tag: "admin", shape: shapeEnvelope,
		summary: "Revoke an API key", data: ref("Key")},
	{method: "GET", pattern: "/v1/admin/usage", id: "listUsage", tag: "admin", shape: shapeEnvelope,
		summary: "Usage records of every caller", data: ref("UsageAnswer"), query: usageQuery},
	{method: "GET", pattern: "/v1/admin/usage/summary", id: "summarizeUsage", tag: "admin", shape: shapeEnvelope,
		summary: "Usage of every caller over time", data: ref("UsageSummary"), query: summaryQuery},
	{method: "GET", pattern: "/v1/admin/audit", id: "listAudit", tag: "admin", shape: shapeEnvelope,
		summary: "The audit log, newest first", data: ref("AuditPage"),
		query: append([]param{
			q("from", "Start of the window (RFC 3339).", obj{"type": "string", "format": "date-time"}),
			q("to", "End of the window (RFC 3339).", obj{"type": "string", "format": "date-time"}),
			q("actor", "Only this actor.", str), q("action", "Only this action.", str), q("target", "Only this target.", str),
			q("outcome", "Only this outcome.", str)}, pagination...)},

	// Operations.
	{method: "GET", pattern: "/healthz", id: "healthz", tag: "operations", shape: shapeEnvelope,
		summary: "Liveness: the process serves requests", data: object([]string{"status"}, obj{"status": enum("alive")})},
	{method: "GET", pattern: "/readyz", id: "readyz", tag: "operations", shape: shapeEnvelope,
		summary: "Readiness: every model has a backend not known to be down, and the server is not draining",
		data:    ref("Readiness"), more: obj{"503": obj{"description": "Not ready (the same body, ready: false).",
			"content": obj{typeJSON: obj{"schema": envelope(ref("Readiness"))}}}}},
	{method: "GET", pattern: "/metrics", id: "metrics", tag: "operations", shape: shapeEnvelope,
		summary: "Prometheus metrics", raw: []string{"text/plain", "application/openmetrics-text"}},
	{method: "GET", pattern: "/debug/pprof/{name...}", id: "pprof", tag: "operations", shape: shapeEnvelope,
		summary: "Go runtime profiles (net/http/pprof)", raw: []string{"application/octet-stream", "text/plain", "text/html"}},
	{method: "GET", pattern: "/hub/{path...}", id: "hubFile", tag: "operations", shape: shapeEnvelope,
		summary: "The node's stored model files in the model hub's layout, for other nodes to pull", raw: []string{"application/octet-stream", typeJSON}},
	{method: "GET", pattern: Path, id: "openapi", tag: "operations", shape: shapeEnvelope,
		summary: "This document", raw: []string{typeJSON}, more: obj{"304": obj{"description": "Not modified (If-None-Match)."}}},
	{method: "GET", pattern: "/{$}", id: "console", tag: "console", shape: shapeEnvelope,
		summary: "The web console", raw: []string{"text/html"}, more: obj{"304": obj{"description": "Not modified (If-None-Match)."}}},
	{method: "GET", pattern: "/ui/{path...}", id: "consoleAsset", tag: "console", shape: shapeEnvelope,
		summary: "The web console's files", raw: []string{"text/html", "text/javascript", "text/css", "image/svg+xml", "application/octet-stream"},
		more: obj{"304": obj{"description": "Not modified (If-None-Match)."}}},
}

// summaryQuery shapes a usage summary.
var summaryQuery = []param{
	q("from", "Start of the window (RFC 3339); default 24 hours ago.", obj{"type": "string", "format": "date-time"}),
	q("to", "End of the window (RFC 3339); default now.", obj{"type": "string", "format": "date-time"}),
	q("step", "Bucket width (a Go duration such as 1h); default chosen from the window.", str),
	q("model", "Only this model.", str), q("key_id", "Only this key.", str), q("user_id", "Only this user.", str),
}

// oasPath turns a ServeMux pattern into an OpenAPI path and its parameter names.
func oasPath(pattern string) (string, []string) {
	if pattern == "/{$}" {
		return "/", nil
	}
	var names []string
	segs := strings.Split(pattern, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			name := strings.TrimSuffix(strings.TrimSuffix(s[1:len(s)-1], "..."), "$")
			names = append(names, name)
			segs[i] = "{" + name + "}"
		}
	}
	return strings.Join(segs, "/"), names
}

// envelope wraps data in the native envelope of a successful answer.
func envelope(data any) obj {
	return obj{
		"type":     "object",
		"required": []string{"code", "success", "data", "message", "trace_id"},
		"properties": obj{
			"code":     obj{"const": "ok"},
			"success":  obj{"const": true},
			"data":     data,
			"message":  str,
			"trace_id": str,
		},
	}
}

// errorSchema is the body of an error answer of each shape.
var errorSchema = map[string]obj{
	shapeOpenAI:    ref("OpenAIError"),
	shapeEnvelope:  ref("ErrorEnvelope"),
	shapeAnthropic: ref("AnthropicError"),
}

// traceHeader is the header every answer carries.
var traceHeader = obj{"$ref": "#/components/headers/X-Trace-Id"}

func (o op) operation() obj {
	_, params := oasPath(o.pattern)
	out := obj{"operationId": o.id, "summary": o.summary, "tags": []string{o.tag}}
	if o.desc != "" {
		out["description"] = o.desc
	}
	perm, ok := Permission(o.method, o.pattern)
	if !ok {
		panic("openapi: " + o.method + " " + o.pattern + " is not in the permission table")
	}
	out["x-permission"] = string(perm)
	if perm == auth.Public {
		out["security"] = []obj{}
	}
	var ps []obj
	for _, n := range params {
		ps = append(ps, obj{"name": n, "in": "path", "required": true, "schema": str})
	}
	if strings.HasSuffix(o.pattern, "...}") {
		// ServeMux's {name...}: the last parameter takes the rest of the path, slashes
		// included; OpenAPI has no way to say so but an extension.
		last := params[len(params)-1]
		out["x-rest-parameter"] = last
		ps[len(ps)-1]["description"] = "The rest of the path; it may contain slashes."
	}
	for _, p := range o.query {
		ps = append(ps, obj{"name": p.name, "in": "query", "description": p.desc, "schema": p.schema})
	}
	if o.shape == shapeEnvelope {
		ps = append(ps, obj{"$ref": "#/components/parameters/Accept"})
	}
	if len(ps) > 0 {
		out["parameters"] = ps
	}
	if o.body != nil {
		bt := o.bodyType
		if bt == "" {
			bt = typeJSON
		}
		out["requestBody"] = obj{"required": true, "content": obj{bt: obj{"schema": o.body}}}
	}
	status := o.status
	if status == 0 {
		status = http.StatusOK
	}
	headers := obj{"X-Trace-Id": traceHeader}
	for k, v := range o.headers {
		headers[k] = v
	}
	okResp := obj{"description": http.StatusText(status), "headers": headers}
	content := obj{}
	if o.data != nil {
		s := o.data
		if o.shape == shapeEnvelope {
			s = envelope(o.data)
		}
		content[typeJSON] = obj{"schema": s}
	}
	if o.sse {
		content[typeSSE] = obj{"schema": obj{"type": "string", "description": "Server-sent events (with \"stream\": true)."}}
	}
	for _, t := range o.raw {
		if t == typeJSON {
			content[t] = obj{"schema": anyJSON}
		} else {
			content[t] = obj{"schema": str}
		}
	}
	if len(content) > 0 {
		okResp["content"] = content
	}
	responses := obj{strconv.Itoa(status): okResp}
	for k, v := range o.more {
		responses[k] = v
	}
	responses["default"] = obj{"description": "An error, in the route's error shape.", "headers": obj{"X-Trace-Id": traceHeader},
		"content": obj{typeJSON: obj{"schema": errorSchema[o.shape]}}}
	out["responses"] = responses
	return out
}

// build returns the whole document.
func build() obj {
	paths := obj{}
	for _, o := range operations {
		p, _ := oasPath(o.pattern)
		item, _ := paths[p].(obj)
		if item == nil {
			item = obj{}
			paths[p] = item
		}
		item[strings.ToLower(o.method)] = o.operation()
	}
	return obj{
		"openapi":           "3.1.0",
		"jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
		"info": obj{
			"title":   "autoglm",
			"version": APIVersion,
			"summary": "One API in front of many model backends: OpenAI-compatible inference, native asynchronous tasks, administration.",
			"description": "Errors: OpenAI-compatible routes answer in OpenAI's error object, the Anthropic Messages routes in Anthropic's, " +
				"native routes in the envelope {code, success, data, message, trace_id}; `code` is one of the ErrorCode values. " +
				"Every answer carries X-Trace-Id.\n\nVersioning: native routes are versioned by path (/v1) and by media type " +
				"(Accept: application/vnd.autoglm.v1+json); see docs/API.md.",
			"license": obj{"name": "Apache-2.0", "identifier": "Apache-2.0"},
		},
		"servers": []obj{{"url": "http://127.0.0.1:8080", "description": "the default listen address"}},
		"tags": []obj{
			{"name": "openai", "description": "OpenAI-compatible routes. Their full contract is OpenAI's published API description; answers are checked against it in the tests.", "externalDocs": obj{"url": "https://platform.openai.com/docs/api-reference"}},
			{"name": "anthropic", "description": "The Anthropic Messages API."},
			{"name": "tasks", "description": "Native asynchronous tasks."},
			{"name": "code", "description": "Native code checking and completion."},
			{"name": "me", "description": "The caller's own identity, keys and usage."},
			{"name": "admin", "description": "Users, keys, usage, audit and backends."},
			{"name": "operations", "description": "Health, readiness, metrics, profiles, model files and this document."},
			{"name": "console", "description": "The web console."},
		},
		"security": []obj{{"bearer": []string{}}, {"apiKey": []string{}}},
		"paths":    paths,
		"components": obj{
			"securitySchemes": obj{
				"bearer": obj{"type": "http", "scheme": "bearer", "description": "An API key (agk-…) or a JWT."},
				"apiKey": obj{"type": "apiKey", "in": "header", "name": "x-api-key", "description": "An API key, as Anthropic's clients send it."},
			},
			"headers": obj{
				"X-Trace-Id":  obj{"description": "The request's trace id, also in every error body and the server's logs.", "required": true, "schema": str},
				"Deprecation": obj{"description": "On a route the operator marked deprecated (server.deprecations): since when, as @unix-seconds (RFC 9745).", "schema": str},
				"Sunset":      obj{"description": "On a deprecated route whose end is announced: when it stops working, as an HTTP date (RFC 8594).", "schema": str},
			},
			"parameters": obj{
				"Accept": obj{"name": "Accept", "in": "header", "schema": str,
					"description": "Native routes accept application/json, */* or a version of the native media type, application/vnd.autoglm.v1+json. Another version of that media type is refused with 406 (code unsupported_api_version)."},
			},
			"schemas": schemas(),
		},
	}
}
