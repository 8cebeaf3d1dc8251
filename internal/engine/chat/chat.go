package chat

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Message is one turn of a conversation. Role is usually "system", "user"
// or "assistant"; families that have more roles (GLM's "observation",
// ChatML's "tool") accept them as written.
type Message struct {
	Role    string
	Content string
}

// Family names a template family.
type Family string

// The supported families; see the package documentation for the text each
// produces.
const (
	Plain    Family = "plain"
	Llama2   Family = "llama2"
	ChatML   Family = "chatml"
	GLM4     Family = "glm4"
	ChatGLM3 Family = "chatglm3"
	Llama3   Family = "llama3"
	Llama31  Family = "llama3.1"
)

// Template renders conversations for one family. The zero value is Plain.
type Template struct {
	Family Family
	// DefaultSystem is inserted as the system message when a conversation
	// has none (ChatML only; Qwen's templates carry one). For llama3.1 it
	// is not used: that family always writes its dated system block.
	DefaultSystem string
	// GenNewline makes the GLM-4 generation prompt "<|assistant|>\n"
	// instead of "<|assistant|>", as some GLM-4 templates write it.
	GenNewline bool
}

var families = map[string]Family{
	"plain": Plain, "llama2": Llama2, "chatml": ChatML, "glm4": GLM4,
	"chatglm3": ChatGLM3, "llama3": Llama3, "llama3.1": Llama31,
}

// ByName returns the template family called name (case-insensitive), for a
// configuration override: "plain", "llama2", "chatml", "glm4", "chatglm3",
// "llama3" or "llama3.1". "chatglm4" and "qwen" are accepted as aliases of
// "glm4" and "chatml".
func ByName(name string) (Template, bool) {
	n := strings.ToLower(strings.TrimSpace(name))
	switch n {
	case "chatglm4":
		n = "glm4"
	case "qwen":
		n = "chatml"
	}
	f, ok := families[n]
	return Template{Family: f}, ok
}

// Name returns the family name, as accepted by ByName.
func (t Template) Name() string {
	if t.Family == "" {
		return string(Plain)
	}
	return string(t.Family)
}

var (
	// chatmlDefaultSystem finds a literal default system prompt in a ChatML
	// template: "<|im_start|>system\n" followed by plain text (no quote or
	// Jinja delimiter, so an expression such as "+ messages[0]['content']"
	// does not match) up to "<|im_end|>". Jinja sources write the newline
	// either escaped ("\n" as two characters) or raw.
	chatmlDefaultSystem = regexp.MustCompile(`<\|im_start\|>system(?:\\n|\n)([^'"{}<]*)<\|im_end\|>`)
	// glmGenNewline finds a generation prompt written as
	// "<|assistant|>\n" right before the closing endif.
	glmGenNewline = regexp.MustCompile(`<\|assistant\|>(?:\\n|\n)['"]?\s*(?:\}\}\s*)?\{%-?\s*endif`)
)

// Detect picks the family of a GGUF tokenizer.chat_template (Jinja source)
// from distinctive markers, falling back to Plain for an empty or unknown
// template. The checks run from the most to the least specific marker:
// "<|start_header_id|>" (Llama-3; with "Cutting Knowledge Date", 3.1),
// "<|im_start|>" (ChatML), "[gMASK]sop" (ChatGLM3), "[gMASK]<sop>" or
// "<|user|>" together with "<|assistant|>" (GLM-4), then "[INST]"
// (Llama-2).
func Detect(tmpl string) Template {
	switch {
	case strings.Contains(tmpl, "<|start_header_id|>"):
		if strings.Contains(tmpl, "Cutting Knowledge Date") {
			return Template{Family: Llama31}
		}
		return Template{Family: Llama3}
	case strings.Contains(tmpl, "<|im_start|>"):
		t := Template{Family: ChatML}
		if m := chatmlDefaultSystem.FindStringSubmatch(tmpl); m != nil {
			t.DefaultSystem = m[1]
		}
		return t
	case strings.Contains(tmpl, "[gMASK]sop"):
		return Template{Family: ChatGLM3}
	case strings.Contains(tmpl, "[gMASK]<sop>"),
		strings.Contains(tmpl, "<|user|>") && strings.Contains(tmpl, "<|assistant|>"):
		return Template{Family: GLM4, GenNewline: glmGenNewline.MatchString(tmpl)}
	case strings.Contains(tmpl, "[INST]"):
		return Template{Family: Llama2}
	}
	return Template{Family: Plain}
}

// ErrAlternation is returned (wrapped) by Llama-2 rendering when the turns
// after the optional system message do not alternate user/assistant, the
// condition under which the reference template raises an exception.
var ErrAlternation = errors.New("chat: conversation roles must alternate user/assistant")

