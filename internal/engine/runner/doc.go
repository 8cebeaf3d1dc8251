// Package runner serves one GGUF model to many concurrent callers with
// continuous batching.
//
// Open loads the file, its tokenizer, the model and its chat template, and
// starts one scheduler goroutine that owns the model's forward passes for
// generation. Generate hands a request to the scheduler and blocks until the
// generation ends, calling emit in the caller's own goroutine for every
// token.
//
// # Scheduling
//
// A request first waits in a bounded FIFO queue (Options.QueueSize; a full
// queue fails the request at once with ErrQueueFull). Up to Options.Parallel
// requests hold a slot, each with its own KV cache, sampler and decoder. Every
// step of the scheduler is a single model.Forward call that carries:
//
//   - one new token for every sequence that is generating, and
//   - the next chunk of prompt tokens of sequences still being prefilled, at
//     most Options.PrefillChunk prompt tokens per step in all, handed out to
//     the oldest sequences first.
//
// So a long prompt is fed over several steps while running sequences keep
// producing a token per step, and a sequence that finishes or is cancelled
// leaves between two steps and its slot goes to the longest-waiting request
// at the next step. Admission is strictly first come, first served, so no
// request starves; a short request that arrives while a long one is running
// gets its own slot (when Parallel > 1) and may well finish first.
//
// # Prompt prefix reuse
//
// A slot's KV cache outlives its request: when the sequence leaves, the cache
// keeps the tokens it holds (the prompt and every generated token but the
// last), and up to Options.Parallel such caches are kept. A new request takes
// the free cache whose tokens share the longest prefix with its prompt, drops
// the positions after that prefix and computes only the rest, so a chat turn
// that resends the conversation, or requests sharing a system prompt, skip
// the part already computed (llama-server's cache_prompt). The answer is the
// same as without reuse: the cached positions hold exactly what a fresh pass
// would compute. A cache is given up for a short shared prefix only when it
// shares at least half of the prompt or of its own tokens, or when no new
// cache may be made; otherwise a new one is. Result.CachedTokens reports the
// prompt tokens taken from a cache. Options.NoPrefixReuse turns this off.
//
// # Streaming and stops
//
// Each sequence decodes its tokens with a streaming tokenizer.Decoder (so no
// event ends inside a UTF-8 character) and then passes the text through a stop
// matcher that holds back any tail that could be the beginning of a stop
// string. A stop string split over several tokens is therefore never emitted,
// and neither is anything after it. The scheduler never waits for a caller:
// events go into a per-request mailbox (an unbounded queue, bounded in
// practice by the context length) that the caller drains, so a slow consumer
// only delays itself.
//
// # Embeddings
//
// Embed does not go through the queue: it runs its forward passes in the
// calling goroutine with caches of its own, and the model serialises them
// with the scheduler's steps. Each input must fit one pass, since the model
// pools the hidden states of the positions of one step.
//
// # Limits
//
// A prompt must leave room for at least one generated token
// (len(prompt)+1 ≤ context length), otherwise Generate fails with
// ErrContextLength before queueing. A generation that fills the context ends
// with FinishReason "length", as does one that reaches Request.MaxTokens.
package runner
