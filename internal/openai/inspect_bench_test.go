package openai

import (
	"bytes"
	"os"
	"testing"

	"github.com/open-autoglm/autoglm/api/sse"
)

// BenchmarkInspectStream cuts a 16-token stream from `autoglm mockllm` (with its usage chunk)
// into events and inspects each, as the relay does with every stream it accounts.
func BenchmarkInspectStream(b *testing.B) {
	stream, err := os.ReadFile("testdata/mock_stream.sse")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		var split sse.Splitter
		data, texts, found := stream, 0, false
		for {
			end := split.Cut(data)
			if end < 0 {
				break
			}
			_, f, _, text := inspectEvent(data[:end])
			if text {
				texts++
			}
			found = found || f
			data = data[end:]
		}
		if texts != 16 || !found {
			b.Fatal(texts, found)
		}
	}
}

// FuzzScanKeys holds scanKeys to the plain searches it stands for.
func FuzzScanKeys(f *testing.F) {
	stream, err := os.ReadFile("testdata/mock_stream.sse")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(stream)
	for _, s := range []string{`"content":"`, `"text":"x"`, `{"usage": {}}`, `"usage":{`, `"usage" :{`,
		`"content": "spaced"`, `::"content":"`, `"usage":`, `:`, `"text":`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, ev []byte) {
		text, usage := scanKeys(ev)
		wantText := bytes.Contains(ev, []byte(`"content":"`)) || bytes.Contains(ev, []byte(`"text":"`))
		wantUsage := bytes.Contains(ev, []byte(`"usage":{`)) || bytes.Contains(ev, []byte(`"usage": {`))
		if text != wantText || usage != wantUsage {
			t.Fatalf("scanKeys(%q) = %v, %v; want %v, %v", ev, text, usage, wantText, wantUsage)
		}
	})
}
