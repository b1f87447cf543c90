package kernels

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// Result is one scored item of a top-k selection.
type Result struct {
	ID    int64
	Score float32
}

// TopK returns the k best of scores, best first: the largest when largest is
// true (inner product), the smallest otherwise (L2). Equal scores are ordered
// by smaller id first, so the answer is the same whatever the input order.
// ids[i] is the id of scores[i]; nil ids mean each score's index. NaN scores
// are never selected. The result reuses dst's storage when it is large enough.
// k must be at least 1; fewer than k results come back when fewer exist.
func TopK(dst []Result, scores []float32, ids []int64, k int, largest bool) []Result {
	s := NewSelector(k, largest)
	s.Push(scores, ids)
	return s.Results(dst)
}

// Selector keeps a running top-k over scores pushed block by block, the way
// an index scan feeds it. Only scores that can still enter the top k are
// copied: a SIMD pass compares each block with the current bound, and the
// survivors go to a reservoir of 2k entries.
//
// The bound rises with every entry, not only when the reservoir fills: once k
// entries are in, a histogram of their scores (histBins bins between the
// k-th score and the best) counts each newcomer, and the bound moves up to
// the lowest bin that still has k entries at or above it. A full reservoir
// first drops the entries below that bin, a linear pass; only when that
// frees too little is it cut back to the best k by quickselect, and the
// histogram is drawn again over the narrower range. The final answer is
// always exact.
//
// A Selector is not safe for concurrent use; give each goroutine its own and
// reuse it across queries with Reset.
type Selector struct {
	k       int
	largest bool
	res     []Result // reservoir, len <= cap = 2k (at least 64); L2 scores negated
	kept    bool     // thresh is valid: at least k entries of res score >= thresh
	thresh  float32  // the bound, in reservoir form; after an exact cut the k-th best score
	exact   bool     // res[:k] is the result of an exact cut and nothing came in since
	pushed  int64    // scores pushed so far: the implicit id of the next one
	idx     []int32  // scratch: indices that passed the threshold

	// The histogram of entries' scores, live while binned: bin b counts the
	// entries with lo + b*w <= score < lo + (b+1)*w (the last bin also the
	// higher ones). Bins tb.. hold above entries, at least k.
	binned bool
	hist   []int32
	lo     float32
	w, inv float32
	tb     int
	above  int
}

// histBins is the number of bins of a Selector's histogram: the bound
// trails the true k-th score by at most about 1/histBins of the range of
// the best k scores at the last cut.
const histBins = 1024

// selectorBlock is how many scores are compared per pass of the filter
// kernel: its index scratch is 4 KiB and stays in L1.
const selectorBlock = 1024

// NewSelector makes a Selector for the k best scores; largest says whether
// larger scores are better. It panics if k < 1.
func NewSelector(k int, largest bool) *Selector {
	if k < 1 {
		panic(fmt.Sprintf("kernels: NewSelector: k = %d, want k >= 1", k))
	}
	return &Selector{
		k:       k,
		largest: largest,
		res:     make([]Result, 0, max(2*k, 64)),
		idx:     make([]int32, selectorBlock+16),
	}
}

// ResetK empties the Selector for a new query that keeps k results,
// keeping its memory where it is large enough: a caller whose k changes
// from query to query allocates only when k outgrows every earlier one.
func (s *Selector) ResetK(k int) {
	if k < 1 {
		panic(fmt.Sprintf("kernels: Selector.ResetK: k = %d, want k >= 1", k))
	}
	s.k = k
	if want := max(2*k, 64); cap(s.res) < want {
		s.res = make([]Result, 0, want)
	}
	s.Reset()
}

// Largest reports whether the Selector keeps the largest scores.
func (s *Selector) Largest() bool { return s.largest }

// K returns the number of results the Selector keeps.
func (s *Selector) K() int { return s.k }

// Reset empties the Selector for a new query, keeping its memory.
func (s *Selector) Reset() {
	s.res = s.res[:0]
	s.kept = false
	s.exact = false
	s.binned = false
	s.pushed = 0
}

// Threshold reports the score that a new item must reach to enter the top k,
// once k items have been kept (ok is false before that). A scan may use it to
// skip work; items equal to it may still enter on a smaller id.
func (s *Selector) Threshold() (score float32, ok bool) {
	if len(s.res) >= s.k {
		s.cut()
		if !s.largest {
			return -s.thresh, true
		}
		return s.thresh, true
	}
	return 0, false
}

// Bound reports a score that at least k entries reach (ok is false before k
// have come in). It never triggers a cut, so it is cheap to ask for before
// every block of a scan; it is looser than Threshold, never tighter, so an
// item that does not reach it cannot enter.
func (s *Selector) Bound() (score float32, ok bool) {
	if !s.kept {
		return 0, false
	}
	if !s.largest {
		return -s.thresh, true
	}
	return s.thresh, true
}

