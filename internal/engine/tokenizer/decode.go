package tokenizer

import "unicode/utf8"

// DecodeOptions controls DecodeWith and NewDecoderWith.
type DecodeOptions struct {
	// Special renders control and unknown tokens as their text ("<s>",
	// "<|im_end|>") instead of as nothing.
	Special bool
	// Continuation says the ids continue text decoded earlier (typically:
	// generated tokens after a prompt), so the space SentencePiece put in
	// front of the first word is real and must be kept.
	Continuation bool
}

// Decode converts ids back to text. Control and unknown tokens (BOS, EOS,
// chat markers) render as nothing, as llama.cpp renders them by default, and
// ids out of range are skipped. For SentencePiece vocabularies with
// AddSpacePrefix, the leading space of the first text is dropped, since Encode
// put it there; so Decode(Encode(s)) == s for text without special tokens and
// without the "▁" character. Decode is exact: no clean-up of spaces before
// punctuation is done, so byte-level BPE round-trips any byte string.
func (t *Tokenizer) Decode(ids []int32) string {
	return t.DecodeWith(ids, DecodeOptions{})
}

// DecodeWith is Decode with options.
func (t *Tokenizer) DecodeWith(ids []int32, opts DecodeOptions) string {
	d := t.NewDecoderWith(opts)
	var out []byte
	for _, id := range ids {
		out = d.appendPiece(out, id)
	}
	return string(out)
}

// Decoder turns a stream of ids into text incrementally. The chunks it
// returns concatenate to exactly what Decode returns for the same ids, and a
// chunk never ends inside a UTF-8 sequence: bytes of a character spelled by
// several byte tokens are held back until it is complete. A Decoder is not
// safe for concurrent use.
type Decoder struct {
	t       *Tokenizer
	opts    DecodeOptions
	pending []byte // an incomplete UTF-8 sequence held back
	started bool   // some text has been produced
}

// NewDecoder returns a streaming decoder with Decode's behaviour. To stream
// tokens generated after a prompt, use NewDecoderWith with Continuation set.
func (t *Tokenizer) NewDecoder() *Decoder { return t.NewDecoderWith(DecodeOptions{}) }

// NewDecoderWith returns a streaming decoder with the given options.
func (t *Tokenizer) NewDecoderWith(opts DecodeOptions) *Decoder {
	return &Decoder{t: t, opts: opts, started: opts.Continuation}
}

// Add decodes one more id and returns the text that is now safe to emit,
// possibly "".
func (d *Decoder) Add(id int32) string {
	d.pending = d.appendPiece(d.pending, id)
	cut := completePrefix(d.pending)
	if cut == 0 {
		return ""
	}
	s := string(d.pending[:cut])
	d.pending = append(d.pending[:0], d.pending[cut:]...)
	return s
}

// Flush returns whatever is held back: an incomplete UTF-8 sequence, as the
// raw bytes it is. The decoder can be used further; later ids continue the
// same text.
func (d *Decoder) Flush() string {
	s := string(d.pending)
	d.pending = d.pending[:0]
	return s
}

// appendPiece appends what id renders to, applying the leading-space rule.
func (d *Decoder) appendPiece(dst []byte, id int32) []byte {
	t := d.t
	if !t.valid(id) || (t.hidden[id] && !d.opts.Special) {
		return dst
	}
	p := t.pieces[id]
	if len(p) == 0 {
		return dst
	}
	if !d.started {
		d.started = true
		if t.strip && p[0] == ' ' {
			p = p[1:]
		}
	}
	return append(dst, p...)
}

// completePrefix returns how much of b can be emitted without splitting a
// UTF-8 sequence: all of it, unless it ends with the valid beginning of a
// multi-byte character that later bytes may complete. Bytes that can never
// become valid UTF-8 are not held back.
func completePrefix(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax+1; i-- {
		if !utf8.RuneStart(b[i]) {
			continue
		}
		if !utf8.FullRune(b[i:]) {
			return i
		}
		break
	}
	return len(b)
}
