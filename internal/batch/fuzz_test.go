package batch_test

import (
	"encoding/json"
	"testing"

	"github.com/open-autoglm/autoglm/internal/batch"
)

// FuzzParseInput: whatever the upload, ParseInput either refuses it or returns requests
// that each have a custom id (unique), a batch endpoint and a JSON object body.
func FuzzParseInput(f *testing.F) {
	f.Add([]byte(`{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}` + "\n"))
	f.Add([]byte(`{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":{"input":"x"}}` + "\n\n" + `{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":{}}`))
	f.Add([]byte(`{"custom_id":"x","method":"POST","url":"/v1/completions","body":{"stream":true}}`))
	f.Add([]byte("\xff\n{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := batch.ParseInput(data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, l := range lines {
			var body map[string]any
			if l.CustomID == "" || seen[l.CustomID] || json.Unmarshal(l.Body, &body) != nil || body == nil {
				t.Fatalf("accepted a bad line: %+v", l)
			}
			if l.URL != "/v1/chat/completions" && l.URL != "/v1/embeddings" && l.URL != "/v1/completions" {
				t.Fatalf("accepted url %q", l.URL)
			}
			seen[l.CustomID] = true
		}
	})
}
