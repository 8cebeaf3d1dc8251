package mockllm

import (
	"encoding/json"
)

// kind is what a generation or embedding request asks for.
type kind uint8

const (
	kindChat kind = iota
	kindCompletion
	kindEmbedding
)

// input is one prompt (or one embedding input): a hash of its text or
// tokens and its token count.
type input struct {
	hash   uint64
	tokens int
}

// request is the part of a request body the mock acts on. Its byte slices
// alias the request body.
type request struct {
	model        []byte // raw JSON string contents, safe to echo unescaped
	stream       bool
	includeUsage bool
	maxTokens    int64 // 0 when absent
	n            int64 // choices per input; 1 when absent
	seed         uint64
	base64       bool
	dimensions   int64
	inputs       []input // one for chat; one per prompt or embedding input
}

// badRequest is a client error with OpenAI's "param".
type badRequest struct {
	msg, param string
}

func (e *badRequest) Error() string { return e.msg }

func bad(param, msg string) error { return &badRequest{msg: msg, param: param} }

// FNV-1a, used to fingerprint prompt text.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnv(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

// words counts maximal runs of non-space bytes.
func words(b []byte) int {
	n, in := 0, false
	for _, c := range b {
		sp := c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
		if !sp && !in {
			n++
		}
		in = !sp
	}
	return n
}

// parser decodes request bodies. It owns a scratch buffer for unescaping so
// that steady-state decoding does not allocate.
type parser struct {
	scratch []byte
}

// text fingerprints one JSON string value at the cursor into h and returns
// the new hash and its word count.
func (p *parser) text(s *scanner, h uint64) (uint64, int) {
	raw, esc := s.str()
	if esc {
		p.scratch = unescape(p.scratch[:0], raw)
		raw = p.scratch
	}
	return fnv(h, raw), words(raw)
}

// parse fills req from body. A syntax error, a field of the wrong type or a
// missing required field is a *badRequest.
func (p *parser) parse(k kind, body []byte, req *request) error {
	if !json.Valid(body) {
		return bad("", "We could not parse the JSON body of your request. The body must be valid JSON.")
	}
	s := scanner{b: body}
	if !s.enter('{') {
		return bad("", "The request body must be a JSON object.")
	}
	req.n = 1
	var haveModel, havePrompt bool
	for {
		key, ok := s.key()
		if !ok {
			break
		}
		var err error
		switch string(key) {
		case "model":
			if s.peek() != '"' {
				return bad("model", "model must be a string.")
			}
			req.model, _ = s.str()
			haveModel = true
		case "stream":
			if !s.isNull() {
				if req.stream, ok = s.boolean(); !ok {
					return bad("stream", "stream must be a boolean.")
				}
			}
		case "stream_options":
			err = p.streamOptions(&s, req)
		case "max_tokens", "max_completion_tokens":
			if !s.isNull() {
				v, ok := s.integer()
				if !ok || v < 0 {
					return bad(string(key), string(key)+" must be a non-negative integer.")
				}
				req.maxTokens = v
			}
		case "n":
			if !s.isNull() {
				v, ok := s.integer()
				if !ok || v < 1 || v > maxChoices {
					return bad("n", "n must be an integer between 1 and 128.")
				}
				req.n = v
			}
		case "seed":
			if !s.isNull() {
				v, ok := s.integer()
				if !ok {
					return bad("seed", "seed must be an integer.")
				}
				req.seed = uint64(v)
			}
		case "messages":
			if k != kindChat {
				s.skip()
				continue
			}
			err = p.messages(&s, req)
			havePrompt = true
		case "prompt":
			if k != kindCompletion {
				s.skip()
				continue
			}
			err = p.inputs(&s, req, "prompt")
			havePrompt = true
		case "input":
			if k != kindEmbedding {
				s.skip()
				continue
			}
			err = p.inputs(&s, req, "input")
			havePrompt = true
		case "encoding_format":
			if k != kindEmbedding || s.isNull() {
				s.skip()
				continue
			}
			if s.peek() != '"' {
				return bad("encoding_format", "encoding_format must be 'float' or 'base64'.")
			}
			switch raw, _ := s.str(); string(raw) {
			case "float":
			case "base64":
				req.base64 = true
			default:
				return bad("encoding_format", "encoding_format must be 'float' or 'base64'.")
			}
		case "dimensions":
			if k != kindEmbedding || s.isNull() {
				s.skip()
				continue
			}
			v, ok := s.integer()
			if !ok || v < 1 || v > maxDimensions {
				return bad("dimensions", "dimensions must be an integer between 1 and 65536.")
			}
			req.dimensions = v
		default:
			s.skip()
		}
		if err != nil {
			return err
		}
	}
	if !haveModel {
		return bad("model", "you must provide a model parameter.")
	}
	if !havePrompt {
		switch k {
		case kindChat:
			return bad("messages", "Missing required parameter: 'messages'.")
		case kindCompletion:
			return bad("prompt", "Missing required parameter: 'prompt'.")
		default:
			return bad("input", "Missing required parameter: 'input'.")
		}
	}
	if int64(len(req.inputs))*req.n > maxChoices && k != kindEmbedding {
		return bad("n", "Too many choices requested: prompts times n must be at most 128.")
	}
	return nil
}

