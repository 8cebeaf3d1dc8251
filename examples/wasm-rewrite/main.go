//go:build wasip1

// Command wasm-rewrite is an example autoglm plugin written in Go and compiled to
// WebAssembly (a WASI reactor):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o rewrite.wasm ./examples/wasm-rewrite
//
// It speaks the ABI of docs/PLUGINS.md: the host writes a JSON document into memory it gets
// from alloc, calls a hook with its address and length, and reads the JSON answer at the
// address and length packed into the hook's i64 result (0: nothing to change).
//
// Configured with {"prefix": "...", "refuse": "word", "signature": "..."}, it puts the prefix
// before the last user message, refuses requests whose last user message holds the refuse
// word, and appends the signature to whole answers.
package main

import (
	"encoding/json"
	"strings"
	"unsafe"
)

func main() {}

// pinned keeps the buffers handed to the host alive until it frees them.
var pinned = map[uint32][]byte{}

//go:wasmexport alloc
func alloc(size uint32) uint32 {
	b := make([]byte, max(size, 1))
	p := uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	pinned[p] = b
	return p
}

//go:wasmexport free
func free(p uint32) { delete(pinned, p) }

// input returns the JSON the host wrote at p.
func input(p, n uint32) []byte { return pinned[p][:n] }

// output hands v to the host as JSON.
func output(v any) uint64 {
	b, err := json.Marshal(v)
	if err != nil {
		return 0
	}
	p := alloc(uint32(len(b)))
	copy(pinned[p], b)
	return uint64(p)<<32 | uint64(len(b))
}

var cfg struct {
	Prefix    string `json:"prefix"`
	Refuse    string `json:"refuse"`
	Signature string `json:"signature"`
}

//go:wasmexport configure
func configure(p, n uint32) uint64 {
	if err := json.Unmarshal(input(p, n), &cfg); err != nil {
		return output(map[string]string{"error": "bad configuration: " + err.Error()})
	}
	return 0
}

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type request struct {
	Model    string            `json:"model"`
	Messages []message         `json:"messages,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

//go:wasmexport on_request
func onRequest(p, n uint32) uint64 {
	var in struct {
		Request request `json:"request"`
	}
	if err := json.Unmarshal(input(p, n), &in); err != nil {
		return output(map[string]string{"error": err.Error()})
	}
	msgs := in.Request.Messages
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role != "user" {
			continue
		}
		if cfg.Refuse != "" && strings.Contains(strings.ToLower(msgs[i].Content), cfg.Refuse) {
			return output(map[string]string{"refuse": "the example plugin refuses to talk about " + cfg.Refuse})
		}
		msgs[i].Content = cfg.Prefix + msgs[i].Content
		return output(map[string]any{"request": map[string]any{"messages": msgs}})
	}
	return 0
}

//go:wasmexport on_response
func onResponse(p, n uint32) uint64 {
	if cfg.Signature == "" {
		return 0
	}
	var in struct {
		Response struct {
			Choices []struct {
				Index int    `json:"index"`
				Text  string `json:"text"`
			} `json:"choices"`
		} `json:"response"`
	}
	if err := json.Unmarshal(input(p, n), &in); err != nil {
		return output(map[string]string{"error": err.Error()})
	}
	for i := range in.Response.Choices {
		in.Response.Choices[i].Text += cfg.Signature
	}
	return output(map[string]any{"response": in.Response})
}
