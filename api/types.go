package api

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Roles of chat messages.
const (
	RoleSystem    = "system"
	RoleDeveloper = "developer"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
)

// ChatCompletionRequest is the body of POST /v1/chat/completions. Pointer
// fields are optional and distinguish "absent" from a zero value that means
// something (temperature 0, seed 0). Fields whose shape is open or evolving
// are kept as raw JSON.
type ChatCompletionRequest struct {
	Model               string          `json:"model"`
	Messages            []Message       `json:"messages"`
	Stream              bool            `json:"stream,omitempty"`
	StreamOptions       *StreamOptions  `json:"stream_options,omitempty"`
	MaxTokens           int             `json:"max_tokens,omitempty"`
	MaxCompletionTokens int             `json:"max_completion_tokens,omitempty"`
	Temperature         *float64        `json:"temperature,omitempty"`
	TopP                *float64        `json:"top_p,omitempty"`
	N                   int             `json:"n,omitempty"`
	Stop                Stop            `json:"stop,omitempty"`
	Seed                *int64          `json:"seed,omitempty"`
	PresencePenalty     *float64        `json:"presence_penalty,omitempty"`
	FrequencyPenalty    *float64        `json:"frequency_penalty,omitempty"`
	User                string          `json:"user,omitempty"`
	Tools               []Tool          `json:"tools,omitempty"`
	ToolChoice          json.RawMessage `json:"tool_choice,omitempty"`     // "none", "auto", "required" or an object
	ResponseFormat      json.RawMessage `json:"response_format,omitempty"` // {"type":"json_object"}, {"type":"json_schema",...}
	// Logprobs asks for the log-probability of each output token; TopLogprobs (0-20, with
	// Logprobs) for the most likely tokens at each position.
	Logprobs    bool `json:"logprobs,omitempty"`
	TopLogprobs *int `json:"top_logprobs,omitempty"`
}

// StreamOptions tune a streamed answer.
type StreamOptions struct {
	// IncludeUsage asks for a last chunk, with no choices, carrying Usage.
	IncludeUsage bool `json:"include_usage"`
}

// Message is one chat message.
type Message struct {
	Role    string  `json:"role"`
	Content Content `json:"content"`
	// ReasoningContent is the model's reasoning, as GLM and DeepSeek models
	// return it beside Content.
	ReasoningContent string     `json:"reasoning_content,omitempty"`
	Name             string     `json:"name,omitempty"`
	ToolCalls        []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID       string     `json:"tool_call_id,omitempty"`
}

// Content is a message's content: either plain text or a list of parts
// (text, images, audio). On the wire it is a JSON string when Parts is nil,
// otherwise an array; null decodes as empty text.
type Content struct {
	Text  string
	Parts []ContentPart
}

// Text returns plain-text content.
func Text(s string) Content { return Content{Text: s} }

// Parts returns multi-part content.
func Parts(p ...ContentPart) Content { return Content{Parts: p} }

// String returns the text of the content: Text, or the text parts joined.
func (c Content) String() string {
	if c.Parts == nil {
		return c.Text
	}
	var b []byte
	for _, p := range c.Parts {
		if p.Type == "text" {
			b = append(b, p.Text...)
		}
	}
	return string(b)
}

// MarshalJSON implements [json.Marshaler].
func (c Content) MarshalJSON() ([]byte, error) {
	if c.Parts != nil {
		return json.Marshal(c.Parts)
	}
	return json.Marshal(c.Text)
}

// UnmarshalJSON implements [json.Unmarshaler].
func (c *Content) UnmarshalJSON(b []byte) error {
	*c = Content{}
	switch firstByte(b) {
	case 'n':
		return nil
	case '[':
		c.Parts = []ContentPart{}
		return json.Unmarshal(b, &c.Parts)
	default:
		return json.Unmarshal(b, &c.Text)
	}
}

