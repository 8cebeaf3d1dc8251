//go:build !(linux && (amd64 || arm64))

package hugetext

func remap() (int, error) { return 0, ErrUnavailable }
