//go:build wasip1

// Command misbehave is a Wasm plugin that breaks the rules on request, for the host's tests:
// a last user message "loop" spins forever, "hog" allocates until memory runs out, "trap"
// panics, "read PATH" answers with the file's content or the error reading it; anything else
// is answered with "fine".
package main

import (
	"encoding/json"
	"os"
	"strings"
	"unsafe"
)

func main() {}

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

var sink [][]byte

//go:wasmexport on_request
func onRequest(p, n uint32) uint64 {
	var in struct {
		Request struct {
			Messages []struct {
				Content string `json:"content"`
			} `json:"messages"`
		} `json:"request"`
	}
	_ = json.Unmarshal(pinned[p][:n], &in)
	last := ""
	if m := in.Request.Messages; len(m) > 0 {
		last = strings.TrimSpace(m[len(m)-1].Content)
	}
	switch last {
	case "loop":
		x := 0
		for {
			x++
		}
	case "hog":
		for {
			sink = append(sink, make([]byte, 1<<20))
		}
	case "trap":
		panic("misbehave: trap")
	}
	if path, ok := strings.CutPrefix(last, "read "); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			return answer("error: " + err.Error())
		}
		return answer("read: " + string(b))
	}
	return answer("fine")
}

func answer(text string) uint64 {
	b, _ := json.Marshal(map[string]string{"reply": text})
	q := alloc(uint32(len(b)))
	copy(pinned[q], b)
	return uint64(q)<<32 | uint64(len(b))
}
