package tokenizer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Token types, as stored in the GGUF key tokenizer.ggml.token_type.
const (
	TypeUndefined   int32 = 0
	TypeNormal      int32 = 1
	TypeUnknown     int32 = 2
	TypeControl     int32 = 3 // BOS, EOS, chat markers: hidden when decoding, matched only with ParseSpecial
	TypeUserDefined int32 = 4 // added tokens: always matched in the input, decoded as their text
	TypeUnused      int32 = 5
	TypeByte        int32 = 6 // SentencePiece byte fallback, spelled <0xNN>
)

// Vocab is everything a Tokenizer is built from: the tokenizer.ggml.* metadata
// of a GGUF file, with defaults already applied (FromGGUF does that).
type Vocab struct {
	// Model is the algorithm: "llama" (SentencePiece) or "gpt2" (byte-level BPE).
	Model string
	// Pre names the BPE pre-tokenizer: "default" (or empty), "gpt-2",
	// "llama3"/"llama-bpe", "qwen2", "chatglm-bpe", "glm4" and a few aliases.
	// It is ignored for SentencePiece.
	Pre string
	// Tokens are the token texts by id. Scores (SentencePiece merge priority)
	// and Types may be nil, meaning all zero and all TypeNormal.
	Tokens []string
	Scores []float32
	Types  []int32
	// Merges are BPE merge rules "left right", highest priority first.
	Merges []string
	// Special ids; -1 when absent.
	BOS, EOS, UNK, PAD, EOT int32
	// AddBOS and AddEOS say what EncodeOptions.AddSpecial adds. AddSpacePrefix
	// prepends a space to each run of text before SentencePiece encoding and
	// strips it again when decoding.
	AddBOS, AddEOS, AddSpacePrefix bool
	// IgnoreMerges emits a pre-tokenized BPE word that is itself a token as
	// that token without merging (Llama 3's tokenizer does this).
	IgnoreMerges bool
	// EOG lists extra ids that end a generation besides EOS and EOT (for
	// example an end-of-message token). New adds tokens recognised by text.
	EOG []int32
}

// Tokenizer converts between text and token ids. It is immutable once built
// and safe for concurrent use.
type Tokenizer struct {
	v      Vocab
	bpe    bool
	split  preTokenizer // BPE only
	ids    map[string]int32
	pieces [][]byte // what each token decodes to
	hidden []bool   // control and unknown tokens, rendered only on request
	strip  bool     // strip the space SentencePiece prefixes, when decoding

	spmWords bool // SentencePiece: merges never cross a word start

	byteTok [256]int32 // the token for each raw byte, or -1
	merges  map[uint64]merge
	special [256][]int32 // matchable token ids by first byte, longest first
	eog     map[int32]struct{}

	scratch sync.Pool // *encodeState
}

// merge is the outcome of one BPE merge rule for a pair of token ids.
type merge struct {
	rank int32
	id   int32
}

func pairKey(left, right int32) uint64 { return uint64(uint32(left))<<32 | uint64(uint32(right)) }

// eogTexts are token texts that end a generation whatever the metadata says,
// as llama.cpp recognises them.
var eogTexts = []string{
	"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
	"<|eom_id|>", "<EOT>", "<|end_of_text|>",
}

// glmEOGTexts end a generation for GLM-4 chat models: the model closes its
// turn by starting the next speaker's.
var glmEOGTexts = []string{"<|user|>", "<|observation|>"}

