package humanevalx

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"
)

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.Bytes()
}

func TestRead(t *testing.T) {
	probs, err := Read(bytes.NewReader(gz(`{"task_id":"Go/0","prompt":"func F() int {\n","canonical_solution":"\treturn 1\n}\n","declaration":"func F() int {\n"}` + "\n\n")))
	if err != nil || len(probs) != 1 || probs[0].TaskID != "Go/0" {
		t.Fatalf("%v %+v", err, probs)
	}
	if got := probs[0].Canonical("go"); !strings.HasPrefix(got, "package main\n") || !strings.HasSuffix(got, "return 1\n}\n") || strings.Count(got, "func F()") != 1 {
		t.Errorf("canonical program %q", got)
	}
	for _, bad := range []string{`{"prompt":"x"}`, `not json`} {
		if _, err := Read(bytes.NewReader(gz(bad))); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := Read(strings.NewReader("not gzip")); err == nil {
		t.Error("plain text accepted")
	}
}

func FuzzRead(f *testing.F) {
	f.Add(gz(`{"task_id":"Python/0","prompt":"def f():\n"}`))
	f.Add(gz("{}\n"))
	f.Add([]byte{0x1f, 0x8b, 8, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		probs, err := Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, p := range probs {
			if p.TaskID == "" {
				t.Fatal("a problem without task_id was accepted")
			}
			_ = p.Canonical("go")
		}
	})
}
