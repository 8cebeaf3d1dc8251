package openapi

import "slices"

// APIVersion is the version of the native API this server speaks (see docs/API.md).
const APIVersion = "1"

// codes are the stable error codes the server answers with, on every route shape. A test
// compares this list with the codes found in the sources.
var codes = []string{
	"asset_not_found", "audit_exists", "audit_not_found", "backend_queue_full", "bad_body",
	"bad_upstream_answer", "batch_not_cancellable", "batch_not_found", "body_too_large",
	"cache_corrupt", "canceled", "code_too_large", "conflict", "context_length_exceeded",
	"engine_error", "file_changed", "file_not_found", "file_too_large", "fim_unsupported",
	"generation_failed", "idempotency_key_reused", "internal", "internal_error", "invalid",
	"invalid_api_key", "invalid_body", "invalid_code", "invalid_credential", "invalid_file",
	"invalid_idempotency_key", "invalid_json", "invalid_language", "invalid_last_event_id",
	"invalid_limit", "invalid_request", "invalid_request_error", "invalid_task", "invalid_token",
	"invalid_url", "invalid_value", "item_not_found", "key_exists", "key_not_found",
	"method_not_allowed", "metrics_off", "missing_credential", "missing_model",
	"missing_required_parameter", "model_busy", "model_not_allowed", "model_not_found",
	"model_unloaded", "no_backend", "no_principal", "not_found", "permission_denied",
	"previous_response_not_found", "quota_exceeded", "rate_limit_exceeded", "rate_limited",
	"rate_limiter_unavailable", "request_timeout", "response_not_found", "role_exceeds_caller",
	"route_not_found", "route_not_mapped", "store_unavailable", "task_finished", "task_not_found",
	"task_store_unavailable", "timeout", "too_large", "too_many_watchers", "tools_unsupported",
	"unauthenticated", "unavailable", "unknown_kind", "unknown_role", "unsupported_api_version",
	"unsupported_operation", "unsupported_schema", "upstream", "upstream_answer",
	"upstream_answer_too_large", "upstream_bad_answer", "upstream_error", "upstream_idle_timeout",
	"upstream_rate_limited", "upstream_status", "upstream_stream_error", "upstream_timeout",
	"upstream_unreachable", "usage_exists", "usage_not_found", "user_disabled", "user_exists",
	"user_not_found",
}

// Codes returns the error codes, sorted.
func Codes() []string { return slices.Clone(codes) }