// New validates v and builds a Tokenizer. The Vocab's slices are retained, not
// copied; do not modify them afterwards.
func New(v Vocab) (*Tokenizer, error) {
	n := len(v.Tokens)
	if n == 0 {
		return nil, errors.New("tokenizer: empty vocabulary")
	}
	if n > 1<<31-1 {
		return nil, fmt.Errorf("tokenizer: vocabulary of %d tokens is too large", n)
	}
	if v.Scores != nil && len(v.Scores) != n {
		return nil, fmt.Errorf("tokenizer: %d scores for %d tokens", len(v.Scores), n)
	}
	if v.Types != nil && len(v.Types) != n {
		return nil, fmt.Errorf("tokenizer: %d token types for %d tokens", len(v.Types), n)
	}
	for _, s := range []struct {
		name string
		id   int32
	}{{"BOS", v.BOS}, {"EOS", v.EOS}, {"UNK", v.UNK}, {"PAD", v.PAD}, {"EOT", v.EOT}} {
		if s.id < -1 || int(s.id) >= n {
			return nil, fmt.Errorf("tokenizer: %s id %d out of range [0, %d)", s.name, s.id, n)
		}
	}
	for _, id := range v.EOG {
		if id < 0 || int(id) >= n {
			return nil, fmt.Errorf("tokenizer: end-of-generation id %d out of range [0, %d)", id, n)
		}
	}
	if v.AddBOS && v.BOS < 0 {
		return nil, errors.New("tokenizer: AddBOS is set but there is no BOS token")
	}
	if v.AddEOS && v.EOS < 0 {
		return nil, errors.New("tokenizer: AddEOS is set but there is no EOS token")
	}

	t := &Tokenizer{v: v, ids: make(map[string]int32, n)}
	switch v.Model {
	case "llama":
	case "gpt2":
		t.bpe = true
		split, ok := preTokenizers[v.Pre]
		if !ok {
			return nil, fmt.Errorf("tokenizer: unknown BPE pre-tokenizer %q (supported: %s)", v.Pre, strings.Join(PreTokenizers(), ", "))
		}
		t.split = split
	default:
		return nil, fmt.Errorf("tokenizer: unsupported tokenizer model %q (supported: llama, gpt2)", v.Model)
	}

	if slices.Contains(v.Tokens, "") {
		// An empty text would match everywhere; llama.cpp renames it too.
		// Copy first: the caller's slice is not ours to change.
		v.Tokens = slices.Clone(v.Tokens)
		for i, s := range v.Tokens {
			if s == "" {
				v.Tokens[i] = fmt.Sprintf("[EMPTY_%d]", i)
			}
		}
		t.v.Tokens = v.Tokens
	}
	for i, s := range v.Tokens {
		if _, dup := t.ids[s]; !dup { // the lowest id wins
			t.ids[s] = int32(i)
		}
	}

	t.buildPieces()
	t.buildByteTokens()
	t.spmWords = !t.bpe && !spanWordStart(v.Tokens)
	if t.bpe {
		if err := t.buildMerges(); err != nil {
			return nil, err
		}
	}
	t.buildSpecial()
	t.buildEOG()
	t.scratch.New = func() any { return new(encodeState) }
	return t, nil
}

func (t *Tokenizer) typ(id int32) int32 {
	if t.v.Types == nil {
		return TypeNormal
	}
	return t.v.Types[id]
}

// buildPieces precomputes the bytes each token decodes to, as llama.cpp's
// token_to_piece does: normal tokens are unescaped (▁ → space for
// SentencePiece, byte-level characters → bytes for BPE), byte tokens become
// their byte, user-defined, control and unknown tokens are their text (the
// last two hidden unless asked for), and unused or undefined tokens are empty.
func (t *Tokenizer) buildPieces() {
	n := len(t.v.Tokens)
	t.pieces = make([][]byte, n)
	t.hidden = make([]bool, n)
	var bl *byteLevel
	if t.bpe {
		bl = byteLevelChars
	}
	t.strip = !t.bpe && t.v.AddSpacePrefix
	for i, s := range t.v.Tokens {
		id := int32(i)
		switch t.typ(id) {
		case TypeNormal:
			if t.bpe {
				t.pieces[i] = bl.decode(nil, s)
			} else {
				t.pieces[i] = []byte(strings.ReplaceAll(s, "▁", " "))
			}
		case TypeByte:
			if b, ok := parseByteToken(s); ok && !t.bpe {
				t.pieces[i] = []byte{b}
			}
		case TypeUserDefined:
			t.pieces[i] = []byte(s)
		case TypeControl, TypeUnknown:
			t.pieces[i] = []byte(s)
			t.hidden[i] = true
		}
	}
}

// parseByteToken reads a SentencePiece byte token "<0xNN>".
func parseByteToken(s string) (byte, bool) {
	if len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return 0, false
	}
	hi, ok1 := unhex(s[3])
	lo, ok2 := unhex(s[4])
	return hi<<4 | lo, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// buildByteTokens finds the token standing for each raw byte: "<0xNN>" (or, as
// llama.cpp falls back to, the byte itself) for SentencePiece, and the GPT-2
// byte-level character for BPE.
func (t *Tokenizer) buildByteTokens() {
	var bl *byteLevel
	if t.bpe {
		bl = byteLevelChars
	}
	for b := range 256 {
		t.byteTok[b] = -1
		var keys []string
		if t.bpe {
			keys = []string{bl.char[b]}
		} else {
			keys = []string{fmt.Sprintf("<0x%02X>", b), string([]byte{byte(b)})}
		}
		for _, k := range keys {
			if id, ok := t.ids[k]; ok {
				t.byteTok[b] = id
				break
			}
		}
	}
}

// buildMerges turns the "left right" rules into a table keyed by the pair of
// token ids. A rule whose parts or result are not tokens can never produce a
// token, so it is left out.
func (t *Tokenizer) buildMerges() error {
	t.merges = make(map[uint64]merge, len(t.v.Merges))
	for rank, m := range t.v.Merges {
		sp := -1
		if len(m) > 1 {
			sp = strings.IndexByte(m[1:], ' ') + 1 // the left part is never empty
		}
		if sp <= 0 || sp == len(m)-1 {
			return fmt.Errorf("tokenizer: merge %d (%q) is not of the form \"left right\"", rank, m)
		}
		l, lok := t.ids[m[:sp]]
		r, rok := t.ids[m[sp+1:]]
		res, resok := t.ids[m[:sp]+m[sp+1:]]
		if !lok || !rok || !resok {
			continue
		}
		k := pairKey(l, r)
		if _, seen := t.merges[k]; !seen {
			t.merges[k] = merge{rank: int32(rank), id: res}
		}
	}
	return nil
}

