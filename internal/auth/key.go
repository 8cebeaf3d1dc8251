package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"
)

// KeyPrefix starts every generated API key, so that keys are recognisable in logs, config
// files and secret scanners.
const KeyPrefix = "agk-"

// keyRandomBytes is the entropy of a key: 256 bits, which is what makes a plain SHA-256 of
// the key a safe thing to store (see the package documentation).
const keyRandomBytes = 32

// displayPrefixLen is how much of a key is kept in clear for display: "agk-" and 8 characters
// (48 bits), enough to tell keys apart in a list, far too little to guess the rest from.
const displayPrefixLen = len(KeyPrefix) + 8

// NewKey returns a fresh API key: KeyPrefix followed by 32 random bytes in unpadded base64url
// (47 characters in all). Show it to its owner once and store only HashKey and DisplayPrefix.
func NewKey() string {
	var b [keyRandomBytes]byte
	// crypto/rand.Read never returns an error on supported platforms (it crashes instead).
	_, _ = rand.Read(b[:])
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// HashKey is the form in which a key is stored and looked up: SHA-256 of the whole key.
func HashKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// DisplayPrefix is the part of a key kept in clear for lists and logs.
func DisplayPrefix(key string) string {
	if len(key) <= displayPrefixLen {
		return key
	}
	return key[:displayPrefixLen]
}

// Key is an API key as the store keeps it: everything but the secret.
type Key struct {
	ID     string
	UserID string
	Name   string
	// Role is the role the key acts with.
	Role string
	// Prefix is the DisplayPrefix of the key.
	Prefix string
	// Hash is HashKey of the key.
	Hash []byte
	// Models is the allow-list of model names the key may use; empty means every model.
	Models []string
	// ExpiresAt is when the key stops working; zero means never.
	ExpiresAt time.Time
	// RevokedAt is when the key was revoked; zero means it was not.
	RevokedAt time.Time
	// Disabled is true when the key's user is disabled: the key is refused like a revoked one
	// until the user is enabled again.
	Disabled  bool
	CreatedAt time.Time
	// UpdatedAt is when the store last changed the key (or its user's status), by the store's
	// clock; KeysChangedSince compares against it.
	UpdatedAt time.Time
}

// Active reports whether k may authenticate at now.
func (k *Key) Active(now time.Time) bool {
	return k.RevokedAt.IsZero() && !k.Disabled && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt))
}
