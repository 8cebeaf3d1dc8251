package openapi

// dateTime is an RFC 3339 time.
var dateTime = obj{"type": "string", "format": "date-time"}

// strings is a list of strings that may be sent as null when empty.
var stringList = obj{"type": []string{"array", "null"}, "items": str}

// messages are chat messages: role and content are what every message has.
var messages = obj{"type": "array", "items": object([]string{"role"}, obj{"role": str, "content": anyJSON})}

// schemas returns the document's component schemas.
func schemas() obj {
	usageObj := object([]string{"prompt_tokens", "completion_tokens", "total_tokens"},
		obj{"prompt_tokens": integer, "completion_tokens": integer, "total_tokens": integer})
	return obj{
		// Errors.
		"ErrorCode": obj{"type": "string", "enum": Codes(),
			"description": "The stable, machine-readable code of an error. Clients branch on it, not on the message. " +
				"On the OpenAI-compatible routes, errors passed through from an upstream keep the upstream's own code."},
		"ErrorEnvelope": obj{
			"type":     "object",
			"required": []string{"code", "success", "data", "message", "trace_id"},
			"properties": obj{
				"code":     ref("ErrorCode"),
				"success":  obj{"const": false},
				"data":     obj{"type": "null"},
				"message":  obj{"type": "string", "description": "For people; it never carries internal details."},
				"trace_id": str,
			},
		},
		"OpenAIError": object([]string{"error"}, obj{"error": object([]string{"message", "type"}, obj{
			"message": str, "type": str, "code": obj{"type": []string{"string", "null"}}, "param": obj{"type": []string{"string", "null"}},
		})}),
		"AnthropicError": object([]string{"type", "error"}, obj{"type": obj{"const": "error"},
			"error": object([]string{"type", "message"}, obj{"type": str, "message": str})}),

		// OpenAI-compatible.
		// The gateway reads model and stream, and passes the rest to the upstream, which
		// requires messages.
		"ChatCompletionRequest": object([]string{"model"}, obj{
			"model": str, "messages": messages, "stream": boolean, "max_tokens": integer, "max_completion_tokens": integer,
			"temperature": number, "top_p": number, "n": integer, "stop": anyJSON, "tools": obj{"type": "array"},
			"stream_options": obj{"type": []string{"object", "null"}, "properties": obj{"include_usage": boolean}},
		}),
		"ChatCompletion": object([]string{"id", "object", "created", "model", "choices"}, obj{
			"id": str, "object": obj{"const": "chat.completion"}, "created": integer, "model": str,
			"choices": arr(object([]string{"index", "message", "finish_reason"}, obj{"index": integer,
				"message": object([]string{"role"}, obj{"role": str, "content": obj{"type": []string{"string", "null"}}}), "finish_reason": str})),
			"usage": usageObj,
		}),
		"CompletionRequest": object([]string{"model", "prompt"}, obj{
			"model": str, "prompt": anyJSON, "stream": boolean, "max_tokens": integer, "temperature": number, "suffix": str,
		}),
		"Completion": object([]string{"id", "object", "created", "model", "choices"}, obj{
			"id": str, "object": obj{"const": "text_completion"}, "created": integer, "model": str,
			"choices": arr(object([]string{"index", "text"}, obj{"index": integer, "text": str})),
			"usage":   usageObj,
		}),
		"EmbeddingRequest": object([]string{"model", "input"}, obj{"model": str, "input": anyJSON, "encoding_format": enum("float", "base64"), "dimensions": integer}),
		"EmbeddingList": object([]string{"object", "data", "model"}, obj{
			"object": obj{"const": "list"}, "model": str,
			"data":  arr(object([]string{"object", "index", "embedding"}, obj{"object": obj{"const": "embedding"}, "index": integer, "embedding": anyJSON})),
			"usage": object(nil, obj{"prompt_tokens": integer, "total_tokens": integer}),
		}),
		"Model":     object([]string{"id", "object", "created", "owned_by"}, obj{"id": str, "object": obj{"const": "model"}, "created": integer, "owned_by": str}),
		"ModelList": object([]string{"object", "data"}, obj{"object": obj{"const": "list"}, "data": arr(ref("Model"))}),
		"ResponseRequest": object([]string{"model"}, obj{"model": str, "input": anyJSON, "instructions": obj{"type": []string{"string", "null"}},
			"stream": boolean, "store": boolean, "previous_response_id": obj{"type": []string{"string", "null"}}, "max_output_tokens": integer}),
		// A stored or passed-through response: an upstream's answer is passed through as it is.
		"Response": object([]string{"id", "object"}, obj{
			"id": str, "object": obj{"const": "response"}, "created_at": integer, "model": str, "status": str, "output": obj{"type": "array"},
		}),
		"List":    object([]string{"object", "data"}, obj{"object": obj{"const": "list"}, "data": obj{"type": "array"}, "has_more": boolean}),
		"Deleted": object([]string{"id", "object", "deleted"}, obj{"id": str, "object": str, "deleted": boolean}),
		"File": object([]string{"id", "object", "bytes", "created_at", "filename", "purpose"}, obj{
			"id": str, "object": obj{"const": "file"}, "bytes": integer, "created_at": integer, "filename": str, "purpose": str,
		}),
		"Batch": object([]string{"id", "object", "endpoint", "input_file_id", "completion_window", "status", "created_at"}, obj{
			"id": str, "object": obj{"const": "batch"}, "endpoint": str, "input_file_id": str, "completion_window": str,
			"status": enum("validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"), "created_at": integer,
		}),
		"MessagesRequest": object([]string{"model", "messages"}, obj{"model": str, "messages": messages, "max_tokens": integer, "system": anyJSON, "stream": boolean}),
		"Message": object([]string{"id", "type", "role", "content", "model"}, obj{
			"id": str, "type": obj{"const": "message"}, "role": obj{"const": "assistant"}, "content": obj{"type": "array"}, "model": str,
			"stop_reason": obj{"type": []string{"string", "null"}}, "usage": object(nil, obj{"input_tokens": integer, "output_tokens": integer}),
		}),

		// Tasks.
		"TaskStatus": enum("queued", "running", "succeeded", "failed", "canceled"),
		"CodeTaskRequest": object([]string{"model"}, obj{
			"model": str, "prompt": str, "messages": messages, "language": str, "max_tokens": integer,
			"temperature": obj{"type": []string{"number", "null"}}, "priority": integer, "callback_url": obj{"type": "string", "format": "uri"},
			"metadata": anyJSON, "check": obj{"type": []string{"boolean", "null"}}, "repair_rounds": obj{"type": []string{"integer", "null"}},
		}),
		"TaskRequest": object([]string{"kind", "model"}, obj{
			"kind": enum("code", "chat", "embeddings"), "input": anyJSON,
			"model": str, "prompt": str, "messages": messages, "language": str, "max_tokens": integer,
			"temperature": obj{"type": []string{"number", "null"}}, "priority": integer, "callback_url": obj{"type": "string", "format": "uri"},
			"metadata": anyJSON, "check": obj{"type": []string{"boolean", "null"}}, "repair_rounds": obj{"type": []string{"integer", "null"}},
		}),
		"Task": object([]string{"task_id", "kind", "model", "status", "priority", "progress", "attempts", "max_attempts", "created_at", "updated_at"}, obj{
			"task_id": str, "kind": str, "model": str, "status": ref("TaskStatus"), "priority": integer,
			"progress": object([]string{"tokens"}, obj{"tokens": integer}), "attempts": integer, "max_attempts": integer,
			"created_at": dateTime, "started_at": dateTime, "finished_at": dateTime, "updated_at": dateTime,
			"result": object(nil, obj{"text": str, "code": arr(object([]string{"code"}, obj{"language": str, "code": str})),
				"finish_reason": str, "usage": object(nil, obj{"prompt_tokens": integer, "completion_tokens": integer})}),
			"error":        object([]string{"code", "message"}, obj{"code": str, "message": str}),
			"metadata":     anyJSON,
			"callback_url": str, "webhook": obj{"type": "object"}, "owner": str,
		}),
		"TaskPage":         object([]string{"items"}, obj{"items": arr(ref("Task")), "next": str}),
		"CodeCheckRequest": object([]string{"language", "code"}, obj{"language": str, "code": str, "finish_reason": str}),
		"CodeCheckResult": object([]string{"language", "status", "diagnostics"}, obj{
			"language": str, "status": str, "checker": str, "version": str, "diagnostics": obj{"type": []string{"array", "null"}},
		}),
		"CodeCompleteRequest": object([]string{"model", "prefix"}, obj{
			"model": str, "prefix": str, "suffix": str, "language": str, "max_tokens": integer,
			"temperature": obj{"type": []string{"number", "null"}}, "stop": anyJSON, "seed": obj{"type": []string{"integer", "null"}}, "stream": boolean,
		}),
		"CodeCompletion": object([]string{"completion", "finish_reason", "model", "usage"}, obj{
			"completion": str, "finish_reason": str, "model": str, "language": str, "usage": object(nil, obj{"prompt_tokens": integer, "completion_tokens": integer}),
		}),

		// The caller and administration.
		"Me": object([]string{"auth", "authenticated", "models", "permissions"}, obj{
			"auth": boolean, "authenticated": boolean, "method": str, "user_id": str, "key_id": str, "key_prefix": str, "role": str,
			"models": arr(str), "permissions": arr(str), "roles": obj{"type": "object", "additionalProperties": arr(str)},
		}),
		"User": object([]string{"id", "name", "role", "disabled", "created_at", "updated_at"}, obj{
			"id": str, "name": str, "email": str, "role": str, "disabled": boolean, "created_at": dateTime, "updated_at": dateTime,
		}),
		"UserPage":          object([]string{"items"}, obj{"items": arr(ref("User")), "next": str}),
		"CreateUserRequest": object([]string{"name"}, obj{"id": str, "name": str, "email": str, "role": str}),
		"Key": object([]string{"id", "prefix", "role", "created_at", "updated_at"}, obj{
			"id": str, "prefix": str, "user_id": str, "role": str, "name": str, "models": stringList,
			"expires_at": dateTime, "revoked_at": dateTime, "created_at": dateTime, "updated_at": dateTime, "user_disabled": boolean,
		}),
		"CreatedKey": obj{"allOf": []any{ref("Key"), object([]string{"secret"}, obj{"secret": obj{"type": "string", "description": "The key itself: shown this once, never stored."}})}},
		"KeyPage":    object([]string{"items"}, obj{"items": arr(ref("Key")), "next": str}),
		"CreateKeyRequest": object(nil, obj{"user_id": str, "name": str, "role": str, "models": stringList,
			"expires_at": obj{"type": []string{"string", "null"}, "format": "date-time"}, "expires_in": obj{"type": "string", "description": "A Go duration such as 720h."}}),
		"UsageAnswer": object([]string{"totals", "items", "filter"}, obj{
			"totals": object([]string{"requests", "prompt_tokens", "completion_tokens"}, obj{"requests": integer, "prompt_tokens": integer, "completion_tokens": integer}),
			"items":  arr(object([]string{"id", "time"}, obj{"id": integer, "time": dateTime, "model": str, "key_id": str, "user_id": str})),
			"next":   str, "filter": obj{"type": []string{"object", "null"}, "additionalProperties": str},
		}),
		"UsageSummary": object([]string{"from", "to", "step_seconds", "totals", "series"}, obj{
			"from": dateTime, "to": dateTime, "step_seconds": integer, "totals": obj{"type": "object"}, "series": obj{"type": []string{"array", "null"}},
			"by_model": obj{"type": []string{"array", "null"}}, "by_key": obj{"type": []string{"array", "null"}},
			"by_user": obj{"type": []string{"array", "null"}}, "by_day": obj{"type": []string{"array", "null"}},
			"records": integer, "truncated": boolean,
		}),
		"AuditPage": object([]string{"items"}, obj{"items": arr(object([]string{"id", "time", "actor", "action"},
			obj{"id": integer, "time": dateTime, "actor": str, "action": str})), "next": str}),
		"ModelStatus": object([]string{"name", "strategy", "ready", "backends"}, obj{
			"name": str, "aliases": stringList, "strategy": str, "ready": boolean, "fallbacks": stringList,
			"backends": arr(object([]string{"name", "type", "health", "circuit"}, obj{"name": str, "type": str, "health": str, "circuit": str, "inflight": integer})),
		}),
		"Readiness": object([]string{"ready", "draining", "models"}, obj{
			"ready": boolean, "draining": boolean,
			"models": arr(object([]string{"name", "ready", "backends"}, obj{"name": str, "ready": boolean,
				"backends": arr(object([]string{"name", "type", "health", "circuit"}, obj{"name": str, "type": str, "health": str, "circuit": str}))})),
		}),
	}
}
