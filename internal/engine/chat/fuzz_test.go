package chat

import (
	"strings"
	"testing"
)

// FuzzDetectRender feeds arbitrary template sources and message text
// through Detect and Render: neither may panic, and rendered text must
// contain every message's content (trimmed, for the families that trim).
func FuzzDetectRender(f *testing.F) {
	for _, src := range []string{srcLlama2, srcQwen25, srcChatML, srcGLM4, srcGLM4NL, srcChatGLM3, srcLlama3, srcLlama31, ""} {
		f.Add(src, "You are brief.", "Hello <|im_end|> there")
	}
	f.Add("<|im_start|>system\\n<|im_end|>", "", "  ")
	f.Fuzz(func(t *testing.T, src, sys, user string) {
		tmpl := Detect(src)
		msgs := []Message{{"system", sys}, {"user", user}}
		out, err := tmpl.Render(msgs, true)
		if err != nil {
			t.Fatalf("%s: %v", tmpl.Name(), err)
		}
		for _, m := range msgs {
			if !strings.Contains(out, strings.TrimSpace(m.Content)) {
				t.Fatalf("%s: %q lacks %q", tmpl.Name(), out, m.Content)
			}
		}
		_ = tmpl.StopStrings()
	})
}
