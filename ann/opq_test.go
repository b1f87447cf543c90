package ann

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/reelrank/reelrank/kernels"
)

// opqRandOrtho returns a random d×d orthogonal matrix (row-major, float64):
// Gram-Schmidt on Gaussian rows.
func opqRandOrtho(d int, rng *rand.Rand) []float64 {
	q := make([]float64, d*d)
	for i := range d {
		row := q[i*d : (i+1)*d]
		for {
			for j := range row {
				row[j] = rng.NormFloat64()
			}
			for pass := 0; pass < 2; pass++ {
				for k := range i {
					prev := q[k*d : (k+1)*d]
					var dot float64
					for j := range row {
						dot += row[j] * prev[j]
					}
					for j := range row {
						row[j] -= dot * prev[j]
					}
				}
			}
			var norm float64
			for _, v := range row {
				norm += v * v
			}
			if norm = math.Sqrt(norm); norm > 1e-6 {
				for j := range row {
					row[j] /= norm
				}
				break
			}
		}
	}
	return q
}

// opqAnisotropic returns n vectors x = z·A, z standard normal, where
// A = U·diag(s)·Vᵀ has random orthogonal U, V and singular values s_i =
// 0.8^i: the variance sits in a few directions that mix every coordinate.
func opqAnisotropic(n, d int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	u, v := opqRandOrtho(d, rng), opqRandOrtho(d, rng)
	a := make([]float64, d*d)
	for i := range d {
		for j := range d {
			var s float64
			for k := range d {
				s += u[i*d+k] * math.Pow(0.8, float64(k)) * v[j*d+k]
			}
			a[i*d+j] = s
		}
	}
	x := make([]float32, n*d)
	z := make([]float64, d)
	for r := range n {
		for k := range z {
			z[k] = rng.NormFloat64()
		}
		for j := range d {
			var s float64
			for k := range d {
				s += z[k] * a[k*d+j]
			}
			x[r*d+j] = float32(s)
		}
	}
	return x
}

