package mockllm

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"math"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

// vocabulary holds the words the mock "generates"; its length is a power of
// two so that a word is the top bits of a PRNG draw. Each word is one token.
var vocabulary = [64]string{
	"once", "upon", "a", "time", "there", "was", "little", "girl",
	"named", "lily", "she", "loved", "to", "play", "outside", "in",
	"the", "park", "one", "day", "saw", "big", "red", "ball",
	"wanted", "with", "it", "but", "too", "high", "her", "mom",
	"said", "let", "us", "go", "home", "and", "happy", "sun",
	"sweet", "warm", "bird", "sang", "tree", "dog", "ran", "fast",
	"friend", "smiled", "found", "box", "blue", "small", "cat", "jumped",
	"over", "fence", "laughed", "together", "sky", "bright", "all", "end",
}

const golden = 0x9e3779b97f4a7c15

// mix is the SplitMix64 finalizer: a bijective scramble of x.
func mix(x uint64) uint64 {
	x += golden
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// next advances a SplitMix64 generator.
func next(state *uint64) uint64 {
	*state += golden
	z := *state
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// state is the per-request scratch, pooled so that a steady stream of
// requests does not allocate buffers.
type state struct {
	body   []byte
	out    []byte
	prefix []byte
	raw    []byte
	p      parser
	req    request
	rngs   []uint64
	vec    []float64
}

// put returns st to the pool unless one request made it unusually large.
func (s *Server) put(st *state) {
	const keep = 1 << 20
	if cap(st.body) > keep || cap(st.out) > keep || cap(st.raw) > keep || cap(st.p.scratch) > keep {
		return
	}
	st.req.model = nil
	s.pool.Put(st)
}

// usage is the token accounting of one answer.
type usage struct{ prompt, completion int }

func appendUsage(b []byte, u usage) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(u.prompt), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(u.completion), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(u.prompt+u.completion), 10)
	return append(b, '}')
}

// appendHead appends an answer's fields up to the opening bracket of its
// choices.
func appendHead(b []byte, k kind, chunk bool, id uint64, created int64, model []byte) []byte {
	b = append(b, `{"id":"`...)
	obj := "text_completion"
	if k == kindChat {
		b = append(b, "chatcmpl-"...)
		obj = "chat.completion"
		if chunk {
			obj = "chat.completion.chunk"
		}
	} else {
		b = append(b, "cmpl-"...)
	}
	b = appendHex(b, mix(id))
	b = append(b, `","object":"`...)
	b = append(b, obj...)
	b = append(b, `","created":`...)
	b = strconv.AppendInt(b, created, 10)
	b = append(b, `,"model":"`...)
	b = append(b, model...) // still in its escaped JSON form
	return append(b, `","choices":[`...)
}

func appendHex(b []byte, x uint64) []byte {
	const digits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, digits[x>>uint(shift)&15])
	}
	return b
}

// appendWord appends the next generated token: a word, preceded by a space
// unless it is the first.
func appendWord(b []byte, rng *uint64, first bool) []byte {
	if !first {
		b = append(b, ' ')
	}
	return append(b, vocabulary[next(rng)>>58]...)
}

// textSeed seeds the generator of one choice from the server seed, the
// prompt fingerprint, the request's "seed" and the choice's index.
func (s *Server) textSeed(prompt, reqSeed uint64, choice int64) uint64 {
	return mix(mix(s.seed^prompt) + reqSeed*golden + uint64(choice))
}

// generate answers a chat or completion request whose body is decoded.
func (s *Server) generate(w http.ResponseWriter, r *http.Request, st *state, k kind) {
	req := &st.req
	tokens, finish := s.opt.Tokens, "stop"
	if req.maxTokens > 0 && req.maxTokens < int64(tokens) {
		tokens, finish = int(req.maxTokens), "length"
	}
	st.rngs = st.rngs[:0]
	var u usage
	for _, in := range req.inputs {
		u.prompt += in.tokens
		for j := range req.n {
			st.rngs = append(st.rngs, s.textSeed(in.hash, req.seed, j))
		}
	}
	u.completion = tokens * len(st.rngs)
	id, created := s.seq.Add(1), time.Now().Unix()
	if req.stream {
		s.stream(w, r.Context(), st, k, id, created, tokens, finish, u)
		return
	}

	if d := s.opt.TTFT + time.Duration(tokens-1)*s.opt.ITL; d > 0 {
		var t *time.Timer
		if !wait(r.Context(), &t, d) {
			s.canceled.Add(1)
			return
		}
	}
	b := appendHead(st.out[:0], k, false, id, created, req.model)
	for c := range st.rngs {
		if c > 0 {
			b = append(b, ',')
		}
		if k == kindChat {
			b = append(b, `{"index":`...)
			b = strconv.AppendInt(b, int64(c), 10)
			b = append(b, `,"message":{"role":"assistant","content":"`...)
		} else {
			b = append(b, `{"text":"`...)
		}
		for i := range tokens {
			b = appendWord(b, &st.rngs[c], i == 0)
		}
		if k == kindChat {
			b = append(b, `","refusal":null},"logprobs":null,"finish_reason":"`...)
		} else {
			b = append(b, `","index":`...)
			b = strconv.AppendInt(b, int64(c), 10)
			b = append(b, `,"logprobs":null,"finish_reason":"`...)
		}
		b = append(b, finish...)
		b = append(b, `"}`...)
	}
	b = append(b, `],"usage":`...)
	b = appendUsage(b, u)
	b = append(b, "}\n"...)
	st.out = b
	w.Header()["Content-Type"] = hdrJSON
	s.writeStatus(w, http.StatusOK)
	w.Write(b)
}

