package openapi

import (
	"encoding/json"
	"flag"
	"slices"
	"testing"

	"github.com/open-autoglm/autoglm/internal/apierr"
)

// update rewrites docs/openapi.json from the served document.
var update = flag.Bool("update", false, "rewrite docs/openapi.json")

// TestCodesComplete: the ErrorCode enum of the served document lists exactly the codes of
// the error catalogue, so that a new code cannot ship undocumented and a removed one does not
// linger. (The catalogue's own test fails on a code written anywhere outside it.)
func TestCodesComplete(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Enum []string `json:"enum"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(Document(), &doc); err != nil {
		t.Fatal(err)
	}
	got := doc.Components.Schemas["ErrorCode"].Enum
	var want []string
	for _, c := range apierr.Codes() {
		want = append(want, string(c))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) || len(want) == 0 {
		t.Errorf("ErrorCode enum %v, want the catalogue %v", got, want)
	}
}
