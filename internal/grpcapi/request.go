package grpcapi

import (
	"bytes"
	"encoding/json"

	autoglmv1 "github.com/open-autoglm/autoglm/gen/autoglm/v1"
	"google.golang.org/protobuf/types/known/structpb"
)

// The builders below turn a proto request into the OpenAI JSON body it mirrors. The body
// starts as the request's extra object; the typed fields are then set over it, so a typed
// field always wins over a key of the same name in extra. Fields left at their zero value (or
// unset, for the optional scalars) are not sent, so the gateway and the upstream apply their
// own defaults exactly as for an HTTP client that leaves them out.

// chatBody is the body of POST /v1/chat/completions for req. A stream always asks for usage
// (stream_options.include_usage), so the last stream message can carry it.
func chatBody(req *autoglmv1.ChatRequest, stream bool) ([]byte, error) {
	body := object(req.GetExtra())
	setString(body, "model", req.GetModel())
	msgs := make([]any, len(req.GetMessages()))
	for i, m := range req.GetMessages() {
		msgs[i] = messageObject(m)
	}
	body["messages"] = msgs
	if req.MaxTokens != nil {
		body["max_tokens"] = req.GetMaxTokens()
	}
	if req.Temperature != nil {
		body["temperature"] = req.GetTemperature()
	}
	if req.TopP != nil {
		body["top_p"] = req.GetTopP()
	}
	if req.Seed != nil {
		body["seed"] = req.GetSeed()
	}
	setStop(body, req.GetStop())
	setString(body, "user", req.GetUser())
	setStream(body, stream)
	return marshal(body)
}

// completeBody is the body of POST /v1/completions for req (never streamed).
func completeBody(req *autoglmv1.CompleteRequest) ([]byte, error) {
	body := object(req.GetExtra())
	setString(body, "model", req.GetModel())
	if _, ok := body["prompt"]; !ok || req.GetPrompt() != "" {
		// A token-array or multi-prompt "prompt" may come in extra; the typed string wins
		// when set.
		body["prompt"] = req.GetPrompt()
	}
	if req.MaxTokens != nil {
		body["max_tokens"] = req.GetMaxTokens()
	}
	if req.Temperature != nil {
		body["temperature"] = req.GetTemperature()
	}
	if req.TopP != nil {
		body["top_p"] = req.GetTopP()
	}
	if req.Seed != nil {
		body["seed"] = req.GetSeed()
	}
	setStop(body, req.GetStop())
	setString(body, "user", req.GetUser())
	setStream(body, false)
	return marshal(body)
}

// embedBody is the body of POST /v1/embeddings for req. The encoding is always "float":
// EmbedResponse carries floats.
func embedBody(req *autoglmv1.EmbedRequest) ([]byte, error) {
	body := object(req.GetExtra())
	setString(body, "model", req.GetModel())
	in := make([]any, len(req.GetInput()))
	for i, s := range req.GetInput() {
		in[i] = s
	}
	body["input"] = in
	if req.Dimensions != nil {
		body["dimensions"] = req.GetDimensions()
	}
	setString(body, "user", req.GetUser())
	body["encoding_format"] = "float"
	return marshal(body)
}

// messageObject is one chat message as JSON: its extra, then role, content, name and
// tool_call_id. Empty content is sent as "" unless extra brings structured content.
func messageObject(m *autoglmv1.Message) map[string]any {
	o := object(m.GetExtra())
	o["role"] = m.GetRole()
	if _, ok := o["content"]; !ok || m.GetContent() != "" {
		o["content"] = m.GetContent()
	}
	setString(o, "name", m.GetName())
	setString(o, "tool_call_id", m.GetToolCallId())
	return o
}

// object is s as a JSON object (a fresh map; nil s gives an empty one).
func object(s *structpb.Struct) map[string]any {
	if s == nil {
		return map[string]any{}
	}
	return s.AsMap()
}

func setString(o map[string]any, key, v string) {
	if v != "" {
		o[key] = v
	}
}

func setStop(o map[string]any, stop []string) {
	if len(stop) == 0 {
		return
	}
	l := make([]any, len(stop))
	for i, s := range stop {
		l[i] = s
	}
	o["stop"] = l
}

// setStream sets "stream" (a unary call must not stream whatever extra says) and, for a
// stream, asks for the usage chunk while keeping any other stream_options from extra.
func setStream(o map[string]any, stream bool) {
	o["stream"] = stream
	if !stream {
		delete(o, "stream_options")
		return
	}
	so, _ := o["stream_options"].(map[string]any)
	if so == nil {
		so = map[string]any{}
	}
	so["include_usage"] = true
	o["stream_options"] = so
}

// marshal encodes without HTML escaping, so prompt text reaches the model byte for byte as an
// HTTP client would have sent it. Map keys come out sorted: equal requests give equal bodies,
// which the response cache keys on.
func marshal(o map[string]any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(o); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
