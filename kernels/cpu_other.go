//go:build !amd64 || !gc || purego || noasm

package kernels

// asmEnabled says this build carries no assembly: every kernel runs its generic Go code.
const asmEnabled = false
