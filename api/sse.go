package api

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// maxEvent bounds the data of one server-sent event, so that a broken or
// hostile server cannot make the client buffer without limit.
const maxEvent = 16 << 20

var errEventTooLarge = errors.New("api: server-sent event larger than 16 MiB")

// sseReader reads server-sent events as the WHATWG specification describes
// them: lines end in LF, CRLF or CR; a line starting with ':' is a comment;
// "data" lines accumulate, joined by LF; "event" sets the type; other
// fields (id, retry) are ignored; a blank line dispatches. An event still
// open at end of input is dispatched too (the specification drops it),
// because some servers omit the final blank line before closing.
type sseReader struct {
	r       *bufio.Reader
	line    []byte // assembles lines longer than the bufio buffer
	pending []byte // the rest of a raw line after a lone CR
	data    []byte
}

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 8<<10)}
}

// next returns the next event. data is valid until the following call. At
// the end of input it returns io.EOF.
func (s *sseReader) next() (event string, data []byte, err error) {
	s.data = s.data[:0]
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			if err == io.EOF && hasData {
				return event, s.data, nil
			}
			return "", nil, err
		}
		if len(line) == 0 {
			if hasData {
				return event, s.data, nil
			}
			event = ""
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if hasData {
				s.data = append(s.data, '\n')
			}
			s.data = append(s.data, value...)
			hasData = true
			if len(s.data) > maxEvent {
				return "", nil, errEventTooLarge
			}
		case "event":
			event = string(value)
		}
	}
}

// readLine returns the next line without its terminator.
func (s *sseReader) readLine() ([]byte, error) {
	if s.pending != nil {
		line := s.pending
		if i := bytes.IndexByte(line, '\r'); i >= 0 {
			s.pending = line[i+1:]
			return line[:i], nil
		}
		s.pending = nil
		return line, nil
	}
	raw, err := s.readRaw()
	if err != nil {
		return nil, err
	}
	if i := bytes.IndexByte(raw, '\r'); i >= 0 {
		s.pending = raw[i+1:]
		return raw[:i], nil
	}
	return raw, nil
}

// readRaw returns the input up to the next LF (or the end), without the LF
// or a CR just before it.
func (s *sseReader) readRaw() ([]byte, error) {
	s.line = s.line[:0]
	for {
		chunk, err := s.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			s.line = append(s.line, chunk...)
			if len(s.line) > maxEvent {
				return nil, errEventTooLarge
			}
			continue
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		full := chunk
		if len(s.line) > 0 {
			s.line = append(s.line, chunk...)
			full = s.line
		}
		if err == io.EOF && len(full) == 0 {
			return nil, io.EOF
		}
		if n := len(full); n > 0 && full[n-1] == '\n' {
			full = full[:n-1]
			if n := len(full); n > 0 && full[n-1] == '\r' {
				full = full[:n-1]
			}
		}
		return full, nil
	}
}
