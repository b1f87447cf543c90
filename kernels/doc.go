// Package kernels holds reelrank's hot loops: float32 dot products and squared
// L2 distances (one pair, one query against many rows, many queries against
// many rows), top-k selection, product-quantizer lookup tables and scans (8-bit
// codes, and 4-bit "fast-scan" codes looked up in registers), and the small
// GEMM with fused bias and activation that the ranker runs, in f32 and bf16.
//
// Every kernel has three forms: a generic Go version that is the reference,
// an AVX2 path and an AVX-512 path in amd64 assembly. The path is chosen once
// at start from cpuid (github.com/klauspost/cpuid/v2); [SIMD] and [Describe]
// tell which. Set REELRANK_SIMD=generic, avx2 or avx512 to cap the level at
// run time (to debug, or to compare paths in benchmarks). Build with the
// purego (or noasm) tag to leave all assembly out.
//
// The generic versions are compiled on every platform, so the tests compare
// every path the machine can run with its reference on random inputs of many
// sizes, ragged tails and unaligned slices included.
//
// # Preconditions
//
// Kernels are called on hot paths by code that has already checked its
// input (ann checks query dimensions, ranker checks feature widths). A call
// whose slice lengths do not fit its shape is a programming error: it panics
// with a message that names the kernel and the sizes, before any memory is
// touched. Kernels never panic on values: NaN and Inf flow through the
// arithmetic as IEEE 754 says, and TopK ignores NaN scores.
package kernels
