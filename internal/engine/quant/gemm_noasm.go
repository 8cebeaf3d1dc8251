//go:build purego || !(amd64 || arm64)

package quant

const asmLevel = "go"

func initAsm() {}

func dotF32Vec(a, b []float32) float32 { return dotF32Go(a, b) }

func axpyF32Vec(alpha float32, x, y []float32) { axpyF32Go(alpha, x, y) }

func quantQ8RowVec(a *Acts, r int) bool { return false }

func cpuHasAVX2() bool { return false }

func installAVX2(k *Kernel) {}
