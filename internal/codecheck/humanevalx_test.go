package codecheck

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/internal/humanevalx"
)

// The proof: every checker accepts all 164 canonical solutions of each HumanEval-X language it
// covers (prompt + canonical_solution), and catches mutated solutions at a rate that is logged
// and held above a floor. The floors are a little under the rates measured when they were set
// (docs/CODECHECK.md has the table).

type mutation struct {
	name   string
	mutate func(lang string, p humanevalx.Problem, rng *rand.Rand) (string, bool)
	// floor is the lowest acceptable catch rate, by dataset language.
	floor map[string]float64
}

var brackets = regexp.MustCompile(`[(){}\[\]]`)

var mutations = []mutation{
	{
		name: "bracket dropped",
		mutate: func(lang string, p humanevalx.Problem, rng *rand.Rand) (string, bool) {
			locs := brackets.FindAllStringIndex(p.CanonicalSolution, -1)
			if len(locs) == 0 {
				return "", false
			}
			at := locs[rng.IntN(len(locs))][0]
			sol := p.CanonicalSolution[:at] + p.CanonicalSolution[at+1:]
			return p.Solution(lang, sol), true
		},
		floor: map[string]float64{"go": 0.95, "js": 0.9, "python": 0.9, "cpp": 0.9, "java": 0.9, "rust": 0.9},
	},
	{
		name: "body truncated",
		mutate: func(lang string, p humanevalx.Problem, _ *rand.Rand) (string, bool) {
			lines := strings.SplitAfter(strings.TrimRight(p.CanonicalSolution, "\n"), "\n")
			if len(lines) < 2 {
				return "", false
			}
			return p.Solution(lang, strings.Join(lines[:len(lines)/2], "")), true
		},
		// Python: cutting a body at a line boundary mostly leaves valid code; the rate is
		// measured, not held.
		floor: map[string]float64{"go": 0.95, "js": 0.9, "python": -1, "cpp": 0.9, "java": 0.9, "rust": 0.9},
	},
	{
		name: "identifier renamed",
		mutate: func(lang string, p humanevalx.Problem, rng *rand.Rand) (string, bool) {
			locs := goIdent.FindAllStringIndex(p.CanonicalSolution, -1)
			var cands [][]int
			for _, l := range locs {
				if !goKeywords[p.CanonicalSolution[l[0]:l[1]]] && !inGoString(p.CanonicalSolution, l[0]) {
					cands = append(cands, l)
				}
			}
			if len(cands) == 0 {
				return "", false
			}
			l := cands[rng.IntN(len(cands))]
			sol := p.CanonicalSolution[:l[1]] + "Renamed" + p.CanonicalSolution[l[1]:]
			return p.Solution(lang, sol), true
		},
		floor: map[string]float64{"go": 0.85},
	},
}

var goIdent = regexp.MustCompile(`\b[A-Za-z_][A-Za-z0-9_]*\b`)

var goKeywords = map[string]bool{}

func init() {
	for _, k := range strings.Fields("break default func interface select case defer go map struct chan else goto package switch const fallthrough if range type continue for import return var " +
		"true false nil iota append cap clear close complex copy delete imag len make max min new panic print println real recover " +
		"bool byte complex64 complex128 error float32 float64 int int8 int16 int32 int64 rune string uint uint8 uint16 uint32 uint64 uintptr any comparable _") {
		goKeywords[k] = true
	}
}

// inGoString reports whether offset at of src lies inside a string, rune literal or comment
// on its line (a rough test, good enough to pick identifiers to rename).
func inGoString(src string, at int) bool {
	start := strings.LastIndexByte(src[:at], '\n') + 1
	line := src[start:at]
	if strings.Contains(line, "//") {
		return true
	}
	return strings.Count(line, `"`)%2 == 1 || strings.Count(line, "'")%2 == 1 || strings.Count(line, "`")%2 == 1
}

func TestHumanEvalXCanonicalAndMutated(t *testing.T) {
	dir := humanevalx.TestDir(t)
	c := New()
	ctx := context.Background()
	var table strings.Builder
	fmt.Fprintf(&table, "%-8s %-20s %s\n", "language", "mutation", "caught")
	for _, lang := range humanevalx.Languages {
		probs, err := humanevalx.Load(dir, lang)
		if err != nil {
			t.Fatal(err)
		}
		if len(probs) != 164 {
			t.Fatalf("%s: %d problems, want 164", lang, len(probs))
		}
		cl := humanevalx.CheckerLanguage(lang)
		t.Run(lang+"/canonical", func(t *testing.T) {
			for _, p := range probs {
				res := c.Check(ctx, Request{Language: cl, Code: p.Canonical(lang)})
				if res.Status != StatusPassed {
					t.Errorf("%s: status %s, diagnostics %v", p.TaskID, res.Status, res.Diagnostics)
				}
			}
		})
		for _, m := range mutations {
			floor, ok := m.floor[lang]
			if !ok {
				continue
			}
			t.Run(lang+"/"+strings.ReplaceAll(m.name, " ", "_"), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(18, 1))
				caught, total := 0, 0
				var missed []string
				for _, p := range probs {
					code, ok := m.mutate(lang, p, rng)
					if !ok {
						continue
					}
					total++
					if res := c.Check(ctx, Request{Language: cl, Code: code}); res.Status == StatusFailed {
						caught++
					} else {
						missed = append(missed, p.TaskID)
					}
				}
				rate := float64(caught) / float64(total)
				fmt.Fprintf(&table, "%-8s %-20s %d/%d = %.1f%%\n", lang, m.name, caught, total, 100*rate)
				if floor >= 0 && rate < floor {
					t.Errorf("caught %d of %d (%.1f%%), want at least %.0f%%; missed %v", caught, total, 100*rate, 100*floor, missed)
				}
			})
		}
	}
	t.Logf("catch rates of mutated HumanEval-X solutions:\n%s", table.String())
}
