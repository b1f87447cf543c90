package bench

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/reelrank/reelrank/kernels"
)

// Figure is one measured throughput.
type Figure struct {
	Kernel  string  `json:"kernel"`
	Shape   string  `json:"shape"`
	SIMD    string  `json:"simd"`
	NsPerOp float64 `json:"ns_per_op"`
	Value   float64 `json:"value"`
	Unit    string  `json:"unit"`
	Checked bool    `json:"checked"` // the result matched its oracle before timing
}

// KernelCase is one kernel at one shape: Setup builds its inputs and returns
// the operation to time, the work one call does (in Unit, before scaling by
// time) and a check of one call's result against an oracle.
type KernelCase struct {
	Kernel string
	Shape  string
	Unit   string
	Setup  func(r *rand.Rand) (op func(), work float64, check func() error)
}

// KernelCases lists the kernels that `reelrank bench kernels` times.
func KernelCases() []KernelCase {
	return []KernelCase{
		{"Dot", "d=128", "GB/s", setupDot(128)},
		{"DotBatch", "d=128 n=2000", "GB/s", setupBatch(128, 2000, false)},
		{"L2SqBatch", "d=128 n=2000", "GB/s", setupBatch(128, 2000, true)},
		{"DotBatchMany", "d=128 m=64 n=20000", "GFLOP/s", setupMany(128, 64, 20000)},
		{"TopK", "k=1000 n=100000", "Mscores/s", setupTopK(1000, 100_000)},
		{"PQTable", "d=128 M=64 ksub=256", "Mentries/s", setupPQTable(128, 64, 256)},
		{"PQScan8", "M=64 n=32768", "Gcodes/s", setupPQScan8(64, 32768)},
		{"FastScan4", "M=64 n=32768", "Gcodes/s", setupFastScan4(64, 32768)},
		{"GemmPacked", "m=1000 k=256 n=256 relu", "GFLOP/s", setupGemm(1000, 256, 256, false)},
		{"GemmBF16", "m=1000 k=256 n=256 relu", "GFLOP/s", setupGemm(1000, 256, 256, true)},
	}
}

// RunKernels times every case for about budget each and returns the figures.
// A case whose check fails returns an error: a wrong kernel has no speed.
func RunKernels(cases []KernelCase, budget time.Duration, seed uint64) ([]Figure, error) {
	var out []Figure
	for _, c := range cases {
		r := rand.New(rand.NewPCG(seed, uint64(len(out))))
		op, work, check := c.Setup(r)
		if err := check(); err != nil {
			return out, fmt.Errorf("bench: %s %s at %s: %w", c.Kernel, c.Shape, kernels.SIMD(), err)
		}
		ns := timeOp(op, budget)
		out = append(out, Figure{
			Kernel: c.Kernel, Shape: c.Shape, SIMD: kernels.SIMD().String(),
			NsPerOp: ns, Value: work / ns, Unit: c.Unit, Checked: true,
		})
	}
	return out, nil
}

// timeOp runs op repeatedly, doubling the count until a round lasts at least
// budget/4, and returns the best ns per call of the rounds run in budget.
func timeOp(op func(), budget time.Duration) float64 {
	op() // warm caches and pages
	best := math.Inf(1)
	n := 1
	deadline := time.Now().Add(budget)
	for {
		start := time.Now()
		for range n {
			op()
		}
		el := time.Since(start)
		best = min(best, float64(el.Nanoseconds())/float64(n))
		if time.Now().After(deadline) {
			return best
		}
		if el < budget/4 {
			n *= 2
		}
	}
}

func randVec(r *rand.Rand, n int) []float32 {
	v := kernels.AlignedFloat32(n)
	for i := range v {
		v[i] = r.Float32()*2 - 1
	}
	return v
}

// near checks a float32 result against a float64 one within the error
// bound of any summation order of n terms whose absolute values sum to abs.
func near(got float32, want, abs float64, n int) error {
	if math.Abs(float64(got)-want) > float64(n+4)*0x1p-23*abs+1e-30 {
		return fmt.Errorf("got %v, want %v", got, want)
	}
	return nil
}

