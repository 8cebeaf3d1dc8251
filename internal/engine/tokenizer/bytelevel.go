package tokenizer

import "unicode/utf8"

// byteLevel is GPT-2's reversible byte↔character table. Byte-level BPE
// vocabularies never contain raw bytes: each byte is spelled as one printable
// Unicode character, so that whitespace and control bytes survive JSON and
// merges files. Printable Latin-1 bytes stand for themselves; the other 68
// bytes are assigned U+0100 onwards in byte order.
type byteLevel struct {
	char   [256]string   // byte → its character, UTF-8 encoded
	toByte map[rune]byte // character → byte
}

func newByteLevel() *byteLevel {
	bl := &byteLevel{toByte: make(map[rune]byte, 256)}
	next := rune(256)
	for b := range 256 {
		r := rune(b)
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		if !printable {
			r = next
			next++
		}
		bl.char[b] = string(r)
		bl.toByte[r] = byte(b)
	}
	return bl
}

// decode turns a token's byte-level spelling back into raw bytes, appending to
// dst. A character outside the table (which a well-formed vocabulary never
// has) is copied through as UTF-8 so that nothing is silently dropped.
func (bl *byteLevel) decode(dst []byte, s string) []byte {
	for _, r := range s {
		if b, ok := bl.toByte[r]; ok {
			dst = append(dst, b)
		} else {
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst
}