// ContentPart is one part of multi-part content. Type is "text",
// "image_url", "input_audio", "file" or a newer kind; the matching field
// holds the payload.
type ContentPart struct {
	Type       string          `json:"type"`
	Text       string          `json:"text,omitempty"`
	ImageURL   *ImageURL       `json:"image_url,omitempty"`
	InputAudio json.RawMessage `json:"input_audio,omitempty"`
	File       json.RawMessage `json:"file,omitempty"`
}

// ImageURL is an image given by URL or data: URI.
type ImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"` // "auto", "low" or "high"
}

// Tool is a tool the model may call.
type Tool struct {
	Type     string              `json:"type"` // "function"
	Function *FunctionDefinition `json:"function,omitempty"`
}

// FunctionDefinition describes a callable function.
type FunctionDefinition struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"` // JSON Schema
	Strict      *bool           `json:"strict,omitempty"`
}

// ToolCall is a call the model made. In stream deltas Index says which call
// a fragment belongs to, and Arguments arrives in pieces to be concatenated.
type ToolCall struct {
	Index    *int         `json:"index,omitempty"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function FunctionCall `json:"function"`
}

// FunctionCall names a function and its JSON-encoded arguments.
type FunctionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// Stop is the "stop" parameter: one string or several. It encodes as a
// string when it has exactly one element.
type Stop []string

// MarshalJSON implements [json.Marshaler].
func (s Stop) MarshalJSON() ([]byte, error) {
	if len(s) == 1 {
		return json.Marshal(s[0])
	}
	return json.Marshal([]string(s))
}

// UnmarshalJSON implements [json.Unmarshaler].
func (s *Stop) UnmarshalJSON(b []byte) error {
	switch firstByte(b) {
	case 'n':
		*s = nil
		return nil
	case '"':
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = Stop{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(s))
}

// FinishReason says why a choice ended. The empty value means "not yet" and
// encodes as null, as in every stream chunk but the last of a choice.
type FinishReason string

// Finish reasons.
const (
	FinishStop          FinishReason = "stop"
	FinishLength        FinishReason = "length"
	FinishToolCalls     FinishReason = "tool_calls"
	FinishContentFilter FinishReason = "content_filter"
)

// MarshalJSON implements [json.Marshaler].
func (f FinishReason) MarshalJSON() ([]byte, error) {
	if f == "" {
		return []byte("null"), nil
	}
	return json.Marshal(string(f))
}

// UnmarshalJSON implements [json.Unmarshaler].
func (f *FinishReason) UnmarshalJSON(b []byte) error {
	if firstByte(b) == 'n' {
		*f = ""
		return nil
	}
	return json.Unmarshal(b, (*string)(f))
}

// Usage is the token accounting of an answer.
type Usage struct {
	PromptTokens            int                      `json:"prompt_tokens"`
	CompletionTokens        int                      `json:"completion_tokens"`
	TotalTokens             int                      `json:"total_tokens"`
	PromptTokensDetails     *PromptTokensDetails     `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *CompletionTokensDetails `json:"completion_tokens_details,omitempty"`
}

// PromptTokensDetails break down the prompt tokens.
type PromptTokensDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

// CompletionTokensDetails break down the completion tokens.
type CompletionTokensDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

// ChatCompletion is the answer to a non-streamed chat request.
type ChatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"` // "chat.completion"
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint,omitempty"`
	Choices           []ChatChoice `json:"choices"`
	Usage             *Usage       `json:"usage,omitempty"`
}

// ChatChoice is one alternative answer.
type ChatChoice struct {
	Index        int             `json:"index"`
	Message      Message         `json:"message"`
	Logprobs     json.RawMessage `json:"logprobs,omitempty"`
	FinishReason FinishReason    `json:"finish_reason"`
}

// ChatCompletionChunk is one event of a streamed chat answer. The last
// chunk of a stream with include_usage has no choices and carries Usage.
type ChatCompletionChunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"` // "chat.completion.chunk"
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	SystemFingerprint string        `json:"system_fingerprint,omitempty"`
	Choices           []ChunkChoice `json:"choices"`
	Usage             *Usage        `json:"usage,omitempty"`
}