func dot64(a, b []float32) (sum, abs float64) {
	for i := range a {
		t := float64(a[i]) * float64(b[i])
		sum += t
		abs += math.Abs(t)
	}
	return sum, abs
}

func setupDot(d int) func(r *rand.Rand) (func(), float64, func() error) {
	return func(r *rand.Rand) (func(), float64, func() error) {
		a, b := randVec(r, d), randVec(r, d)
		var sink float32
		op := func() { sink += kernels.Dot(a, b) }
		check := func() error {
			want, abs := dot64(a, b)
			return near(kernels.Dot(a, b), want, abs, d)
		}
		return op, float64(8 * d), check // bytes read per call; bytes/ns = GB/s
	}
}

func setupBatch(d, n int, l2 bool) func(r *rand.Rand) (func(), float64, func() error) {
	return func(r *rand.Rand) (func(), float64, func() error) {
		q, rows, dst := randVec(r, d), randVec(r, n*d), make([]float32, n)
		f := kernels.DotBatch
		if l2 {
			f = kernels.L2SqBatch
		}
		op := func() { f(dst, q, rows) }
		check := func() error {
			op()
			for i := range n {
				row := rows[i*d : (i+1)*d]
				want, abs := dot64(q, row)
				if l2 {
					want = 0
					for j := range row {
						x := float64(q[j]) - float64(row[j])
						want += x * x
					}
					abs = want
				}
				if err := near(dst[i], want, abs, d); err != nil {
					return fmt.Errorf("row %d: %w", i, err)
				}
			}
			return nil
		}
		return op, float64(4 * n * d), check
	}
}

func setupMany(d, m, n int) func(r *rand.Rand) (func(), float64, func() error) {
	return func(r *rand.Rand) (func(), float64, func() error) {
		qs, rows, dst := randVec(r, m*d), randVec(r, n*d), make([]float32, m*n)
		op := func() { kernels.DotBatchMany(dst, qs, rows, d) }
		check := func() error {
			op()
			for _, ij := range [][2]int{{0, 0}, {m - 1, n - 1}, {m / 2, n / 3}} {
				i, j := ij[0], ij[1]
				want, abs := dot64(qs[i*d:(i+1)*d], rows[j*d:(j+1)*d])
				if err := near(dst[i*n+j], want, abs, d); err != nil {
					return fmt.Errorf("[%d,%d]: %w", i, j, err)
				}
			}
			return nil
		}
		return op, float64(2 * m * n * d), check // flops; flop/ns = GFLOP/s
	}
}

func setupTopK(k, n int) func(r *rand.Rand) (func(), float64, func() error) {
	return func(r *rand.Rand) (func(), float64, func() error) {
		scores := randVec(r, n)
		s := kernels.NewSelector(k, true)
		var res []kernels.Result
		op := func() {
			s.Reset()
			s.Push(scores, nil)
			res = s.Results(res)
		}
		check := func() error {
			op()
			want := slices.Clone(scores)
			slices.SortFunc(want, func(a, b float32) int { return cmp.Compare(b, a) })
			if len(res) != k {
				return fmt.Errorf("%d results, want %d", len(res), k)
			}
			for i := range k {
				if res[i].Score != want[i] || scores[res[i].ID] != res[i].Score {
					return fmt.Errorf("result %d: %+v, want score %v", i, res[i], want[i])
				}
			}
			return nil
		}
		return op, float64(n) * 1e3, check // scores/ns x 1e3 = Mscores/s
	}
}

