//go:build !linux

package hugepage

func mapHuge(int) ([]byte, func(), bool) { return nil, nil, false }

func available() bool { return false }
