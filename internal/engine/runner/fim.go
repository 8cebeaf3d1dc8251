package runner

import "github.com/open-autoglm/autoglm/internal/engine/chat"

// FIM returns the model's fill-in-the-middle tokens, read from the file's metadata or found
// in its vocabulary; ok is false for a model without them.
func (r *Runner) FIM() (f chat.FIM, ok bool) {
	return chat.DetectFIM(r.file.Uint, r.tok.Lookup, r.tok.VocabSize())
}
