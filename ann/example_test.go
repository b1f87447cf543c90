package ann_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/kernels"
)

// Build an index of 5,000 reels of 32 dimensions, search it, then delete
// the best match and search again.
func Example() {
	const n, d = 5000, 32
	r := rand.New(rand.NewPCG(1, 2))
	vecs := make([]float32, n*d)
	for i := range vecs {
		vecs[i] = float32(r.NormFloat64())
	}
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(100_000 + i)
	}

	ix, err := ann.New(ann.Options{Dim: d, Metric: kernels.InnerProduct, Lists: 32, Refine: ann.RefineF32, Seed: 1})
	if err != nil {
		panic(err)
	}
	if err := ix.Train(vecs); err != nil {
		panic(err)
	}
	if err := ix.Add(ids, vecs); err != nil {
		panic(err)
	}

	q := vecs[42*d : 43*d] // reel 100042's own vector
	res, err := ix.Search(q, ann.SearchOptions{K: 3, NProbe: 32, RefineFactor: 50})
	if err != nil {
		panic(err)
	}
	fmt.Println("best:", res[0].ID, "exact:", res[0].Score == kernels.Dot(q, q))

	if err := ix.Delete(res[0].ID); err != nil {
		panic(err)
	}
	res, _ = ix.Search(q, ann.SearchOptions{K: 3, NProbe: 32, RefineFactor: 50})
	fmt.Println("after delete:", res[0].ID != 100042, ix.Len())

	_, err = ix.Search(q[:5], ann.SearchOptions{K: 3, NProbe: 4})
	fmt.Println(err)
	// Output:
	// best: 100042 exact: true
	// after delete: true 4999
	// ann: search: query of dimension 5, index has 32
}
