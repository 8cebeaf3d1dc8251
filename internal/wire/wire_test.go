package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

func TestPeek(t *testing.T) {
	cases := []struct {
		name string
		body string
		want Fields
		err  error
	}{
		{"basic", `{"model":"glm4","messages":[{"role":"user","content":"hi"}]}`, Fields{Model: "glm4", HasModel: true}, nil},
		{"stream", `{"stream":true,"model":"m"}`, Fields{Model: "m", HasModel: true, Stream: true}, nil},
		{"stream false", `{"model":"m","stream":false}`, Fields{Model: "m", HasModel: true}, nil},
		{"include usage", `{"model":"m","stream":true,"stream_options":{"x":[1,{"include_usage":false}],"include_usage":true}}`,
			Fields{Model: "m", HasModel: true, Stream: true, IncludeUsage: true}, nil},
		{"nested model ignored", `{"tools":[{"model":"evil"}],"metadata":{"model":"x"},"model":"real"}`, Fields{Model: "real", HasModel: true}, nil},
		{"model in string", `{"prompt":"\"model\":\"no\"","model":"yes"}`, Fields{Model: "yes", HasModel: true}, nil},
		{"escaped key", `{"mod\u0065l":"esc"}`, Fields{Model: "esc", HasModel: true}, nil},
		{"escaped value", `{"model":"a\"b\u00e9"}`, Fields{Model: "a\"bé", HasModel: true}, nil},
		{"repeated model", `{"model":"a","model":"b"}`, Fields{}, ErrDuplicateKey},
		{"repeated escaped", `{"model":"a","mod\u0065l":"b"}`, Fields{}, ErrDuplicateKey},
		{"repeated nested", `{"model":"m","messages":[{"role":"user","content":"a","content":"b"}]}`, Fields{}, ErrDuplicateKey},
		{"repeated deep", `{"model":"m","x":[[{"a":{"b":1,"b":2}}]]}`, Fields{}, ErrDuplicateKey},
		{"repeated after many", `{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":0,"k11":1,"k12":2,"k13":3,"k14":4,"k15":5,"k16":6,"k17":7,"k3":8}`, Fields{}, ErrDuplicateKey},
		{"same key in sibling objects", `{"model":"m","messages":[{"role":"a"},{"role":"b"}],"x":{"model":"n"}}`, Fields{Model: "m", HasModel: true}, nil},
		{"many distinct keys", `{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":0,"k11":1,"k12":2,"k13":3,"k14":4,"k15":5,"k16":6,"k17":7,"model":"m"}`, Fields{Model: "m", HasModel: true}, nil},
		{"keys differing in case", `{"model":"m","Model":"n"}`, Fields{Model: "m", HasModel: true}, nil},
		{"invalid utf-8 in value", "{\"model\":\"m\",\"prompt\":\"a\xffb\"}", Fields{}, ErrInvalidUTF8},
		{"invalid utf-8 in key", "{\"model\":\"m\",\"\xc3\":1}", Fields{}, ErrInvalidUTF8},
		{"unpaired high surrogate", `{"model":"m","prompt":"\ud800"}`, Fields{}, ErrInvalidUTF8},
		{"unpaired low surrogate", `{"model":"m","prompt":"x\udc00"}`, Fields{}, ErrInvalidUTF8},
		{"high then non-low", `{"model":"m","prompt":"\uD800\u0041"}`, Fields{}, ErrInvalidUTF8},
		{"surrogate key", `{"model":"m","\udbff":1}`, Fields{}, ErrInvalidUTF8},
		{"paired surrogates", `{"model":"m","prompt":"\ud83d\ude00 \\ud800"}`, Fields{Model: "m", HasModel: true}, nil},
		{"whitespace", " \n{ \"model\" :\t\"m\" , \"stream\" : true } ", Fields{Model: "m", HasModel: true, Stream: true}, nil},
		{"no model", `{"messages":[]}`, Fields{}, nil},
		{"null model", `{"model":null}`, Fields{}, nil},
		{"empty", `{}`, Fields{}, nil},
		{"bad json", `{"model":"m",}`, Fields{}, ErrInvalidJSON},
		{"truncated", `{"model":"m"`, Fields{}, ErrInvalidJSON},
		{"array", `[{"model":"m"}]`, Fields{}, ErrNotObject},
		{"model number", `{"model":42}`, Fields{}, ErrModelType},
		{"stream string", `{"model":"m","stream":"yes"}`, Fields{}, ErrStreamType},
		{"stream options list", `{"stream_options":[]}`, Fields{}, ErrStreamOpts},
		{"include usage string", `{"stream_options":{"include_usage":"1"}}`, Fields{}, ErrIncludeUsage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Peek([]byte(tc.body))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			got.ModelStart, got.ModelEnd = 0, 0
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSetModel(t *testing.T) {
	body := []byte(`{"model":"glm4","tools":[{"type":"function"}],"x":{"model":"keep"}}`)
	f, err := Peek(body)
	if err != nil {
		t.Fatal(err)
	}
	out := SetModel(body, f, `THUDM/glm-4 "9b"`)
	want := `{"model":"THUDM/glm-4 \"9b\"","tools":[{"type":"function"}],"x":{"model":"keep"}}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	if string(body) != `{"model":"glm4","tools":[{"type":"function"}],"x":{"model":"keep"}}` {
		t.Error("SetModel modified its input")
	}
	if same := SetModel(body, f, "glm4"); &same[0] != &body[0] {
		t.Error("unchanged name must not copy")
	}
	uni := SetModel(body, f, "模型-é")
	var m map[string]any
	if err := json.Unmarshal(uni, &m); err != nil || m["model"] != "模型-é" {
		t.Errorf("unicode name: %s %v", uni, err)
	}
}

// FuzzPeek checks Peek against encoding/json on arbitrary input: same validity verdict, same
// top-level fields, and SetModel always yields valid JSON carrying the new name.
func FuzzPeek(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"a\"b","messages":[{"role":"user","content":"x"}]}`,
		`{"mod\u0065l":"x"}`, `[]`, `{`, `{"model":1}`, `{"stream":null,"model":null}`,
		`{"a":[1,2,{"b":"}"}],"model":"q"}`, `null`, ` null `,
		`{"a":1,"\u0061":2}`, `{"p":"\ud800\udc00\udbff"}`, `{"p":"\\ud800"}`, `{"x":[{"a":1},{"a":2,"a":3}]}`, "{\"model\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := Peek(body)
		var ref map[string]json.RawMessage
		refErr := json.Unmarshal(body, &ref)
		if !json.Valid(body) {
			if err == nil {
				t.Fatalf("Peek accepted invalid JSON %q", body)
			}
			return
		}
		if !utf8.Valid(body) {
			if !errors.Is(err, ErrInvalidUTF8) {
				t.Fatalf("invalid UTF-8 %q: err %v", body, err)
			}
			return
		}
		if errors.Is(err, ErrInvalidUTF8) {
			// Valid UTF-8: then a string must hold an unpaired surrogate escape, which
			// encoding/json turns into U+FFFD.
			var v any
			_ = json.Unmarshal(body, &v)
			if out, _ := json.Marshal(v); !bytes.Contains(out, []byte("\ufffd")) && !bytes.ContainsRune(out, utf8.RuneError) {
				t.Fatalf("Peek calls %q invalid Unicode; it decodes to %s", body, out)
			}
			return
		}
		if k, dup := refDuplicate(body); dup != errors.Is(err, ErrDuplicateKey) {
			t.Fatalf("%q: reference finds a repeated key %v (%q), Peek says %v", body, dup, k, err)
		} else if dup {
			if de := (*DuplicateKeyError)(nil); !errors.As(err, &de) || de.Key != k {
				t.Fatalf("%q: Peek names %v, the reference %q", body, err, k)
			}
			return
		}
		if refErr != nil || ref == nil { // valid JSON but not an object (null decodes into a nil map)
			if err != ErrNotObject {
				t.Fatalf("non-object %q: err %v", body, err)
			}
			return
		}
		if err != nil {
			// Only type errors are allowed on valid objects; check the reference agrees.
			var typed struct {
				Model         *string `json:"model"`
				Stream        *bool   `json:"stream"`
				StreamOptions *struct {
					IncludeUsage *bool `json:"include_usage"`
				} `json:"stream_options"`
			}
			if json.Unmarshal(body, &typed) == nil {
				t.Fatalf("Peek refused %q (%v) but encoding/json decodes it", body, err)
			}
			return
		}
		var typed struct {
			Model         *string `json:"model"`
			Stream        *bool   `json:"stream"`
			StreamOptions *struct {
				IncludeUsage *bool `json:"include_usage"`
			} `json:"stream_options"`
		}
		if err := json.Unmarshal(body, &typed); err != nil {
			// encoding/json matches keys case-insensitively; Peek, like the OpenAI API, does not.
			return
		}
		_ = typed
		if withUsage, nf, err := WithIncludeUsage(body, got); err != nil {
			t.Fatalf("WithIncludeUsage refused %q: %v", body, err)
		} else if f, err := Peek(withUsage); err != nil || !f.IncludeUsage || f.Model != got.Model || f.Stream != got.Stream || f != nf {
			t.Fatalf("WithIncludeUsage(%q) = %q: %+v, reported %+v %v", body, withUsage, f, nf, err)
		}
		if got.HasModel {
			if _, ok := ref["model"]; !ok {
				t.Fatalf("Peek found a model in %q that is not a top-level key", body)
			}
			out := SetModel(body, got, "new/model")
			var back map[string]json.RawMessage
			if err := json.Unmarshal(out, &back); err != nil {
				t.Fatalf("SetModel produced invalid JSON %q", out)
			}
			var name string
			if err := json.Unmarshal(back["model"], &name); err != nil || name != "new/model" {
				t.Fatalf("SetModel: model = %s", back["model"])
			}
		}
	})
}

// refDuplicate finds the first repeated key of any object in body (valid JSON) with
// encoding/json's tokenizer: an independent reference for Peek.
func refDuplicate(body []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		object  bool
		seen    map[string]bool
		wantKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if k, ok := tok.(string); ok {
				if top.seen[k] {
					return k, true
				}
				top.seen[k] = true
				top.wantKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, seen: map[string]bool{}, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].wantKey = true // a value ended: the next token is a key
		}
	}
}

