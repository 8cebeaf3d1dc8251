package openai

import (
	"bytes"
	"encoding/json"
	"testing"
)

// usageByDecoder is how usageFromDocument read the usage object before it cut the object out
// first: a json.Decoder from the last "usage" key on. It is the reference the fuzz target
// holds the current code to (usageValue, which finds the key, is shared).
func usageByDecoder(doc []byte) (Usage, bool) {
	v := usageValue(doc)
	if v == nil {
		return Usage{}, false
	}
	var u *usageJSON
	if err := json.NewDecoder(bytes.NewReader(v)).Decode(&u); err != nil || u == nil {
		return Usage{}, false
	}
	return u.usage(), true
}

var usageDocs = []string{
	`{"id":"x","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":12,"completion_tokens":16,"total_tokens":28}}`,
	`{"usage": {"prompt_tokens": 3, "completion_tokens": 4, "prompt_tokens_details": {"cached_tokens": 2}}}`,
	`{"output":[],"usage":{"input_tokens":7,"output_tokens":9,"input_tokens_details":{"cached_tokens":1}}}`,
	`{"usage":{"prompt_tokens":1,"note":"a } and a \" and a {","completion_tokens":2}}`,
	`{"usage":{"prompt_tokens":1,"completion_tokens":2},"trailing":"usage"}`,
	`{"usage":null}`,
	`{"usage":5}`,
	`{"usage":[1,2]}`,
	`{"usage":{"prompt_tokens":"12"}}`,
	`{"usage":{"prompt_tokens":1.5}}`,
	`{"usage":{"prompt_tokens":1,`,
	`{"usage":{"PROMPT_TOKENS":4,"Completion_Tokens":5}}`,
	`{"usage":{"prompt_tokens":1}} garbage after`,
	`{"usage":{"a":[}],"prompt_tokens":1}}`,
	`{"usage":{}}`,
	`no json at all`,
}

func TestUsageFromDocument(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want Usage
		ok   bool
	}{
		{usageDocs[0], Usage{PromptTokens: 12, CompletionTokens: 16}, true},
		{usageDocs[1], Usage{PromptTokens: 3, CompletionTokens: 4, CachedTokens: 2}, true},
		{usageDocs[2], Usage{PromptTokens: 7, CompletionTokens: 9, CachedTokens: 1}, true},
		{usageDocs[3], Usage{PromptTokens: 1, CompletionTokens: 2}, true},
		{usageDocs[5], Usage{}, false},
		{usageDocs[8], Usage{}, false},
		{usageDocs[10], Usage{}, false},
		{usageDocs[14], Usage{}, true},
	} {
		got, ok := usageFromDocument([]byte(tc.doc))
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: got %+v %v, want %+v %v", tc.doc, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzUsageFromDocument: cutting the object out first finds what the decoder found, for any
// answer an upstream could send.
func FuzzUsageFromDocument(f *testing.F) {
	for _, d := range usageDocs {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		got, ok := usageFromDocument(doc)
		want, wantOK := usageByDecoder(doc)
		if got != want || ok != wantOK {
			t.Fatalf("%q: got %+v %v, the decoder %+v %v", doc, got, ok, want, wantOK)
		}
	})
}

func BenchmarkUsageFromDocument(b *testing.B) {
	doc := []byte(usageDocs[0])
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := usageFromDocument(doc); !ok {
			b.Fatal("no usage")
		}
	}
}

func BenchmarkUsageByDecoder(b *testing.B) {
	doc := []byte(usageDocs[0])
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := usageByDecoder(doc); !ok {
			b.Fatal("no usage")
		}
	}
}

// chunkByUnmarshal is how inspectEvent read a streamed chunk before inspectChunk: the
// reference FuzzInspectChunk holds it to.
func chunkByUnmarshal(data []byte) (Usage, bool, bool) {
	var chunk struct {
		Choices []json.RawMessage `json:"choices"`
		Usage   *usageJSON        `json:"usage"`
	}
	if json.Unmarshal(data, &chunk) != nil || chunk.Usage == nil {
		return Usage{}, false, false
	}
	return chunk.Usage.usage(), len(chunk.Choices) == 0, true
}

