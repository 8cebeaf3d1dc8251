package web

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzAcceptsGzip reads any Accept-Encoding: it never panics, and a header that does not
// mention gzip never gets it.
func FuzzAcceptsGzip(f *testing.F) {
	for _, s := range []string{"", "gzip", "gzip;q=0", "br, gzip;q=0.5", "GZIP", "identity", "gzip ; q=0", ",,;", "x-gzip"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Encoding", header)
		if acceptsGzip(r) && !strings.Contains(strings.ToLower(r.Header.Get("Accept-Encoding")), "gzip") {
			t.Fatalf("gzip for %q", header)
		}
	})
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{"": false, "gzip": true, "br, gzip;q=0.5": true, "gzip;q=0": false, "gzip; q=0": false, "identity": false, "x-gzip": false} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Encoding", header)
		if got := acceptsGzip(r); got != want {
			t.Errorf("Accept-Encoding %q: gzip %v, want %v", header, got, want)
		}
	}
}