// stream answers as server-sent events. Output is flushed before every
// delay, so the client always has every token generated so far, and
// consecutive tokens with no delay between them share a write.
func (s *Server) stream(w http.ResponseWriter, ctx context.Context, st *state, k kind, id uint64, created int64, tokens int, finish string, u usage) {
	h := w.Header()
	h["Content-Type"] = hdrSSE
	h["Cache-Control"] = hdrNoCache
	h["X-Accel-Buffering"] = hdrNo
	s.writeStatus(w, http.StatusOK)
	s.streamsStarted.Add(1)
	rc := http.NewResponseController(w)
	var t *time.Timer
	canceled := func() { s.streamsCanceled.Add(1) }

	st.prefix = appendHead(append(st.prefix[:0], "data: "...), k, true, id, created, st.req.model)

	for tok := range tokens {
		d := s.opt.ITL
		if tok == 0 {
			d = s.opt.TTFT
		}
		if d > 0 {
			if err := rc.Flush(); err != nil {
				canceled()
				return
			}
		}
		if !wait(ctx, &t, d) {
			canceled()
			return
		}
		b := st.out[:0]
		last := tok == tokens-1
		for c := range st.rngs {
			b = append(b, st.prefix...)
			if k == kindChat {
				b = append(b, `{"index":`...)
				b = strconv.AppendInt(b, int64(c), 10)
				if tok == 0 {
					b = append(b, `,"delta":{"role":"assistant","content":"`...)
				} else {
					b = append(b, `,"delta":{"content":"`...)
				}
				b = appendWord(b, &st.rngs[c], tok == 0)
				b = append(b, `"},"logprobs":null,"finish_reason":`...)
			} else {
				b = append(b, `{"text":"`...)
				b = appendWord(b, &st.rngs[c], tok == 0)
				b = append(b, `","index":`...)
				b = strconv.AppendInt(b, int64(c), 10)
				b = append(b, `,"logprobs":null,"finish_reason":`...)
			}
			if last {
				b = append(b, '"')
				b = append(b, finish...)
				b = append(b, '"')
			} else {
				b = append(b, "null"...)
			}
			b = append(b, "}]}\n\n"...)
		}
		st.out = b
		if _, err := w.Write(b); err != nil {
			canceled()
			return
		}
	}
	b := st.out[:0]
	if st.req.includeUsage {
		b = append(b, st.prefix...)
		b = append(b, `],"usage":`...)
		b = appendUsage(b, u)
		b = append(b, "}\n\n"...)
	}
	b = append(b, "data: [DONE]\n\n"...)
	st.out = b
	if _, err := w.Write(b); err != nil {
		canceled()
		return
	}
	if err := rc.Flush(); err != nil && ctx.Err() != nil {
		canceled()
		return
	}
	s.streamsCompleted.Add(1)
	if t != nil {
		t.Stop()
	}
}

// embed answers an embeddings request whose body is decoded.
func (s *Server) embed(w http.ResponseWriter, st *state) {
	req := &st.req
	dim := s.opt.EmbeddingDim
	if req.dimensions > 0 {
		dim = int(req.dimensions)
	}
	if cap(st.vec) < dim {
		st.vec = make([]float64, dim)
	}
	vec := st.vec[:dim]
	var prompt int
	b := append(st.out[:0], `{"object":"list","data":[`...)
	for i, in := range req.inputs {
		prompt += in.tokens
		// A vector depends only on the server seed and the input, so the
		// same text embeds the same way in any batch and at any position.
		rng := mix(s.seed ^ in.hash ^ 0x656d626564)
		var norm float64
		for j := range vec {
			v := float64(int64(next(&rng))) / (1 << 63)
			vec[j] = v
			norm += v * v
		}
		norm = math.Sqrt(norm)
		if norm == 0 {
			norm, vec[0] = 1, 1
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"object":"embedding","index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"embedding":`...)
		if req.base64 {
			raw := st.raw[:0]
			for _, v := range vec {
				raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(float32(v/norm)))
			}
			st.raw = raw
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, raw)
			b = append(b, '"')
		} else {
			b = append(b, '[')
			for j, v := range vec {
				if j > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendFloat(b, float64(float32(v/norm)), 'g', -1, 32)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	b = append(b, `],"model":"`...)
	b = append(b, req.model...)
	b = append(b, `","usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt), 10)
	b = append(b, "}}\n"...)
	st.out = b
	w.Header()["Content-Type"] = hdrJSON
	s.writeStatus(w, http.StatusOK)
	w.Write(b)
}

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as with encoding/json.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// appendNullable appends s as a JSON string, or null when it is empty.
func appendNullable(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}
