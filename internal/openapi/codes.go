package openapi

import (
	"slices"

	"github.com/open-autoglm/autoglm/internal/apierr"
)

// APIVersion is the version of the native API this server speaks (see docs/API.md).
const APIVersion = "1"

// Codes are the stable error codes the server answers with, on every route shape: the
// catalogue of internal/apierr (the only place codes are made), sorted.
func Codes() []string {
	cs := make([]string, 0, len(apierr.Codes()))
	for _, c := range apierr.Codes() {
		cs = append(cs, string(c))
	}
	slices.Sort(cs)
	return cs
}
