package hugetext

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestRemapMovesTextAndCodeRuns moves this test binary's text onto huge pages, then runs a
// real HTTP exchange on loopback (a large share of the binary's code, all of it now running
// from the moved pages) and checks the mapping the kernel reports.
func TestRemapMovesTextAndCodeRuns(t *testing.T) {
	lo, hi, err := textRange()
	if err != nil {
		t.Fatal(err)
	}
	n, err := Remap()
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("not available on this system: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if n <= 0 || n%pageSize != 0 || uintptr(n) > hi-lo {
		t.Fatalf("moved %d bytes of a %d-byte text", n, hi-lo)
	}
	start := (lo + pageSize - 1) &^ (pageSize - 1)
	maps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	anon, huge := false, ""
	sc := bufio.NewScanner(strings.NewReader(string(maps)))
	in := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			a, _, _ := strings.Cut(f[0], "-")
			v, _ := strconv.ParseUint(a, 16, 64)
			in = uintptr(v) == start
			if in {
				anon = f[1] == "r-xp" && f[4] == "0" && len(f) == 5
			}
			continue
		}
		if in && len(f) >= 2 && f[0] == "AnonHugePages:" {
			huge = f[1]
		}
	}
	if !anon {
		t.Fatalf("no anonymous read-execute mapping at %#x after the move", start)
	}
	t.Logf("moved %d MiB; the kernel backs %s kB of it with huge pages", n>>20, huge)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "still running")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	resp, err := http.Get("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "still running" {
		t.Fatalf("answer %q", body)
	}

	// A second call finds no whole huge page left on file-backed text, and changes nothing.
	if n, err := Remap(); !errors.Is(err, ErrUnavailable) || n != 0 {
		t.Fatalf("second Remap: %d, %v; want nothing moved", n, err)
	}
}

func TestParseMapsLine(t *testing.T) {
	exe := "/opt/auto glm/bin/autoglm"
	for _, tc := range []struct {
		line   string
		lo, hi uintptr
		ok     bool
	}{
		{"00400000-01e00000 r-xp 00000000 fe:00 9978010 /opt/auto glm/bin/autoglm", 0x400000, 0x1e00000, true},
		{"00400000-01e00000 r--p 00000000 fe:00 9978010 /opt/auto glm/bin/autoglm", 0, 0, false},
		{"00400000-01e00000 r-xp 00000000 fe:00 9978010 /opt/auto glm/bin/other", 0, 0, false},
		{"00400000-01e00000 r-xp 00000000 00:00 0", 0, 0, false},
		{"01e00000-00400000 r-xp 00000000 fe:00 9978010 /opt/auto glm/bin/autoglm", 0, 0, false},
		{"zz-01e00000 r-xp 00000000 fe:00 9978010 /opt/auto glm/bin/autoglm", 0, 0, false},
		{"", 0, 0, false},
	} {
		lo, hi, ok := parseMapsLine(tc.line, exe)
		if lo != tc.lo || hi != tc.hi || ok != tc.ok {
			t.Errorf("%q: %#x-%#x %v; want %#x-%#x %v", tc.line, lo, hi, ok, tc.lo, tc.hi, tc.ok)
		}
	}
}
