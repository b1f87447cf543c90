//go:build !amd64 || !gc || purego || noasm

package kernels

func fastScan4(dst []uint16, packed []byte, nblocks, m int, lut []uint8) {
	fastScan4Generic(dst, packed, nblocks, m, lut)
}

func fastScan4Filter(ids []int32, dists []uint16, packed []byte, nblocks, m int, lut []uint8, thresh uint16, base int32) (count, blocks int) {
	return fastScan4FilterGeneric(ids, dists, packed, nblocks, m, lut, thresh, base)
}
