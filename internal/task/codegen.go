package task

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// Limits on what one task may ask for.
const (
	maxPromptBytes   = 1 << 20
	maxMessages      = 256
	maxMetadataBytes = 16 << 10
	maxLanguageLen   = 32
	maxIdemKeyLen    = 255
	maxCallbackLen   = 2048
)

// languageNotes adds what matters for a language to the instruction; languages not listed
// get the general instruction alone.
var languageNotes = map[string]string{
	"go":         "Use only the standard library unless the task names a package. Code must pass gofmt.",
	"python":     "Target Python 3.10 or later. Follow PEP 8 and add type hints.",
	"javascript": "Use modern ECMAScript (ES2020 or later) and const/let, never var.",
	"typescript": "Use strict TypeScript types; avoid any.",
	"rust":       "Use stable Rust and idiomatic error handling with Result.",
	"java":       "Target Java 17 or later.",
	"c":          "Use C11 and check every allocation and I/O call.",
	"cpp":        "Use C++17 or later and RAII; no raw new/delete.",
	"sql":        "Use standard SQL unless the task names a database.",
	"bash":       "Start with set -euo pipefail and quote every expansion.",
	"shell":      "Use POSIX sh unless the task needs bash, and quote every expansion.",
}

// languageAliases maps common names to the fence tag used in the instruction.
var languageAliases = map[string]string{
	"golang": "go", "py": "python", "python3": "python", "js": "javascript", "node": "javascript",
	"ts": "typescript", "rs": "rust", "c++": "cpp", "sh": "shell",
}

// normalizeLanguage lower-cases a language name and resolves aliases; ok is false for names
// that could not be a fence tag.
func normalizeLanguage(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if a, ok := languageAliases[s]; ok {
		s = a
	}
	if s == "" || len(s) > maxLanguageLen {
		return "", false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("+#-_.", r)) {
			return "", false
		}
	}
	return s, true
}

// codeMessages wraps a code task's prompt (or messages) in the language's instruction: a
// system message that asks for one fenced block tagged with the language.
func codeMessages(sp Spec) []Message {
	inst := fmt.Sprintf("You are an expert %s programmer. Answer with complete, working %s code in a single "+
		"fenced code block tagged %s (```%s), followed by at most a short explanation.", sp.Language, sp.Language, sp.Language, sp.Language)
	if note := languageNotes[sp.Language]; note != "" {
		inst += " " + note
	}
	msgs := []Message{{Role: "system", Content: inst}}
	if len(sp.Messages) > 0 {
		return append(msgs, sp.Messages...)
	}
	return append(msgs, Message{Role: "user", Content: sp.Prompt})
}

// ExtractCode returns the fenced code blocks of text in order: ``` or ~~~ fences, the tag after
// the opening fence as the language (fallback when there is none). An unclosed last block
// runs to the end of the text. When text has no fence at all, the whole trimmed text is one
// block in fallback, since small models often answer with bare code.
func ExtractCode(text, fallback string) []CodeBlock {
	var blocks []CodeBlock
	lines := strings.SplitAfter(text, "\n")
	var (
		in    bool
		fence string
		lang  string
		body  strings.Builder
	)
	for _, line := range lines {
		trimmed := strings.TrimSpace(line)
		if !in {
			for _, f := range []string{"```", "~~~"} {
				if strings.HasPrefix(trimmed, f) {
					in, fence = true, f
					tag := strings.TrimSpace(strings.TrimLeft(trimmed, f[:1]))
					if i := strings.IndexAny(tag, " \t{"); i >= 0 {
						tag = tag[:i]
					}
					lang = fallback
					if l, ok := normalizeLanguage(tag); ok {
						lang = l
					}
					body.Reset()
					break
				}
			}
			continue
		}
		if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "" {
			blocks = append(blocks, CodeBlock{Language: lang, Code: strings.TrimRight(body.String(), "\n")})
			in = false
			continue
		}
		body.WriteString(line)
	}
	if in && body.Len() > 0 {
		blocks = append(blocks, CodeBlock{Language: lang, Code: strings.TrimRight(body.String(), "\n")})
	}
	if blocks == nil {
		if t := strings.TrimSpace(text); t != "" && !strings.Contains(text, "```") {
			blocks = []CodeBlock{{Language: fallback, Code: t}}
		}
	}
	return blocks
}

