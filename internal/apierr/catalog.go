package apierr

// Code is a stable, machine-readable error code: one per condition, each with one kind (and so
// one HTTP status and one gRPC code) and a default public message. The catalogue below is the
// only place codes are made; a test fails on a code string written anywhere else. Codes are
// public API: add new ones, never reuse or rename one (docs/API_ERRORS.md lists them).
type Code string

// The catalogue, by kind. Each comment says when the code is used.
const (
	// Internal
	CodeInternalError    Code = "internal_error"    // an unexpected failure inside the server
	CodeEngineError      Code = "engine_error"      // the local engine failed (a panic, logged)
	CodePluginFailed     Code = "plugin_failed"     // a plugin failed (an error or a panic, logged)
	CodeGenerationFailed Code = "generation_failed" // generation failed for a reason no other code names (the local engine, a task's run)
	CodeCacheCorrupt     Code = "cache_corrupt"     // a response cache entry does not decode
	// Invalid
	CodeInvalidRequest           Code = "invalid_request"            // a field breaks a documented rule of the route
	CodeInvalidJSON              Code = "invalid_json"               // the body is not JSON, not an object, repeats a key, has a field of the wrong type or one the route does not know
	CodeInvalidValue             Code = "invalid_value"              // a query parameter has an invalid value
	CodeInvalidLimit             Code = "invalid_limit"              // the limit query parameter is not a positive integer
	CodeMissingRequiredParameter Code = "missing_required_parameter" // a required field is missing
	CodeMissingModel             Code = "missing_model"              // the body names no model
	CodeBadBody                  Code = "bad_body"                   // reading the body failed (the connection broke)
	CodeContextLengthExceeded    Code = "context_length_exceeded"    // prompt and completion bound exceed the model's context
	CodeToolsUnsupported         Code = "tools_unsupported"          // the backend cannot call tools
	CodeUnsupportedSchema        Code = "unsupported_schema"         // a response_format schema outside the supported subset
	CodeUnsupportedOperation     Code = "unsupported_operation"      // the backend cannot serve this operation (embeddings, ...)
	CodeFIMUnsupported           Code = "fim_unsupported"            // a code completion with a suffix for a model without FIM
	CodeInvalidLanguage          Code = "invalid_language"           // an unknown or missing language
	CodeInvalidCode              Code = "invalid_code"               // the code to check is missing
	CodeInvalidFile              Code = "invalid_file"               // an uploaded batch file does not parse
	CodeInvalidTask              Code = "invalid_task"               // a task's fields break its kind's rules
	CodeUnknownKind              Code = "unknown_kind"               // a task names a kind the server does not run
	CodeInvalidIdempotencyKey    Code = "invalid_idempotency_key"    // the Idempotency-Key header is malformed
	CodeInvalidLastEventID       Code = "invalid_last_event_id"      // the Last-Event-ID header is malformed
	CodeUnknownRole              Code = "unknown_role"               // a user or key names a role the server does not know
	CodeUnknownUser              Code = "unknown_user"               // a key is created for a user that does not exist
	CodeUserDisabled             Code = "user_disabled"              // a key is created for a disabled user
	CodeNoPrincipal              Code = "no_principal"               // a route about the caller while authentication is off
	CodeRequestRefused           Code = "request_refused"            // a plugin refused the request (its message says why)
	CodeUnsupportedAPIVersion    Code = "unsupported_api_version"    // Accept asks only for native API versions this server does not speak (406)
	// TooLarge
	CodeBodyTooLarge Code = "body_too_large" // the body is larger than the route's limit
	CodeCodeTooLarge Code = "code_too_large" // the code to check is over its limit
	CodeFileTooLarge Code = "file_too_large" // an uploaded file is over batch.max_file_bytes
	// Unauthenticated
	CodeMissingCredential Code = "missing_credential" // the route needs a credential and none was sent
	CodeInvalidCredential Code = "invalid_credential" // the Authorization or X-Api-Key header is malformed
	CodeInvalidAPIKey     Code = "invalid_api_key"    // the API key is unknown, revoked or expired
	CodeInvalidToken      Code = "invalid_token"      // the JWT does not verify or is expired
	// PermissionDenied
	CodePermissionDenied  Code = "permission_denied"   // the caller's role lacks the route's permission
	CodeModelNotAllowed   Code = "model_not_allowed"   // the caller's allow-list does not name the model
	CodeRoleExceedsCaller Code = "role_exceeds_caller" // an admin creates a key with more permissions than its own
	CodeRouteNotMapped    Code = "route_not_mapped"    // the route names no permission (a bug; refused to everyone)
	// NotFound
	CodeNotFound                 Code = "not_found"                   // a thing that does not exist (or is not the caller's)
	CodeRouteNotFound            Code = "route_not_found"             // no route serves the path
	CodeInvalidURL               Code = "invalid_url"                 // no route serves a path under /v1/ (OpenAI's code for it; sent as null)
	CodeModelNotFound            Code = "model_not_found"             // no model or alias by that name
	CodeUserNotFound             Code = "user_not_found"              // no user by that id
	CodeKeyNotFound              Code = "key_not_found"               // no API key by that id
	CodeTaskNotFound             Code = "task_not_found"              // no task by that id that the caller may see
	CodeFileNotFound             Code = "file_not_found"              // no file by that id that the caller may see
	CodeBatchNotFound            Code = "batch_not_found"             // no batch by that id that the caller may see
	CodeResponseNotFound         Code = "response_not_found"          // no stored response by that id that the caller may see
	CodePreviousResponseNotFound Code = "previous_response_not_found" // previous_response_id names no stored response
	CodeItemNotFound             Code = "item_not_found"              // no input item by that id
	CodeAssetNotFound            Code = "asset_not_found"             // a console path that is not one of its files
	CodeMetricsOff               Code = "metrics_off"                 // GET /metrics on a server without metrics
	// MethodNotAllowed
	CodeMethodNotAllowed Code = "method_not_allowed" // the route exists but not with this method
	// Conflict
	CodeConflict             Code = "conflict"               // the request conflicts with the current state
	CodeUserExists           Code = "user_exists"            // creating a user whose name or id is taken
	CodeKeyExists            Code = "key_exists"             // creating a key whose id is taken
	CodeTaskFinished         Code = "task_finished"          // cancelling a task that has already finished
	CodeBatchNotCancellable  Code = "batch_not_cancellable"  // cancelling a batch that has finished
	CodeIdempotencyKeyReused Code = "idempotency_key_reused" // an Idempotency-Key sent again with a different body
	// RateLimited
	CodeRateLimitExceeded   Code = "rate_limit_exceeded"   // a rate limit of the caller's role refused the request; Retry-After says when to retry
	CodeBackendQueueFull    Code = "backend_queue_full"    // the backend's admission queue is full
	CodeUpstreamRateLimited Code = "upstream_rate_limited" // the upstream answered 429
	// QuotaExceeded
	CodeQuotaExceeded Code = "quota_exceeded" // a token quota of the caller's key or user is used up
	// Timeout
	CodeRequestTimeout      Code = "request_timeout"       // the request's deadline passed
	CodeTaskTimeout         Code = "task_timeout"          // a task ran longer than task.timeout (a failed task's code)
	CodePluginTimeout       Code = "plugin_timeout"        // a plugin hook ran past its time limit
	CodeUpstreamTimeout     Code = "upstream_timeout"      // the upstream did not answer before the timeout
	CodeUpstreamIdleTimeout Code = "upstream_idle_timeout" // a stream from the upstream went idle past its limit
	// Canceled
	CodeCanceled Code = "canceled" // the client went away, or canceled its task
	// Unavailable
	CodeNoBackend              Code = "no_backend"               // every backend of the model is down or its circuit is open
	CodeModelBusy              Code = "model_busy"               // the local engine's queue is full
	CodeModelUnloaded          Code = "model_unloaded"           // the local model is being unloaded
	CodeStoreUnavailable       Code = "store_unavailable"        // the database did not answer
	CodeTaskStoreUnavailable   Code = "task_store_unavailable"   // the task queue's database did not answer
	CodeRateLimiterUnavailable Code = "rate_limiter_unavailable" // the shared rate limiter (Redis) did not answer
	CodeServerOverloaded       Code = "server_overloaded"        // admission refused: too many requests in flight and queued
	CodeTooManyWatchers        Code = "too_many_watchers"        // the task's live event fan-out is full
	CodeTaskInterrupted        Code = "task_interrupted"         // every attempt of a task was cut off by its process stopping (a failed task's code)
	CodeFileChanged            Code = "file_changed"             // a stored model file changed under a download
	// Upstream
	CodeUpstreamError             Code = "upstream_error"              // the upstream failed
	CodeUpstreamUnreachable       Code = "upstream_unreachable"        // connecting to the upstream failed
	CodeUpstreamStatus            Code = "upstream_status"             // the upstream answered an error status (passed through)
	CodeUpstreamBadAnswer         Code = "upstream_bad_answer"         // the upstream's answer does not decode
	CodeUpstreamAnswerTooLarge    Code = "upstream_answer_too_large"   // the upstream's answer is over the read limit
	CodeUpstreamStreamInterrupted Code = "upstream_stream_interrupted" // the upstream stopped in the middle of a stream
	CodeUpstreamStreamError       Code = "upstream_stream_error"       // the upstream's stream broke or carried an error
	CodeInvalidResponse           Code = "invalid_response"            // the answer to a batch line is not JSON, so the output file cannot hold it (a batch line's code)
)

