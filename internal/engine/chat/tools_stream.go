package chat

import (
	"encoding/json"
	"strings"
)

// ToolDelta is one piece of a streamed answer that may call tools: text content, the start
// of call Call (Name set), or more of call Call's arguments (Args).
type ToolDelta struct {
	Content string
	Call    int // the call's index (0, 1, …) when Name or Args is set
	Name    string
	Args    string
}

// ToolStream parses a model's output as it is generated, in the family's tool format, and
// turns it into deltas as soon as they are certain: text is passed on except for what might
// be the start of a call marker, a call is announced once its function name is complete, and
// its arguments follow fragment by fragment (without the JSON's insignificant whitespace).
// Once a call has started, text outside calls is dropped, as ParseToolCalls drops it.
type ToolStream struct {
	family Family
	names  []string

	mode    int             // streamText, streamCall, streamAfter, streamGLMName, streamDone
	held    strings.Builder // text not yet passed on (a possible marker, or the undecided start)
	raw     strings.Builder // everything seen in the current Llama-3.1 candidate call
	calls   int
	started bool // the current call has been announced
	sc      callScanner
	pending []ToolDelta // the calls the prefix began, given with the first deltas
}

const (
	streamText = iota
	streamCall
	streamAfter // after a ChatML call's JSON, before </tool_call>
	streamGLMName
	streamLlamaStart
)

// NewToolStream starts parsing an answer whose prompt ended with prefix (ToolCallPrefix),
// as if the model had written it; names are the defined functions. A call the prefix already
// begins (GLM-4's forced call names its function there) is announced with the first deltas
// Write or Close returns: the client never saw the prefix. Text of the prefix is not passed
// on as content; it is the template's, not the model's.
func (t Template) NewToolStream(prefix string, names []string) *ToolStream {
	s := &ToolStream{family: t.Family, names: names}
	switch t.Family {
	case GLM4:
		s.mode = streamGLMName
	case Llama31:
		s.mode = streamLlamaStart
	}
	for _, d := range s.Write(prefix) {
		if d.Name != "" || d.Args != "" {
			s.pending = append(s.pending, d)
		}
	}
	return s
}

// flush returns the deltas the prefix left pending, once.
func (s *ToolStream) flush() []ToolDelta {
	out := s.pending
	s.pending = nil
	return out
}

// Calls is how many calls have started.
func (s *ToolStream) Calls() int { return s.calls }

const (
	openMarker  = "<tool_call>"
	closeMarker = "</tool_call>"
)

// Write feeds more output and returns the deltas it completes.
func (s *ToolStream) Write(text string) []ToolDelta {
	out := s.flush()
	for text != "" {
		switch s.mode {
		case streamText:
			if s.family != ChatML {
				return s.content(out, text) // GLM-4 and Llama-3.1 answers that are not a call
			}
			s.held.WriteString(text)
			text = ""
			h := s.held.String()
			if i := strings.Index(h, openMarker); i >= 0 {
				if s.calls == 0 {
					out = s.content(out, strings.TrimRightFunc(h[:i], isSpace))
				}
				s.held.Reset()
				s.beginCall(streamCall)
				text = h[i+len(openMarker):]
				continue
			}
			// Keep back trailing space and what may be the start of the marker.
			keep := markerPrefixLen(h, openMarker)
			rest := h[:len(h)-keep]
			trimmed := strings.TrimRightFunc(rest, isSpace)
			if s.calls == 0 {
				out = s.content(out, trimmed)
			}
			s.held.Reset()
			s.held.WriteString(h[len(trimmed):])
		case streamCall:
			var n int
			out, n = s.scan(out, text)
			text = text[n:]
			if s.sc.state == scanEnd {
				out = s.endCall(out)
				switch s.family {
				case ChatML:
					s.mode = streamAfter
				default:
					s.mode = streamDone
				}
			}
		case streamAfter:
			s.held.WriteString(text)
			text = ""
			h := s.held.String()
			if i := strings.Index(h, closeMarker); i >= 0 {
				s.held.Reset()
				s.mode = streamText
				text = h[i+len(closeMarker):]
				continue
			}
			s.held.Reset()
			s.held.WriteString(h[len(h)-markerPrefixLen(h, closeMarker):])
		case streamGLMName:
			s.held.WriteString(text)
			text = ""
			h := strings.TrimLeft(s.held.String(), "\n")
			line, rest, ok := strings.Cut(h, "\n")
			if !ok {
				if !s.couldBeName(strings.TrimSpace(h)) {
					s.mode, text = streamText, s.held.String()
					s.held.Reset()
				}
				continue
			}
			name := strings.TrimSpace(line)
			if !s.isName(name) {
				s.mode, text = streamText, s.held.String()
				s.held.Reset()
				continue
			}
			s.held.Reset()
			s.beginCall(streamCall)
			s.sc.state, s.sc.key, s.sc.name = scanValue, "arguments", name // the arguments alone follow
			s.started = true
			out = append(out, ToolDelta{Call: s.calls, Name: name})
			s.calls++
			text = rest
		case streamLlamaStart:
			t := strings.TrimLeftFunc(text, isSpace)
			s.raw.WriteString(text[:len(text)-len(t)])
			text = t
			if text == "" {
				continue
			}
			if text[0] != '{' {
				s.mode, text = streamText, s.raw.String()+text
				s.raw.Reset()
				continue
			}
			s.beginCall(streamCall)
		case streamDone:
			if s.calls == 0 {
				out = s.content(out, text)
			}
			text = ""
		}
	}
	return out
}

