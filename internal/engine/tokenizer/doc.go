// Package tokenizer converts between text and token ids for GGUF models,
// using the vocabulary stored in the file's tokenizer.ggml.* metadata. It
// implements the two tokenizers llama.cpp calls SPM and BPE, and aims to
// produce the same ids as llama.cpp for the same file.
//
// # SentencePiece ("llama")
//
// Used by Llama 1/2, Mistral, TinyStories and other SentencePiece models.
// Spaces are escaped as "▁" (U+2581) and, with AddSpacePrefix, one is put in
// front of the text, so "Once upon" becomes "▁Once▁upon". The text starts as
// one symbol per character; the adjacent pair whose concatenation is a
// vocabulary token with the highest score is merged, ties going to the
// leftmost pair, until no adjacent pair forms a token. A priority queue of
// candidate pairs (stale entries skipped when popped) makes this O(n log n).
// When no token has a "▁" after another character (true of vocabularies
// trained with SentencePiece's whitespace splitting), no merge can join two
// words, so each word is merged on its own: the same ids, with small queues.
// A character that ends up in no token is spelled with byte tokens "<0xNN>"
// (byte fallback) or, without them, as the unknown token. Decoding turns "▁"
// back into spaces and byte tokens back into raw bytes, and drops the space
// the encoder prefixed.
//
// # Byte-level BPE ("gpt2")
//
// Used by GPT-2, Llama 3, Qwen2 and GLM-4. The input is first cut into words
// by a pre-tokenizer (below); a merge never crosses a word boundary. Each byte
// of a word is a symbol, spelled in the vocabulary as GPT-2's printable
// stand-in character for that byte ("Ġ" for space), so any byte string can be
// encoded and invalid UTF-8 survives a round trip. Merge rules ("left right",
// in tokenizer.ggml.merges) are applied by rank, the best-ranked applicable
// pair first and the leftmost on ties, again with a priority queue; rules are
// looked up by the pair of token ids, so merging allocates nothing. Llama 3's
// vocabulary also sets IgnoreMerges: a word that is itself a token is emitted
// whole.
//
// # Pre-tokenizers
//
// The pre-tokenizers are regular expressions with lookahead ("\s+(?!\S)"),
// which Go's regexp package cannot express, so each is written by hand as a
// matcher that follows the regex semantics exactly: at each position the
// alternatives are tried in order, the first match wins, and greedy
// quantifiers backtrack where the pattern needs it. \p{L}, \p{N} and \s are
// Go's unicode.IsLetter, IsNumber and IsSpace; an invalid UTF-8 byte counts as
// punctuation. These patterns cover the supported tokenizer.ggml.pre names:
//
//   - GPT-2 ("default", "gpt-2", "mpt", "olmo", ...): contractions, then runs
//     of letters, of digits, or of other characters, each with an optional
//     leading space, then whitespace.
//   - Llama 3 ("llama3", "llama-bpe", "dbrx", ...): case-insensitive
//     contractions; a run of letters with one optional non-letter, non-digit
//     prefix (" world", "$foo"); up to three digits; punctuation runs that
//     absorb following newlines; whitespace up to the last newline.
//   - Qwen2 ("qwen2", "stablelm2", ...): the Llama 3 pattern with digits one
//     at a time.
//   - StarCoder ("starcoder", also StarCoder2 files, "refact", "smollm", ...):
//     every digit on its own, then the GPT-2 pattern.
//   - DeepSeek-Coder ("deepseek-coder") and DeepSeek-LLM ("deepseek-llm"): a
//     sequence of patterns, each splitting the pieces the previous left
//     (newlines; letters with an optional leading space; punctuation likewise;
//     CJK runs; digits), as Hugging Face's Sequence of Split pre-tokenizers
//     and llama.cpp run them.
//
// GLM-4 ("chatglm-bpe", "glm4") uses the Llama 3 pattern, as llama.cpp does,
// and has no BOS by default. A name outside these fails New with an error
// rather than tokenizing silently wrong.
//
// # Special tokens
//
// Before either algorithm runs, user-defined tokens are cut out of the text,
// and so are control tokens when EncodeOptions.ParseSpecial is set (chat
// templates need "<|im_start|>" to be one token, user input must not be able
// to forge it). At each position the longest matching token wins. Control
// tokens decode to nothing unless DecodeOptions.Special is set.
//
// # Decoding and streaming
//
// Decode is exact: it does not apply Hugging Face's clean-up of spaces before
// punctuation, which would break round trips and cannot be applied
// consistently to a stream. A Decoder decodes one id at a time for streaming,
// holding back the bytes of a character that byte tokens have only partly
// spelled, so that no chunk ends inside a UTF-8 sequence.
package tokenizer
