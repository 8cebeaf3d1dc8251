package apierr_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/internal/apierr"
)

// TestFromDecode: the decoder's failures become public messages in the project's words; the
// decoder's own text never reaches the message.
func TestFromDecode(t *testing.T) {
	type inner struct {
		N int `json:"n"`
	}
	type body struct {
		Model string  `json:"model"`
		Max   int     `json:"max_tokens"`
		List  []inner `json:"list"`
	}
	for in, want := range map[string]string{
		``:                         "the request body is empty",
		`{"model":`:                "the request body ends before its JSON value does",
		`{"model":"m",}`:           "the request body is not valid JSON (at byte 14)",
		`{"model":3}`:              `the field "model" must be a string, not number`,
		`{"max_tokens":"x"}`:       `the field "max_tokens" must be a number, not string`,
		`{"list":[{"n":true}]}`:    `the field "list.n" must be a number, not bool`,
		`[1]`:                      "the request body must be a JSON object",
		`{"modle":"m"}`:            `the request body has a field this route does not know: "modle"`,
		strings.Repeat("[", 10001): "the request body nests JSON values too deeply",
	} {
		dec := json.NewDecoder(strings.NewReader(in))
		dec.DisallowUnknownFields()
		var b body
		err := dec.Decode(&b)
		if err == nil {
			t.Fatalf("%.40q decoded", in)
		}
		e := apierr.FromDecode(err)
		if e.Message != want || e.Kind != apierr.Invalid {
			t.Errorf("%.40q: %q (%v), want %q", in, e.Message, e.Kind, want)
		}
		for _, leak := range []string{"json:", "Go struct", "unmarshal", "main.", "apierr_test"} {
			if strings.Contains(e.PublicMessage(), leak) {
				t.Errorf("%.40q: message %q shows %q", in, e.PublicMessage(), leak)
			}
		}
	}
}
