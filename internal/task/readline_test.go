package task

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestReadLineBounded: lines up to the limit come back whole whatever the buffer size; a
// longer one is refused before more than the limit is held.
func TestReadLineBounded(t *testing.T) {
	long := strings.Repeat("x", 100)
	br := bufio.NewReaderSize(strings.NewReader("short\n"+long+"\nlast"), 16)
	for _, want := range []string{"short\n", long + "\n", "last"} {
		got, err := readLine(br, 101)
		if string(got) != want || (err != nil && err != io.EOF) {
			t.Fatalf("readLine = %q, %v; want %q", got, err, want)
		}
	}
	br = bufio.NewReaderSize(strings.NewReader(long+long+"\n"), 16)
	if _, err := readLine(br, 150); !errors.Is(err, errLineTooLong) {
		t.Fatalf("a 201-byte line with limit 150: err %v, want errLineTooLong", err)
	}
}

// FuzzReadLine: whatever an upstream sends, the lines readLine returns put back together are
// the input, none is longer than the limit, and a refused line is one that was too long.
func FuzzReadLine(f *testing.F) {
	for _, s := range []string{"", "\n", "data: {}\n\n", "no newline", strings.Repeat("x", 40) + "\nshort\n", "a\r\nb\r\n"} {
		f.Add([]byte(s), uint8(16))
	}
	f.Fuzz(func(t *testing.T, in []byte, lim uint8) {
		limit := int(lim) + 1
		br := bufio.NewReaderSize(strings.NewReader(string(in)), 16)
		var got []byte
		for {
			line, err := readLine(br, limit)
			if errors.Is(err, errLineTooLong) {
				rest := in[len(got):]
				if i := strings.IndexByte(string(rest), '\n'); i >= 0 && i+1 <= limit {
					t.Fatalf("a line of %d bytes refused with limit %d", i+1, limit)
				}
				if len(rest) <= limit && strings.IndexByte(string(rest), '\n') < 0 {
					t.Fatalf("a last line of %d bytes refused with limit %d", len(rest), limit)
				}
				return
			}
			if len(line) > limit {
				t.Fatalf("a line of %d bytes with limit %d", len(line), limit)
			}
			got = append(got, line...)
			if err != nil {
				break
			}
		}
		if string(got) != string(in) {
			t.Fatalf("lines put together %q, input %q", got, in)
		}
	})
}
