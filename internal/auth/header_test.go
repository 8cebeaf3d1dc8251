package auth

import (
	"errors"
	"strings"
	"testing"
)

const (
	sampleKey = "agk-3q2-7wEjUjBX0WQ8uUSKrG9n2x0xVZ5l0bRWm6tKgqE"
	sampleJWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl"
)

func TestParseCredential(t *testing.T) {
	tests := []struct {
		name, authz, xkey string
		kind              CredentialKind
		token             string
		err               error
	}{
		{name: "none"},
		{name: "bearer key", authz: "Bearer " + sampleKey, kind: APIKey, token: sampleKey},
		{name: "lower-case scheme", authz: "bearer " + sampleKey, kind: APIKey, token: sampleKey},
		{name: "extra spaces", authz: "  Bearer   " + sampleKey + "  ", kind: APIKey, token: sampleKey},
		{name: "bearer jwt", authz: "Bearer " + sampleJWT, kind: JWT, token: sampleJWT},
		{name: "alg none jwt has empty signature", authz: "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0.", kind: JWT, token: "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0."},
		{name: "x-api-key", xkey: sampleKey, kind: APIKey, token: sampleKey},
		{name: "x-api-key with bearer", xkey: "Bearer " + sampleKey, kind: APIKey, token: sampleKey},
		{name: "both equal", authz: "Bearer " + sampleKey, xkey: sampleKey, kind: APIKey, token: sampleKey},
		{name: "both different", authz: "Bearer " + sampleKey, xkey: "agk-other", err: ErrConflicting},
		{name: "basic scheme", authz: "Basic dXNlcjpwYXNz", err: ErrScheme},
		{name: "scheme only", authz: "Bearer", err: ErrScheme},
		{name: "empty token", authz: "Bearer    ", err: ErrEmptyToken},
		{name: "x-api-key blank", xkey: "  ", err: ErrEmptyToken},
		{name: "control char", authz: "Bearer agk-a\x00b", err: ErrTokenChars},
		{name: "inner space", authz: "Bearer agk-a b", err: ErrTokenChars},
		{name: "non-ascii", authz: "Bearer agk-é", err: ErrTokenChars},
		{name: "too long", authz: "Bearer " + strings.Repeat("a", MaxTokenLen+1), err: ErrTokenLength},
		{name: "two dots but not a jwt", authz: "Bearer agk-a.b.c", kind: APIKey, token: "agk-a.b.c"},
		{name: "jwt with four segments is a key", authz: "Bearer eyJa.b.c.d", kind: APIKey, token: "eyJa.b.c.d"},
		{name: "jwt with empty payload is a key", authz: "Bearer eyJa..c", kind: APIKey, token: "eyJa..c"},
		{name: "admin key of any shape", xkey: "my-admin-secret", kind: APIKey, token: "my-admin-secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCredential(tt.authz, tt.xkey)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if c.Kind != tt.kind || c.Token != tt.token {
				t.Errorf("got %v %q, want %v %q", c.Kind, c.Token, tt.kind, tt.token)
			}
		})
	}
}

// FuzzAuthHeader checks ParseCredential's invariants on arbitrary header values: no panic;
// an accepted token is non-empty printable ASCII within the length bound; JWT classification
// matches the shape rule; and the header order does not matter when only one is set.
func FuzzAuthHeader(f *testing.F) {
	f.Add("Bearer "+sampleKey, "")
	f.Add("", sampleKey)
	f.Add("Bearer "+sampleJWT, sampleJWT)
	f.Add("bearer eyJ.eyJ.", "")
	f.Add("Basic abc", "")
	f.Add("Bearer \x00", "x")
	f.Add("Bearer a", "Bearer b")
	f.Add("  BEARER\tx", "")
	f.Fuzz(func(t *testing.T, authz, xkey string) {
		c, err := ParseCredential(authz, xkey)
		if err != nil {
			if c != (Credential{}) {
				t.Fatalf("error %v with a credential %+v", err, c)
			}
			return
		}
		if c.Kind == NoCredential {
			if authz != "" || xkey != "" {
				t.Fatalf("no credential from %q / %q", authz, xkey)
			}
			return
		}
		if c.Token == "" || len(c.Token) > MaxTokenLen {
			t.Fatalf("bad token length %d", len(c.Token))
		}
		for i := 0; i < len(c.Token); i++ {
			if b := c.Token[i]; b <= ' ' || b > '~' {
				t.Fatalf("token has byte %#x", b)
			}
		}
		if (c.Kind == JWT) != looksLikeJWT(c.Token) {
			t.Fatalf("kind %v disagrees with the shape of %q", c.Kind, c.Token)
		}
		if c.Kind == JWT && strings.Count(c.Token, ".") != 2 {
			t.Fatalf("JWT %q without three segments", c.Token)
		}
		if authz == "" {
			again, err := ParseCredential("Bearer "+c.Token, "")
			if err != nil || again != c {
				t.Fatalf("x-api-key %q gave %+v but Authorization gives %+v, %v", xkey, c, again, err)
			}
		}
	})
}
