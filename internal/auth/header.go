package auth

import (
	"errors"
	"strings"
)

// CredentialKind says what a presented token is.
type CredentialKind uint8

const (
	// NoCredential: the request carries none.
	NoCredential CredentialKind = iota
	// APIKey is an opaque key: a server-generated "agk-…" key or the bootstrap admin key.
	APIKey
	// JWT is a JSON Web Token in compact serialisation.
	JWT
)

func (k CredentialKind) String() string {
	switch k {
	case APIKey:
		return "api_key"
	case JWT:
		return "jwt"
	}
	return "none"
}

// Credential is what a request presented.
type Credential struct {
	Kind  CredentialKind
	Token string
}

// MaxTokenLen bounds a presented token. Keys are 47 bytes; JWTs with a few claims stay far
// under it; anything longer is refused before it is hashed or decoded.
const MaxTokenLen = 8192

// Errors of ParseCredential. Their text is safe to show to the client.
var (
	ErrScheme      = errors.New("the Authorization header must be \"Bearer <token>\"")
	ErrEmptyToken  = errors.New("the credential is empty")
	ErrTokenChars  = errors.New("the credential contains characters outside printable ASCII")
	ErrTokenLength = errors.New("the credential is too long")
	ErrConflicting = errors.New("Authorization and x-api-key carry different credentials")
)

// ParseCredential reads the credential from the values of the Authorization and x-api-key
// headers (empty when absent). Authorization must use the Bearer scheme (any case); x-api-key
// holds the bare token (a "Bearer " prefix there is tolerated). When both are present they must
// carry the same token. The token is then classified by shape: JWT when it is three
// dot-separated base64url segments (the signature may be empty, so that "alg: none" tokens are
// recognised — and refused — as JWTs), API key otherwise.
//
// A request with neither header gives a Credential of kind NoCredential and no error.
func ParseCredential(authorization, xAPIKey string) (Credential, error) {
	var fromAuth, fromKey string
	if authorization != "" {
		scheme, rest, ok := strings.Cut(strings.TrimLeft(authorization, " \t"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return Credential{}, ErrScheme
		}
		fromAuth = strings.Trim(rest, " \t")
		if fromAuth == "" {
			return Credential{}, ErrEmptyToken
		}
	}
	if xAPIKey != "" {
		fromKey = strings.Trim(xAPIKey, " \t")
		if len(fromKey) > 7 && strings.EqualFold(fromKey[:7], "Bearer ") {
			fromKey = strings.TrimLeft(fromKey[7:], " \t")
		}
		if fromKey == "" {
			return Credential{}, ErrEmptyToken
		}
	}
	token := fromAuth
	switch {
	case fromAuth == "" && fromKey == "":
		return Credential{}, nil
	case fromAuth == "":
		token = fromKey
	case fromKey != "" && fromKey != fromAuth:
		return Credential{}, ErrConflicting
	}
	if len(token) > MaxTokenLen {
		return Credential{}, ErrTokenLength
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c > '~' {
			return Credential{}, ErrTokenChars
		}
	}
	if looksLikeJWT(token) {
		return Credential{Kind: JWT, Token: token}, nil
	}
	return Credential{Kind: APIKey, Token: token}, nil
}

// looksLikeJWT reports whether token is header.payload.signature with base64url segments, the
// first two non-empty. A JWT header is a JSON object, so its encoding starts with "eyJ"; that
// keeps a key that happens to contain two dots from being read as a token.
func looksLikeJWT(token string) bool {
	if !strings.HasPrefix(token, "eyJ") {
		return false
	}
	dots := 0
	segLen := 0
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case c == '.':
			if segLen == 0 {
				return false
			}
			dots++
			segLen = 0
			if dots == 2 {
				segLen = 1 // the signature may be empty
			}
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			segLen++
		default:
			return false
		}
	}
	return dots == 2
}
