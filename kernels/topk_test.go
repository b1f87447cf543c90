package kernels

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// topKRef is the oracle: sort every non-NaN score by (better score, smaller id), keep k.
func topKRef(scores []float32, ids []int64, k int, largest bool) []Result {
	var all []Result
	for i, v := range scores {
		if v != v {
			continue
		}
		id := int64(i)
		if ids != nil {
			id = ids[i]
		}
		all = append(all, Result{id, v})
	}
	slices.SortFunc(all, resultOrder(largest))
	return all[:min(k, len(all))]
}

// resultOrder is the order TopK promises: better score first, then smaller id.
func resultOrder(largest bool) func(a, b Result) int {
	return func(a, b Result) int {
		if a.Score != b.Score {
			if (a.Score > b.Score) == largest {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.ID, b.ID)
	}
}

// randScores draws n scores; with ties they come from a few values so that
// many are equal; a share of them is NaN when nan is true.
func randScores(r *rand.Rand, n int, ties, nan bool) []float32 {
	s := make([]float32, n)
	for i := range s {
		switch {
		case nan && r.IntN(10) == 0:
			s[i] = float32(math.NaN())
		case ties:
			s[i] = float32(r.IntN(7)) - 3
		default:
			s[i] = r.Float32()*2 - 1
		}
	}
	return s
}

func sameResults(a, b []Result) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || math.Float32bits(a[i].Score) != math.Float32bits(b[i].Score) {
			return false
		}
	}
	return true
}

func TestFilterScores(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		for n := 0; n <= 300; n++ {
			scores := randScores(r, n, n%3 == 0, n%2 == 0)
			for _, largest := range []bool{true, false} {
				thresh := float32(r.IntN(5)) - 2
				if n%5 == 0 {
					thresh = r.Float32()*2 - 1
				}
				got := make([]int32, n+16)
				want := make([]int32, n+16)
				gn := filterScores(got, scores, thresh, largest)
				wn := filterScoresGeneric(want, scores, thresh, largest)
				if !slices.Equal(got[:gn], want[:wn]) {
					t.Fatalf("n=%d largest=%v thresh=%v: got %v, want %v", n, largest, thresh, got[:gn], want[:wn])
				}
			}
		}
	})
}

func TestTopK(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(13, 14))
		for _, n := range []int{0, 1, 2, 15, 16, 17, 100, 1000, 1023, 1025, 5000, 100_000} {
			for _, k := range []int{1, 2, 7, 64, 1000, 4096} {
				if n > 5000 && k < 64 {
					continue
				}
				for _, largest := range []bool{true, false} {
					ties, nan := (n+k)%2 == 0, k%7 == 0
					scores := randScores(r, n, ties, nan)
					var ids []int64
					if k%2 == 0 {
						ids = make([]int64, n)
						for i := range ids {
							ids[i] = r.Int64N(1 << 40)
						}
					}
					got := TopK(nil, scores, ids, k, largest)
					want := topKRef(scores, ids, k, largest)
					if !sameResults(got, want) {
						t.Fatalf("n=%d k=%d largest=%v ties=%v nan=%v: got %d results, want %d; first diff at %d",
							n, k, largest, ties, nan, len(got), len(want), firstResultDiff(got, want))
					}
				}
			}
		}
	})
}

func firstResultDiff(a, b []Result) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestSelectorStream feeds the selector block by block (and item by item),
// with implicit and explicit ids, and checks it against the oracle over all.
func TestSelectorStream(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(15, 16))
		for trial := range 40 {
			n := r.IntN(20000)
			k := 1 + r.IntN(1500)
			largest := trial%2 == 0
			scores := randScores(r, n, trial%3 == 0, trial%4 == 0)
			s := NewSelector(k, largest)
			for round := range 2 { // the second round checks Reset
				s.Reset()
				for pos := 0; pos < n; {
					step := min(n-pos, r.IntN(3000))
					if round == 1 && step%5 == 0 {
						for i := pos; i < pos+step; i++ {
							s.Add(int64(i), scores[i])
						}
						// Keep implicit ids aligned with positions.
						s.pushed += int64(step)
					} else {
						s.Push(scores[pos:pos+step], nil)
					}
					pos += step
					if b, ok := s.Bound(); ok {
						// The bound is never tighter than the true k-th score.
						ref := topKRef(scores[:pos], nil, k, largest)
						if largest && b > ref[k-1].Score || !largest && b < ref[k-1].Score {
							t.Fatalf("trial %d: bound %v tighter than the k-th score %v", trial, b, ref[k-1].Score)
						}
					}
					if th, ok := s.Threshold(); ok {
						ref := topKRef(scores[:pos], nil, k, largest)
						if th != ref[k-1].Score {
							t.Fatalf("trial %d: threshold %v after %d scores, want %v", trial, th, pos, ref[k-1].Score)
						}
					}
				}
				unordered := s.Unordered(nil)
				got := s.Results(nil)
				if want := topKRef(scores, nil, k, largest); !sameResults(got, want) {
					t.Fatalf("trial %d round %d n=%d k=%d: results differ at %d", trial, round, n, k, firstResultDiff(got, want))
				}
				slices.SortFunc(unordered, resultOrder(largest))
				if !sameResults(unordered, got) {
					t.Fatalf("trial %d round %d: Unordered holds other results than Results", trial, round)
				}
			}
		}
	})
}

