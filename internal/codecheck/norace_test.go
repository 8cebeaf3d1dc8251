//go:build !race

package codecheck

const raceEnabled = false
