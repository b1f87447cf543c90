package ann

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// kmBlobs returns k centres uniform in [-span, span]^d and n points drawn
// around them (Gaussian noise of deviation sigma), point i from centre i%k.
func kmBlobs(rng *rand.Rand, n, d, k int, span, sigma float64) (x, centres []float32) {
	return kmBlobsApart(rng, n, d, k, span, sigma, 0)
}

// kmBlobsApart is kmBlobs with centres at least sep apart.
func kmBlobsApart(rng *rand.Rand, n, d, k int, span, sigma, sep float64) (x, centres []float32) {
	centres = make([]float32, k*d)
	for j := 0; j < k; {
		c := centres[j*d : (j+1)*d]
		for p := range c {
			c[p] = float32((2*rng.Float64() - 1) * span)
		}
		far := true
		for q := range j {
			far = far && kmL2(c, centres[q*d:(q+1)*d]) >= sep*sep
		}
		if far {
			j++
		}
	}
	x = make([]float32, n*d)
	for i := range n {
		c := centres[i%k*d : (i%k+1)*d]
		for p := range d {
			x[i*d+p] = c[p] + float32(rng.NormFloat64()*sigma)
		}
	}
	return x, centres
}

func kmL2(a, b []float32) float64 {
	var s float64
	for i := range a {
		t := float64(a[i]) - float64(b[i])
		s += t * t
	}
	return s
}

