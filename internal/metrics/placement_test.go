package metrics_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/open-autoglm/autoglm/internal/cpuplace"
	"github.com/open-autoglm/autoglm/internal/metrics"
)

type placerStats cpuplace.Stats

func (s placerStats) Stats() cpuplace.Stats { return cpuplace.Stats(s) }

func TestPlacement(t *testing.T) {
	for _, c := range []struct {
		s    cpuplace.Stats
		want string
	}{
		{cpuplace.Stats{Gathered: true, CPU: 1, Gathers: 3, Spreads: 2, Moves: 4}, `
autoglm_cpu_gathered 1
autoglm_cpu_placement_changes_total{to="gathered"} 3
autoglm_cpu_placement_changes_total{to="moved"} 4
autoglm_cpu_placement_changes_total{to="spread"} 2
`},
		{cpuplace.Stats{CPU: -1, Gathers: 3, Spreads: 3}, `
autoglm_cpu_gathered 0
autoglm_cpu_placement_changes_total{to="gathered"} 3
autoglm_cpu_placement_changes_total{to="moved"} 0
autoglm_cpu_placement_changes_total{to="spread"} 3
`},
	} {
		want := `# HELP autoglm_cpu_gathered 1 while the server's threads are gathered on one CPU (server.cpu_placement: gather), 0 while spread.
# TYPE autoglm_cpu_gathered gauge` + strings.Replace(c.want, "\nautoglm_cpu_placement", `
# HELP autoglm_cpu_placement_changes_total Times the server's threads were gathered on one CPU (to=gathered), spread over all again (to=spread), or moved, gathered, to a quieter CPU (to=moved).
# TYPE autoglm_cpu_placement_changes_total counter
autoglm_cpu_placement`, 1)
		if err := testutil.CollectAndCompare(metrics.Placement(placerStats(c.s)), strings.NewReader(want)); err != nil {
			t.Errorf("%+v: %v", c.s, err)
		}
		if problems, err := testutil.CollectAndLint(metrics.Placement(placerStats(c.s))); err != nil || len(problems) > 0 {
			t.Errorf("lint: %v %v", problems, err)
		}
	}
}
