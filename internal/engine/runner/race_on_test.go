//go:build race

package runner

// raceEnabled shortens generations: the race detector slows the model's
// arithmetic many times over.
const raceEnabled = true
