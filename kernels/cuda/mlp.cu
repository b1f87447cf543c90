// The ranker's layers on the GPU: a tiled f32 GEMM, a bf16 GEMM on the
// tensor cores (WMMA), both with the bias and activation fused, and the
// multitask head. Compiled to PTX by `make ptx`; see doc.go.
//
// Every scalar parameter is a long long: gorgonia.org/cu's Launch copies
// each kernel argument as 8 bytes.
//
// The bias of a GEMM is either one row of N values (seg == NULL), or one
// row per request (seg[m] is row m's request): the first layer's bias is
// z_r = u_r·W1u + b1, the user's share of the layer, different for each
// request of a batch.

#include <cuda_bf16.h>
#include <mma.h>

using namespace nvcuda;

#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_SIGMOID 2

__device__ __forceinline__ float activate(float v, long long act) {
    if (act == ACT_RELU) return v > 0.f ? v : 0.f;
    if (act == ACT_SIGMOID) return 1.f / (1.f + __expf(-v));
    return v;
}

__device__ __forceinline__ float bias_at(const float* bias, const int* seg, long long m, long long n, long long N) {
    if (bias == NULL) return 0.f;
    if (seg == NULL) return bias[n];
    return bias[(long long)seg[m] * N + n];
}

// gemm_f32: C[M×N] = act(A[M×K]·B[K×N] + bias). Block tile 64×64, K step
// 16, 256 threads each computing a 4×4 patch.
#define F_BM 64
#define F_BN 64
#define F_BK 16
extern "C" __global__ void __launch_bounds__(256)
gemm_f32(const float* __restrict__ A, const float* __restrict__ B,
         const float* __restrict__ bias, const int* __restrict__ seg,
         float* __restrict__ C, long long M, long long N, long long K, long long act) {
    __shared__ float As[F_BK][F_BM + 4];
    __shared__ float Bs[F_BK][F_BN + 4];
    const int tid = threadIdx.x;
    const int tr = tid / 16, tc = tid % 16;  // 16×16 threads, 4×4 each
    const long long m0 = (long long)blockIdx.y * F_BM, n0 = (long long)blockIdx.x * F_BN;
    float acc[4][4] = {{0.f}};
    for (long long k0 = 0; k0 < K; k0 += F_BK) {
        // 64×16 of A and 16×64 of B: 1024 values each, 4 per thread.
        for (int i = tid; i < F_BM * F_BK; i += 256) {
            int r = i / F_BK, c = i % F_BK;
            long long gm = m0 + r, gk = k0 + c;
            As[c][r] = (gm < M && gk < K) ? A[gm * K + gk] : 0.f;
        }
        for (int i = tid; i < F_BK * F_BN; i += 256) {
            int r = i / F_BN, c = i % F_BN;
            long long gk = k0 + r, gn = n0 + c;
            Bs[r][c] = (gk < K && gn < N) ? B[gk * N + gn] : 0.f;
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < F_BK; k++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) a[i] = As[k][tr * 4 + i];
#pragma unroll
            for (int j = 0; j < 4; j++) b[j] = Bs[k][tc * 4 + j];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        long long gm = m0 + tr * 4 + i;
        if (gm >= M) continue;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            long long gn = n0 + tc * 4 + j;
            if (gn >= N) continue;
            C[gm * N + gn] = activate(acc[i][j] + bias_at(bias, seg, gm, gn, N), act);
        }
    }
}

// gemm_bf16: C = act(bf16(A)·B + bias) with B already bf16, accumulated in
// f32 on the tensor cores. Block tile 64×64 with 4 warps of 32×32 (2×2
// WMMA fragments of 16×16×16); A's f32 rows are rounded to bf16 as they are
// loaded into shared memory. Ragged edges are padded with zeros.
#define W_BM 64
#define W_BN 64
#define W_BK 16
#define W_LDA (W_BK + 8)
#define W_LDB (W_BN + 8)
#define W_LDC (W_BN + 4)
extern "C" __global__ void __launch_bounds__(128)
gemm_bf16(const float* __restrict__ A, const __nv_bfloat16* __restrict__ B,
          const float* __restrict__ bias, const int* __restrict__ seg,
          float* __restrict__ C, long long M, long long N, long long K, long long act) {
    __shared__ __align__(32) __nv_bfloat16 As[W_BM][W_LDA];
    __shared__ __align__(32) __nv_bfloat16 Bs[W_BK][W_LDB];
    __shared__ __align__(32) float Cs[W_BM][W_LDC];
    const int tid = threadIdx.x, warp = tid / 32;
    const int wr = warp / 2, wc = warp % 2;
    const long long m0 = (long long)blockIdx.y * W_BM, n0 = (long long)blockIdx.x * W_BN;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.f);
    for (long long k0 = 0; k0 < K; k0 += W_BK) {
        for (int i = tid; i < W_BM * W_BK; i += 128) {
            int r = i / W_BK, c = i % W_BK;
            long long gm = m0 + r, gk = k0 + c;
            As[r][c] = __float2bfloat16((gm < M && gk < K) ? A[gm * K + gk] : 0.f);
        }
        for (int i = tid; i < W_BK * W_BN; i += 128) {
            int r = i / W_BN, c = i % W_BN;
            long long gk = k0 + r, gn = n0 + c;
            Bs[r][c] = (gk < K && gn < N) ? B[gk * N + gn] : __float2bfloat16(0.f);
        }
        __syncthreads();
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[2];
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb[2];
#pragma unroll
        for (int i = 0; i < 2; i++) wmma::load_matrix_sync(fa[i], &As[wr * 32 + i * 16][0], W_LDA);
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::load_matrix_sync(fb[j], &Bs[0][wc * 32 + j * 16], W_LDB);
#pragma unroll
        for (int i = 0; i < 2; i++)
#pragma unroll
            for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
            wmma::store_matrix_sync(&Cs[wr * 32 + i * 16][wc * 32 + j * 16], acc[i][j], W_LDC, wmma::mem_row_major);
    __syncthreads();
    for (int i = tid; i < W_BM * W_BN; i += 128) {
        int r = i / W_BN, c = i % W_BN;
        long long gm = m0 + r, gn = n0 + c;
        if (gm < M && gn < N) C[gm * N + gn] = activate(Cs[r][c] + bias_at(bias, seg, gm, gn, N), act);
    }
}

// heads: the multitask head. For each of M rows of H (width wide), task
// t's probability is sigmoid(H_m·Wh[:,t] + bh[t]) and the row's score is
// Σ_t w[t]·p_t. One thread a row; Wh is width×T, row-major. Always f32:
// the heads are a sliver of the work.
extern "C" __global__ void __launch_bounds__(256)
heads(const float* __restrict__ H, const float* __restrict__ Wh, const float* __restrict__ bh,
      const float* __restrict__ w, float* __restrict__ probs, float* __restrict__ score,
      long long M, long long width, long long T) {
    long long m = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (m >= M || T > 32) return;
    float acc[32];
    for (int t = 0; t < T; t++) acc[t] = bh[t];
    const float* h = H + m * width;
    for (long long p = 0; p < width; p++) {
        float v = h[p];
        const float* wr = Wh + p * T;
        for (int t = 0; t < T; t++) acc[t] += v * wr[t];
    }
    float s = 0.f;
    for (int t = 0; t < T; t++) {
        float pr = 1.f / (1.f + __expf(-acc[t]));
        probs[m * T + t] = pr;
        s += w[t] * pr;
    }
    score[m] = s;
}