// opqPQDistortion trains a product quantizer (m sub-spaces of ksub
// centroids) on train and returns the mean squared reconstruction error of
// test.
func opqPQDistortion(t *testing.T, train, test []float32, d, m, ksub int) float64 {
	t.Helper()
	dsub := d / m
	var sse float64
	for s := range m {
		subOf := func(x []float32) []float32 {
			n := len(x) / d
			out := make([]float32, n*dsub)
			for i := range n {
				copy(out[i*dsub:(i+1)*dsub], x[i*d+s*dsub:])
			}
			return out
		}
		c, err := TrainKMeans(subOf(train), dsub, KMeansOptions{K: ksub, Iters: 10, Seed: uint64(100 + s), Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		ts := subOf(test)
		labels := make([]int32, len(ts)/dsub)
		dist := make([]float32, len(labels))
		AssignL2(labels, dist, ts, dsub, c, 2)
		for _, v := range dist {
			sse += float64(v)
		}
	}
	return sse / float64(len(test)/d)
}

func opqCheckOrthogonal(t *testing.T, rot []float32, d int) {
	t.Helper()
	worst := 0.0
	for i := range d {
		for j := range d {
			var s float64
			for k := range d {
				s += float64(rot[k*d+i]) * float64(rot[k*d+j])
			}
			if i == j {
				s--
			}
			worst = max(worst, math.Abs(s))
		}
	}
	if worst > 1e-4 {
		t.Fatalf("RᵀR differs from I by up to %g", worst)
	}
}

func TestOPQLowersDistortion(t *testing.T) {
	const d, m, ksub = 32, 8, 16
	n, nt, iters := 4000, 1000, 10
	if testing.Short() {
		n, nt, iters = 1000, 500, 4
	}
	x := opqAnisotropic(n+nt, d, 7)
	train, test := x[:n*d], x[n*d:]
	var st opqStats
	rot, err := trainOPQStats(train, d, m, ksub, iters, 42, 2, &st)
	if err != nil {
		t.Fatal(err)
	}
	opqCheckOrthogonal(t, rot, d)
	if st.sample != n || len(st.distortion) != iters {
		t.Fatalf("stats: sample %d, %d rounds; want %d, %d", st.sample, len(st.distortion), n, iters)
	}
	// The training objective: round 0 is the plain PQ; later rounds improve.
	if last := st.distortion[iters-1]; !(last < st.distortion[0]) {
		t.Errorf("training distortion went from %g to %g", st.distortion[0], last)
	}

	trainR, testR := make([]float32, len(train)), make([]float32, len(test))
	rotate(trainR, train, rot, d)
	rotate(testR, test, rot, d)
	plain := opqPQDistortion(t, train, test, d, m, ksub)
	opq := opqPQDistortion(t, trainR, testR, d, m, ksub)
	t.Logf("held-out PQ distortion: %.5f without OPQ, %.5f with (%.1f%% lower); training rounds %.5f -> %.5f",
		plain, opq, 100*(1-opq/plain), st.distortion[0], st.distortion[iters-1])
	if !(opq <= 0.9*plain) {
		t.Errorf("held-out PQ distortion %g with OPQ, %g without: want at least 10%% lower", opq, plain)
	}
}

func TestOPQDeterministic(t *testing.T) {
	const d, m, ksub = 16, 4, 16
	x := opqAnisotropic(600, d, 3)
	a, err := trainOPQ(x, d, m, ksub, 3, 9, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := trainOPQ(x, d, m, ksub, 3, 9, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a, b) {
		t.Fatal("same seed, different thread counts: different rotations")
	}
	opqCheckOrthogonal(t, a, d)
	c, err := trainOPQ(x, d, m, ksub, 3, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(a, c) {
		t.Error("seeds 9 and 10 gave the same rotation")
	}
}

func TestOPQDefaultIters(t *testing.T) {
	const d, m, ksub = 8, 2, 4
	x := opqAnisotropic(64, d, 5)
	var st opqStats
	rot, err := trainOPQStats(x, d, m, ksub, 0, 1, 1, &st)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.distortion) != opqDefaultIters {
		t.Errorf("iters 0 ran %d rounds, want %d", len(st.distortion), opqDefaultIters)
	}
	opqCheckOrthogonal(t, rot, d)
}

func TestOPQErrors(t *testing.T) {
	good := opqAnisotropic(40, 8, 1)
	nan := slices.Clone(good)
	nan[17] = float32(math.NaN())
	inf := slices.Clone(good)
	inf[300] = float32(math.Inf(-1))
	for _, tc := range []struct {
		name          string
		x             []float32
		d, m, ksub, i int
		want          string
	}{
		{"d zero", good, 0, 1, 4, 1, "dimension"},
		{"d negative", good, -8, 1, 4, 1, "dimension"},
		{"ragged", good[:len(good)-3], 8, 2, 4, 1, "multiple"},
		{"m zero", good, 8, 0, 4, 1, "divide"},
		{"m not dividing", good, 8, 3, 4, 1, "divide"},
		{"m negative", good, 8, -2, 4, 1, "divide"},
		{"ksub zero", good, 8, 2, 0, 1, "ksub"},
		{"ksub huge", good, 8, 2, 1 << 17, 1, "ksub"},
		{"too few vectors", good, 8, 2, 41, 1, "at least"},
		{"empty", nil, 8, 2, 4, 1, "at least"},
		{"iters negative", good, 8, 2, 4, -1, "iters"},
		{"NaN", nan, 8, 2, 4, 1, "vector 2 "},
		{"Inf", inf, 8, 2, 4, 1, "vector 37 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rot, err := trainOPQ(tc.x, tc.d, tc.m, tc.ksub, tc.i, 1, 1)
			if err == nil || rot != nil {
				t.Fatalf("got %d floats and error %v, want an error", len(rot), err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
	// The smallest valid input works.
	if _, err := trainOPQ(good, 8, 2, 40, 1, 1, 1); err != nil {
		t.Errorf("n = ksub: %v", err)
	}
}

func TestRotateMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, d := range []int{1, 5, 24, 33, 70} {
		for _, n := range []int{0, 1, 7, 300, 600} {
			x := make([]float32, n*d)
			rot := make([]float32, d*d)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			for i := range rot {
				rot[i] = float32(rng.NormFloat64())
			}
			want := make([]float64, n*d)
			for i := range n {
				for j := range d {
					var s float64
					for k := range d {
						s += float64(x[i*d+k]) * float64(rot[k*d+j])
					}
					want[i*d+j] = s
				}
			}
			got := make([]float32, n*d)
			rotate(got, x, rot, d)
			p1, p3 := make([]float32, n*d), make([]float32, n*d)
			pb := kernels.PackB(rot, d, d)
			rotatePacked(p1, x, pb, 1)
			rotatePacked(p3, x, pb, 3)
			if !slices.Equal(p1, p3) {
				t.Fatalf("d=%d n=%d: rotatePacked depends on the thread count", d, n)
			}
			for i, w := range want {
				tol := 1e-4 * (1 + math.Abs(w)) * math.Sqrt(float64(d))
				if math.Abs(float64(got[i])-w) > tol || math.Abs(float64(p1[i])-w) > tol {
					t.Fatalf("d=%d n=%d: element %d: rotate %g, rotatePacked %g, want %g", d, n, i, got[i], p1[i], w)
				}
			}
		}
	}
}

func TestRotatePanicsOnBadShapes(t *testing.T) {
	for _, tc := range []struct {
		name        string
		dst, x, rot int
		d           int
	}{
		{"d zero", 4, 4, 0, 0},
		{"rot size", 4, 4, 3, 2},
		{"ragged x", 3, 3, 4, 2},
		{"dst size", 2, 4, 4, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			rotate(make([]float32, tc.dst), make([]float32, tc.x), make([]float32, tc.rot), tc.d)
		})
	}
}

// opqClustered returns n vectors whose m sub-vectors are independent draws
// from 16 clusters each: the layout plain PQ suits best.
func opqClustered(n, d, m int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 2))
	dsub := d / m
	cent := make([]float64, m*16*dsub)
	for i := range cent {
		cent[i] = 3 * rng.NormFloat64()
	}
	x := make([]float32, n*d)
	for i := range n {
		for s := range m {
			c := cent[(s*16+rng.IntN(16))*dsub:][:dsub]
			for j, v := range c {
				x[i*d+s*dsub+j] = float32(v + 0.3*rng.NormFloat64())
			}
		}
	}
	return x
}

// TestOPQKeepsAlignedData checks the reason R starts at the identity: on data
// that plain PQ already suits, OPQ stays near it (a random start ends 10 to 15
// times worse here).
func TestOPQKeepsAlignedData(t *testing.T) {
	const d, m, ksub = 32, 8, 16
	n, nt, iters := 4000, 1000, 5
	if testing.Short() {
		n, nt, iters = 1000, 500, 3
	}
	x := opqClustered(n+nt, d, m, 9)
	train, test := x[:n*d], x[n*d:]
	rot, err := trainOPQ(train, d, m, ksub, iters, 42, 2)
	if err != nil {
		t.Fatal(err)
	}
	trainR, testR := make([]float32, len(train)), make([]float32, len(test))
	rotate(trainR, train, rot, d)
	rotate(testR, test, rot, d)
	plain := opqPQDistortion(t, train, test, d, m, ksub)
	opq := opqPQDistortion(t, trainR, testR, d, m, ksub)
	t.Logf("held-out PQ distortion on sub-space-aligned clusters: %.4f without OPQ, %.4f with", plain, opq)
	if !(opq <= 1.1*plain) {
		t.Errorf("held-out PQ distortion %g with OPQ, %g without: want within 10%%", opq, plain)
	}
}

// BenchmarkTrainOPQ: d = 128, 64 sub-quantizers of 16 centroids, 65,536
// training vectors, 10 rounds.
func BenchmarkTrainOPQ(b *testing.B) {
	const d, m, ksub, n = 128, 64, 16, 1 << 16
	x := opqAnisotropic(n, d, 1)
	b.ResetTimer()
	for b.Loop() {
		if _, err := trainOPQ(x, d, m, ksub, 10, 1, 0); err != nil {
			b.Fatal(err)
		}
	}
}