// usageEdges are members whose meaning comes from encoding/json's rules rather than from
// OpenAI's: name matching, duplicates, nulls, merged details, numbers that are not int64s.
var usageEdges = []string{
	`{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7}}`,
	`{"choices":[{"delta":{}}],"usage":{"prompt_tokens":5}}`,
	`{"choices":null,"usage":{"prompt_tokens":5}}`,
	`{"choices":{},"usage":{"prompt_tokens":5}}`,
	`{"choices":[1,[2,{"a":"]"}],"x"],"usage":{"prompt_tokens":5}}`,
	`{"usage":{"prompt_tokens":5},"usage":null}`,
	`{"usage":{"prompt_tokens":5},"usage":{"completion_tokens":6}}`,
	`{"usage":{"prompt_tokens_details":{"cached_tokens":3},"prompt_tokens_details":{},"prompt_tokens":9}}`,
	`{"usage":{"prompt_tokens_details":{"cached_tokens":3},"prompt_tokens_details":null,"prompt_tokens":9}}`,
	`{"usage":{"prompt_tokens_details":[],"prompt_tokens":9}}`,
	`{"usage":{"prompt_tokens":null,"completion_tokens":2}}`,
	`{"usage":{"prompt_tokens":-0,"completion_tokens":2e1}}`,
	`{"usage":{"prompt_tokens":9223372036854775808}}`,
	`{"usage":{"prompt_tokens":-9223372036854775808,"completion_tokens":1}}`,
	`{"usage":{"prompt_tokens":true}}`,
	"{\"usage\":{\"prompt_to\u212aens\":4,\"completion_tokens\":1}}",
	"{\"usage\":{\"prompt_tokens\":4,\"completion_token\u017f\":1}}",
	`{"usage":{"prompt\u005ftokens":4,"completion_tokens":1}}`,
	`{"usage":{"prompt_tokens\ud800":4,"completion_tokens":1}}`,
	"{\"usage\":{\"prompt_tokens\xff\":4}}",
	` {"usage" : { "prompt_tokens" : 1 , "completion_tokens" : 2 } , "choices" : [ ] } `,
	`[{"usage":{"prompt_tokens":1}}]`,
	`null`,
	``,
}

func TestUsageScanEdges(t *testing.T) {
	for _, doc := range append(usageEdges, usageDocs...) {
		got, only, ok := inspectChunk([]byte(doc))
		want, wantOnly, wantOK := chunkByUnmarshal([]byte(doc))
		if got != want || only != wantOnly || ok != wantOK {
			t.Errorf("chunk %q: got %+v %v %v, json.Unmarshal %+v %v %v", doc, got, only, ok, want, wantOnly, wantOK)
		}
		du, dok := usageFromDocument([]byte(doc))
		wu, wok := usageByDecoder([]byte(doc))
		if du != wu || dok != wok {
			t.Errorf("document %q: got %+v %v, the decoder %+v %v", doc, du, dok, wu, wok)
		}
	}
	// A few by value, so that the reference itself is pinned.
	for doc, want := range map[string]Usage{
		usageEdges[6]:  {PromptTokens: 5, CompletionTokens: 6},
		usageEdges[7]:  {PromptTokens: 9, CachedTokens: 3},
		usageEdges[8]:  {PromptTokens: 9},
		usageEdges[15]: {PromptTokens: 4, CompletionTokens: 1},
	} {
		if got, _, ok := inspectChunk([]byte(doc)); !ok || got != want {
			t.Errorf("chunk %q: got %+v %v, want %+v", doc, got, ok, want)
		}
	}
}

// FuzzInspectChunk: the scan reads a streamed chunk as json.Unmarshal did.
func FuzzInspectChunk(f *testing.F) {
	for _, d := range append(usageEdges, usageDocs...) {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, only, ok := inspectChunk(data)
		want, wantOnly, wantOK := chunkByUnmarshal(data)
		if got != want || only != wantOnly || ok != wantOK {
			t.Fatalf("%q: got %+v %v %v, json.Unmarshal %+v %v %v", data, got, only, ok, want, wantOnly, wantOK)
		}
	})
}
