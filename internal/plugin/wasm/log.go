package wasm

import (
	"bytes"
	"sync"

	"github.com/open-autoglm/autoglm/internal/plugin"
)

// logWriter logs what a module writes to stdout and stderr, a line at a time, with the
// plugin's name; lines are cut at 1 KiB so a module cannot flood the log with one line.
type logWriter struct {
	env plugin.Env
	mu  sync.Mutex
	buf []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) > 1024 {
				w.emit(w.buf[:1024])
				w.buf = w.buf[:0]
			}
			return len(p), nil
		}
		w.emit(w.buf[:min(i, 1024)])
		w.buf = w.buf[i+1:]
	}
}

func (w *logWriter) emit(line []byte) {
	if w.env.Logger != nil {
		w.env.Logger.Info("wasm module output", "line", string(line))
	}
}
