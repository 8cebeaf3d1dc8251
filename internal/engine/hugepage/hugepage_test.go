package hugepage

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

func TestAllocSizesAndAlignment(t *testing.T) {
	for _, n := range []int{0, 1, 4096, Size/2 - 1, Size / 2, Size, Size + 1, 5*Size + 12345} {
		b := Alloc(n)
		got := b.Bytes()
		if len(got) != n {
			t.Fatalf("Alloc(%d): len %d", n, len(got))
		}
		if b.Reserved() < int64(n) {
			t.Fatalf("Alloc(%d): Reserved %d, below the size", n, b.Reserved())
		}
		if b.Mapped() {
			if uintptr(unsafe.Pointer(unsafe.SliceData(got)))%Size != 0 || b.Reserved()-int64(n) >= 4096 {
				t.Fatalf("Alloc(%d): mapped at %p, %d bytes: not on a huge page boundary, or more than a 4 KiB page over the size", n, unsafe.SliceData(got), b.Reserved())
			}
		} else if runtime.GOOS == "linux" && n >= Size {
			t.Fatalf("Alloc(%d): not mapped on Linux", n)
		}
		for i := range got {
			if got[i] != 0 {
				t.Fatalf("Alloc(%d): byte %d is %d, want zero memory", n, i, got[i])
			}
		}
		for i := range got {
			got[i] = byte(i)
		}
		for i := range got {
			if got[i] != byte(i) {
				t.Fatalf("Alloc(%d): byte %d did not keep its value", n, i)
			}
		}
		runtime.KeepAlive(b)
	}
	if (*Buffer)(nil).Reserved() != 0 || (*Buffer)(nil).Mapped() {
		t.Fatal("a nil Buffer reports memory")
	}
}

// TestAllocHugePages reports whether the kernel backed a mapped buffer with
// huge pages (AnonHugePages of its mapping in /proc/self/smaps). Whether it
// does depends on the system's settings and free memory, so this only
// fails when the mapping is missing.
func TestAllocHugePages(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("huge page advice is Linux only")
	}
	b := Alloc(8 * Size)
	buf := b.Bytes()
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	start := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(buf))))
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	found := false
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if fields := strings.Fields(line); len(fields) > 0 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			lo, _, _ := strings.Cut(fields[0], "-")
			a, err := strconv.ParseUint(lo, 16, 64)
			in = err == nil && a == start
			found = found || in
			continue
		}
		if in && strings.HasPrefix(line, "AnonHugePages:") {
			t.Logf("mapping at %#x: %s (THP setting: %s)", start, strings.Join(strings.Fields(line)[1:], " "), thpSetting())
		}
	}
	if !found {
		t.Fatalf("no mapping starts at %#x in /proc/self/smaps", start)
	}
	runtime.KeepAlive(b)
}

func thpSetting() string {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func TestTHPModeParsing(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{"always [madvise] never\n", true},
		{"[always] madvise never\n", true},
		{"always madvise [never]\n", false},
		{"", false},
		{"madvise", false},
		{"]never[", false},
	} {
		if got := thpEnabled(c.in); got != c.want {
			t.Errorf("thpEnabled(%q) = %v, want %v", c.in, got, c.want)
		}
	}
	if runtime.GOOS != "linux" && Available() {
		t.Error("Available() is true off Linux, where Alloc never maps huge pages")
	}
}