type codeInfo struct {
	kind    Kind
	message string
}

// catalogue gives each code its kind and its default public message.
var catalogue = map[Code]codeInfo{
	CodeInternalError:             {Internal, "internal server error"},
	CodeInvalidRequest:            {Invalid, "invalid request"},
	CodeInvalidJSON:               {Invalid, "the request body is not valid JSON for this route"},
	CodeInvalidValue:              {Invalid, "a query parameter has an invalid value"},
	CodeInvalidLimit:              {Invalid, "limit must be a positive integer"},
	CodeMissingRequiredParameter:  {Invalid, "a required parameter is missing"},
	CodeMissingModel:              {Invalid, "the model field is required"},
	CodeBadBody:                   {Invalid, "could not read the request body"},
	CodeBodyTooLarge:              {TooLarge, "request body too large"},
	CodeCodeTooLarge:              {TooLarge, "the code is larger than the checker accepts"},
	CodeFileTooLarge:              {TooLarge, "the file is larger than the configured limit"},
	CodeContextLengthExceeded:     {Invalid, "the request does not fit the model's context"},
	CodeToolsUnsupported:          {Invalid, "the model does not support tools"},
	CodeUnsupportedSchema:         {Invalid, "the JSON schema uses a feature constrained output does not support"},
	CodeUnsupportedOperation:      {Invalid, "the model does not support this operation"},
	CodeFIMUnsupported:            {Invalid, "the model does not support fill-in-the-middle"},
	CodeInvalidLanguage:           {Invalid, "the language is not supported"},
	CodeInvalidCode:               {Invalid, "the code is missing"},
	CodeInvalidFile:               {Invalid, "the file is not a valid batch input"},
	CodeInvalidTask:               {Invalid, "the task is not valid"},
	CodeUnknownKind:               {Invalid, "unknown task kind"},
	CodeInvalidIdempotencyKey:     {Invalid, "the Idempotency-Key header is not valid"},
	CodeInvalidLastEventID:        {Invalid, "the Last-Event-ID header is not valid"},
	CodeUnknownRole:               {Invalid, "unknown role"},
	CodeUnknownUser:               {Invalid, "no such user"},
	CodeUserDisabled:              {Invalid, "the user is disabled"},
	CodeNoPrincipal:               {Invalid, "authentication is off: there is no caller to describe"},
	CodeUnsupportedAPIVersion:     {NotAcceptable, "this version of the native API is not served"},
	CodeRequestRefused:            {Invalid, "the request was refused by a policy of this server"},
	CodeMissingCredential:         {Unauthenticated, "authentication required"},
	CodeInvalidCredential:         {Unauthenticated, "the credential is malformed"},
	CodeInvalidAPIKey:             {Unauthenticated, "invalid API key"},
	CodeInvalidToken:              {Unauthenticated, "invalid token"},
	CodePermissionDenied:          {PermissionDenied, "permission denied"},
	CodeModelNotAllowed:           {PermissionDenied, "the model is not on this key's allow-list"},
	CodeRoleExceedsCaller:         {PermissionDenied, "a role cannot grant more than the caller holds"},
	CodeRouteNotMapped:            {PermissionDenied, "this route is not open to any role"},
	CodeNotFound:                  {NotFound, "not found"},
	CodeRouteNotFound:             {NotFound, "no such route"},
	CodeInvalidURL:                {NotFound, "Invalid URL"},
	CodeModelNotFound:             {NotFound, "the model does not exist"},
	CodeUserNotFound:              {NotFound, "no such user"},
	CodeKeyNotFound:               {NotFound, "no such key"},
	CodeTaskNotFound:              {NotFound, "no such task"},
	CodeFileNotFound:              {NotFound, "no such file"},
	CodeBatchNotFound:             {NotFound, "no such batch"},
	CodeResponseNotFound:          {NotFound, "no such response"},
	CodePreviousResponseNotFound:  {NotFound, "the previous response does not exist"},
	CodeItemNotFound:              {NotFound, "no such item"},
	CodeAssetNotFound:             {NotFound, "no such file in the console"},
	CodeMetricsOff:                {NotFound, "metrics are not enabled on this server"},
	CodeMethodNotAllowed:          {MethodNotAllowed, "method not allowed"},
	CodeConflict:                  {Conflict, "conflict"},
	CodeUserExists:                {Conflict, "a user with that name or id exists"},
	CodeKeyExists:                 {Conflict, "a key with that id exists"},
	CodeTaskFinished:              {Conflict, "the task has finished"},
	CodeBatchNotCancellable:       {Conflict, "the batch can no longer be cancelled"},
	CodeIdempotencyKeyReused:      {Conflict, "the Idempotency-Key was used for another request"},
	CodeRateLimitExceeded:         {RateLimited, "rate limit exceeded"},
	CodeBackendQueueFull:          {RateLimited, "the model's queue is full"},
	CodeUpstreamRateLimited:       {RateLimited, "the model server is rate-limiting requests"},
	CodeQuotaExceeded:             {QuotaExceeded, "quota exceeded"},
	CodeRequestTimeout:            {Timeout, "request timed out"},
	CodeUpstreamTimeout:           {Timeout, "the model server did not answer in time"},
	CodeTaskTimeout:               {Timeout, "the task ran longer than its time limit"},
	CodeUpstreamIdleTimeout:       {Timeout, "the model server stopped sending"},
	CodeCanceled:                  {Canceled, "request canceled"},
	CodeNoBackend:                 {Unavailable, "no backend can take the request"},
	CodeModelBusy:                 {Unavailable, "the model's queue is full; retry shortly"},
	CodeModelUnloaded:             {Unavailable, "the model is shutting down"},
	CodeStoreUnavailable:          {Unavailable, "the store is unavailable"},
	CodeTaskStoreUnavailable:      {Unavailable, "the task store is unavailable"},
	CodeRateLimiterUnavailable:    {Unavailable, "the rate limiter is unavailable"},
	CodeServerOverloaded:          {Unavailable, "the server is at its limit of requests in flight; retry later"},
	CodeTooManyWatchers:           {Unavailable, "too many clients are following this task"},
	CodeTaskInterrupted:           {Unavailable, "the task was interrupted on each of its attempts"},
	CodeFileChanged:               {Unavailable, "the model file changed while being served"},
	CodeUpstreamError:             {Upstream, "upstream model server error"},
	CodeUpstreamUnreachable:       {Upstream, "the model server cannot be reached"},
	CodeUpstreamStatus:            {Upstream, "the model server answered with an error"},
	CodeUpstreamBadAnswer:         {Upstream, "the model server's answer could not be read"},
	CodeUpstreamAnswerTooLarge:    {Upstream, "the model server's answer is too large"},
	CodeUpstreamStreamInterrupted: {Upstream, "the model server stopped in the middle of the stream"},
	CodeUpstreamStreamError:       {Upstream, "the model server's stream failed"},
	CodeInvalidResponse:           {Upstream, "the answer to this request is not JSON"},
	CodePluginFailed:              {Internal, "a plugin failed on this request"},
	CodePluginTimeout:             {Timeout, "a plugin did not finish in its time limit"},
	CodeEngineError:               {Internal, "the model failed to generate"},
	CodeGenerationFailed:          {Internal, "generation failed"},
	CodeCacheCorrupt:              {Internal, "a cached answer could not be read"},
}

// Kind is the code's kind; Internal for a code missing from the catalogue.
func (c Code) Kind() Kind {
	if info, ok := catalogue[c]; ok {
		return info.kind
	}
	return Internal
}

// Message is the code's default public message, used when an error carries none.
func (c Code) Message() string { return catalogue[c].message }

// Codes returns every code of the catalogue.
func Codes() []Code {
	cs := make([]Code, 0, len(catalogue))
	for c := range catalogue {
		cs = append(cs, c)
	}
	return cs
}
