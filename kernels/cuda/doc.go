// Package cuda is reelrank's GPU backend: the ranker's layers and exact
// search over the catalogue on an NVIDIA GPU, through the CUDA driver API
// (gorgonia.org/cu). Everything but this documentation, the error values
// and the shapes of what a GPU is given ([MLPSpec]) is built with the
// build tag cuda only; the default build neither links nor needs CUDA.
//
// # Building
//
// The kernels are CUDA C in mlp.cu and exact.cu, compiled to PTX for sm_90
// by `make ptx` (nvcc, with the flags in nvcc.flags) and committed under
// ptx/; the package embeds them with go:embed and the driver compiles them
// for the GPU at hand when a [Device] opens. TestPTXFresh recompiles them
// where the same nvcc is installed and fails if the committed PTX is
// stale. `make build-cuda` builds the binary with -tags cuda; it links
// libcuda (the driver) alone, no cuBLAS, no runtime library. Note that
// gorgonia.org/cu calls cuInit when the process starts and exits if it
// fails, so a cuda binary runs on GPU hosts only. DEVELOPERS.md has the
// recipe.
//
// # Devices
//
// [Open] makes a [Device]: the GPU's primary context, its module of
// kernels, one stream, a pool of device memory (buffers kept by size class
// and reused) and pinned host buffers for the copies. A Device serialises
// its work; each call binds the context to the calling OS thread for its
// duration. Every driver call's result is checked; an error wraps one of
// [ErrNoDevice], [ErrOutOfMemory], [ErrDeviceLost] (the context is
// unusable: an illegal address, a launch failure, an ECC error) or
// [ErrDriver], with the operation and the driver's error name. After
// ErrDeviceLost every call fails fast with it.
//
// # The ranker
//
// [Device.NewMLP] uploads a ranker given as an [MLPSpec]: the first layer
// split into its user rows and the rest, the later layers, the heads and
// the score weights, in f32 or bf16. [MLP.Run] scores a batch of requests
// in one pass: R user rows, M candidate rows and the request of each
// candidate row. The user's share of the first layer, z_r = u_r·W1u + b1,
// is a GEMM of R rows; the candidates' first layer adds z_r as a per-row
// bias, so the batch never repeats the user's features per candidate. In
// bf16 the GEMMs run on the tensor cores (WMMA, f32 accumulation), the
// user's share and the heads in f32.
//
// # Exact search
//
// [Device.NewCatalogue] holds a catalogue's vectors in device memory as
// f16. [Catalogue.Rescore] scores given rows for a query exactly;
// [Catalogue.TopK] is a brute-force top-k over every row (k ≤ [MaxK]): per
// chunk of 4,096 rows a block keeps its best k, and merge rounds reduce
// the partial lists to one per query.
package cuda
