package gguf

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/open-autoglm/autoglm/internal/engine/quant"
)

// Release drops a copied tensor's pages from the process's memory (on
// Linux: the mapping's Rss in /proc/self/smaps falls by the tensor's whole
// pages) and leaves its bytes readable and unchanged.
func TestReleaseKeepsBytesAndFreesPages(t *testing.T) {
	const n = 4 << 20
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i*7 + i>>12)
	}
	w := NewWriter()
	w.Add("general.architecture", "llama")
	if err := w.AddTensor("big", quant.F32, []uint64{n / 4}, data); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "big.gguf")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ti, _ := f.Tensor("big")
	b, err := f.TensorData(ti)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, data) {
		t.Fatal("tensor bytes differ before Release")
	}
	before := mappingRss(t, b)
	f.Release(b)
	after := mappingRss(t, b)
	if runtime.GOOS == "linux" && before-after < n-8192 {
		t.Errorf("Rss of the mapping %d kB before Release, %d kB after: want it to fall by the tensor's %d kB", before>>10, after>>10, n>>10)
	}
	if !bytes.Equal(b, data) {
		t.Fatal("tensor bytes differ after Release")
	}
	f.Release(data) // not in the mapping: ignored
	f.Release(nil)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f.Release(b) // after Close: ignored
}

// mappingRss returns the resident bytes of the mapping that holds b, from
// /proc/self/smaps (0 off Linux).
func mappingRss(t *testing.T, b []byte) int64 {
	if runtime.GOOS != "linux" {
		return 0
	}
	fh, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps")
	}
	defer fh.Close()
	p := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	in := false
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		line := sc.Text()
		if lo, hi, ok := parseRange(line); ok {
			in = lo <= p && p < hi
			continue
		}
		if in && strings.HasPrefix(line, "Rss:") {
			kb, err := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no mapping holds %#x", p)
	return 0
}

func parseRange(line string) (lo, hi uint64, ok bool) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return 0, 0, false
	}
	a, c, found := strings.Cut(f[0], "-")
	if !found {
		return 0, 0, false
	}
	lo, err1 := strconv.ParseUint(a, 16, 64)
	hi, err2 := strconv.ParseUint(c, 16, 64)
	return lo, hi, err1 == nil && err2 == nil
}