// streamDone is the state after a GLM-4 or Llama-3.1 call, which are the whole answer.
const streamDone = 99

// Close ends the output and returns what was held back.
func (s *ToolStream) Close() []ToolDelta {
	out := s.flush()
	switch s.mode {
	case streamText, streamGLMName:
		if s.calls == 0 {
			out = s.content(out, s.held.String())
		}
	case streamLlamaStart:
		out = s.content(out, s.raw.String())
	case streamCall:
		if s.family == Llama31 && !s.started {
			out = s.content(out, s.raw.String())
		} else if s.started && s.sc.state == scanArgs {
			// An unfinished call (the answer ran out of tokens): what was sent stays.
			return out
		}
	}
	s.held.Reset()
	return out
}

func (s *ToolStream) content(out []ToolDelta, text string) []ToolDelta {
	if text == "" {
		return out
	}
	if n := len(out); n > 0 && out[n-1].Name == "" && out[n-1].Args == "" {
		out[n-1].Content += text
		return out
	}
	return append(out, ToolDelta{Content: text})
}

func (s *ToolStream) beginCall(mode int) {
	s.mode = mode
	s.started = false
	s.sc = callScanner{argsKey: "arguments"}
	if s.family == Llama31 {
		s.sc.argsKey = "parameters"
	}
}

// scan runs the call scanner over text, emitting the call's start and arguments; it
// returns how much of text it used.
func (s *ToolStream) scan(out []ToolDelta, text string) ([]ToolDelta, int) {
	var args strings.Builder
	n := 0
	for n < len(text) && s.sc.state != scanEnd {
		c := text[n]
		n++
		if s.family == Llama31 && !s.started {
			s.raw.WriteByte(c)
		}
		if b, ok := s.sc.step(c); ok {
			if s.started {
				args.WriteByte(b)
			} else {
				s.sc.pending.WriteByte(b)
			}
		}
		if !s.started && s.sc.name != "" && s.sc.state != scanBad {
			if s.family == Llama31 && !s.isName(s.sc.name) {
				s.sc.state = scanBad
			} else {
				s.started = true
				out = append(out, ToolDelta{Call: s.calls, Name: s.sc.name})
				s.calls++
				args.WriteString(s.sc.pending.String())
				s.sc.pending.Reset()
			}
		}
		if s.family == GLM4 && s.sc.state == scanComma {
			s.sc.state = scanEnd // GLM-4's arguments are the whole rest
		}
		if s.sc.state == scanBad {
			if s.family == Llama31 && !s.started {
				// Not a call after all: the answer is text.
				s.mode = streamText
				rest := s.raw.String() + text[n:]
				s.raw.Reset()
				return append(out, s.Write(rest)...), len(text)
			}
			s.sc.state = scanEnd
		}
	}
	if args.Len() > 0 {
		out = append(out, ToolDelta{Call: s.calls - 1, Args: args.String()})
	}
	return out, n
}

// endCall finishes the current call: a call without arguments gets {}.
func (s *ToolStream) endCall(out []ToolDelta) []ToolDelta {
	if s.started && !s.sc.sawArgs {
		out = append(out, ToolDelta{Call: s.calls - 1, Args: "{}"})
	}
	if !s.started && s.family == Llama31 {
		out = s.content(out, s.raw.String())
		s.raw.Reset()
	}
	return out
}

func (s *ToolStream) isName(n string) bool {
	for _, x := range s.names {
		if x == n {
			return true
		}
	}
	return false
}

func (s *ToolStream) couldBeName(p string) bool {
	for _, x := range s.names {
		if strings.HasPrefix(x, p) {
			return true
		}
	}
	return false
}

func isSpace(r rune) bool { return r == ' ' || r == '\n' || r == '\t' || r == '\r' }

