// Exact search over a catalogue held on the GPU in f16: re-scoring a
// query's candidates, and a brute-force top-k over the whole catalogue.
// Compiled to PTX by `make ptx`; see doc.go.
//
// Every scalar parameter is a long long (gorgonia.org/cu copies each
// kernel argument as 8 bytes). A score is larger-is-better: the inner
// product, or the negated squared L2 distance (metric 1).
//
// The top-k runs in rounds. ip_topk scores a chunk of TOPK_CHUNK rows per
// block and keeps the chunk's best k (a bitonic sort in shared memory);
// topk_merge then sorts chunks of those partial lists the same way, each
// round dividing the candidates by TOPK_CHUNK/k, until one list is left
// per query. Ties go to the smaller row; a missing entry is -inf, row -1.

#include <cuda_fp16.h>
#include <math_constants.h>

#define TOPK_CHUNK 4096
#define TOPK_THREADS 1024
#define MAX_DIM 2048

__device__ __forceinline__ float score_row(const __half* __restrict__ x, const float* q, long long d, long long metric) {
    float acc = 0.f;
    if (metric == 1) {
        for (long long i = 0; i < d; i++) {
            float v = __half2float(x[i]) - q[i];
            acc -= v * v;
        }
    } else {
        for (long long i = 0; i < d; i++) acc += __half2float(x[i]) * q[i];
    }
    return acc;
}

// better says (s1, i1) ranks before (s2, i2).
__device__ __forceinline__ bool better(float s1, int i1, float s2, int i2) {
    if (s1 != s2) return s1 > s2;
    if (i1 < 0) return false;
    if (i2 < 0) return true;
    return i1 < i2;
}

// sort_chunk sorts TOPK_CHUNK (score, row) pairs in shared memory, best first.
__device__ void sort_chunk(float* s, int* id) {
    for (int size = 2; size <= TOPK_CHUNK; size <<= 1) {
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            __syncthreads();
            for (int i = threadIdx.x; i < TOPK_CHUNK; i += blockDim.x) {
                int j = i ^ stride;
                if (j <= i) continue;
                bool first = (i & size) == 0;  // this half ends up best first
                bool swap = first ? better(s[j], id[j], s[i], id[i]) : better(s[i], id[i], s[j], id[j]);
                if (swap) {
                    float ts = s[i]; s[i] = s[j]; s[j] = ts;
                    int ti = id[i]; id[i] = id[j]; id[j] = ti;
                }
            }
        }
    }
    __syncthreads();
}

// ip_topk: grid (chunks, queries). X is n×d f16, Q nq×d f32; block
// (c, q) writes the best k of rows [c·CHUNK, (c+1)·CHUNK) for query q to
// outS/outI at ((q·chunks)+c)·k.
extern "C" __global__ void __launch_bounds__(TOPK_THREADS)
ip_topk(const __half* __restrict__ X, const float* __restrict__ Q, long long n, long long d,
        long long k, long long metric, float* __restrict__ outS, int* __restrict__ outI) {
    __shared__ float s[TOPK_CHUNK];
    __shared__ int id[TOPK_CHUNK];
    __shared__ float q[MAX_DIM];
    const long long chunk = blockIdx.x, qi = blockIdx.y, chunks = gridDim.x;
    for (long long i = threadIdx.x; i < d; i += blockDim.x) q[i] = Q[qi * d + i];
    __syncthreads();
    for (int i = threadIdx.x; i < TOPK_CHUNK; i += blockDim.x) {
        long long row = chunk * TOPK_CHUNK + i;
        if (row < n) {
            s[i] = score_row(X + row * d, q, d, metric);
            id[i] = (int)row;
        } else {
            s[i] = -CUDART_INF_F;
            id[i] = -1;
        }
    }
    sort_chunk(s, id);
    float* os = outS + (qi * chunks + chunk) * k;
    int* oi = outI + (qi * chunks + chunk) * k;
    for (long long i = threadIdx.x; i < k; i += blockDim.x) {
        os[i] = s[i];
        oi[i] = id[i];
    }
}

// topk_merge: grid (outChunks, queries). Each query has `count` partial
// entries at inS/inI + q·count; block (c, q) sorts entries
// [c·CHUNK, (c+1)·CHUNK) and writes its best k at ((q·outChunks)+c)·k.
extern "C" __global__ void __launch_bounds__(TOPK_THREADS)
topk_merge(const float* __restrict__ inS, const int* __restrict__ inI, long long count, long long k,
           float* __restrict__ outS, int* __restrict__ outI) {
    __shared__ float s[TOPK_CHUNK];
    __shared__ int id[TOPK_CHUNK];
    const long long chunk = blockIdx.x, qi = blockIdx.y, chunks = gridDim.x;
    const float* is = inS + qi * count;
    const int* ii = inI + qi * count;
    for (int i = threadIdx.x; i < TOPK_CHUNK; i += blockDim.x) {
        long long e = chunk * TOPK_CHUNK + i;
        if (e < count) {
            s[i] = is[e];
            id[i] = ii[e];
        } else {
            s[i] = -CUDART_INF_F;
            id[i] = -1;
        }
    }
    sort_chunk(s, id);
    float* os = outS + (qi * chunks + chunk) * k;
    int* oi = outI + (qi * chunks + chunk) * k;
    for (long long i = threadIdx.x; i < k; i += blockDim.x) {
        os[i] = s[i];
        oi[i] = id[i];
    }
}

// rescore: out[q·m + j] = score of row rows[q·m + j] for query q; one
// thread a candidate. A row outside [0, n) scores -inf.
extern "C" __global__ void __launch_bounds__(256)
rescore(const __half* __restrict__ X, const float* __restrict__ Q, const int* __restrict__ rows,
        long long n, long long d, long long m, long long nq, long long metric, float* __restrict__ out) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= m * nq) return;
    long long qi = t / m;
    int row = rows[t];
    out[t] = (row < 0 || row >= n) ? -CUDART_INF_F : score_row(X + (long long)row * d, Q + qi * d, d, metric);
}
