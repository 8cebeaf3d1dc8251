package plugin

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/open-autoglm/autoglm/internal/wire"
)

// TestEncodeBodyChecksForeignJSON: raw JSON a plugin puts in a request is not taken as
// valid; the body is then checked with wire.Peek, which refuses what is wrong.
func TestEncodeBodyChecksForeignJSON(t *testing.T) {
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.7}`)
	f, _ := wire.Peek(body)
	for name, change := range map[string]func(r *Request){
		"raw param":      func(r *Request) { _ = r.SetParam("tools", json.RawMessage(`{"a":1,"a":2}`)) },
		"direct param":   func(r *Request) { r.Params["x"] = json.RawMessage("\"\xff\"") },
		"raw content":    func(r *Request) { r.Messages[0].RawContent = json.RawMessage(`[1]`) },
		"extra repeats":  func(r *Request) { r.Messages[0].Extra = map[string]json.RawMessage{"role": json.RawMessage(`"x"`)} },
		"stream_options": func(r *Request) { _ = r.SetParam("stream_options", map[string]any{"include_usage": true}) },
		"model as param": func(r *Request) { r.Params["model"] = json.RawMessage(`"x"`) },
	} {
		r := &Request{Op: "chat"}
		if err := r.decodeBody(body); err != nil {
			t.Fatal(err)
		}
		change(r)
		if _, _, checked := r.encodeBody(body, f); checked {
			t.Errorf("%s: the body was taken as valid", name)
		}
	}
	r := &Request{Op: "chat"}
	_ = r.decodeBody(body)
	_ = r.SetParam("temperature", 0.5)
	_ = r.SetParam("user", "alice\xff")
	r.Messages[0].Content = "bad \xff byte"
	out, nf, checked := r.encodeBody(body, f)
	pf, err := wire.Peek(out)
	if !checked || err != nil || pf != nf {
		t.Errorf("plugin-set strings and numbers: checked %v, %s: %v", checked, out, err)
	}
}

func TestRequestRoundTrip(t *testing.T) {
	body := `{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}}],"name":"n"}],"temperature":0.5,"tools":[{"type":"function"}],"stream":true,"metadata":{"k":"v","n":1}}`
	r := &Request{Op: "chat", Stream: true}
	raw := []byte(body)
	if err := r.decodeBody(raw); err != nil {
		t.Fatal(err)
	}
	if r.Model != "m" || len(r.Messages) != 2 || r.Messages[1].Text() != "a" || r.Metadata["k"] != "v" {
		t.Fatalf("decoded %+v", r)
	}
	if v, ok := r.Number("temperature"); !ok || v != 0.5 {
		t.Errorf("temperature %v %v", v, ok)
	}
	f, err := wire.Peek(raw)
	if err != nil {
		t.Fatal(err)
	}
	out, nf, checked := r.encodeBody(raw, f)
	if !checked {
		t.Error("an untouched request's body was not taken as valid")
	}
	if pf, err := wire.Peek(out); err != nil || pf != nf {
		t.Errorf("fields %+v, want what wire.Peek finds: %+v (%v)", nf, pf, err)
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
		f, err := wire.Peek(body)
		if err != nil || r.decodeBody(body) != nil {
			return
		}
		if chat {
			_ = r.SetParam("temperature", 0.5) // a value SetParam writes itself
		}
		out, nf, checked := r.encodeBody(body, f)
		if !json.Valid(out) {
			t.Fatalf("not JSON: %q from %q", out, body)
		}
		// A body taken as valid without wire.Peek must be one it accepts, with the same
		// fields.
		pf, err := wire.Peek(out)
		if checked && (err != nil || pf != nf) {
			t.Fatalf("encoded %q: fields %+v, wire.Peek finds %+v (%v)", out, nf, pf, err)
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
