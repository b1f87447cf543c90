//go:build amd64 && gc && !purego && !noasm

package kernels

// fastScan4AVX512 is fastScan4Generic on AVX-512 BW: 4 sub-quantizers per
// 512-bit VPSHUFB. len(dst) = 32*nblocks, npairs = nsq/2.
//
//go:noescape
func fastScan4AVX512(dst []uint16, packed []byte, nblocks, npairs int, lut []uint8)

// fastScan4AVX2 is fastScan4Generic on AVX2: 2 sub-quantizers per 256-bit VPSHUFB.
//
//go:noescape
func fastScan4AVX2(dst []uint16, packed []byte, nblocks, npairs int, lut []uint8)

// fastScan4FilterAVX512 is fastScan4FilterGeneric on AVX-512 BW (VPCMPUW
// into a mask, VPCOMPRESSD of ids and sums). thresh > 0.
//
//go:noescape
func fastScan4FilterAVX512(ids []int32, dists []uint16, packed []byte, nblocks, npairs int, lut []uint8, thresh uint16, base int32) (count, blocks int)

// fastScan4FilterAVX2 is fastScan4FilterGeneric on AVX2 (VPMINUW+VPCMPEQW,
// VPMOVMSKB, a loop over the set bits). thresh > 0.
//
//go:noescape
func fastScan4FilterAVX2(ids []int32, dists []uint16, packed []byte, nblocks, npairs int, lut []uint8, thresh uint16, base int32) (count, blocks int)

func fastScan4(dst []uint16, packed []byte, nblocks, m int, lut []uint8) {
	switch {
	case cpu.level >= AVX512:
		fastScan4AVX512(dst, packed, nblocks, fastScan4NSQ(m)/2, lut)
	case cpu.level >= AVX2:
		fastScan4AVX2(dst, packed, nblocks, fastScan4NSQ(m)/2, lut)
	default:
		fastScan4Generic(dst, packed, nblocks, m, lut)
	}
}

func fastScan4Filter(ids []int32, dists []uint16, packed []byte, nblocks, m int, lut []uint8, thresh uint16, base int32) (count, blocks int) {
	switch {
	case cpu.level >= AVX512:
		return fastScan4FilterAVX512(ids, dists, packed, nblocks, fastScan4NSQ(m)/2, lut, thresh, base)
	case cpu.level >= AVX2:
		return fastScan4FilterAVX2(ids, dists, packed, nblocks, fastScan4NSQ(m)/2, lut, thresh, base)
	default:
		return fastScan4FilterGeneric(ids, dists, packed, nblocks, m, lut, thresh, base)
	}
}
