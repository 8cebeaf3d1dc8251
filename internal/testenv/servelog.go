package testenv

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
)

// ServeLog keeps the output of an `autoglm serve` (or mockllm) process that a test started,
// and finds the JSON log line saying where it listens: a message containing "listening on"
// with the address in "addr". It is an io.Writer for exec.Cmd's Stdout and Stderr, safe for
// concurrent use.
type ServeLog struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	scanned int
	found   string
	ready   chan struct{}
}

// NewServeLog returns an empty ServeLog.
func NewServeLog() *ServeLog { return &ServeLog{ready: make(chan struct{})} }

func (s *ServeLog) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(b)
	for s.found == "" {
		rest := s.buf.Bytes()[s.scanned:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		s.scanned += i + 1
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal(rest[:i], &rec) == nil && strings.Contains(rec.Msg, "listening on") && rec.Addr != "" {
			s.found = rec.Addr
			close(s.ready)
		}
	}
	return len(b), nil
}

// Ready is closed once the listening line has been seen.
func (s *ServeLog) Ready() <-chan struct{} { return s.ready }

// Addr is the address the process listens on, "" until Ready.
func (s *ServeLog) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.found
}

// Tail returns the last n bytes of the output.
func (s *ServeLog) Tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buf.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Contains reports whether the output so far contains text.
func (s *ServeLog) Contains(text string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Contains(s.buf.Bytes(), []byte(text))
}
