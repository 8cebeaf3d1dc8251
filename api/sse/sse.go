// Package sse reads and writes server-sent events as the WHATWG HTML
// standard defines them (section "Server-sent events", the
// text/event-stream format). It is the one implementation of those rules in
// autoglm: the Go client, the gateway's relays, the gRPC bridge, the
// response cache, the task workers and the task CLI all use it. It imports
// only the standard library, so the public api package and programs outside
// this module can use it too.
//
// # Rules
//
//   - Lines end in LF, CRLF or a lone CR.
//   - A UTF-8 byte-order mark at the very start of a stream is skipped.
//   - A line starting with ':' is a comment and is ignored.
//   - Other lines are "field:value" (one space after the colon is dropped)
//     or a bare "field" with an empty value.
//   - "data" lines accumulate, joined by LF; "event" sets the event type;
//     "id" sets the last event id (ignored when the value holds a NUL);
//     "retry" sets the reconnection time in milliseconds (ignored unless all
//     ASCII digits); other fields are ignored.
//   - A blank line dispatches the event when it had at least one data line,
//     and resets the event type either way.
//
// One deliberate difference from the standard: an event still open when
// the input ends is dispatched rather than dropped, because some servers
// close the connection right after their last data line ("data: [DONE]")
// without the blank line.
//
// An event (its data, or any one line) larger than the reader's maximum,
// [DefaultMaxEventSize] unless set, is the error [ErrTooLarge]: a broken or
// hostile server cannot make a reader buffer without limit.
//
// # Reading
//
// [Reader] reads events from a stream. Code that passes a stream through
// byte for byte and only looks at its events uses [Splitter] to find where
// each event ends and [Parse] to read one.
//
// # Writing
//
// [AppendEvent] and [Writer] write events; data holding line breaks is
// split over several data lines, so that it reads back unchanged.
package sse

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// DefaultMaxEventSize bounds an event's data, and any one line, for a
// [Reader] whose maximum was not set.
const DefaultMaxEventSize = 16 << 20

// ErrTooLarge reports an event or a line larger than the reader's maximum.
var ErrTooLarge = errors.New("sse: event larger than the maximum size")

// Event is one server-sent event.
type Event struct {
	// Type is the "event" field; "" when the event had none (the standard
	// calls that type "message").
	Type string
	// ID is the last event id: from a [Reader], the latest "id" field the
	// stream has sent up to and including this event (a client resumes with
	// it in Last-Event-ID); from [Parse], this event's own "id" field.
	ID string
	// Data is the data lines joined by LF.
	Data []byte
	// Retry is the reconnection time this event's "retry" field set, or 0.
	Retry time.Duration
}

// bom is the UTF-8 encoding of U+FEFF.
var bom = []byte{0xEF, 0xBB, 0xBF}

// lineEnd returns the index of the first CR or LF in b, or -1.
func lineEnd(b []byte) int {
	lf := bytes.IndexByte(b, '\n')
	head := b
	if lf >= 0 {
		head = b[:lf]
	}
	if cr := bytes.IndexByte(head, '\r'); cr >= 0 {
		return cr
	}
	return lf
}

// field splits a non-blank, non-comment line into its field name and value.
func field(line []byte) (name, value []byte) {
	i := bytes.IndexByte(line, ':')
	if i < 0 {
		return line, nil
	}
	value = line[i+1:]
	if len(value) > 0 && value[0] == ' ' {
		value = value[1:]
	}
	return line[:i], value
}