func TestTrainKMeansPlantedBlobs(t *testing.T) {
	for _, tc := range []struct{ d, k int }{{16, 20}, {2, 16}, {64, 40}} {
		rng := rand.New(rand.NewPCG(1, uint64(tc.d)))
		// Centres at least 20 sigma apart.
		x, centres := kmBlobsApart(rng, 100*tc.k, tc.d, tc.k, 10, 0.1, 2)
		c, err := TrainKMeans(x, tc.d, KMeansOptions{K: tc.k, Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		// Every centroid sits near a distinct true centre.
		used := make([]bool, tc.k)
		for j := range tc.k {
			cj := c[j*tc.d : (j+1)*tc.d]
			best, at := math.Inf(1), -1
			for q := range tc.k {
				if dd := kmL2(cj, centres[q*tc.d:(q+1)*tc.d]); dd < best {
					best, at = dd, q
				}
			}
			// The mean of 100 points is within a few sigma/10 per coordinate.
			if math.Sqrt(best) > 0.1 || used[at] {
				t.Fatalf("d=%d k=%d: centroid %d is %.3g from centre %d (already matched: %v)", tc.d, tc.k, j, math.Sqrt(best), at, used[at])
			}
			used[at] = true
		}
	}
}

func TestTrainKMeansDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	cases := []struct {
		n, d int
		opt  KMeansOptions
	}{
		{3000, 24, KMeansOptions{K: 50, Seed: 3}},
		{3000, 24, KMeansOptions{K: 50, Seed: 3, MaxPerCentroid: 20}}, // sampled
		{2000, 12, KMeansOptions{K: 600, Seed: 4, Iters: 3}},          // two GEMM chunks
		{2000, 2, KMeansOptions{K: 16, Seed: 5}},                      // direct path
	}
	for _, tc := range cases {
		x, _ := kmBlobs(rng, tc.n, tc.d, 30, 1, 0.5)
		threadCounts := []int{1, 1, 2, 3}
		if testing.Short() {
			threadCounts = threadCounts[1:]
		}
		var ref []float32
		for _, threads := range threadCounts {
			opt := tc.opt
			opt.Threads = threads
			c, err := TrainKMeans(x, tc.d, opt)
			if err != nil {
				t.Fatal(err)
			}
			if ref == nil {
				ref = c
				continue
			}
			for i := range c {
				if math.Float32bits(c[i]) != math.Float32bits(ref[i]) {
					t.Fatalf("n=%d d=%d %+v: threads=%d differs at %d: %v vs %v", tc.n, tc.d, tc.opt, threads, i, c[i], ref[i])
				}
			}
		}
		opt := tc.opt
		opt.Seed++
		other, _ := TrainKMeans(x, tc.d, opt)
		if slices.Equal(other, ref) {
			t.Errorf("n=%d d=%d %+v: another seed gave the same centroids", tc.n, tc.d, tc.opt)
		}
	}
}

// kmBruteAssign is the reference: exact float64 distances, the smaller index
// among equals.
func kmBruteAssign(x []float32, d int, c []float32) ([]int32, []float64) {
	n, k := len(x)/d, len(c)/d
	labels := make([]int32, n)
	dist := make([]float64, n)
	for i := range n {
		best, at := math.Inf(1), 0
		for j := range k {
			if dd := kmL2(x[i*d:(i+1)*d], c[j*d:(j+1)*d]); dd < best {
				best, at = dd, j
			}
		}
		labels[i], dist[i] = int32(at), best
	}
	return labels, dist
}

func TestAssignL2(t *testing.T) {
	shapes := []struct{ n, d, k int }{
		{700, 16, 600}, // GEMM, two chunks, ragged last block
		{300, 9, 31},   // GEMM, odd sizes
		{513, 2, 16},   // direct, d = 2
		{100, 5, 40},   // direct, d < 8
		{100, 8, 20},   // direct, small d*k
		{1, 3, 1},
	}
	rng := rand.New(rand.NewPCG(3, 3))
	for _, sh := range shapes {
		// Small integers: every path computes exact distances, so labels
		// must match the reference exactly, ties included; duplicated
		// centroids add more ties.
		x := make([]float32, sh.n*sh.d)
		for i := range x {
			x[i] = float32(rng.IntN(5) - 2)
		}
		c := make([]float32, sh.k*sh.d)
		for i := range c {
			c[i] = float32(rng.IntN(5) - 2)
		}
		for j := 1; j < sh.k; j += 3 {
			copy(c[j*sh.d:(j+1)*sh.d], c[(j-1)*sh.d:j*sh.d])
		}
		if sh.k > kmChunk {
			// A tie across two GEMM chunks: the first chunk must win.
			copy(c[(kmChunk+3)*sh.d:(kmChunk+4)*sh.d], c[3*sh.d:4*sh.d])
			copy(x[:sh.d], c[3*sh.d:4*sh.d])
		}
		wantL, wantD := kmBruteAssign(x, sh.d, c)
		for _, threads := range []int{1, 3} {
			labels := make([]int32, sh.n)
			dist := make([]float32, sh.n)
			AssignL2(labels, dist, x, sh.d, c, threads)
			for i := range labels {
				if labels[i] != wantL[i] || float64(dist[i]) != wantD[i] {
					t.Fatalf("integers %+v threads=%d: point %d: got %d (%v), want %d (%v)", sh, threads, i, labels[i], dist[i], wantL[i], wantD[i])
				}
			}
			AssignL2(labels, nil, x, sh.d, c, threads)
			if !slices.Equal(labels, wantL) {
				t.Fatalf("integers %+v threads=%d: labels without dist differ", sh, threads)
			}
		}

		// Random floats: the GEMM form rounds differently from the
		// reference, so the chosen centroid must be nearest up to rounding.
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		for i := range c {
			c[i] = float32(rng.NormFloat64())
		}
		wantL, wantD = kmBruteAssign(x, sh.d, c)
		labels := make([]int32, sh.n)
		dist := make([]float32, sh.n)
		AssignL2(labels, dist, x, sh.d, c, 2)
		for i := range labels {
			got := kmL2(x[i*sh.d:(i+1)*sh.d], c[int(labels[i])*sh.d:int(labels[i]+1)*sh.d])
			tol := 1e-4 * (1 + got)
			if got > wantD[i]+tol || math.Abs(float64(dist[i])-got) > tol {
				t.Fatalf("floats %+v: point %d: label %d at %v (reported %v), nearest %d at %v", sh, i, labels[i], got, dist[i], wantL[i], wantD[i])
			}
		}
	}
	// No points: nothing to do, even without centroids.
	AssignL2(nil, nil, nil, 4, nil, 0)
}

func TestAssignL2Panics(t *testing.T) {
	for name, f := range map[string]func(){
		"d=0":          func() { AssignL2(nil, nil, nil, 0, nil, 1) },
		"ragged x":     func() { AssignL2(make([]int32, 1), nil, make([]float32, 5), 4, make([]float32, 4), 1) },
		"short labels": func() { AssignL2(make([]int32, 1), nil, make([]float32, 8), 4, make([]float32, 4), 1) },
		"short dist":   func() { AssignL2(make([]int32, 2), make([]float32, 1), make([]float32, 8), 4, make([]float32, 4), 1) },
		"no centroids": func() { AssignL2(make([]int32, 2), nil, make([]float32, 8), 4, nil, 1) },
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.HasPrefix(r.(string), "ann: AssignL2:") {
					t.Errorf("%s: recovered %v", name, r)
				}
			}()
			f()
		}()
	}
}

