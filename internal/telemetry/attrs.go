package telemetry

import "go.opentelemetry.io/otel/attribute"

// Span names. Each stage of a request is one span under the request's server span; the
// OPERATIONS guide lists them with their attributes.
const (
	SpanAuth          = "autoglm.auth"           // who is calling (key or JWT)
	SpanLimits        = "autoglm.limits"         // rate limits and quotas
	SpanCache         = "autoglm.cache"          // response cache lookup
	SpanRoute         = "autoglm.route"          // the routing decision for one attempt
	SpanUpstream      = "autoglm.upstream"       // one attempt on one backend
	SpanEngineQueue   = "autoglm.engine.queue"   // waiting for a slot of the local engine
	SpanEnginePrefill = "autoglm.engine.prefill" // computing the prompt
	SpanEngineDecode  = "autoglm.engine.decode"  // generating tokens
	SpanTask          = "autoglm.task"           // one attempt of an asynchronous task, from when it was queued
	SpanTaskQueue     = "autoglm.task.queue"     // a task waiting for a worker
	SpanTaskRun       = "autoglm.task.run"       // a task running
	SpanWebhook       = "autoglm.webhook"        // one webhook delivery attempt
	SpanPlugin        = "autoglm.plugin"         // one plugin hook
)

// Event names.
const (
	// EventFirstToken marks the first bytes of a streamed answer (time to first token).
	EventFirstToken = "gen_ai.first_token"
	// EventRetry is added to an attempt that failed and will be tried again elsewhere.
	EventRetry = "autoglm.retry"
)

// Attribute keys: the OpenTelemetry GenAI semantic conventions where they name the thing,
// autoglm.* for what is the gateway's own.
const (
	GenAIOperationName     = attribute.Key("gen_ai.operation.name")     // chat, text_completion, embeddings
	GenAIProviderName      = attribute.Key("gen_ai.provider.name")      // the backend type (openai, autoglm.local)
	GenAISystem            = attribute.Key("gen_ai.system")             // the same, under its older name
	GenAIRequestModel      = attribute.Key("gen_ai.request.model")      // the model the client asked for
	GenAIResponseModel     = attribute.Key("gen_ai.response.model")     // the model name the backend serves
	GenAIUsageInputTokens  = attribute.Key("gen_ai.usage.input_tokens") // prompt tokens
	GenAIUsageOutputTokens = attribute.Key("gen_ai.usage.output_tokens")
	GenAIRequestMaxTokens  = attribute.Key("gen_ai.request.max_tokens")
	GenAIResponseFinish    = attribute.Key("gen_ai.response.finish_reasons")

	AttrBackend      = attribute.Key("autoglm.backend")        // the backend's configured name
	AttrAttempt      = attribute.Key("autoglm.attempt")        // 1 for the first try
	AttrRetryReason  = attribute.Key("autoglm.retry.reason")   // why the attempt is tried again
	AttrRetry        = attribute.Key("autoglm.retry")          // whether another backend is tried next
	AttrStream       = attribute.Key("autoglm.stream")         // the client asked for a stream
	AttrCacheResult  = attribute.Key("autoglm.cache.result")   // hit, miss, bypass
	AttrTraceID      = attribute.Key("autoglm.trace_id")       // the request's X-Trace-Id when not a W3C id
	AttrPrincipal    = attribute.Key("autoglm.principal.kind") // api_key, jwt, admin_key
	AttrTaskID       = attribute.Key("autoglm.task.id")
	AttrTaskAttempt  = attribute.Key("autoglm.task.attempt")
	AttrWebhookTry   = attribute.Key("autoglm.webhook.attempt")
	AttrPluginID     = attribute.Key("autoglm.plugin.id")
	AttrPluginHook   = attribute.Key("autoglm.plugin.hook") // pre or post
	AttrCachedTokens = attribute.Key("autoglm.engine.cached_tokens")
	AttrBatchSize    = attribute.Key("autoglm.engine.batch_size")
)

// GenAIOperation names an operation as the GenAI conventions do: "chat", "text_completion",
// "embeddings"; others pass through.
func GenAIOperation(op string) string {
	switch op {
	case "chat", "responses", "messages":
		return "chat"
	case "completion":
		return "text_completion"
	case "embedding":
		return "embeddings"
	}
	return op
}