// Render returns the prompt text for msgs. With addGenerationPrompt the
// text ends with the family's assistant prefix so that the model writes
// the assistant's reply next (Llama-2 has none: its user turn already ends
// the prompt). The result never starts with the BOS token text; see the
// package documentation.
func (t Template) Render(msgs []Message, addGenerationPrompt bool) (string, error) {
	var b strings.Builder
	switch t.Family {
	case Llama2:
		if err := renderLlama2(&b, msgs); err != nil {
			return "", err
		}
	case ChatML:
		if t.DefaultSystem != "" && (len(msgs) == 0 || msgs[0].Role != "system") {
			writeChatML(&b, "system", t.DefaultSystem)
		}
		for _, m := range msgs {
			writeChatML(&b, m.Role, m.Content)
		}
		if addGenerationPrompt {
			b.WriteString("<|im_start|>assistant\n")
		}
	case GLM4:
		b.WriteString("[gMASK]<sop>")
		for _, m := range msgs {
			b.WriteString("<|" + m.Role + "|>\n" + m.Content)
		}
		if addGenerationPrompt {
			b.WriteString("<|assistant|>")
			if t.GenNewline {
				b.WriteByte('\n')
			}
		}
	case ChatGLM3:
		b.WriteString("[gMASK]sop")
		for _, m := range msgs {
			b.WriteString("<|" + m.Role + "|>\n " + m.Content)
		}
		if addGenerationPrompt {
			b.WriteString("<|assistant|>")
		}
	case Llama3, Llama31:
		rest := msgs
		if t.Family == Llama31 {
			// The 3.1 reference template always opens with a system
			// block carrying its knowledge and date lines, followed by
			// the caller's system message, if any.
			sys := ""
			if len(rest) > 0 && rest[0].Role == "system" {
				sys = strings.TrimSpace(rest[0].Content)
				rest = rest[1:]
			}
			b.WriteString("<|start_header_id|>system<|end_header_id|>\n\n" +
				"Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" +
				sys + "<|eot_id|>")
		}
		for _, m := range rest {
			b.WriteString("<|start_header_id|>" + m.Role + "<|end_header_id|>\n\n" +
				strings.TrimSpace(m.Content) + "<|eot_id|>")
		}
		if addGenerationPrompt {
			b.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
		}
	case Plain, "":
		if len(msgs) == 1 && msgs[0].Role == "user" {
			return msgs[0].Content, nil
		}
		for _, m := range msgs {
			b.WriteString(title(m.Role) + ": " + m.Content + "\n")
		}
		if addGenerationPrompt {
			b.WriteString("Assistant:")
		}
	default:
		return "", fmt.Errorf("chat: unknown template family %q", t.Family)
	}
	return b.String(), nil
}

func writeChatML(b *strings.Builder, role, content string) {
	b.WriteString("<|im_start|>" + role + "\n" + content + "<|im_end|>\n")
}

// renderLlama2 follows the Llama-2-chat reference template, minus the
// leading "<s>".
func renderLlama2(b *strings.Builder, msgs []Message) error {
	sys, hasSys := "", false
	if len(msgs) > 0 && msgs[0].Role == "system" {
		sys, hasSys = msgs[0].Content, true
		msgs = msgs[1:]
	}
	for i, m := range msgs {
		wantUser := i%2 == 0
		if (m.Role == "user") != wantUser || (!wantUser && m.Role != "assistant") {
			return fmt.Errorf("%w: message %d has role %q", ErrAlternation, i, m.Role)
		}
		content := m.Content
		if i == 0 && hasSys {
			content = "<<SYS>>\n" + sys + "\n<</SYS>>\n\n" + content
		}
		if m.Role == "user" {
			if i > 0 {
				b.WriteString("<s>")
			}
			b.WriteString("[INST] " + strings.TrimSpace(content) + " [/INST]")
		} else {
			b.WriteString(" " + strings.TrimSpace(content) + " </s>")
		}
	}
	return nil
}

// title upper-cases the first letter of a role name.
func title(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

// StopStrings returns text that ends the assistant's reply in this family:
// the end-of-turn marker and the markers that would start a new turn. The
// engine also stops on the end-of-generation token ids; these strings
// matter for backends that only see text, and for models that write the
// marker as ordinary text.
func (t Template) StopStrings() []string {
	switch t.Family {
	case Llama2:
		return []string{"</s>", "[INST]"}
	case ChatML:
		return []string{"<|im_end|>", "<|im_start|>", "<|endoftext|>"}
	case GLM4, ChatGLM3:
		return []string{"<|user|>", "<|observation|>", "<|system|>", "<|endoftext|>"}
	case Llama3, Llama31:
		return []string{"<|eot_id|>", "<|end_of_text|>", "<|eom_id|>", "<|start_header_id|>"}
	}
	return []string{"\nUser:"}
}