func TestTrainKMeansObjectiveDecreases(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, tc := range []struct{ d, k int }{{32, 64}, {2, 16}, {10, 700}} {
		x, _ := kmBlobs(rng, 4000, tc.d, 100, 1, 0.7)
		var st kmStats
		if _, err := trainKMeans(x, tc.d, KMeansOptions{K: tc.k, Iters: 15, Seed: 1}, &st); err != nil {
			t.Fatal(err)
		}
		if len(st.objective) != 15 {
			t.Fatalf("%d objectives, want 15", len(st.objective))
		}
		for i := 1; i < len(st.objective); i++ {
			if st.objective[i] > st.objective[i-1]*(1+1e-6) {
				t.Errorf("d=%d k=%d: objective rose at iteration %d: %v", tc.d, tc.k, i, st.objective)
				break
			}
		}
		if st.objective[len(st.objective)-1] >= st.objective[0] {
			t.Errorf("d=%d k=%d: no progress: %v", tc.d, tc.k, st.objective)
		}
	}
}

// kmCheckAllUsed fails unless every centroid is finite and nearest to some point.
func kmCheckAllUsed(t *testing.T, name string, x []float32, d int, c []float32) {
	t.Helper()
	for i, v := range c {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("%s: centroid value %d is %v", name, i, v)
		}
	}
	labels := make([]int32, len(x)/d)
	AssignL2(labels, nil, x, d, c, 2)
	counts := make([]int, len(c)/d)
	for _, l := range labels {
		counts[l]++
	}
	for j, n := range counts {
		if n == 0 {
			t.Fatalf("%s: centroid %d has no point (counts %v)", name, j, counts)
		}
	}
}

