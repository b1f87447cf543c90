//go:build amd64 && gc && !purego && !noasm

package kernels

// prefetch issues PREFETCHT0 for every 64-byte line of b (len(b) > 0).
//
//go:noescape
func prefetch(b []byte)