func BenchmarkPeek(b *testing.B) {
	body := []byte(`{"model":"glm-4-flash","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write a haiku about the sea, and explain each line in detail please."}],"temperature":0.7,"max_tokens":256,"stream":true,"stream_options":{"include_usage":true},"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Peek(body); err != nil {
			b.Fatal(err)
		}
	}
}

func TestWithIncludeUsage(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"model":"m","stream":true}`, `{"stream_options":{"include_usage":true},"model":"m","stream":true}`},
		{` {}`, ` {"stream_options":{"include_usage":true}}`},
		{`{"model":"m","stream_options":{"include_usage":true}}`, `{"model":"m","stream_options":{"include_usage":true}}`},
		{`{"model":"m","stream_options":{"x":1}}`, `{"model":"m","stream_options":{"include_usage":true,"x":1}}`},
		{`{"model":"m","stream_options":null}`, `{"model":"m","stream_options":{"include_usage":true}}`},
		{`{"model":"m","stream_options":{"include_usage":false}}`, `{"model":"m","stream_options":{"include_usage":true}}`},
	} {
		in, _ := Peek([]byte(tc.in))
		got, nf, err := WithIncludeUsage([]byte(tc.in), in)
		if err != nil || string(got) != tc.want {
			t.Errorf("WithIncludeUsage(%s) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
		f, err := Peek(got)
		if err != nil || !f.IncludeUsage || f != nf {
			t.Errorf("result %s does not ask for usage, or its fields %+v differ from those reported %+v (%v)", got, f, nf, err)
		}
	}
	if _, _, err := WithIncludeUsage([]byte(`{"stream_options":1`), Fields{}); err == nil {
		t.Error("invalid JSON accepted")
	}
}
