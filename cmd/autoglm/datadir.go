package main

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
)

// looseBits are the permission bits a data directory must not have: it holds the SQLite
// database (key hashes, users, usage) and the task tables, so others may not enter it and the
// group may not write to it.
const looseBits fs.FileMode = 0o027

// prepareDataDir creates the data directory (0750), or tightens an existing one that others
// may enter or the group may write to, removing those bits. When it cannot (the directory
// belongs to another user) it warns and goes on: the files inside are created 0600.
func prepareDataDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data dir: %s is not a directory", dir)
	}
	perm := fi.Mode().Perm()
	if perm&looseBits == 0 {
		return nil
	}
	tight := perm &^ looseBits
	if err := os.Chmod(dir, tight); err != nil {
		log.Warn("the data directory is open to other users and could not be tightened; restrict it yourself",
			"dir", dir, "mode", perm.String(), "want", tight.String(), "err", err)
		return nil
	}
	log.Info("tightened the data directory's permissions", "dir", dir, "was", perm.String(), "now", tight.String())
	return nil
}