// normalize checks a submission and fills its defaults; the error wraps errInvalid and names
// the field.
func (s *Service) normalize(sp Spec) (Spec, error) {
	bad := func(format string, args ...any) (Spec, error) {
		return Spec{}, fmt.Errorf("%w: %s", errInvalid, fmt.Sprintf(format, args...))
	}
	if sp.Model == "" {
		return bad("model is required")
	}
	if s.reg != nil {
		m, ok := s.reg.Lookup(sp.Model)
		if !ok {
			return bad("model %q does not exist", sp.Model)
		}
		sp.Model = m.Name // tasks queue under the public name, never an alias
	}
	switch sp.Kind {
	case KindCode:
		if (sp.Prompt == "") == (len(sp.Messages) == 0) {
			return bad("give either prompt or messages")
		}
		lang, ok := normalizeLanguage(sp.Language)
		if sp.Language == "" {
			lang, ok = "python", true
		}
		if !ok {
			return bad("language %q is not a language name", sp.Language)
		}
		sp.Language = lang
		sp.Input = nil
		if sp.RepairRounds != nil && (*sp.RepairRounds < 0 || *sp.RepairRounds > s.codeCfg.MaxRepairRounds) {
			return bad("repair_rounds must be between 0 and %d (the server's code_check.max_repair_rounds)", s.codeCfg.MaxRepairRounds)
		}
	case KindChat, KindEmbeddings:
		if sp.Check != nil || sp.RepairRounds != nil {
			return bad("check and repair_rounds are for code tasks")
		}
		if len(sp.Input) == 0 {
			return bad("input (the request body) is required for kind %s", sp.Kind)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(sp.Input, &obj); err != nil {
			return bad("input must be a JSON object: %v", err)
		}
		if sp.Kind == KindChat {
			if _, ok := obj["messages"]; !ok {
				return bad("input.messages is required for kind chat")
			}
		} else if _, ok := obj["input"]; !ok {
			return bad("input.input is required for kind embeddings")
		}
		if v, ok := obj["max_tokens"]; ok && sp.MaxTokens == 0 {
			_ = json.Unmarshal(v, &sp.MaxTokens)
		}
	default:
		return bad("kind must be code, chat or embeddings, got %q", sp.Kind)
	}
	size := len(sp.Prompt) + len(sp.Input)
	if len(sp.Messages) > maxMessages {
		return bad("at most %d messages", maxMessages)
	}
	for i, m := range sp.Messages {
		switch m.Role {
		case "system", "user", "assistant":
		default:
			return bad("messages[%d].role must be system, user or assistant", i)
		}
		size += len(m.Content)
	}
	if size > maxPromptBytes {
		return bad("the prompt is larger than %d bytes", maxPromptBytes)
	}
	if sp.MaxTokens < 0 {
		return bad("max_tokens must not be negative")
	}
	if sp.MaxTokens == 0 && sp.Kind != KindEmbeddings {
		sp.MaxTokens = s.cfg.DefaultMaxTokens
	}
	if sp.Temperature != nil && (*sp.Temperature < 0 || *sp.Temperature > 2) {
		return bad("temperature must be between 0 and 2")
	}
	if sp.Priority < -1000 || sp.Priority > 1000 {
		return bad("priority must be between -1000 and 1000")
	}
	if len(sp.Metadata) > maxMetadataBytes {
		return bad("metadata is larger than %d bytes", maxMetadataBytes)
	}
	if len(sp.Metadata) > 0 {
		var obj map[string]any
		if err := json.Unmarshal(sp.Metadata, &obj); err != nil {
			return bad("metadata must be a JSON object")
		}
	}
	if sp.CallbackURL != "" {
		if s.cfg.WebhookSecret == "" {
			return bad("callback_url needs tasks.webhook_secret in the server's configuration")
		}
		u, err := url.Parse(sp.CallbackURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || len(sp.CallbackURL) > maxCallbackLen {
			return bad("callback_url must be an absolute http or https URL without credentials")
		}
	}
	return sp, nil
}
