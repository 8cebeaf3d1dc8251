package codecheck

import (
	"fmt"
	"strings"
)

// maxRepairLines bounds the numbered listing of one block in a repair prompt.
const maxRepairLines = 400

// RepairPrompt asks a model for a corrected answer: each failing block listed with numbered
// lines, the lines with errors marked ">>", then its errors. codes and checks are parallel
// (one check per block); truncated says the previous answer was cut off at its length limit.
func RepairPrompt(lang string, codes []string, checks []Result, truncated bool) string {
	var b strings.Builder
	b.WriteString("Your answer does not pass the checks below. Fix every error and answer with the complete corrected code ")
	if len(codes) > 1 {
		b.WriteString("(every block, each in its own fenced block, in the same order)")
	} else {
		fmt.Fprintf(&b, "in a single fenced code block tagged %s", lang)
	}
	b.WriteString(" — the whole code, not only the changed lines.\n")
	for i, code := range codes {
		if i >= len(checks) {
			break
		}
		c := checks[i]
		if c.Errors() == 0 {
			continue
		}
		bad := map[int]bool{}
		for _, d := range c.Diagnostics {
			if d.Severity == SeverityError {
				bad[d.Line] = true
			}
		}
		fmt.Fprintf(&b, "\nBlock %d (%s), checked by %s; lines with errors are marked >>:\n", i+1, c.Language, c.Checker)
		lines := strings.Split(code, "\n")
		width := len(fmt.Sprint(len(lines)))
		for n, line := range lines {
			if n >= maxRepairLines {
				fmt.Fprintf(&b, "   … %d more lines\n", len(lines)-n)
				break
			}
			mark := "  "
			if bad[n+1] {
				mark = ">>"
			}
			fmt.Fprintf(&b, "%s %*d | %s\n", mark, width, n+1, line)
		}
		b.WriteString("Errors:\n")
		for _, d := range c.Diagnostics {
			if d.Severity != SeverityError {
				continue
			}
			if d.Line > 0 {
				fmt.Fprintf(&b, "- line %d, column %d: %s\n", d.Line, d.Column, d.Message)
			} else {
				fmt.Fprintf(&b, "- %s\n", d.Message)
			}
		}
	}
	if truncated {
		b.WriteString("\nThe previous answer was cut off at the length limit: write a shorter complete answer.\n")
	}
	return b.String()
}
