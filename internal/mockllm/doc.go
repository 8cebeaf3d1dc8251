// Package mockllm is an OpenAI-compatible stand-in for a remote model server,
// used by tests and benchmarks of the gateway and its clients.
//
// # What it answers
//
//   - POST /v1/chat/completions and POST /v1/completions, as JSON or, when the
//     request has "stream": true, as server-sent events in OpenAI's chunk
//     shape, ending with "data: [DONE]". With stream_options.include_usage a
//     final chunk with empty choices carries the usage.
//   - With [Options.ToolCalls], a chat request that offers function tools is answered with a call of one of them
//     (finish_reason "tool_calls"), unless tool_choice is "none" or a tool result follows
//     the last assistant message; see tools.go.
//   - POST /v1/embeddings: one deterministic unit vector per input, as float
//     arrays or, with encoding_format "base64", as little-endian float32 bytes.
//   - GET /v1/models and GET /v1/models/{id}.
//   - GET /mock/stats (JSON of [Stats]) and POST /mock/reset, which are never
//     subject to the API key, failure injection or delays.
//
// Errors use OpenAI's shape {"error":{"message","type","param","code"}}.
//
// # Determinism
//
// The generated text is a sequence of words from a fixed list; each word is
// one token. The words are chosen by a PRNG seeded from [Options.Seed] and
// the request's prompt (message roles and text, or the completion prompt)
// and its "seed" field, so the same request against a server with the same
// seed always gets the same text, streamed or not. Every response produces
// [Options.Tokens] tokens with finish_reason "stop", unless max_tokens (or
// max_completion_tokens) is smaller, which caps the count and gives "length".
// prompt_tokens counts whitespace-separated words in the prompt text (one
// per element for token-array prompts).
//
// Injected failures ([Options.FailRate]) are drawn from a PRNG seeded by
// [Options.Seed] and the server's running count of generation requests, so a
// fixed sequence of requests fails the same way every run.
//
// # Timing
//
// A stream sends its first token after [Options.TTFT] and each following one
// after [Options.ITL]; a non-stream answer is written after
// TTFT + (N-1)*ITL. A client that disconnects stops its stream at once; the
// stream is counted in [Stats.StreamsCanceled].
//
// # Speed
//
// The server must never be the bottleneck of a benchmark. Requests are
// decoded by a small scanner over the body (after [encoding/json.Valid] has
// accepted it), responses are appended by hand into pooled buffers, and no
// goroutines are started beyond the ones net/http runs.
package mockllm
