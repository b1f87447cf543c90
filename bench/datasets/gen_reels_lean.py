#!/usr/bin/env python3
"""Make the reels benchmark set of ../shared/datasets/gen_reels.py within a
few GB of memory, for catalogues of ten million reels and more.

Usage: gen_reels_lean.py OUTDIR [--n 10000000] [--nq 10000] [--d 128] [--seed 42]

The base and query files are byte for byte those of gen_reels.py with the same
arguments: the random draws come in the same order, the base vectors are made
and written a block of rows at a time. The ground truth (exact top-k by inner
product, ties by smaller id) is computed a block of queries against a block of
base rows at a time and merged, instead of all base rows at once; it can
differ from gen_reels.py's only where two scores tie to the last bit at the
k-th place. For 10M reels: about 6 GB of memory and 10 minutes on 2 cores.
Needs numpy (Debian: python3-numpy); run with /usr/bin/python3.
"""
import argparse, os, sys, numpy as np


def write_rows(f, a):
    a = np.ascontiguousarray(a)
    out = np.empty((a.shape[0], a.shape[1] + 1), dtype=np.float32 if a.dtype == np.float32 else np.int32)
    out.view(np.int32)[:, 0] = a.shape[1]
    out[:, 1:] = a
    out.tofile(f)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('outdir'); p.add_argument('--n', type=int, default=10_000_000)
    p.add_argument('--nq', type=int, default=10_000); p.add_argument('--d', type=int, default=128)
    p.add_argument('--topics', type=int, default=2000); p.add_argument('--k', type=int, default=1000)
    p.add_argument('--seed', type=int, default=42)
    p.add_argument('--rows', type=int, default=1 << 18, help='base rows a block')
    p.add_argument('--qblock', type=int, default=128, help='queries a block of the ground truth')
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    d, n = a.d, a.n
    c = rng.standard_normal((a.topics, d)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    pt = 1.0 / (np.arange(a.topics) + 10.0); pt /= pt.sum()
    t = rng.choice(a.topics, size=n, p=pt)
    x = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, a.rows):
        e = min(n, s + a.rows)
        x[s:e] = c[t[s:e]] + 1.4 * rng.standard_normal((e - s, d)).astype(np.float32) / np.sqrt(d)
        x[s:e] /= np.linalg.norm(x[s:e], axis=1, keepdims=True)
    del t
    scale = rng.lognormal(0.0, 0.25, size=(n, 1)).astype(np.float32)
    for s in range(0, n, a.rows):
        x[s:s + a.rows] *= scale[s:s + a.rows]
    del scale
    q = np.zeros((a.nq, d), dtype=np.float32)
    for i in range(a.nq):
        m = rng.integers(1, 4)
        ts = rng.choice(a.topics, size=m, p=pt)
        w = rng.dirichlet(np.ones(m))
        q[i] = (w[:, None] * c[ts]).sum(0)
    q += rng.standard_normal((a.nq, d)).astype(np.float32) / np.sqrt(d)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    os.makedirs(a.outdir, exist_ok=True)
    pre = os.path.join(a.outdir, 'reels1m' if n == 1_000_000 else f'reels{n}')
    with open(pre + '.base.fvecs', 'wb') as f:
        for s in range(0, n, a.rows):
            write_rows(f, x[s:s + a.rows])
    with open(pre + '.query.fvecs', 'wb') as f:
        write_rows(f, q)

    k = a.k
    bb = max(a.rows * 4, k)  # base rows scored a block
    with open(pre + '.gt.ivecs', 'wb') as f:
        for qs in range(0, a.nq, a.qblock):
            qb = q[qs:qs + a.qblock]
            best_s = np.full((qb.shape[0], 0), -np.inf, dtype=np.float32)
            best_i = np.zeros((qb.shape[0], 0), dtype=np.int64)
            for s in range(0, n, bb):
                sc = qb @ x[s:s + bb].T
                kk = min(k, sc.shape[1])
                idx = np.argpartition(-sc, kk - 1, axis=1)[:, :kk]
                best_s = np.concatenate([best_s, np.take_along_axis(sc, idx, axis=1)], axis=1)
                best_i = np.concatenate([best_i, idx + s], axis=1)
                if best_s.shape[1] > 4 * k:
                    sel = np.argpartition(-best_s, k - 1, axis=1)[:, :k]
                    best_s = np.take_along_axis(best_s, sel, axis=1)
                    best_i = np.take_along_axis(best_i, sel, axis=1)
            order = np.lexsort((best_i, -best_s), axis=1)[:, :k]
            write_rows(f, np.take_along_axis(best_i, order, axis=1).astype(np.int32))
            print(f'\rground truth {min(qs + a.qblock, a.nq)}/{a.nq}', end='', file=sys.stderr)
    print(file=sys.stderr)


if __name__ == '__main__':
    main()
