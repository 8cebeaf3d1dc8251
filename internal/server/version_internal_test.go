package server

import (
	"strings"
	"testing"
)

// FuzzAcceptsVersion: any Accept header is read without a panic; one that does not mention
// the native media type is always accepted, and one that names v1 with a positive weight is
// too.
func FuzzAcceptsVersion(f *testing.F) {
	for _, s := range []string{"", "*/*", "application/json", MediaType, "application/vnd.autoglm.v2+json",
		"application/vnd.autoglm.v2+json, application/json;q=0.1", MediaType + ";q=0", "application/vnd.autoglm", ";;,,=", "application/vnd.autoglm.v1+json;q=abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		ok := acceptsVersion(accept)
		if !strings.Contains(accept, mediaTypePrefix) && !ok {
			t.Errorf("%q refused", accept)
		}
		if !ok && strings.Contains(accept, ","+MediaType+",") {
			t.Errorf("%q names v1 with no weight and was refused", accept)
		}
	})
}
