// Package api holds the public wire types of autoglm's OpenAI-compatible
// and native APIs and a Go client for them. It imports nothing from the
// server, so programs can depend on it alone.
//
// # Wire types
//
// The request and response types follow OpenAI's JSON field for field.
// Where a field takes several shapes the type decodes all of them: message
// [Content] is a string or a list of parts, [Stop] a string or a list,
// [Input] a string, strings, tokens or token lists, and an embedding
// [Vector] a float array or base64. Fields whose shape is open (tool_choice,
// response_format, logprobs) are [encoding/json.RawMessage]. Optional
// numbers whose zero means something (temperature, seed) are pointers.
//
// Errors on the OpenAI-compatible routes have the shape of [ErrorResponse];
// every response of the native routes is wrapped in an [Envelope].
//
// # Client
//
// [NewClient] returns a [Client] with methods per route: [Client.Chat],
// [Client.ChatStream], [Client.Completions], [Client.CompletionsStream],
// [Client.Embeddings], [Client.Models] and [Client.Model]; for the native
// task API [Client.SubmitTask], [Client.SubmitCodeTask], [Client.GetTask],
// [Client.ListTasks], [Client.CancelTask] and [Client.FollowTask], which
// follows a task's events to its end and resumes a broken stream where it
// stopped. A refused
// request, and an error reported inside a stream, come back as a
// [*StatusError] carrying the status, OpenAI's type/code/param/message,
// the trace id and Retry-After.
//
// Streams are read as server-sent events by package [sse], whose rules
// (multi-line data, comments, any line ending, a bounded event size) are
// the ones the server itself applies; the stream ends at "data: [DONE]", and one
// that ends without it is an error wrapping [io.ErrUnexpectedEOF]. Canceling
// the context stops a stream and closes its connection.
package api
