package plugin

import (
	"strings"
	"testing"
)

// globSplit is Glob written the plain way, with strings.Split, to check Glob against.
func globSplit(pattern, s string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == s
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"glm-4", "glm-4", true}, {"glm-4", "glm-4x", false}, {"glm-*", "glm-4-flash", true},
		{"*-flash", "glm-4-flash", true}, {"*-flash", "glm-4", false}, {"g*4*h", "glm-4-flash", true},
		{"g*4*h", "glm-5-flash", false}, {"*", "", true}, {"a*a", "a", false}, {"a**b", "ab", true},
		{"POST /v1/*", "POST /v1/chat/completions", true}, {"*a*", "bab", true},
	} {
		if got := Glob(tc.pattern, tc.s); got != tc.want {
			t.Errorf("Glob(%q, %q) = %v", tc.pattern, tc.s, got)
		}
	}
}

func FuzzGlob(f *testing.F) {
	f.Add("g*4*h", "glm-4-flash")
	f.Add("a*a", "a")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if got, want := Glob(pattern, s), globSplit(pattern, s); got != want {
			t.Fatalf("Glob(%q, %q) = %v, want %v", pattern, s, got, want)
		}
	})
}