// ChunkChoice is the part of a chunk for one choice.
type ChunkChoice struct {
	Index        int             `json:"index"`
	Delta        Delta           `json:"delta"`
	Logprobs     json.RawMessage `json:"logprobs,omitempty"`
	FinishReason FinishReason    `json:"finish_reason"`
}

// Delta is what a chunk adds to a choice's message.
type Delta struct {
	Role             string     `json:"role,omitempty"`
	Content          string     `json:"content,omitempty"`
	ReasoningContent string     `json:"reasoning_content,omitempty"`
	ToolCalls        []ToolCall `json:"tool_calls,omitempty"`
	Refusal          string     `json:"refusal,omitempty"`
}

// CompletionRequest is the body of POST /v1/completions (the legacy
// text-completion API).
type CompletionRequest struct {
	Model            string         `json:"model"`
	Prompt           Input          `json:"prompt"`
	Suffix           string         `json:"suffix,omitempty"`
	Stream           bool           `json:"stream,omitempty"`
	StreamOptions    *StreamOptions `json:"stream_options,omitempty"`
	MaxTokens        int            `json:"max_tokens,omitempty"`
	Temperature      *float64       `json:"temperature,omitempty"`
	TopP             *float64       `json:"top_p,omitempty"`
	N                int            `json:"n,omitempty"`
	Stop             Stop           `json:"stop,omitempty"`
	Seed             *int64         `json:"seed,omitempty"`
	PresencePenalty  *float64       `json:"presence_penalty,omitempty"`
	FrequencyPenalty *float64       `json:"frequency_penalty,omitempty"`
	Logprobs         *int           `json:"logprobs,omitempty"`
	Echo             bool           `json:"echo,omitempty"`
	User             string         `json:"user,omitempty"`
}

// Completion is the answer to a completion request, and also the shape of
// each chunk of a streamed one.
type Completion struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"` // "text_completion"
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	SystemFingerprint string             `json:"system_fingerprint,omitempty"`
	Choices           []CompletionChoice `json:"choices"`
	Usage             *Usage             `json:"usage,omitempty"`
}

// CompletionChoice is one alternative completion.
type CompletionChoice struct {
	Text         string          `json:"text"`
	Index        int             `json:"index"`
	Logprobs     json.RawMessage `json:"logprobs,omitempty"`
	FinishReason FinishReason    `json:"finish_reason"`
}

// Input is a completion prompt or an embedding input: one or more texts, or
// one or more token arrays. It encodes a single text as a string, several
// as an array of strings, a single token array flat and several as an
// array of arrays, and decodes all four forms.
type Input struct {
	Texts  []string
	Tokens [][]int
}

// TextInput returns an Input of texts.
func TextInput(texts ...string) Input { return Input{Texts: texts} }

// TokenInput returns an Input of token arrays.
func TokenInput(tokens ...[]int) Input { return Input{Tokens: tokens} }

// Len is the number of inputs.
func (in Input) Len() int { return len(in.Texts) + len(in.Tokens) }

// MarshalJSON implements [json.Marshaler].
func (in Input) MarshalJSON() ([]byte, error) {
	switch {
	case in.Texts != nil && in.Tokens != nil:
		return nil, errors.New("api: Input has both texts and tokens")
	case in.Tokens != nil:
		if len(in.Tokens) == 1 {
			return json.Marshal(in.Tokens[0])
		}
		return json.Marshal(in.Tokens)
	case len(in.Texts) == 1:
		return json.Marshal(in.Texts[0])
	case in.Texts == nil:
		return []byte(`""`), nil
	}
	return json.Marshal(in.Texts)
}