func (p *parser) streamOptions(s *scanner, req *request) error {
	if s.isNull() {
		return nil
	}
	if !s.enter('{') {
		return bad("stream_options", "stream_options must be an object.")
	}
	for {
		key, ok := s.key()
		if !ok {
			return nil
		}
		if string(key) != "include_usage" || s.isNull() {
			s.skip()
			continue
		}
		if req.includeUsage, ok = s.boolean(); !ok {
			return bad("stream_options.include_usage", "stream_options.include_usage must be a boolean.")
		}
	}
}

// messages fingerprints a chat's messages: every role and every text (a
// string content or the "text" of content parts), in order, with separators
// so that moving text between messages changes the hash.
func (p *parser) messages(s *scanner, req *request) error {
	if !s.enter('[') {
		return bad("messages", "messages must be an array.")
	}
	h, count, tokens := uint64(fnvOffset), 0, 0
	for s.elem() {
		if !s.enter('{') {
			return bad("messages", "Each message must be an object.")
		}
		var role, content uint64 = fnvOffset, fnvOffset
		for {
			key, ok := s.key()
			if !ok {
				break
			}
			switch string(key) {
			case "role":
				if s.peek() != '"' {
					return bad("messages", "A message role must be a string.")
				}
				role, _ = p.text(s, role)
			case "content":
				n, err := p.content(s, &content)
				if err != nil {
					return err
				}
				tokens += n
			default:
				s.skip()
			}
		}
		h = (h ^ role) * fnvPrime
		h = (h ^ content) * fnvPrime
		count++
	}
	if count == 0 {
		return bad("messages", "messages must contain at least one message.")
	}
	req.inputs = append(req.inputs[:0], input{hash: h, tokens: tokens})
	return nil
}

// content reads a message content: a string, null, or an array of parts
// whose "text" fields count. Other parts (images, audio) are ignored.
func (p *parser) content(s *scanner, h *uint64) (int, error) {
	switch s.peek() {
	case '"':
		var n int
		*h, n = p.text(s, *h)
		return n, nil
	case 'n':
		s.isNull()
		return 0, nil
	case '[':
	default:
		return 0, bad("messages", "A message content must be a string or an array of parts.")
	}
	s.enter('[')
	total := 0
	for s.elem() {
		if !s.enter('{') {
			return 0, bad("messages", "A content part must be an object.")
		}
		for {
			key, ok := s.key()
			if !ok {
				break
			}
			if string(key) != "text" || s.peek() != '"' {
				s.skip()
				continue
			}
			var n int
			*h, n = p.text(s, *h)
			*h = (*h ^ '\n') * fnvPrime
			total += n
		}
	}
	return total, nil
}

// inputs reads a prompt or embedding input: a string, an array of strings,
// an array of token ids, or an array of such arrays. Each string or token
// array becomes one input.
func (p *parser) inputs(s *scanner, req *request, param string) error {
	req.inputs = req.inputs[:0]
	if s.peek() == '"' {
		h, n := p.text(s, fnvOffset)
		req.inputs = append(req.inputs, input{hash: h, tokens: n})
		return nil
	}
	if !s.enter('[') {
		return bad(param, param+" must be a string, an array of strings, or an array of token arrays.")
	}
	first := byte(0)
	for s.elem() {
		c := s.peek()
		if c == '-' || (c >= '0' && c <= '9') {
			c = '0'
		}
		if first == 0 {
			first = c
		}
		if c != first {
			return bad(param, param+" must not mix strings, tokens and token arrays.")
		}
		switch c {
		case '"':
			h, n := p.text(s, fnvOffset)
			req.inputs = append(req.inputs, input{hash: h, tokens: n})
		case '0':
			// A flat token array is one input; it is fingerprinted as it
			// goes, element by element.
			if len(req.inputs) == 0 {
				req.inputs = append(req.inputs, input{hash: fnvOffset})
			}
			if err := p.token(s, &req.inputs[0], param); err != nil {
				return err
			}
		case '[':
			s.enter('[')
			in := input{hash: fnvOffset}
			for s.elem() {
				if err := p.token(s, &in, param); err != nil {
					return err
				}
			}
			req.inputs = append(req.inputs, in)
		default:
			return bad(param, param+" must be a string, an array of strings, or an array of token arrays.")
		}
	}
	if len(req.inputs) == 0 {
		return bad(param, param+" must not be empty.")
	}
	return nil
}

func (p *parser) token(s *scanner, in *input, param string) error {
	v, ok := s.integer()
	if !ok || v < 0 {
		return bad(param, "Token ids must be non-negative integers.")
	}
	in.hash = (in.hash ^ uint64(v)) * fnvPrime
	in.hash = (in.hash ^ uint64(v>>32)) * fnvPrime
	in.tokens++
	return nil
}
