package grpcapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"

	"connectrpc.com/connect"
	"github.com/klauspost/compress/gzip"
	"github.com/open-autoglm/autoglm/gen/autoglm/v1/autoglmv1connect"
	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/auth"
)

// Options configure the service's routes.
type Options struct {
	// MaxBytes is the most a request message may hold once decompressed: the server's
	// max_body_bytes. A larger message is refused with ResourceExhausted while it is being
	// decompressed, before it is decoded. Zero: no limit (tests only).
	MaxBytes int64
	// Auth, when enabled, makes a call without a credential (or whose role lacks the
	// procedure's permission) fail before its message is read. The outer authentication stage
	// has already put the principal in the request context.
	Auth *auth.Authenticator
}

// procedurePermission is the permission each procedure's inner request needs.
var procedurePermission = map[string]auth.Permission{
	autoglmv1connect.InferenceServiceChatProcedure:       auth.ModelsUse,
	autoglmv1connect.InferenceServiceChatStreamProcedure: auth.ModelsUse,
	autoglmv1connect.InferenceServiceCompleteProcedure:   auth.ModelsUse,
	autoglmv1connect.InferenceServiceEmbedProcedure:      auth.ModelsUse,
	autoglmv1connect.InferenceServiceListModelsProcedure: auth.ModelsList,
}

// handlerOptions are the Connect options that bound what a call may make the server hold.
func (o Options) handlerOptions() []connect.HandlerOption {
	var opts []connect.HandlerOption
	if o.MaxBytes > 0 {
		max := o.MaxBytes
		opts = append(opts,
			connect.WithReadMaxBytes(int(max)),
			// Connect's own gzip reads a message over the limit to its end to report its
			// size: a bomb's worth of work for nothing. This one stops at the limit.
			connect.WithCompression("gzip",
				func() connect.Decompressor { return &cappedGzip{max: max} },
				func() connect.Compressor { return gzip.NewWriter(io.Discard) },
			),
		)
	}
	if o.Auth != nil && o.Auth.Enabled() {
		opts = append(opts, connect.WithRequestGate(authorizeCall))
	}
	return opts
}

// authorizeCall refuses, before any message is read, a call whose caller could not run it:
// no credential, or a role without the procedure's permission. The model allow-list needs
// the message and is checked on the inner request.
func authorizeCall(ctx context.Context, spec connect.Spec, _ connect.Peer, _ http.Header) (context.Context, error) {
	perm, ok := procedurePermission[spec.Procedure]
	if !ok {
		return nil, connectError(apierr.New(apierr.CodeRouteNotMapped, "this procedure is not open to any role"))
	}
	p, _ := auth.FromContext(ctx)
	if err := auth.Authorize(p, perm); err != nil {
		return nil, connectError(apierr.From(err))
	}
	return nil, nil
}

// connectError is e as a Connect error: its kind's code, its public message, and its code
// and type in the metadata as httpError puts them.
func connectError(e *apierr.Error) *connect.Error {
	cerr := connect.NewError(connect.Code(e.Kind.GRPCCode()), errors.New(e.PublicMessage()))
	if c := e.PublicCode(); c != "" {
		cerr.Meta().Set(metaErrorCode, c)
	}
	if e.Param != "" {
		cerr.Meta().Set(metaParam, e.Param)
	}
	return cerr
}

// earlyErrors answers the errors the server raises before a call's handler runs (a body
// over the limit, a refused credential) in the caller's protocol.
func earlyErrors(opts ...connect.HandlerOption) func(http.ResponseWriter, *http.Request, *apierr.Error) bool {
	ew := connect.NewErrorWriter(opts...)
	return func(w http.ResponseWriter, r *http.Request, e *apierr.Error) bool {
		if !ew.IsSupported(r) {
			return false
		}
		if e.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(int64(e.RetryAfter.Seconds()+0.999), 10))
		}
		_ = ew.Write(w, r, connectError(e))
		return true
	}
}

// cappedGzip is a gzip Decompressor that yields at most max bytes: past them it fails with
// ResourceExhausted instead of inflating the rest. Connect returns a *connect.Error from a
// decompressor as it is.
type cappedGzip struct {
	zr   gzip.Reader
	max  int64
	left int64
}

func (d *cappedGzip) Read(p []byte) (int, error) {
	if d.left <= 0 {
		var one [1]byte
		n, err := d.zr.Read(one[:])
		if n == 0 && err != nil {
			return 0, err // io.EOF: the message ends exactly at the limit
		}
		return 0, tooLarge(d.max)
	}
	if int64(len(p)) > d.left {
		p = p[:d.left]
	}
	n, err := d.zr.Read(p)
	d.left -= int64(n)
	return n, err
}

func (d *cappedGzip) Close() error { return d.zr.Close() }

func (d *cappedGzip) Reset(r io.Reader) error {
	d.left = d.max
	return d.zr.Reset(r)
}

func tooLarge(max int64) *connect.Error {
	return connectError(&apierr.Error{Kind: apierr.TooLarge, Code: apierr.CodeBodyTooLarge,
		Message: "request message exceeds the limit of " + strconv.FormatInt(max, 10) + " bytes"})
}

// limitedBody turns the server's body limit (http.MaxBytesReader) into the same
// ResourceExhausted error, so that Connect answers it without its reader's internal wording.
type limitedBody struct {
	io.ReadCloser
}

func (b limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var mbe *http.MaxBytesError
	if err != nil && errors.As(err, &mbe) {
		return n, tooLarge(mbe.Limit)
	}
	return n, err
}
