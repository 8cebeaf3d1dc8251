//go:build race

package codecheck

// raceEnabled: the race detector is on.
const raceEnabled = true
