#!/usr/bin/env python3
"""Cut a smaller catalogue out of a reels benchmark set: the first N base
vectors, the first NQ queries, and their exact ground truth recomputed
against those N (top-k by inner product, ties by smaller id).

Usage: subset.py PREFIX N OUTPREFIX [--nq 1000] [--k 1000]
Reads PREFIX.{base,query}.fvecs, writes OUTPREFIX.{base,query}.fvecs and
OUTPREFIX.gt.ivecs. The points of a catalogue-size curve (1M, 3M, 10M) then
share one distribution and one set of queries. Needs numpy; run with
/usr/bin/python3.
"""
import argparse, sys, numpy as np


def read_fvecs(path, rows):
    d = int(np.fromfile(path, dtype=np.int32, count=1)[0])
    a = np.fromfile(path, dtype=np.float32, count=rows * (d + 1)).reshape(-1, d + 1)
    if a.shape[0] < rows:
        sys.exit(f'{path}: {a.shape[0]} rows, fewer than {rows}')
    return a[:, 1:]


def write_vecs(path, a, dtype):
    out = np.empty((a.shape[0], a.shape[1] + 1), dtype=dtype)
    out.view(np.int32)[:, 0] = a.shape[1]
    out[:, 1:] = a
    out.tofile(path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('prefix'); p.add_argument('n', type=int); p.add_argument('out')
    p.add_argument('--nq', type=int, default=1000); p.add_argument('--k', type=int, default=1000)
    a = p.parse_args()
    x = read_fvecs(a.prefix + '.base.fvecs', a.n)
    q = np.ascontiguousarray(read_fvecs(a.prefix + '.query.fvecs', a.nq))
    write_vecs(a.out + '.base.fvecs', x, np.float32)
    write_vecs(a.out + '.query.fvecs', q, np.float32)
    gt = np.empty((a.nq, a.k), dtype=np.int32)
    for s in range(0, a.nq, 64):
        sc = q[s:s + 64] @ x.T
        idx = np.argpartition(-sc, a.k - 1, axis=1)[:, :a.k]
        part = np.take_along_axis(sc, idx, axis=1)
        order = np.lexsort((idx, -part), axis=1)
        gt[s:s + 64] = np.take_along_axis(idx, order, axis=1)
        print(f'\rground truth {min(s + 64, a.nq)}/{a.nq}', end='', file=sys.stderr)
    print(file=sys.stderr)
    write_vecs(a.out + '.gt.ivecs', gt, np.int32)


if __name__ == '__main__':
    main()