// retryValue is the reconnection time of a "retry" value, and whether it is
// one (ASCII digits only, and not absurdly long).
func retryValue(v []byte) (time.Duration, bool) {
	if len(v) == 0 {
		return 0, false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	ms, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || ms > int64(time.Duration(1<<63-1)/time.Millisecond) {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// Splitter finds where events end in a stream that is passed on byte for
// byte. Its zero value is ready to use. Call Cut with the bytes not yet
// handed on; when it returns n >= 0 the first n bytes are one whole event
// (up to and including the blank line that ends it) and the next call must
// start at byte n; when it returns -1 the next call must pass the same bytes
// with more appended. Bytes already searched are not searched again.
type Splitter struct {
	from int // start of the first line not yet known to be complete
}

// Cut returns the length of the first whole event in b, or -1.
//
// A blank line at the start of b is a whole (empty) event of its own. A CR
// that ends a blank line at the end of b ends the event at once: an LF
// after it, once it arrives, is an empty line at the start of the next
// block, which [Parse] ignores as a stream reader would ignore it.
func (s *Splitter) Cut(b []byte) int {
	ls := min(s.from, len(b))
	for {
		j := lineEnd(b[ls:])
		if j < 0 {
			s.from = ls
			return -1
		}
		t := ls + j
		end := t + 1
		if b[t] == '\r' {
			if end == len(b) && j > 0 {
				// An LF may follow and belong to this line end.
				s.from = ls
				return -1
			}
			if end < len(b) && b[end] == '\n' {
				end++
			}
		}
		if j == 0 {
			s.from = 0
			return end
		}
		ls = end
	}
}

// Parse reads the first event of block, a part of a stream that starts at a
// line (as [Splitter.Cut] cuts them). ok is false when the block dispatches
// no event: it has no data line. Data may share memory with block. Unlike
// [Reader], Parse does not skip a byte-order mark: strip it from the first
// block of a stream when that matters.
func Parse(block []byte) (ev Event, ok bool) {
	var typ, id []byte
	hasID := false
	var data []byte
	lines := 0
	owned := false
	for len(block) > 0 {
		j := lineEnd(block)
		line := block
		if j >= 0 {
			line = block[:j]
			next := j + 1
			if block[j] == '\r' && next < len(block) && block[next] == '\n' {
				next++
			}
			block = block[next:]
		} else {
			block = nil
		}
		if len(line) == 0 {
			if lines > 0 {
				break
			}
			typ = nil
			continue
		}
		if line[0] == ':' {
			continue
		}
		name, value := field(line)
		switch string(name) {
		case "data":
			switch {
			case lines == 0:
				data = value
			case !owned:
				data = append(append(append(make([]byte, 0, len(data)+1+len(value)), data...), '\n'), value...)
				owned = true
			default:
				data = append(append(data, '\n'), value...)
			}
			lines++
		case "event":
			typ = value
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				id, hasID = value, true
			}
		case "retry":
			if d, ok := retryValue(value); ok {
				ev.Retry = d
			}
		}
	}
	if lines == 0 {
		return Event{}, false
	}
	if data == nil {
		data = []byte{}
	}
	ev.Type, ev.Data = string(typ), data
	if hasID {
		ev.ID = string(id)
	}
	return ev, true
}

// Data is the data of the first event of block, as [Parse] reads it, or nil
// when block has no data line.
func Data(block []byte) []byte {
	ev, ok := Parse(block)
	if !ok {
		return nil
	}
	return ev.Data
}

// AppendEvent appends ev in the text/event-stream format to dst: the
// "event", "id" and "retry" fields when set, one "data" line per line of
// Data (CR, LF and CRLF all break lines), and the blank line that
// dispatches it. A Type or ID holding a line break, or an ID holding a NUL,
// cannot be written and is an error.
func AppendEvent(dst []byte, ev Event) ([]byte, error) {
	if bytes.ContainsAny([]byte(ev.Type), "\r\n") {
		return dst, fmt.Errorf("sse: event type %q holds a line break", ev.Type)
	}
	if bytes.ContainsAny([]byte(ev.ID), "\r\n\x00") {
		return dst, fmt.Errorf("sse: event id %q holds a line break or NUL", ev.ID)
	}
	if ev.Type != "" {
		dst = append(append(append(dst, "event: "...), ev.Type...), '\n')
	}
	if ev.ID != "" {
		dst = append(append(append(dst, "id: "...), ev.ID...), '\n')
	}
	if ev.Retry > 0 {
		dst = append(strconv.AppendInt(append(dst, "retry: "...), ev.Retry.Milliseconds(), 10), '\n')
	}
	data := ev.Data
	for {
		dst = append(dst, "data: "...)
		j := lineEnd(data)
		if j < 0 {
			dst = append(append(dst, data...), '\n', '\n')
			return dst, nil
		}
		dst = append(append(dst, data[:j]...), '\n')
		next := j + 1
		if data[j] == '\r' && next < len(data) && data[next] == '\n' {
			next++
		}
		data = data[next:]
	}
}

// AppendComment appends a comment line (for example a keep-alive) to dst;
// line breaks in text start further comment lines.
func AppendComment(dst []byte, text string) []byte {
	b := []byte(text)
	for {
		dst = append(dst, ':')
		j := lineEnd(b)
		if j < 0 {
			if len(b) > 0 {
				dst = append(append(dst, ' '), b...)
			}
			return append(dst, '\n')
		}
		if j > 0 {
			dst = append(append(dst, ' '), b[:j]...)
		}
		dst = append(dst, '\n')
		next := j + 1
		if b[j] == '\r' && next < len(b) && b[next] == '\n' {
			next++
		}
		b = b[next:]
	}
}