// Push offers scores with their ids (ids[i] for scores[i]; nil means
// consecutive ids counting every score pushed since the last Reset). NaN
// scores are skipped. It panics if ids is not nil and not as long as scores.
func (s *Selector) Push(scores []float32, ids []int64) {
	if ids != nil && len(ids) != len(scores) {
		panic(fmt.Sprintf("kernels: Selector.Push: len(ids) = %d, len(scores) = %d", len(ids), len(scores)))
	}
	for start := 0; start < len(scores); start += selectorBlock {
		end := min(start+selectorBlock, len(scores))
		block := scores[start:end]
		thresh := float32(math.Inf(-1))
		if s.kept {
			thresh = s.thresh
		}
		if !s.largest {
			thresh = -thresh
		}
		n := filterScores(s.idx, block, thresh, s.largest)
		base := s.pushed + int64(start)
		for _, i := range s.idx[:n] {
			id := base + int64(i)
			if ids != nil {
				id = ids[start+int(i)]
			}
			s.insert(id, block[i])
		}
	}
	s.pushed += int64(len(scores))
}

// Add offers one item.
func (s *Selector) Add(id int64, score float32) {
	if score != score {
		return
	}
	if s.kept && (s.largest && score < s.thresh || !s.largest && -score < s.thresh) {
		return
	}
	s.insert(id, score)
}

// insert adds an item to the reservoir, making room first when it is full.
func (s *Selector) insert(id int64, score float32) {
	if !s.largest {
		score = -score
	}
	if len(s.res) == cap(s.res) {
		s.makeRoom()
		// The bound may have risen: re-check the newcomer.
		if score < s.thresh {
			return
		}
	}
	s.res = append(s.res, Result{id, score})
	s.exact = false
	switch {
	case s.binned:
		b := s.bin(score)
		s.hist[b]++
		if b >= s.tb {
			s.above++
			if s.above-int(s.hist[s.tb]) >= s.k {
				s.raise()
			}
		}
	case !s.kept && len(s.res) == s.k:
		// The first k: the worst of them is the k-th best so far.
		lo := s.res[0].Score
		for _, r := range s.res[1:] {
			lo = min(lo, r.Score)
		}
		s.thresh, s.kept = lo, true
		s.rebin()
	}
}

// bin is the histogram bin of a reservoir score.
func (s *Selector) bin(score float32) int {
	f := (score - s.lo) * s.inv
	switch {
	case f >= histBins-1:
		return histBins - 1
	case f > 0:
		return int(f)
	}
	return 0
}

// raise moves the bound up to the highest bin with k entries at or above
// it. The bound stays a sixteenth of a bin below the bin's lower edge, a
// margin far wider than the rounding of bin, so that every entry counted in
// bins tb.. reaches it.
func (s *Selector) raise() {
	for s.above-int(s.hist[s.tb]) >= s.k {
		s.above -= int(s.hist[s.tb])
		s.tb++
	}
	if t := s.lo + (float32(s.tb)-1.0/16)*s.w; t > s.thresh {
		s.thresh = t
	}
}