// markerPrefixLen is the length of the longest end of h that begins marker.
func markerPrefixLen(h, marker string) int {
	for n := min(len(h), len(marker)-1); n > 0; n-- {
		if strings.HasSuffix(h, marker[:n]) {
			return n
		}
	}
	return 0
}

// callScanner reads a call's JSON object byte by byte: the function's name (key "name") and
// the arguments' value (argsKey), which it passes on without insignificant whitespace.
type callScanner struct {
	argsKey string
	state   int
	key     string
	keyBuf  []byte
	strBuf  []byte // the name's JSON string
	name    string
	sawArgs bool
	depth   int // nesting inside the arguments value
	inStr   bool
	esc     bool
	lit     bool            // inside a number, true, false or null at the value's top
	pending strings.Builder // arguments scanned before the name was known
}

const (
	scanStart = iota // before the object's {
	scanKeyOrEnd
	scanKey
	scanColon
	scanValue // before a value
	scanName  // inside the name's string
	scanArgs  // inside the arguments' value
	scanSkip  // inside another key's value
	scanComma // after a value
	scanEnd
	scanBad
)

// step takes one byte; it returns the byte when it is part of the arguments.
func (sc *callScanner) step(c byte) (byte, bool) {
	ws := c == ' ' || c == '\n' || c == '\t' || c == '\r'
	switch sc.state {
	case scanStart:
		if ws {
			return 0, false
		}
		if c != '{' {
			sc.state = scanBad
			return 0, false
		}
		sc.state = scanKeyOrEnd
	case scanKeyOrEnd:
		switch {
		case ws:
		case c == '"':
			sc.state, sc.keyBuf = scanKey, append(sc.keyBuf[:0], c)
		case c == '}':
			sc.state = scanEnd
		default:
			sc.state = scanBad
		}
	case scanKey:
		sc.keyBuf = append(sc.keyBuf, c)
		if sc.esc {
			sc.esc = false
		} else if c == '\\' {
			sc.esc = true
		} else if c == '"' {
			if json.Unmarshal(sc.keyBuf, &sc.key) != nil {
				sc.state = scanBad
			} else {
				sc.state = scanColon
			}
		}
	case scanColon:
		if ws {
			return 0, false
		}
		if c != ':' {
			sc.state = scanBad
			return 0, false
		}
		sc.state = scanValue
	case scanValue:
		if ws {
			return 0, false
		}
		sc.depth, sc.inStr, sc.esc, sc.lit = 0, false, false, false
		switch sc.key {
		case "name":
			if c != '"' {
				sc.state = scanBad
				return 0, false
			}
			sc.state, sc.strBuf = scanName, append(sc.strBuf[:0], c)
			return 0, false
		case sc.argsKey:
			sc.state, sc.sawArgs = scanArgs, true
		default:
			sc.state = scanSkip
		}
		return sc.value(c)
	case scanName:
		sc.strBuf = append(sc.strBuf, c)
		if sc.esc {
			sc.esc = false
		} else if c == '\\' {
			sc.esc = true
		} else if c == '"' {
			if json.Unmarshal(sc.strBuf, &sc.name) != nil || sc.name == "" {
				sc.state = scanBad
			} else {
				sc.state = scanComma
			}
		}
	case scanArgs, scanSkip:
		return sc.value(c)
	case scanComma:
		switch {
		case ws:
		case c == ',':
			sc.state = scanKeyOrEnd
		case c == '}':
			sc.state = scanEnd
		default:
			sc.state = scanBad
		}
	}
	return 0, false
}

// value takes one byte of a value (the arguments, passed on, or another key's, skipped).
// A scalar ends at the , or } after it, which is then handled as after a value.
func (sc *callScanner) value(c byte) (byte, bool) {
	pass := sc.state == scanArgs
	if sc.inStr {
		switch {
		case sc.esc:
			sc.esc = false
		case c == '\\':
			sc.esc = true
		case c == '"':
			sc.inStr = false
			if sc.depth == 0 {
				sc.state = scanComma
			}
		}
		return c, pass
	}
	switch c {
	case ' ', '\n', '\t', '\r':
		if sc.depth == 0 && sc.lit {
			sc.state = scanComma
		}
		return 0, false
	case '"':
		sc.inStr = true
	case '{', '[':
		sc.depth++
	case '}', ']':
		if sc.depth == 0 {
			// The end of the object after a scalar value.
			sc.state = scanComma
			sc.step(c)
			return 0, false
		}
		sc.depth--
		if sc.depth == 0 {
			sc.state = scanComma
		}
	case ',':
		if sc.depth == 0 {
			sc.state = scanComma
			sc.step(c)
			return 0, false
		}
	default:
		sc.lit = sc.depth == 0
	}
	return c, pass
}
