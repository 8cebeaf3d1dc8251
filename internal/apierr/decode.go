package apierr

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// FromDecode is the error for a request body that encoding/json could not decode into the
// route's type: a public message naming what is wrong (the field, its expected type, the
// byte offset of a syntax error) in the project's words, never the decoder's own text, which
// stays in Err for the log. A body over the limit is TooLarge.
func FromDecode(err error) *Error {
	e := &Error{Kind: Invalid, Code: CodeInvalidJSON, Err: err}
	var (
		mbe    *http.MaxBytesError
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	msg := err.Error()
	switch {
	case errors.As(err, &mbe):
		return From(err)
	case errors.Is(err, io.EOF):
		e.Message = "the request body is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		e.Message = "the request body ends before its JSON value does"
	case strings.Contains(msg, "exceeded max depth"): // a SyntaxError too
		e.Message = "the request body nests JSON values too deeply"
	case errors.As(err, &syntax):
		e.Message = "the request body is not valid JSON (at byte " + strconv.FormatInt(syntax.Offset, 10) + ")"
	case errors.As(err, &typ):
		want := typ.Type.Kind().String()
		switch want {
		case "struct", "map":
			want = "object"
		case "slice", "array":
			want = "array"
		case "int", "int64", "int32", "uint", "uint64", "uint32", "float64", "float32":
			want = "number"
		case "ptr", "pointer":
			want = "value of another type"
		}
		if typ.Field == "" {
			e.Message = "the request body must be a JSON " + want
		} else {
			e.Param = typ.Field
			e.Message = "the field " + quoteField(typ.Field) + " must be a " + want + ", not " + typ.Value
		}
	case strings.HasPrefix(msg, "json: unknown field "):
		name, uerr := strconv.Unquote(strings.TrimPrefix(msg, "json: unknown field "))
		if uerr != nil {
			name = "?"
		}
		e.Param = name
		e.Message = "the request body has a field this route does not know: " + quoteField(name)
	default:
		e.Message = "the request body is not valid JSON for this route"
	}
	return e
}

// quoteField quotes a field name from the client's body, cut to a sane length.
func quoteField(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(s)
}
