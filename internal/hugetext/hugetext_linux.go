//go:build linux && (amd64 || arm64)

package hugetext

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

func remap() (int, error) {
	if err := available(); err != nil {
		return 0, err
	}
	lo, hi, err := textRange()
	if err != nil {
		return 0, err
	}
	a := (lo + pageSize - 1) &^ (pageSize - 1)
	b := hi &^ (pageSize - 1)
	if b <= a {
		return 0, fmt.Errorf("%w: the text holds no whole huge page", ErrUnavailable)
	}
	n := b - a
	// One page more than needed, so that an aligned start can be chosen inside it. Raw
	// system calls throughout: the region is given back in parts, which package syscall's
	// mapping bookkeeping does not allow.
	base, _, e := syscall.Syscall6(syscall.SYS_MMAP, 0, n+pageSize, syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS, ^uintptr(0), 0)
	if e != 0 {
		return 0, e
	}
	dst := (base + pageSize - 1) &^ (pageSize - 1)
	unmap := func(from, to uintptr) {
		if to > from {
			_, _, _ = syscall.Syscall(syscall.SYS_MUNMAP, from, to-from, 0)
		}
	}
	undo := func(err error) (int, error) {
		unmap(base, base+n+pageSize)
		return 0, err
	}
	if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, dst, n, 14 /* MADV_HUGEPAGE */); e != 0 {
		return undo(e)
	}
	// Neither address is Go memory: both come from the kernel's map of this process.
	copy(unsafe.Slice((*byte)(unsafe.Add(nil, dst)), n), unsafe.Slice((*byte)(unsafe.Add(nil, a)), n))
	if _, _, e := syscall.Syscall(syscall.SYS_MPROTECT, dst, n, syscall.PROT_READ|syscall.PROT_EXEC); e != 0 {
		return undo(fmt.Errorf("%w: executable anonymous memory refused: %v", ErrUnavailable, e))
	}
	const mayMove, fixed = 1, 2
	if _, _, e := syscall.Syscall6(syscall.SYS_MREMAP, dst, n, n, mayMove|fixed, a, 0); e != 0 {
		return undo(e)
	}
	// The aligned part now lives at a; what is left of the temporary region before and after
	// it is given back.
	unmap(base, dst)
	unmap(dst+n, base+n+pageSize)
	return int(n), nil
}

// available reports whether transparent huge pages of 2 MiB can back an madvised region.
func available() error {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if bytes.Contains(mode, []byte("[never]")) {
		return fmt.Errorf("%w: transparent huge pages are off", ErrUnavailable)
	}
	size, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if n, err := strconv.Atoi(strings.TrimSpace(string(size))); err != nil || n != pageSize {
		return fmt.Errorf("%w: the huge page is %s bytes, not 2 MiB", ErrUnavailable, strings.TrimSpace(string(size)))
	}
	return nil
}

// textRange finds the executable's read-execute mapping in /proc/self/maps.
func textRange() (lo, hi uintptr, err error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lo, hi, ok := parseMapsLine(sc.Text(), exe)
		if ok {
			return lo, hi, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	return 0, 0, fmt.Errorf("%w: no executable mapping of %s", ErrUnavailable, exe)
}

// parseMapsLine returns the range of a /proc/PID/maps line when it maps exe read-execute.
func parseMapsLine(line, exe string) (lo, hi uintptr, ok bool) {
	f := strings.Fields(line)
	if len(f) < 6 || f[1] != "r-xp" || strings.Join(f[5:], " ") != exe {
		return 0, 0, false
	}
	start, end, found := strings.Cut(f[0], "-")
	if !found {
		return 0, 0, false
	}
	a, err1 := strconv.ParseUint(start, 16, 64)
	b, err2 := strconv.ParseUint(end, 16, 64)
	if err1 != nil || err2 != nil || b <= a {
		return 0, 0, false
	}
	return uintptr(a), uintptr(b), true
}
