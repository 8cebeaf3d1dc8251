package mockllm

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestFixturesInSequenceByMarker(t *testing.T) {
	fx, err := ParseFixtures([]byte("fixtures:\n  - marker: M1\n    answers: [\"first\", \"second answer\"]\n  - marker: \"\"\n    answers: [fallback]\n    finish_reason: length\n"))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(WithFixtures(New(Options{}), fx))
	defer ts.Close()
	ask := func(content string, stream bool) (string, string) {
		body, _ := json.Marshal(map[string]any{"model": "m", "stream": stream, "messages": []any{map[string]string{"role": "user", "content": content}}})
		resp, err := http.Post(ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if !stream {
			var cr struct {
				Choices []struct {
					Message      struct{ Content string } `json:"message"`
					FinishReason string                   `json:"finish_reason"`
				} `json:"choices"`
			}
			if err := json.Unmarshal(raw, &cr); err != nil || len(cr.Choices) != 1 {
				t.Fatalf("%s: %v", raw, err)
			}
			return cr.Choices[0].Message.Content, cr.Choices[0].FinishReason
		}
		var text, finish string
		for _, line := range strings.Split(string(raw), "\n") {
			p, ok := strings.CutPrefix(line, "data: ")
			if !ok || p == "[DONE]" {
				continue
			}
			var ch struct {
				Choices []struct {
					Delta        struct{ Content string } `json:"delta"`
					FinishReason *string                  `json:"finish_reason"`
				} `json:"choices"`
			}
			if err := json.Unmarshal([]byte(p), &ch); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			for _, c := range ch.Choices {
				text += c.Delta.Content
				if c.FinishReason != nil {
					finish = *c.FinishReason
				}
			}
		}
		if !strings.HasSuffix(string(raw), "data: [DONE]\n\n") {
			t.Errorf("stream does not end with [DONE]: %q", raw)
		}
		return text, finish
	}
	if got, fin := ask("x M1 y", true); got != "first" || fin != "stop" {
		t.Errorf("1st: %q %q", got, fin)
	}
	if got, _ := ask("M1", false); got != "second answer" {
		t.Errorf("2nd: %q", got)
	}
	if got, _ := ask("M1", true); got != "second answer" {
		t.Errorf("the last answer repeats: %q", got)
	}
	if got, fin := ask("other", true); got != "fallback" || fin != "length" {
		t.Errorf("fallback: %q %q", got, fin)
	}
	// Other routes reach the mock.
	resp, err := http.Get(ts.URL + "/v1/models")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("models: %v %v", err, resp)
	}
	resp.Body.Close()
}

func TestParseFixturesErrors(t *testing.T) {
	for _, bad := range []string{"", "fixtures: []\n", "fixtures:\n  - marker: a\n", "fixtures:\n  - marker: a\n    answers: [x]\n    extra: 1\n", "[1, 2"} {
		if _, err := ParseFixtures([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseFixtures(f *testing.F) {
	f.Add("fixtures:\n  - marker: M\n    answers: [a, b]\n")
	f.Add("{\"fixtures\":[{\"marker\":\"\",\"answers\":[\"x\"],\"finish_reason\":\"length\"}]}")
	f.Add("fixtures: [")
	f.Fuzz(func(t *testing.T, s string) {
		fx, err := ParseFixtures([]byte(s))
		if err != nil {
			return
		}
		for _, x := range fx.Fixtures {
			if len(x.Answers) == 0 {
				t.Fatal("a fixture without answers was accepted")
			}
		}
	})
}