// buildSpecial indexes the tokens that are cut out of the input before the
// algorithm sees it: user-defined tokens always, control and unknown tokens
// with EncodeOptions.ParseSpecial. Longer texts come first so that the longest
// match at a position wins.
func (t *Tokenizer) buildSpecial() {
	for i, s := range t.v.Tokens {
		switch t.typ(int32(i)) {
		case TypeControl, TypeUnknown, TypeUserDefined:
			t.special[s[0]] = append(t.special[s[0]], int32(i))
		}
	}
	for b := range t.special {
		slices.SortStableFunc(t.special[b], func(x, y int32) int {
			return len(t.v.Tokens[y]) - len(t.v.Tokens[x])
		})
	}
}

func (t *Tokenizer) buildEOG() {
	t.eog = make(map[int32]struct{})
	for _, id := range endOfGeneration(t.v, t.Lookup) {
		t.eog[id] = struct{}{}
	}
}

// endOfGeneration lists the ids that end a generation: EOS, EOT, Vocab.EOG,
// and the tokens named by eogTexts (and glmEOGTexts for GLM-4 vocabularies).
func endOfGeneration(v Vocab, lookup func(string) (int32, bool)) []int32 {
	ids := slices.Clone(v.EOG)
	for _, id := range []int32{v.EOS, v.EOT} {
		if id >= 0 {
			ids = append(ids, id)
		}
	}
	texts := eogTexts
	if v.Model == "gpt2" && (v.Pre == "chatglm-bpe" || v.Pre == "glm4") {
		texts = append(slices.Clip(texts), glmEOGTexts...)
	}
	for _, s := range texts {
		if id, ok := lookup(s); ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// VocabSize is the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.v.Tokens) }

// BOS is the beginning-of-sequence id, or -1.
func (t *Tokenizer) BOS() int32 { return t.v.BOS }

// EOS is the end-of-sequence id, or -1.
func (t *Tokenizer) EOS() int32 { return t.v.EOS }

// EOT is the end-of-turn id, or -1.
func (t *Tokenizer) EOT() int32 { return t.v.EOT }

// UNK is the unknown-token id, or -1.
func (t *Tokenizer) UNK() int32 { return t.v.UNK }

// PAD is the padding id, or -1.
func (t *Tokenizer) PAD() int32 { return t.v.PAD }

// AddBOS reports whether EncodeOptions.AddSpecial prepends BOS.
func (t *Tokenizer) AddBOS() bool { return t.v.AddBOS }

// Model is the tokenizer algorithm, "llama" or "gpt2".
func (t *Tokenizer) Model() string { return t.v.Model }

// IsEOG reports whether id ends a generation: EOS, EOT, Vocab.EOG, and tokens
// whose text marks an end of turn (<|endoftext|>, <|im_end|>, <|eot_id|>, ...,
// and <|user|> or <|observation|> for GLM-4).
func (t *Tokenizer) IsEOG(id int32) bool {
	_, ok := t.eog[id]
	return ok
}

// IsControl reports whether id is a control token (BOS, EOS, chat markers),
// which Decode renders as nothing.
func (t *Tokenizer) IsControl(id int32) bool {
	return t.valid(id) && t.typ(id) == TypeControl
}

// TokenType returns id's type (TypeNormal, TypeControl, ...), or
// TypeUndefined for an id out of range.
func (t *Tokenizer) TokenType(id int32) int32 {
	if !t.valid(id) {
		return TypeUndefined
	}
	return t.typ(id)
}

// Lookup returns the id of the token whose vocabulary text is piece.
func (t *Tokenizer) Lookup(piece string) (int32, bool) {
	id, ok := t.ids[piece]
	return id, ok
}

// Piece returns the token's text as the vocabulary spells it ("▁the",
// "Ġthe", "<0x0A>", "<|im_end|>"), or "" for an id out of range. Use Decode
// for the text a token stands for.
func (t *Tokenizer) Piece(id int32) string {
	if !t.valid(id) {
		return ""
	}
	return t.v.Tokens[id]
}

// Score returns the token's SentencePiece score (0 when there are none).
func (t *Tokenizer) Score(id int32) float32 {
	if !t.valid(id) || t.v.Scores == nil {
		return 0
	}
	return t.v.Scores[id]
}

func (t *Tokenizer) valid(id int32) bool { return id >= 0 && int(id) < len(t.v.Tokens) }
