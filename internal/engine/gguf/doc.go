// Package gguf reads and writes GGUF files, the single-file model format of
// the ggml ecosystem: a header, typed key/value metadata, tensor
// descriptions, and aligned tensor data.
//
// # Reading
//
// [Open] memory-maps a file read-only (on unix; elsewhere it reads the whole
// file) and [Read] parses from any [io.ReaderAt]. Both parse the header,
// metadata and tensor infos eagerly and leave tensor data where it is;
// [File.TensorData] returns a tensor's bytes, as a zero-copy slice of the
// mapping when there is one. Versions 2 and 3 are accepted (little-endian
// only); version 1 is refused.
//
// The reader treats its input as hostile. Every malformed file yields an
// error wrapping [ErrFormat] that names what was wrong and where, never a
// panic, and no allocation is larger than the file could justify: every
// count and length is checked against the bytes remaining before anything
// is allocated. Tensor dimensions must be positive and their product must not
// overflow, tensor data must lie inside the file without overlapping, and
// duplicate keys or tensor names are errors. A tensor whose type id is
// unknown is only an error when its data is asked for ([ErrUnknownType]).
//
// # Metadata
//
// Metadata values keep their GGUF type ([Value.Type]); arrays keep their
// element type and may nest. The typed getters on [File] ([File.String],
// [File.Uint], [File.Int32s], ...) convert between compatible types, so
// callers need not care whether a writer chose uint32 or uint64 for a count.
//
// # Writing
//
// [Writer] collects metadata and tensors and writes a GGUF v3 file with the
// alignment given by "general.alignment" (default 32), padding the data
// section and every tensor to it.
package gguf
