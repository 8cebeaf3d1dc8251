//go:build !race

package plugin_test

// raceEnabled: the race detector is on.
const raceEnabled = false