func setupPQTable(d, m, ksub int) func(r *rand.Rand) (func(), float64, func() error) {
	return func(r *rand.Rand) (func(), float64, func() error) {
		dsub := d / m
		cent, q, dst := randVec(r, m*ksub*dsub), randVec(r, d), make([]float32, m*ksub)
		cb := kernels.NewPQCodebook(cent, m, ksub, dsub)
		op := func() { cb.Table(dst, q, kernels.L2) }
		check := func() error {
			op()
			for i := range m * ksub {
				s, c := i/ksub, i
				var want float64
				for j := range dsub {
					x := float64(q[s*dsub+j]) - float64(cent[c*dsub+j])
					want += x * x
				}
				if err := near(dst[i], want, want, dsub); err != nil {
					return fmt.Errorf("entry %d: %w", i, err)
				}
			}
			return nil
		}
		return op, float64(m*ksub) * 1e3, check // entries/ns x 1e3 = Mentries/s
	}
}

func setupPQScan8(m, n int) func(r *rand.Rand) (func(), float64, func() error) {
	return func(r *rand.Rand) (func(), float64, func() error) {
		codes, table, dst := make([]uint8, n*m), randVec(r, m*256), make([]float32, n)
		for i := range codes {
			codes[i] = uint8(r.IntN(256))
		}
		op := func() { kernels.PQScan8(dst, codes, m, table) }
		check := func() error {
			op()
			for i := range n {
				var want, abs float64
				for j := range m {
					v := float64(table[j*256+int(codes[i*m+j])])
					want += v
					abs += math.Abs(v)
				}
				if err := near(dst[i], want, abs, m); err != nil {
					return fmt.Errorf("vector %d: %w", i, err)
				}
			}
			return nil
		}
		return op, float64(n * m), check // codes/ns = Gcodes/s
	}
}

func setupFastScan4(m, n int) func(r *rand.Rand) (func(), float64, func() error) {
	return func(r *rand.Rand) (func(), float64, func() error) {
		codes := make([]uint8, n*m)
		for i := range codes {
			codes[i] = uint8(r.IntN(16))
		}
		packed := kernels.AlignedBytes(kernels.FastScan4Size(n, m))
		kernels.PackCodes4(packed, codes, n, m)
		table := randVec(r, m*16)
		lut := make([]uint8, kernels.FastScan4LUTSize(m))
		kernels.QuantizeTable4(lut, table, m, kernels.L2)
		dst := make([]uint16, n)
		op := func() { kernels.FastScan4(dst, packed, m, lut) }
		check := func() error {
			op()
			for i := range n {
				var want uint16
				for j := range m {
					want += uint16(lut[j*16+int(codes[i*m+j])])
				}
				if dst[i] != want {
					return fmt.Errorf("vector %d: sum %d, want %d", i, dst[i], want)
				}
			}
			return nil
		}
		return op, float64(n * m), check
	}
}

func setupGemm(m, k, n int, bf16 bool) func(r *rand.Rand) (func(), float64, func() error) {
	return func(r *rand.Rand) (func(), float64, func() error) {
		a, b, bias, c := randVec(r, m*k), randVec(r, k*n), randVec(r, n), make([]float32, m*n)
		var op func()
		round := func(x float32) float32 { return x }
		if bf16 {
			pb := kernels.PackBF16(b, k, n)
			op = func() { kernels.GemmBF16(c, a, m, pb, bias, kernels.ActReLU) }
			round = func(x float32) float32 { return kernels.ToBF16(x).Float32() }
		} else {
			pb := kernels.PackB(b, k, n)
			op = func() { kernels.GemmPacked(c, a, m, pb, bias, kernels.ActReLU) }
		}
		check := func() error {
			op()
			for _, ij := range [][2]int{{0, 0}, {m - 1, n - 1}, {m / 2, n / 3}, {m / 3, n - 1}} {
				i, j := ij[0], ij[1]
				want, abs := float64(bias[j]), math.Abs(float64(bias[j]))
				for l := range k {
					t := float64(round(a[i*k+l])) * float64(round(b[l*n+j]))
					want += t
					abs += math.Abs(t)
				}
				want = max(want, 0)
				if err := near(c[i*n+j], want, abs, k); err != nil {
					return fmt.Errorf("result [%d][%d]: %w", i, j, err)
				}
			}
			return nil
		}
		return op, float64(2 * m * k * n), check
	}
}
