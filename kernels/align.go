package kernels

import "unsafe"

// Align is the alignment of the buffers that AlignedFloat32 and AlignedBytes
// return: one cache line, and one 512-bit register.
const Align = 64

// AlignedFloat32 returns a zeroed slice of n float32 whose first element
// sits on a 64-byte boundary, so that vector loads never split cache lines.
func AlignedFloat32(n int) []float32 {
	if n <= 0 {
		return []float32{}
	}
	buf := make([]float32, n+Align/4)
	off := alignOffset(unsafe.Pointer(&buf[0])) / 4
	return buf[off : off+n : off+n]
}

// AlignedBytes returns a zeroed slice of n bytes whose first byte sits on a
// 64-byte boundary.
func AlignedBytes(n int) []byte {
	if n <= 0 {
		return []byte{}
	}
	buf := make([]byte, n+Align)
	off := alignOffset(unsafe.Pointer(&buf[0]))
	return buf[off : off+n : off+n]
}

// alignOffset is how many bytes past p the next 64-byte boundary lies.
func alignOffset(p unsafe.Pointer) int {
	return int((Align - uintptr(p)%Align) % Align)
}
