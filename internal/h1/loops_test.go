package h1

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"

	"github.com/open-autoglm/autoglm/internal/evloop"
)

// loopsEnv, set, makes the package's tests serve on event loops (ServeLoops) rather than a
// goroutine per connection: "blocked" with handlers on goroutines of their own, "inline"
// with them on the loops (unless a test sets Inline itself). TestOnLoops runs them all again
// both ways.
const loopsEnv = "AUTOGLM_H1_TEST_LOOPS"

// ServeForTest serves ln with s in the way the test run asks for. A listener that wraps its
// connections (to count what is done to them) is served the usual way: loops take their
// sockets from the listening socket itself.
func ServeForTest(s *Server, ln net.Listener) error {
	mode := os.Getenv(loopsEnv)
	if _, tcp := ln.(*net.TCPListener); tcp && mode != "" {
		if mode == "inline" && s.Inline == nil {
			s.Inline = func(*http.Request) bool { return true }
		}
		return s.ServeLoops(ln, 1)
	}
	return s.Serve(ln)
}

// TestOnLoops runs every test of the package again with its servers on event loops.
func TestOnLoops(t *testing.T) {
	if os.Getenv(loopsEnv) != "" {
		t.Skip("already on loops")
	}
	if !evloop.Supported {
		t.Skip("no event loops on this platform")
	}
	if testing.Short() {
		t.Skip("short")
	}
	for _, mode := range []string{"blocked", "inline"} {
		cmd := exec.Command(os.Args[0], "-test.count=1", "-test.timeout=5m")
		cmd.Env = append(os.Environ(), loopsEnv+"="+mode)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the package's tests on event loops, handlers %s, failed: %v\n%s", mode, err, out)
		}
	}
}
