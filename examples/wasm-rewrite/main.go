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
// word (letters compared without regard to case), and appends the signature to whole
// answers.
//
// A hook call allocates nothing: the input and answer buffers are kept from one call to the
// next, and json.go reads and writes JSON in place. Go's garbage collector then has nothing
// to do during a call, which keeps a call at a few microseconds; the same module written with
// encoding/json took hundreds.
package main

import (
	"bytes"
	"unsafe"
)

func main() {}

// The host asks for one input buffer per call and frees it before the next; the module
// answers in a second buffer. Both are reused, so free has nothing to release.
var (
	inBuf   []byte
	outBuf  []byte
	scratch []byte // a decoded string
)

func ptr(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

//go:wasmexport alloc
func alloc(size uint32) uint32 {
	if cap(inBuf) < int(size) || cap(inBuf) == 0 {
		inBuf = make([]byte, max(size, 1024))
	}
	inBuf = inBuf[:cap(inBuf)]
	return ptr(inBuf)
}

//go:wasmexport free
func free(uint32) {}

// answer hands outBuf to the host.
func answer() uint64 { return uint64(ptr(outBuf))<<32 | uint64(len(outBuf)) }

// fail answers {"error": msg}.
func fail(msg string) uint64 {
	outBuf = appendString(append(outBuf[:0], `{"error":`...), msg)
	outBuf = append(outBuf, '}')
	return answer()
}

var cfg struct {
	prefix, signature string
	refuse            []byte // lower case
}

//go:wasmexport configure
func configure(p, n uint32) uint64 {
	conf := inBuf[:n]
	for _, k := range []string{"prefix", "refuse", "signature"} {
		v := member(conf, k)
		if v == nil {
			continue
		}
		s := str(v)
		if s == nil {
			return fail("bad configuration: " + k + " must be a string")
		}
		text := appendUnquoted(nil, s)
		switch k {
		case "prefix":
			cfg.prefix = string(text)
		case "refuse":
			cfg.refuse = lower(text)
		case "signature":
			cfg.signature = string(text)
		}
	}
	// Only the hooks this configuration needs are called.
	outBuf = append(outBuf[:0], `{"hooks":["on_request"`...)
	if cfg.signature != "" {
		outBuf = append(outBuf, `,"on_response"`...)
	}
	outBuf = append(outBuf, "]}"...)
	return answer()
}

// lower changes ASCII letters to lower case, in place.
func lower(b []byte) []byte {
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return b
}

//go:wasmexport on_request
func onRequest(p, n uint32) uint64 {
	msgs := member(member(inBuf[:n], "request"), "messages")
	// Find the last user message's content. Each message is walked over once; nothing is
	// decoded.
	var content []byte
	list := arrayAt(msgs)
	for {
		m, ok := list.next()
		if !ok {
			break
		}
		if role := str(member(m, "role")); string(role) == `"user"` {
			content = str(member(m, "content")) // nil when made of parts: left alone
		}
	}
	if content == nil {
		return 0
	}
	if len(cfg.refuse) > 0 {
		scratch = lower(appendUnquoted(scratch[:0], content))
		if bytes.Contains(scratch, cfg.refuse) {
			outBuf = append(outBuf[:0], `{"refuse":"the example plugin refuses to talk about `...)
			outBuf = append(appendEscaped(outBuf, string(cfg.refuse)), `"}`...)
			return answer()
		}
	}
	if cfg.prefix == "" {
		return 0
	}
	// Answer the messages as they came, with the prefix put inside the content's opening
	// quote: content starts at msgs[at] (both are views of inBuf), and the list ends at msgs[list.i].
	at := cap(msgs) - cap(content)
	outBuf = append(append(outBuf[:0], `{"request":{"messages":`...), msgs[:at+1]...)
	outBuf = appendEscaped(outBuf, cfg.prefix)
	outBuf = append(append(outBuf, msgs[at+1:list.i+1]...), "}}"...)
	return answer()
}

//go:wasmexport on_response
func onResponse(p, n uint32) uint64 {
	if cfg.signature == "" {
		return 0
	}
	choices := member(member(inBuf[:n], "response"), "choices")
	outBuf = append(outBuf[:0], `{"response":{"choices":[`...)
	list := arrayAt(choices)
	for i := 0; ; i++ {
		c, ok := list.next()
		if !ok {
			break
		}
		if i > 0 {
			outBuf = append(outBuf, ',')
		}
		index := member(c, "index")
		outBuf = append(append(outBuf, `{"index":`...), index[:skipValue(index, 0)]...)
		outBuf = append(outBuf, `,"text":"`...)
		if text := str(member(c, "text")); text != nil {
			outBuf = append(outBuf, inner(text)...)
		}
		outBuf = append(appendEscaped(outBuf, cfg.signature), `"}`...)
	}
	outBuf = append(outBuf, "]}}"...)
	return answer()
}
