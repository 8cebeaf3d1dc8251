// Package quant defines the tensor element types of the GGUF/ggml ecosystem
// and the CPU kernels that work on them.
//
// # Types
//
// [Type] carries ggml's numeric type ids, which GGUF files store per tensor.
// Every id ggml has assigned (and not withdrawn) has a name, a block size
// (elements per block) and a block byte size, so callers can size tensors of
// any type with [RowBytes]. Only the types for which [Type.Supported] reports
// true have kernels: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K
// and Q6_K.
//
// # Layouts
//
// Block layouts are byte-for-byte those of ggml, little-endian, so tensors
// read from a GGUF file can be used in place:
//
//	Q8_0  d f16 | qs [32]int8                        x = d*q
//	Q4_0  d f16 | qs [16]byte                        x = d*(q-8)
//	Q4_1  d f16 | m f16 | qs [16]byte                x = d*q + m
//	Q5_0  d f16 | qh u32 | qs [16]byte               x = d*(q-16)
//	Q5_1  d f16 | m f16 | qh u32 | qs [16]byte       x = d*q + m
//	Q4_K  d f16 | dmin f16 | scales [12] | qs [128]  x = d*sc*q - dmin*m
//	Q5_K  d f16 | dmin f16 | scales [12] | qh [32] | qs [128]
//	Q6_K  ql [128] | qh [64] | scales [16]int8 | d f16
//
// In the 32-element formats byte j of qs holds element j in its low nibble
// and element j+16 in its high nibble; bit j of qh is the fifth bit of
// element j. The K-quant layouts (256-element super-blocks with 6-bit packed
// sub-block scales and mins, or 8-bit scales for Q6_K) are described next to
// their kernels.
//
// # Kernels
//
// [Dot] and [MatVec] work directly on the quantised bytes against float32
// activations; they do not allocate and are safe for concurrent use (they
// share no state). Each type's kernels live in their own file so that
// architecture-specific versions can replace them one type at a time.
// [Quantize] is a simple round-to-nearest encoder meant for tests, writers and
// benchmarks, not a replacement for ggml's importance-aware quantisers.
package quant
