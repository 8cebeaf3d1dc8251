package server

import (
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/httpapi"
)

// The native API's media type. A client pins the version it was written against with
// Accept: application/vnd.autoglm.v1+json; application/json and */* mean the current version.
// See docs/API.md for the policy.
const (
	mediaTypePrefix = "application/vnd.autoglm"
	// APIVersion is the one version of the native API this server speaks.
	APIVersion = "v1"
	// MediaType is the native API's media type of that version.
	MediaType = mediaTypePrefix + "." + APIVersion + "+json"
)

// acceptsVersion reports whether an Accept header lets a native route answer in APIVersion:
// true when it names no version of the native media type, or names APIVersion (or the
// unversioned application/vnd.autoglm+json), or also accepts plain JSON. A header that asks
// only for other versions is refused.
func acceptsVersion(accept string) bool {
	if accept == "" || !strings.Contains(accept, mediaTypePrefix) {
		return true
	}
	otherJSON := false
	for part := range strings.SplitSeq(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if q, ok := params["q"]; ok {
			if v, err := strconv.ParseFloat(q, 64); err == nil && v <= 0 {
				continue
			}
		}
		switch {
		case mt == MediaType || mt == mediaTypePrefix+"+json":
			return true
		case strings.HasPrefix(mt, mediaTypePrefix):
		case mt == "application/json" || mt == "application/*" || mt == "*/*":
			otherJSON = true
		}
	}
	return otherJSON
}

// errVersion answers a request for a version of the native API this server does not speak.
var errVersion = &apierr.Error{Kind: apierr.NotAcceptable, Code: apierr.CodeUnsupportedAPIVersion,
	Message: "this server speaks version " + APIVersion + " of the native API: accept " + MediaType + " or application/json"}

// versioned wraps the handler of a native (envelope) route: it refuses an Accept header
// that asks only for versions of the native API other than APIVersion with 406.
func (s *Server) versioned(rt httpapi.Route, h http.Handler) http.Handler {
	if rt.Shape != apierr.ShapeEnvelope {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !acceptsVersion(r.Header.Get("Accept")) {
			s.writeError(w, r, rt.Shape, errVersion)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// deprecated wraps the handler of a route that server.deprecations lists: every answer
// carries Deprecation (RFC 9745, the date as @unix-seconds), Sunset (RFC 8594) when one is
// announced, and a Link to the migration notes.
func deprecated(d config.Deprecation, h http.Handler) http.Handler {
	dep := "@" + strconv.FormatInt(d.Since.Unix(), 10)
	sunset := ""
	if !d.Sunset.IsZero() {
		sunset = d.Sunset.UTC().Format(http.TimeFormat)
	}
	link := ""
	if d.Link != "" {
		link = "<" + d.Link + `>; rel="deprecation"; type="text/html"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Deprecation", dep)
		if sunset != "" {
			hd.Set("Sunset", sunset)
		}
		if link != "" {
			hd.Add("Link", link)
		}
		h.ServeHTTP(w, r)
	})
}
