package ann

import (
	"fmt"
	"math"
)

// DefaultLists is the number of inverted lists Build uses for n vectors
// when Options.Lists is 0: about 2·√n, so that a list holds about √n/2
// vectors, but at most n/16 (k-means needs points to place its centroids)
// and at most 8192; at least 1. On reels1m (k = 1000) 2,000 lists reach a
// recall at a lower cost than 1,000 or 4,000: fewer lists make the long
// ones longer (the p99 of a query follows the longest lists probed), more
// lists make ranking them cost more than it saves.
func DefaultLists(n int) int {
	return max(1, min(8192, int(2*math.Sqrt(float64(n))), n/16))
}

// buildChunk is how many vectors Build adds at a time, so that the
// memory of the codes grows with the lists.
const buildChunk = 65536

// Build trains an index on vecs and adds every row under its id: ids[i]
// names row i (nil: the row numbers). Options.Dim defaults to vecs.Dim and
// must equal it; Options.Lists defaults to DefaultLists(vecs.Len()).
func Build(vecs Vectors, ids []int64, opt Options) (*Index, error) {
	n := vecs.Len()
	if ids != nil && len(ids) != n {
		return nil, fmt.Errorf("ann: build: %d ids for %d vectors", len(ids), n)
	}
	if opt.Dim == 0 {
		opt.Dim = vecs.Dim
	}
	if opt.Dim != vecs.Dim {
		return nil, fmt.Errorf("ann: build: dimension %d, the vectors have %d", opt.Dim, vecs.Dim)
	}
	if opt.Lists == 0 {
		opt.Lists = DefaultLists(n)
	}
	ix, err := New(opt)
	if err != nil {
		return nil, err
	}
	if err := ix.Train(vecs.Data); err != nil {
		return nil, err
	}
	if ids == nil {
		ids = make([]int64, n)
		for i := range ids {
			ids[i] = int64(i)
		}
	}
	for lo := 0; lo < n; lo += buildChunk {
		hi := min(n, lo+buildChunk)
		if err := ix.Add(ids[lo:hi], vecs.Data[lo*vecs.Dim:hi*vecs.Dim]); err != nil {
			return nil, err
		}
	}
	return ix, nil
}