// rebin draws the histogram over the scores of res, which holds at least k
// entries all reaching s.thresh: from the bound to the best score. Scores
// too close together (or not finite) for bins to tell apart leave the
// Selector without a histogram, cutting by quickselect alone.
func (s *Selector) rebin() {
	s.binned = false
	lo, hi := s.thresh, s.thresh
	for _, r := range s.res {
		hi = max(hi, r.Score)
	}
	w := (hi - lo) / histBins
	scale := max(abs32(lo), abs32(hi))
	if !(w > 1e-4*scale/histBins) || math.IsInf(float64(scale), 0) || math.IsInf(float64(w), 0) {
		return
	}
	if s.hist == nil {
		s.hist = make([]int32, histBins)
	}
	clear(s.hist)
	s.lo, s.w, s.inv = lo, w, 1/w
	for _, r := range s.res {
		s.hist[s.bin(r.Score)]++
	}
	s.tb, s.above, s.binned = 0, len(s.res), true
	if s.above-int(s.hist[0]) >= s.k {
		s.raise()
	}
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

// makeRoom frees room in a full reservoir: it drops the entries below the
// bound's bin, and cuts back to the best k when that frees less than a
// quarter of the reservoir.
func (s *Selector) makeRoom() {
	if s.binned {
		keep := s.res[:0]
		for _, r := range s.res {
			if s.bin(r.Score) >= s.tb {
				keep = append(keep, r)
			}
		}
		clear(s.hist[:s.tb])
		s.res = keep
		if len(keep) <= cap(s.res)-cap(s.res)/4 {
			return
		}
	}
	s.cut()
}

// Results appends the top k, best first, to dst[:0] and returns it. The
// Selector keeps its state: more pushes may follow.
func (s *Selector) Results(dst []Result) []Result {
	if len(s.res) > s.k {
		s.cut()
	}
	dst = append(dst[:0], s.res...)
	sortResults(dst)
	if !s.largest {
		for i := range dst {
			dst[i].Score = -dst[i].Score
		}
	}
	return dst
}

// Unordered appends the top k to dst[:0] in no particular order, skipping
// the final sort: for a caller that re-scores them anyway, as an index's
// exact re-ranking does.
func (s *Selector) Unordered(dst []Result) []Result {
	if len(s.res) > s.k {
		s.cut()
	}
	dst = append(dst[:0], s.res...)
	if !s.largest {
		for i := range dst {
			dst[i].Score = -dst[i].Score
		}
	}
	return dst
}

// Candidates appends to dst[:0], in no particular order, a superset of the
// best k: every entry at or above the bound's histogram bin, which holds the
// best k and usually a few more (all entries when fewer than k came in). It
// skips the final quickselect of Unordered, for a caller that re-scores the
// candidates anyway and keeps its own top k of them.
func (s *Selector) Candidates(dst []Result) []Result {
	if !s.binned {
		return s.Unordered(dst)
	}
	dst = dst[:0]
	for _, r := range s.res {
		if s.bin(r.Score) >= s.tb {
			if !s.largest {
				r.Score = -r.Score
			}
			dst = append(dst, r)
		}
	}
	return dst
}

// better is the strict order of the selection: higher score, then smaller
// id. The reservoir stores scores so that higher is always better (L2
// distances negated, which is exact), so one order serves both metrics.
func better(a, b Result) bool {
	return a.Score > b.Score || a.Score == b.Score && a.ID < b.ID
}

// cut keeps the best k of the reservoir in res[:k], with the k-th best at
// res[k-1], sets the bound to its score and draws the histogram again.
func (s *Selector) cut() {
	if len(s.res) < s.k || s.exact {
		return
	}
	quickselect(s.res, s.k-1)
	s.res = s.res[:s.k]
	s.thresh = s.res[s.k-1].Score
	s.kept, s.exact = true, true
	s.rebin()
}

// quickselect reorders v so that v[k] is the element a sort by better would
// put there, with nothing after it better and nothing before it worse.
// Median-of-three pivots, and a fall back to sorting when the loop stops
// shrinking, keep it O(n) in practice and O(n log n) at worst.
func quickselect(v []Result, k int) {
	lo, hi := 0, len(v)-1
	for budget := 2 * bits.Len(uint(len(v))); hi > lo; budget-- {
		if hi-lo < 16 || budget == 0 {
			sortResults(v[lo : hi+1])
			return
		}
		i, j := partition(v, lo, hi)
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return
		}
	}
}

// partition splits v[lo..hi] around a median-of-three pivot (Hoare): after
// it, v[lo..j] are not worse than the pivot, v[i..hi] not better, and
// anything between equals it.
func partition(v []Result, lo, hi int) (i, j int) {
	mid := lo + (hi-lo)/2
	if better(v[mid], v[lo]) {
		v[mid], v[lo] = v[lo], v[mid]
	}
	if better(v[hi], v[lo]) {
		v[hi], v[lo] = v[lo], v[hi]
	}
	if better(v[hi], v[mid]) {
		v[hi], v[mid] = v[mid], v[hi]
	}
	pivot := v[mid]
	i, j = lo, hi
	for i <= j {
		for better(v[i], pivot) {
			i++
		}
		for better(pivot, v[j]) {
			j--
		}
		if i <= j {
			v[i], v[j] = v[j], v[i]
			i++
			j--
		}
	}
	return i, j
}

// sortResults sorts best first: quicksort with the inlined order, insertion
// sort for short runs, and the standard library's pdqsort if the recursion
// gets too deep.
func sortResults(v []Result) {
	sortDepth(v, 2*bits.Len(uint(len(v))))
}

func sortDepth(v []Result, depth int) {
	for len(v) > 24 {
		if depth == 0 {
			slices.SortFunc(v, func(a, b Result) int {
				if better(a, b) {
					return -1
				}
				if better(b, a) {
					return 1
				}
				return 0
			})
			return
		}
		depth--
		i, j := partition(v, 0, len(v)-1)
		// Recurse into the smaller side, loop on the larger.
		if j+1 < len(v)-i {
			sortDepth(v[:j+1], depth)
			v = v[i:]
		} else {
			sortDepth(v[i:], depth)
			v = v[:j+1]
		}
	}
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && better(v[j], v[j-1]); j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}

// filterScoresGeneric is the reference for the filter kernel: it writes to
// idx the positions i of scores with scores[i] >= thresh (largest) or
// scores[i] <= thresh (smallest), in order, and returns how many. NaN never
// passes. idx must hold len(scores) + 16 entries.
func filterScoresGeneric(idx []int32, scores []float32, thresh float32, largest bool) int {
	n := 0
	if largest {
		for i, v := range scores {
			if v >= thresh {
				idx[n] = int32(i)
				n++
			}
		}
		return n
	}
	for i, v := range scores {
		if v <= thresh {
			idx[n] = int32(i)
			n++
		}
	}
	return n
}
