package mockllm

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks that the request scanner never panics on any body and
// agrees with encoding/json about the fields it extracts.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		chatBody,
		`{"model":"m\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00","messages":[{"role":"user","content":[{"type":"text","text":"a b"},{"type":"image_url","image_url":{"url":"x"}}]}]}`,
		`{"model":"m","stream":true,"stream_options":{"include_usage":true},"max_tokens":5,"n":2,"seed":-3,"messages":[{"role":"user","content":null}]}`,
		`{"model":"m","prompt":[[1,2],[3]],"input":[1,2]}`,
		`{"model":"m","input":["a","b"],"encoding_format":"base64","dimensions":4}`,
		`{"model":"m","messages":[{"role":"user","content":"x"}],"extra":{"deep":[[{"a":"]}"}]]}}`,
		` { "model" : "m" , "max_tokens" : 1e3 } `,
		`{"model":"m","n":99999999999999999999}`,
		`[]`, `"s"`, `{`, ``, `{"model":"a","model":"b","messages":[{}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var p parser
		for _, k := range []kind{kindChat, kindCompletion, kindEmbedding} {
			var req request
			if err := p.parse(k, body, &req); err != nil {
				if !json.Valid(body) {
					continue
				}
				var br *badRequest
				if e, ok := err.(*badRequest); !ok || e.msg == "" {
					t.Fatalf("error %v (%T) is not a *badRequest", err, br)
				}
				continue
			}
			if !json.Valid(body) {
				t.Fatalf("invalid JSON %q was accepted", body)
			}
			// Keys written with \u escapes match in encoding/json but not in
			// the scanner, and encoding/json rewrites invalid UTF-8; neither
			// is worth handling in a mock.
			if bytes.Contains(body, []byte(`\u`)) || !utf8.Valid(body) {
				continue
			}
			var fields struct {
				Model  *string `json:"model"`
				Stream *bool   `json:"stream"`
			}
			var exact map[string]json.RawMessage
			if err := json.Unmarshal(body, &exact); err != nil {
				t.Fatalf("accepted %q that encoding/json rejects: %v", body, err)
			}
			json.Unmarshal(exact["model"], &fields.Model)
			if fields.Model == nil || *fields.Model != string(unescape(nil, req.model)) {
				t.Fatalf("model %q, encoding/json says %v", req.model, fields.Model)
			}
			if raw, ok := exact["stream"]; ok {
				json.Unmarshal(raw, &fields.Stream)
				if (fields.Stream != nil && *fields.Stream) != req.stream {
					t.Fatalf("stream %v, encoding/json says %s", req.stream, raw)
				}
			}
			if req.n < 1 || len(req.inputs) == 0 {
				t.Fatalf("accepted request with n=%d and %d inputs", req.n, len(req.inputs))
			}
		}
	})
}

// FuzzUnescape checks unescape against encoding/json's string decoding.
func FuzzUnescape(f *testing.F) {
	for _, seed := range []string{``, `plain`, `\"\\\/\b\f\n\r\t`, `\u00e9\u20AC`, `\ud83d\ude00`, `\ud83d`, `\ude00x`, `\ud83d\u0041`, `é`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		quoted := []byte(`"` + raw + `"`)
		if !json.Valid(quoted) || !utf8.ValidString(raw) {
			return
		}
		var want string
		if err := json.Unmarshal(quoted, &want); err != nil {
			t.Fatal(err)
		}
		if got := string(unescape(nil, []byte(raw))); got != want {
			t.Fatalf("unescape(%q) = %q, want %q", raw, got, want)
		}
	})
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\s/", "ctl\x00\x1f\n\r\t", "é€😀", "bad\xffutf8", "\u2028"} {
		b := appendString(nil, s)
		if !json.Valid(b) {
			t.Fatalf("appendString(%q) = %s is not valid JSON", s, b)
		}
		var got string
		json.Unmarshal(b, &got)
		if want := string(bytes.ToValidUTF8([]byte(s), []byte("\uFFFD"))); got != want {
			t.Errorf("appendString(%q) decodes to %q", s, got)
		}
	}
}

func TestWords(t *testing.T) {
	for s, want := range map[string]int{"": 0, "  ": 0, "a": 1, " a  b\tc\n": 3, "x\r\ny": 2} {
		if got := words([]byte(s)); got != want {
			t.Errorf("words(%q) = %d, want %d", s, got, want)
		}
	}
}
