package store

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Cursor is the position after the last item of a page. Drivers encode it into Page.Next with
// String and decode the caller's ListParams.Cursor with ParseCursor; callers treat it as
// opaque. Lists of users and keys are ordered by (created time, id), records by id.
type Cursor struct {
	// Time and ID locate a user or key.
	Time time.Time
	ID   string
	// Seq locates a usage or audit record.
	Seq int64
}

// String encodes c as URL-safe text.
func (c Cursor) String() string {
	var s string
	if c.ID != "" || !c.Time.IsZero() {
		s = "t" + strconv.FormatInt(c.Time.UnixMicro(), 10) + ":" + c.ID
	} else {
		s = "s" + strconv.FormatInt(c.Seq, 10)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// ParseCursor decodes a Cursor made by String; anything else is ErrInvalid.
func ParseCursor(s string) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 {
		return Cursor{}, fmt.Errorf("%w: malformed cursor", ErrInvalid)
	}
	body := string(b[1:])
	switch b[0] {
	case 't':
		us, id, ok := strings.Cut(body, ":")
		n, err := strconv.ParseInt(us, 10, 64)
		if ok && err == nil {
			return Cursor{Time: time.UnixMicro(n).UTC(), ID: id}, nil
		}
	case 's':
		if n, err := strconv.ParseInt(body, 10, 64); err == nil {
			return Cursor{Seq: n}, nil
		}
	}
	return Cursor{}, fmt.Errorf("%w: malformed cursor", ErrInvalid)
}

// NewID returns prefix + "_" + 20 hex digits: 8 of them the current Unix time in seconds, so
// ids sort roughly by creation, and 12 random (48 bits).
func NewID(prefix string) string {
	var b [10]byte
	t := uint32(time.Now().Unix())
	b[0], b[1], b[2], b[3] = byte(t>>24), byte(t>>16), byte(t>>8), byte(t)
	_, _ = rand.Read(b[4:]) // crypto/rand.Read never fails
	return prefix + "_" + hex.EncodeToString(b[:])
}

// NewBatchID returns a new id for Append's batch argument: "bat_" and 26 characters of
// crypto/rand.Text, 130 random bits. NewID's 48 random bits per second are enough where a
// collision is a refused insert (ErrConflict); two batches given the same id would instead
// drop the second one's records without a word, so batch ids are all random and long
// enough never to meet.
func NewBatchID() string { return "bat_" + rand.Text() }

// Micro rounds t down to the microsecond and puts it in UTC: the precision and zone both
// drivers store, so a value written comes back equal. The zero time stays zero.
func Micro(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Truncate(time.Microsecond).UTC()
}

// Details returns an audit record's details as drivers store them: a compact JSON value, {}
// for none, and a JSON string holding the text when it is not valid JSON.
func Details(d json.RawMessage) []byte {
	if len(d) == 0 {
		return []byte("{}")
	}
	if !json.Valid(d) {
		b, _ := json.Marshal(string(d)) // marshalling a string cannot fail
		return b
	}
	return d
}
