package plugin

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestRequestRoundTrip(t *testing.T) {
	body := `{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}}],"name":"n"}],"temperature":0.5,"tools":[{"type":"function"}],"stream":true,"metadata":{"k":"v","n":1}}`
	r := &Request{Op: "chat", Stream: true}
	if err := r.decodeBody([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if r.Model != "m" || len(r.Messages) != 2 || r.Messages[1].Text() != "a" || r.Metadata["k"] != "v" {
		t.Fatalf("decoded %+v", r)
	}
	if v, ok := r.Number("temperature"); !ok || v != 0.5 {
		t.Errorf("temperature %v %v", v, ok)
	}
	out, err := r.encodeBody()
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	_ = json.Unmarshal([]byte(body), &a)
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatalf("encoded body is not JSON: %s", out)
	}
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("an untouched request changed in the round trip (-in +out):\n%s", diff)
	}
}

// FuzzRequestRoundTrip decodes any body plugins may be handed and checks that what is
// encoded back is JSON that decodes to the same request.
func FuzzRequestRoundTrip(f *testing.F) {
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"hi \u2028 \"q\""}],"max_tokens":5}`), true)
	f.Add([]byte(`{"model":"m","prompt":"p\n\t\u0001","stop":["x"]}`), false)
	f.Add([]byte(`{"model":"m","prompt":["a","b"],"metadata":{"a":"b"}}`), false)
	f.Fuzz(func(t *testing.T, body []byte, chat bool) {
		op := "completion"
		if chat {
			op = "chat"
		}
		r := &Request{Op: op}
		if !json.Valid(body) || r.decodeBody(body) != nil {
			return
		}
		out, err := r.encodeBody()
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(out) {
			t.Fatalf("not JSON: %q from %q", out, body)
		}
		r2 := &Request{Op: op}
		if err := r2.decodeBody(out); err != nil {
			t.Fatalf("re-decoding %q: %v", out, err)
		}
		norm := func(m map[string]json.RawMessage) map[string]any {
			o := map[string]any{}
			for k, v := range m {
				var x any
				_ = json.Unmarshal(v, &x)
				o[k] = x
			}
			return o
		}
		if r.Model != r2.Model || r.Prompt != r2.Prompt || len(r.Messages) != len(r2.Messages) {
			t.Fatalf("changed: %+v vs %+v", r, r2)
		}
		for i := range r.Messages {
			if r.Messages[i].Role != r2.Messages[i].Role || r.Messages[i].Content != r2.Messages[i].Content {
				t.Fatalf("message %d changed: %+v vs %+v", i, r.Messages[i], r2.Messages[i])
			}
		}
		if diff := cmp.Diff(norm(r.Params), norm(r2.Params), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("params changed:\n%s", diff)
		}
	})
}
