// Package models carries the bundled demo model inside the binary, so `autoglm serve` works
// from any directory without a download. See README.md in this folder for its origin and
// licence.
package models

import _ "embed"

// DemoFile is the file name of the demo model.
const DemoFile = "stories260K.gguf"

// Demo is the demo model, a 260K-parameter TinyStories Llama, as GGUF.
//
//go:embed stories260K.gguf
var Demo []byte
