package plugin

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// Response is a whole answer that was not streamed, as response hooks see it.
type Response struct {
	// Model is the model that answered, as the answer names it.
	Model string
	// Choices holds the text of each choice.
	Choices []Choice
}

// Choice is one choice of an answer.
type Choice struct {
	Index int
	// Text is the assistant message's content (chat) or the completion's text.
	Text string
	// Finish is the finish reason.
	Finish string
}

// Chunk is the text one streamed chunk carries for one choice.
type Chunk struct {
	Index int
	// Text is the piece of text; a hook may change it.
	Text string
	// Finish is the choice's finish reason when this is its last chunk.
	Finish string
	// Drop, set by a hook, removes this choice's text from the chunk (the chunk itself is
	// left out when nothing else remains in it).
	Drop bool
	// End marks the extra call made after the stream's last chunk, once per choice seen.
	End bool
}

// textField is where an answer keeps its text: chat "message"/"delta" content, or a
// completion's "text".
func textKey(op string, stream bool) (outer, inner string) {
	switch {
	case op == "completion":
		return "", "text"
	case stream:
		return "delta", "content"
	default:
		return "message", "content"
	}
}

// docChoices decodes the choices of a chat completion or completion document (or stream
// chunk). It returns the top-level fields with choices split out, ready for encodeDoc.
type doc struct {
	top     map[string]json.RawMessage
	choices []map[string]json.RawMessage
}

func decodeDoc(b []byte) (*doc, bool) {
	var d doc
	if json.Unmarshal(b, &d.top) != nil {
		return nil, false
	}
	c, ok := d.top["choices"]
	if !ok || json.Unmarshal(c, &d.choices) != nil {
		return nil, false
	}
	return &d, true
}

// text returns choice i's index, text (and whether it has any) and finish reason.
func (d *doc) text(i int, outer, inner string) (idx int, text string, has bool, finish string) {
	c := d.choices[i]
	if v, ok := c["index"]; ok {
		_ = json.Unmarshal(v, &idx)
	} else {
		idx = i
	}
	if v, ok := c["finish_reason"]; ok {
		_ = json.Unmarshal(v, &finish)
	}
	holder := c
	if outer != "" {
		v, ok := c[outer]
		if !ok || json.Unmarshal(v, &holder) != nil {
			return idx, "", false, finish
		}
	}
	if v, ok := holder[inner]; ok && len(v) > 0 && v[0] == '"' {
		if json.Unmarshal(v, &text) == nil {
			has = true
		}
	}
	return idx, text, has, finish
}

// setText sets choice i's text; drop removes it.
func (d *doc) setText(i int, outer, inner, text string, drop bool) {
	c := d.choices[i]
	var enc bytes.Buffer
	writeString(&enc, text)
	if outer == "" {
		if drop {
			c[inner] = json.RawMessage(`""`)
		} else {
			c[inner] = enc.Bytes()
		}
		return
	}
	holder := map[string]json.RawMessage{}
	if v, ok := c[outer]; ok {
		_ = json.Unmarshal(v, &holder)
	}
	if drop {
		delete(holder, inner)
	} else {
		holder[inner] = enc.Bytes()
	}
	hb, _ := json.Marshal(holder)
	c[outer] = hb
}

func (d *doc) encode() []byte {
	cb, _ := json.Marshal(d.choices)
	d.top["choices"] = cb
	b, _ := json.Marshal(d.top)
	return b
}

// replyDoc is the answer a request hook gave, in the shape of op.
func replyDoc(op, model, text string) []byte {
	var b bytes.Buffer
	now := strconv.FormatInt(time.Now().Unix(), 10)
	if op == "completion" {
		b.WriteString(`{"id":"cmpl-plugin","object":"text_completion","created":` + now + `,"model":`)
		writeString(&b, model)
		b.WriteString(`,"choices":[{"index":0,"text":`)
		writeString(&b, text)
		b.WriteString(`,"finish_reason":"stop"}],"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}`)
		return b.Bytes()
	}
	b.WriteString(`{"id":"chatcmpl-plugin","object":"chat.completion","created":` + now + `,"model":`)
	writeString(&b, model)
	b.WriteString(`,"choices":[{"index":0,"message":{"role":"assistant","content":`)
	writeString(&b, text)
	b.WriteString(`},"finish_reason":"stop"}],"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}`)
	return b.Bytes()
}

// replyStream is the answer a request hook gave, as a stream of op's chunks.
func replyStream(op, model, text string, usage bool) []byte {
	var b bytes.Buffer
	now := strconv.FormatInt(time.Now().Unix(), 10)
	head := func() {
		if op == "completion" {
			b.WriteString(`data: {"id":"cmpl-plugin","object":"text_completion","created":` + now + `,"model":`)
		} else {
			b.WriteString(`data: {"id":"chatcmpl-plugin","object":"chat.completion.chunk","created":` + now + `,"model":`)
		}
		writeString(&b, model)
	}
	head()
	if op == "completion" {
		b.WriteString(`,"choices":[{"index":0,"text":`)
		writeString(&b, text)
		b.WriteString(`,"finish_reason":null}]}` + "\n\n")
		head()
		b.WriteString(`,"choices":[{"index":0,"text":"","finish_reason":"stop"}]}` + "\n\n")
	} else {
		b.WriteString(`,"choices":[{"index":0,"delta":{"role":"assistant","content":`)
		writeString(&b, text)
		b.WriteString(`},"finish_reason":null}]}` + "\n\n")
		head()
		b.WriteString(`,"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n")
	}
	if usage {
		head()
		b.WriteString(`,"choices":[],"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}` + "\n\n")
	}
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// flushChunk is an extra chunk carrying text a chunk hook released at the end of a stream.
func flushChunk(op string, index int, text string) []byte {
	var b bytes.Buffer
	if op == "completion" {
		b.WriteString(`data: {"object":"text_completion","choices":[{"index":` + strconv.Itoa(index) + `,"text":`)
		writeString(&b, text)
		b.WriteString(`,"finish_reason":null}]}` + "\n\n")
		return b.Bytes()
	}
	b.WriteString(`data: {"object":"chat.completion.chunk","choices":[{"index":` + strconv.Itoa(index) + `,"delta":{"content":`)
	writeString(&b, text)
	b.WriteString(`},"finish_reason":null}]}` + "\n\n")
	return b.Bytes()
}
