package quant

import (
	"fmt"
	"math"
)

// Type is a ggml tensor element type id, as stored in GGUF tensor infos.
// Ids are stable: ggml only appends, and withdrawn ids (4, 5, 31-33, 36-38)
// are never reused, so they stay unknown here.
type Type uint32

// The ggml type ids. The names follow ggml's (GGML_TYPE_Q4_K is Q4_K).
const (
	F32     Type = 0
	F16     Type = 1
	Q4_0    Type = 2
	Q4_1    Type = 3
	Q5_0    Type = 6
	Q5_1    Type = 7
	Q8_0    Type = 8
	Q8_1    Type = 9
	Q2_K    Type = 10
	Q3_K    Type = 11
	Q4_K    Type = 12
	Q5_K    Type = 13
	Q6_K    Type = 14
	Q8_K    Type = 15
	IQ2_XXS Type = 16
	IQ2_XS  Type = 17
	IQ3_XXS Type = 18
	IQ1_S   Type = 19
	IQ4_NL  Type = 20
	IQ3_S   Type = 21
	IQ2_S   Type = 22
	IQ4_XS  Type = 23
	I8      Type = 24
	I16     Type = 25
	I32     Type = 26
	I64     Type = 27
	F64     Type = 28
	IQ1_M   Type = 29
	BF16    Type = 30
	TQ1_0   Type = 34
	TQ2_0   Type = 35
	MXFP4   Type = 39
	NVFP4   Type = 40
	Q1_0    Type = 41
	Q2_0    Type = 42
)

// traits describes one type. A zero blockSize marks an unknown id.
type traits struct {
	name       string
	blockSize  int
	blockBytes int
	supported  bool
}

// qkK is the super-block size of the K-quants and most i-quants.
const qkK = 256

// typeTable is indexed by Type. Block sizes and byte sizes are ggml's
// (block_size and type_size in its type traits).
var typeTable = [...]traits{
	F32:     {"F32", 1, 4, true},
	F16:     {"F16", 1, 2, true},
	Q4_0:    {"Q4_0", 32, 18, true},
	Q4_1:    {"Q4_1", 32, 20, true},
	Q5_0:    {"Q5_0", 32, 22, true},
	Q5_1:    {"Q5_1", 32, 24, true},
	Q8_0:    {"Q8_0", 32, 34, true},
	Q8_1:    {"Q8_1", 32, 36, false},
	Q2_K:    {"Q2_K", qkK, 84, false},
	Q3_K:    {"Q3_K", qkK, 110, false},
	Q4_K:    {"Q4_K", qkK, 144, true},
	Q5_K:    {"Q5_K", qkK, 176, true},
	Q6_K:    {"Q6_K", qkK, 210, true},
	Q8_K:    {"Q8_K", qkK, 292, false},
	IQ2_XXS: {"IQ2_XXS", qkK, 66, false},
	IQ2_XS:  {"IQ2_XS", qkK, 74, false},
	IQ3_XXS: {"IQ3_XXS", qkK, 98, false},
	IQ1_S:   {"IQ1_S", qkK, 50, false},
	IQ4_NL:  {"IQ4_NL", 32, 18, false},
	IQ3_S:   {"IQ3_S", qkK, 110, false},
	IQ2_S:   {"IQ2_S", qkK, 82, false},
	IQ4_XS:  {"IQ4_XS", qkK, 136, false},
	I8:      {"I8", 1, 1, false},
	I16:     {"I16", 1, 2, false},
	I32:     {"I32", 1, 4, false},
	I64:     {"I64", 1, 8, false},
	F64:     {"F64", 1, 8, false},
	IQ1_M:   {"IQ1_M", qkK, 56, false},
	BF16:    {"BF16", 1, 2, true},
	TQ1_0:   {"TQ1_0", qkK, 54, false},
	TQ2_0:   {"TQ2_0", qkK, 66, false},
	MXFP4:   {"MXFP4", 32, 17, false},
	NVFP4:   {"NVFP4", 64, 36, false},
	Q1_0:    {"Q1_0", 128, 18, false},
	Q2_0:    {"Q2_0", 64, 18, false},
}

func (t Type) traits() traits {
	if int(t) < len(typeTable) {
		return typeTable[t]
	}
	return traits{}
}

// String returns ggml's name for the type in upper case ("F32", "Q4_K"), or
// "Type(n)" for an unknown id.
func (t Type) String() string {
	if tr := t.traits(); tr.blockSize > 0 {
		return tr.name
	}
	return fmt.Sprintf("Type(%d)", uint32(t))
}

// Known reports whether t is a ggml type id whose block layout is known, so
// that tensors of this type can be sized even if they cannot be computed on.
func (t Type) Known() bool { return t.traits().blockSize > 0 }

// Supported reports whether this package has kernels (Dequantize, Quantize,
// Dot, MatVec) for t.
func (t Type) Supported() bool { return t.traits().supported }

// BlockSize returns the number of elements per block: 1 for plain scalar
// types, 32 for the legacy quants, 256 for K-quants. It is 0 for unknown ids.
func (t Type) BlockSize() int { return t.traits().blockSize }

// BlockBytes returns the encoded size of one block in bytes, 0 for unknown ids.
func (t Type) BlockBytes() int { return t.traits().blockBytes }

// RowBytes returns the number of bytes that n elements of type t occupy. It
// fails if t is unknown, n is negative or not a multiple of t's block size,
// or the size does not fit in an int.
func RowBytes(t Type, n int) (int, error) {
	tr := t.traits()
	if tr.blockSize == 0 {
		return 0, fmt.Errorf("quant: unknown type id %d", uint32(t))
	}
	if n < 0 || n%tr.blockSize != 0 {
		return 0, fmt.Errorf("quant: %d elements is not a multiple of the %s block size %d", n, tr.name, tr.blockSize)
	}
	blocks := n / tr.blockSize
	if blocks > math.MaxInt/tr.blockBytes {
		return 0, fmt.Errorf("quant: %d elements of %s overflow the row size", n, tr.name)
	}
	return blocks * tr.blockBytes, nil
}
