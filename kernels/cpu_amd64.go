//go:build amd64 && gc && !purego && !noasm

package kernels

// asmEnabled says this build carries the amd64 assembly kernels.
const asmEnabled = true
