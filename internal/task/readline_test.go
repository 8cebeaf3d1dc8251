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
