package cuda

// kernelEntries names the kernels of each PTX file that the package
// launches.
var kernelEntries = map[string][]string{
	"mlp.ptx":   {"gemm_f32", "gemm_bf16", "heads"},
	"exact.ptx": {"ip_topk", "topk_merge", "rescore"},
}

// topkChunk is exact.cu's TOPK_CHUNK: the rows a top-k block sorts.
const topkChunk = 4096

// MaxK is the largest k of Catalogue.TopK: a merge round must halve the
// candidates at least.
const MaxK = topkChunk / 2

// MaxDim is the widest vector a Catalogue holds (exact.cu's MAX_DIM: the
// query sits in shared memory).
const MaxDim = 2048