// UnmarshalJSON implements [json.Unmarshaler].
func (in *Input) UnmarshalJSON(b []byte) error {
	*in = Input{}
	switch firstByte(b) {
	case 'n':
		return nil
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		in.Texts = []string{s}
		return nil
	case '[':
	default:
		return fmt.Errorf("api: input must be a string or an array, not %.20s", b)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(b, &items); err != nil {
		return err
	}
	if len(items) == 0 {
		in.Texts = []string{}
		return nil
	}
	switch firstByte(items[0]) {
	case '"':
		return json.Unmarshal(b, &in.Texts)
	case '[':
		return json.Unmarshal(b, &in.Tokens)
	}
	var flat []int
	if err := json.Unmarshal(b, &flat); err != nil {
		return err
	}
	in.Tokens = [][]int{flat}
	return nil
}

// EmbeddingRequest is the body of POST /v1/embeddings.
type EmbeddingRequest struct {
	Model          string `json:"model"`
	Input          Input  `json:"input"`
	EncodingFormat string `json:"encoding_format,omitempty"` // "float" (default) or "base64"
	Dimensions     int    `json:"dimensions,omitempty"`
	User           string `json:"user,omitempty"`
}

// EmbeddingResponse is the answer to an embeddings request.
type EmbeddingResponse struct {
	Object string      `json:"object"` // "list"
	Data   []Embedding `json:"data"`
	Model  string      `json:"model"`
	Usage  Usage       `json:"usage"`
}

// Embedding is the vector of one input.
type Embedding struct {
	Object    string `json:"object"` // "embedding"
	Index     int    `json:"index"`
	Embedding Vector `json:"embedding"`
}

// Vector is an embedding. It decodes from a JSON array of numbers or from
// base64 of little-endian float32s (encoding_format "base64"), and encodes
// as an array.
type Vector []float32

// UnmarshalJSON implements [json.Unmarshaler].
func (v *Vector) UnmarshalJSON(b []byte) error {
	if firstByte(b) != '"' {
		return json.Unmarshal(b, (*[]float32)(v))
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("api: embedding: %w", err)
	}
	if len(raw)%4 != 0 {
		return fmt.Errorf("api: embedding: %d bytes is not a whole number of float32s", len(raw))
	}
	out := make(Vector, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	*v = out
	return nil
}

// Model describes a model the server offers.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"` // "model"
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// ModelList is the answer to GET /v1/models.
type ModelList struct {
	Object string  `json:"object"` // "list"
	Data   []Model `json:"data"`
}

// ErrorResponse is the body of an error on the OpenAI-compatible routes.
type ErrorResponse struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail describes an error. Empty Code and Param encode as null.
// Some servers send a numeric code; it decodes as its decimal string.
type ErrorDetail struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    string `json:"code"`
	Param   string `json:"param"`
}

// MarshalJSON implements [json.Marshaler].
func (e ErrorDetail) MarshalJSON() ([]byte, error) {
	nullable := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	return json.Marshal(struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	}{e.Message, e.Type, nullable(e.Param), nullable(e.Code)})
}

// UnmarshalJSON implements [json.Unmarshaler].
func (e *ErrorDetail) UnmarshalJSON(b []byte) error {
	var raw struct {
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Param   json.RawMessage `json:"param"`
		Code    json.RawMessage `json:"code"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*e = ErrorDetail{Message: raw.Message, Type: raw.Type, Param: scalar(raw.Param), Code: scalar(raw.Code)}
	return nil
}

// scalar renders a JSON string, number or boolean as text; null and
// anything else become "".
func scalar(b json.RawMessage) string {
	switch c := firstByte(b); {
	case c == '"':
		var s string
		json.Unmarshal(b, &s)
		return s
	case c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f':
		return string(bytes.TrimSpace(b))
	}
	return ""
}

// Envelope wraps every response of the native (non-OpenAI) routes.
type Envelope struct {
	Code    string          `json:"code"`
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data,omitempty"`
	Message string          `json:"message"`
	TraceID string          `json:"trace_id"`
}

// firstByte returns the first non-space byte of b, or 0.
func firstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c
	}
	return 0
}