// TestSelectorResetK reuses one Selector across queries whose k rises and
// falls: each query's results equal the reference's, and a k no larger
// than an earlier one takes no allocation.
func TestSelectorResetK(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(17, 18))
		for _, largest := range []bool{true, false} {
			s := NewSelector(5, largest)
			var dst []Result
			for trial := range 30 {
				n := r.IntN(5000)
				k := 1 + r.IntN(700)
				scores := randScores(r, n, trial%3 == 0, trial%4 == 0)
				s.ResetK(k)
				s.Push(scores, nil)
				dst = s.Results(dst[:0])
				if want := topKRef(scores, nil, k, largest); !sameResults(dst, want) {
					t.Fatalf("trial %d n=%d k=%d: results differ at %d", trial, n, k, firstResultDiff(dst, want))
				}
			}
			s.ResetK(700)
			scores := randScores(r, 3000, false, false)
			if a := testing.AllocsPerRun(10, func() {
				s.ResetK(1 + r.IntN(700))
				s.Push(scores, nil)
				dst = s.Results(dst[:0])
			}); a != 0 {
				t.Errorf("%.1f allocations a query at a k seen before", a)
			}
		}
	})
}

func TestTopKPanics(t *testing.T) {
	mustPanic(t, "kernels: NewSelector: k = 0", func() { NewSelector(0, true) })
	mustPanic(t, "kernels: NewSelector: k = -3", func() { TopK(nil, nil, nil, -3, true) })
	mustPanic(t, "len(ids) = 2, len(scores) = 3", func() { NewSelector(1, true).Push(make([]float32, 3), make([]int64, 2)) })
}

func FuzzTopK(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 192, 127}, uint16(2), true)
	f.Add(make([]byte, 4*300), uint16(17), false)
	f.Fuzz(func(t *testing.T, data []byte, k16 uint16, largest bool) {
		scores := floatsFromBytes(data)
		k := int(k16%4096) + 1
		want := topKRef(scores, nil, k, largest)
		eachLevel(func(l Level) {
			if got := TopK(nil, scores, nil, k, largest); !sameResults(got, want) {
				t.Fatalf("%s: n=%d k=%d largest=%v: differs at %d", l, len(scores), k, largest, firstResultDiff(got, want))
			}
		})
	})
}

// TestSelectorCandidates checks that Candidates holds every one of the best
// k, exactly as Results has them, plus only entries no better than the k-th.
func TestSelectorCandidates(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(19, 20))
		for trial := range 60 {
			n := r.IntN(30000)
			k := 1 + r.IntN(3000)
			largest := trial%2 == 0
			scores := randScores(r, n, trial%3 == 0, trial%5 == 0)
			s := NewSelector(k, largest)
			for pos := 0; pos < n; {
				step := min(n-pos, 1+r.IntN(2000))
				s.Push(scores[pos:pos+step], nil)
				pos += step
			}
			cands := s.Candidates(nil)
			want := topKRef(scores, nil, k, largest)
			if len(cands) < len(want) {
				t.Fatalf("trial %d: %d candidates, fewer than the %d best", trial, len(cands), len(want))
			}
			in := make(map[Result]bool, len(cands))
			for _, c := range cands {
				if in[c] {
					t.Fatalf("trial %d: candidate %v twice", trial, c)
				}
				in[c] = true
			}
			for _, w := range want {
				if !in[w] {
					t.Fatalf("trial %d n=%d k=%d: %v of the best k is not a candidate", trial, n, k, w)
				}
			}
			if len(want) > 0 {
				kth := want[len(want)-1].Score
				for _, c := range cands {
					if largest && c.Score > kth && !slices.Contains(want, c) || !largest && c.Score < kth && !slices.Contains(want, c) {
						t.Fatalf("trial %d: candidate %v beats the k-th %v but is not among the best", trial, c, kth)
					}
				}
			}
			// Candidates leaves the selection intact.
			if got := s.Results(nil); !sameResults(got, want) {
				t.Fatalf("trial %d: Results after Candidates differ at %d", trial, firstResultDiff(got, want))
			}
		}
	})
}