func TestKMeansEmptyClusters(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, tc := range []struct{ d, k int }{{16, 40}, {2, 16}} {
		// Every centroid starts at the same point: all points go to
		// centroid 0 and the others are empty, so Lloyd must split.
		x, _ := kmBlobs(rng, 400, tc.d, 10, 5, 1)
		c := make([]float32, tc.k*tc.d)
		for j := range tc.k {
			copy(c[j*tc.d:(j+1)*tc.d], x[:tc.d])
		}
		kmLloyd(x, tc.d, tc.k, c, 10, 2, func(float64) {})
		kmCheckAllUsed(t, "split", x, tc.d, c)
	}

	// Nine points in ten are one point: k-means++ draws it at most once.
	x, _ := kmBlobs(rng, 1000, 16, 50, 5, 1)
	for i := 100; i < 1000; i++ {
		copy(x[i*16:(i+1)*16], x[:16])
	}
	c, err := TrainKMeans(x, 16, KMeansOptions{K: 50, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	kmCheckAllUsed(t, "duplicates", x, 16, c)

	// Fewer distinct points than K: some centroids must stay empty, but
	// none may be NaN, and nothing panics.
	y := make([]float32, 200*4)
	for i := range 200 {
		y[i*4] = float32(i % 5)
	}
	c, err = TrainKMeans(y, 4, KMeansOptions{K: 12, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range c {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("few distinct: centroid value %d is %v", i, v)
		}
	}
}

func TestTrainKMeansErrors(t *testing.T) {
	ok := make([]float32, 40) // 10 points of dimension 4
	bad := func(i int, v float32) []float32 {
		x := slices.Clone(ok)
		x[i] = v
		return x
	}
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	for _, tc := range []struct {
		name string
		x    []float32
		d    int
		opt  KMeansOptions
		want string
	}{
		{"d=0", ok, 0, KMeansOptions{K: 2}, "d = 0"},
		{"d<0", ok, -3, KMeansOptions{K: 2}, "d = -3"},
		{"ragged", ok[:39], 4, KMeansOptions{K: 2}, "not a multiple of d = 4"},
		{"K=0", ok, 4, KMeansOptions{K: 0}, "K = 0"},
		{"K<0", ok, 4, KMeansOptions{K: -1}, "K = -1"},
		{"K too large", make([]float32, 65537), 1, KMeansOptions{K: 65537}, "K = 65537"},
		{"n<K", ok, 4, KMeansOptions{K: 11}, "need at least K = 11 points, have 10"},
		{"empty", nil, 4, KMeansOptions{K: 1}, "need at least K = 1 points, have 0"},
		{"NaN", bad(13, nan), 4, KMeansOptions{K: 2}, "point 3 "},
		{"+Inf", bad(39, inf), 4, KMeansOptions{K: 2}, "point 9 "},
		{"-Inf", bad(0, -inf), 4, KMeansOptions{K: 2}, "point 0 "},
		{"Iters<0", ok, 4, KMeansOptions{K: 2, Iters: -1}, "Iters = -1"},
		{"MaxPerCentroid<0", ok, 4, KMeansOptions{K: 2, MaxPerCentroid: -1}, "MaxPerCentroid = -1"},
		{"Threads<0", ok, 4, KMeansOptions{K: 2, Threads: -1}, "Threads = -1"},
	} {
		c, err := TrainKMeans(tc.x, tc.d, tc.opt)
		if err == nil || c != nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, %v; want an error with %q", tc.name, len(c), err, tc.want)
		}
	}
	// The boundary cases that are fine: n = K, one centroid, all points equal.
	for _, k := range []int{1, 10} {
		c, err := TrainKMeans(ok, 4, KMeansOptions{K: k})
		if err != nil || len(c) != k*4 {
			t.Errorf("K=%d on zeros: %d floats, %v", k, len(c), err)
		}
	}
}

func TestDrawD2(t *testing.T) {
	d2 := make([]float32, 3*kmSeedChunk)
	d2[5], d2[kmSeedChunk+7], d2[2*kmSeedChunk+1] = 1, 2, 3
	sums := []float64{1, 2, 3}
	for _, tc := range []struct {
		u    float64
		want int
	}{{0, 5}, {0.99, 5}, {1, kmSeedChunk + 7}, {2.5, kmSeedChunk + 7}, {3, 2*kmSeedChunk + 1}, {5.99, 2*kmSeedChunk + 1}, {6.5, 2*kmSeedChunk + 1}} {
		if got := kmDrawD2(d2, sums, tc.u); got != tc.want {
			t.Errorf("u=%v: got %d, want %d", tc.u, got, tc.want)
		}
	}
}

func TestTrainKMeansRandomSeeds(t *testing.T) {
	// K × seed points × d past kmSeedBudget: K random sample points seed.
	k, d := 4096, 1024
	if testing.Short() {
		t.Skip("large K")
	}
	rng := rand.New(rand.NewPCG(6, 6))
	x, _ := kmBlobs(rng, 2*k, d, 64, 1, 0.5)
	var st kmStats
	c, err := trainKMeans(x, d, KMeansOptions{K: k, Iters: 1, Seed: 1}, &st)
	if err != nil || st.seedN != k || len(c) != k*d {
		t.Fatalf("seeded from %d points, %d floats, %v", st.seedN, len(c), err)
	}
}
