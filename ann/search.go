package ann

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reelrank/reelrank/kernels"
)

// SearchOptions control one search.
type SearchOptions struct {
	K      int // results wanted, 1..4096
	NProbe int // lists scanned, 1..Lists
	// RefineFactor: with a refine copy, the best K*RefineFactor candidates
	// by PQ score (and the few that tie with the last of them in the
	// selector's histogram) are re-ranked exactly (default
	// DefaultRefineFactor; 1 re-ranks just K). Without one it is ignored.
	RefineFactor int
	// RadiusWeight (inner product only) ranks lists for probing by
	// <q, c> + RadiusWeight * ||q|| * (the list's mean residual norm): a
	// list whose vectors spread wide holds high inner products that its
	// centroid alone understates. 0 means DefaultRadiusWeight; a negative
	// value ranks by <q, c> alone.
	RadiusWeight float32
	// Exclude lists ids that must not come back (already seen, blocked).
	Exclude []int64
	// Allow, when not nil, admits only the ids whose bit is set.
	Allow *Bitmap
	// Stages, when not nil, receives the time the search spends in each
	// stage (added to what it holds). Timing costs a few percent of a
	// query; leave it nil when serving.
	Stages *Stages
}

// Stages is where the time of searches goes, summed over searches.
type Stages struct {
	Searches  int
	Scanned   int64         // vectors the scan scored
	Offered   int64         // of them, those offered to the candidate selector (they beat its bound)
	Probe     time.Duration // query rotation, <q, centroid> for every list, choosing the lists to probe
	Table     time.Duration // the query's PQ tables and their 8-bit quantization
	Scan      time.Duration // the fast-scan (or ADC) kernels over the probed lists
	Reservoir time.Duration // offering the scan's survivors to the candidate selector, cutting it back
	Gather    time.Duration // the candidates' refine rows, from the snapshots of their lists
	Refine    time.Duration // exact scores of the candidates against the refine copy
	Select    time.Duration // the final top k, sorted, and the winners' ids
}

// Add adds o's times and searches to st.
func (st *Stages) Add(o Stages) {
	st.Searches += o.Searches
	st.Scanned += o.Scanned
	st.Offered += o.Offered
	st.Probe += o.Probe
	st.Table += o.Table
	st.Scan += o.Scan
	st.Reservoir += o.Reservoir
	st.Gather += o.Gather
	st.Refine += o.Refine
	st.Select += o.Select
}

// Total is the sum of the stages.
func (st Stages) Total() time.Duration {
	return st.Probe + st.Table + st.Scan + st.Reservoir + st.Gather + st.Refine + st.Select
}

// stageClock times consecutive stages of one search into st; it does
// nothing unless on.
type stageClock struct {
	on   bool
	last time.Time
	st   Stages
}

// lap charges the time since the last lap to *d, a field of c.st.
func (c *stageClock) lap(d *time.Duration) {
	if !c.on {
		return
	}
	now := time.Now()
	*d += now.Sub(c.last)
	c.last = now
}

// DefaultRefineFactor is the RefineFactor searches use unless told. On
// reels1m (k = 1000, 64 4-bit codes, float16 refine copy) 6 reaches recall
// 0.90 and 0.95 at fewer microseconds than 4 (which stops near 0.935) or 8.
const DefaultRefineFactor = 6

// DefaultRadiusWeight is the RadiusWeight searches use unless told: on
// reels1m it lifts recall@1000 at nprobe 1024 of 4096 lists from 0.88 to 0.91.
const DefaultRadiusWeight = 0.2

// Bitmap is a set of non-negative ids, one bit each.
type Bitmap struct{ words []uint64 }

// NewBitmap makes a bitmap for ids 0..n-1.
func NewBitmap(n int) *Bitmap { return &Bitmap{words: make([]uint64, (n+63)/64)} }

// Set adds id, growing the bitmap when needed. Negative ids are ignored.
func (b *Bitmap) Set(id int64) {
	if id < 0 {
		return
	}
	w := int(id >> 6)
	for w >= len(b.words) {
		b.words = append(b.words, 0)
	}
	b.words[w] |= 1 << (id & 63)
}

// Has reports whether id is in the set.
func (b *Bitmap) Has(id int64) bool {
	w := id >> 6
	return id >= 0 && w < int64(len(b.words)) && b.words[w]&(1<<(id&63)) != 0
}

// searcher is the scratch one search needs; searches take one from a pool.
type searcher struct {
	coarse  []float32 // <q, c> or ||q - c||^2 per list
	rank    []float32 // the probing order's scores, when they differ
	probe   *kernels.Selector
	probes  []kernels.Result
	table   []float32
	lut     []uint8
	resid   []float32
	ids     []int32
	sums    []uint16
	fdist   []float32
	cand    *kernels.Selector
	final   *kernels.Selector
	cands   []kernels.Result
	exclude map[int64]struct{}
	qrot    []float32
	outIDs  []int64
	locs    []int64 // the refined candidates' loc keys
	keys    []int64 // scratch: one filter call's survivors' loc keys
	// everyone: no Exclude or Allow filter, only tombstones, in this search
	everyone bool
	scores   []float32
	rows16   [][]kernels.F16
	rows32   [][]float32
	snaps    []listSnap // the probed lists, in probe order
	snapOf   []int32    // list -> index in snaps + 1 (0: not probed)
}

// listSnap is what the gather after the scan needs of one probed list, taken
// under the list's lock while it is scanned. Adds only append (positions
// below n keep their id and rows, even where append moves the arrays) and
// Compact waits for searches (structMu), so the gather reads ids and rows
// without taking the list's lock again, candidate after candidate: the
// loads of thousands of candidates overlap instead of queueing behind as
// many atomic operations. Delete sets tombstone bits atomically; the gather
// reads them so, and drops a vector deleted since the scan.
type listSnap struct {
	ids  []int64
	f16  []kernels.F16
	f32  []float32
	dead []uint64
}

// deadAt reports the tombstone of position pos.
func (ls *listSnap) deadAt(pos int) bool {
	return pos>>6 < len(ls.dead) && atomic.LoadUint64(&ls.dead[pos>>6])&(1<<(pos&63)) != 0
}

// filterChunk is how many candidates one call of the filtered scan may
// return before they are handed to the selector.
const filterChunk = 1024

func (ix *Index) checkSearch(q []float32, opt *SearchOptions) error {
	if !ix.trained.Load() {
		return fmt.Errorf("ann: search: %w", ErrNotTrained)
	}
	if len(q) != ix.opt.Dim {
		return fmt.Errorf("ann: search: query of dimension %d, index has %d", len(q), ix.opt.Dim)
	}
	for j, v := range q {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: search: query dimension %d is %v", ErrBadVector, j, v)
		}
	}
	if opt.K < 1 || opt.K > 4096 {
		return fmt.Errorf("ann: search: k = %d, want 1..4096", opt.K)
	}
	if opt.NProbe < 1 || opt.NProbe > ix.opt.Lists {
		return fmt.Errorf("ann: search: nprobe = %d, want 1..%d", opt.NProbe, ix.opt.Lists)
	}
	if opt.RefineFactor < 0 {
		return fmt.Errorf("ann: search: refine factor %d, want >= 0", opt.RefineFactor)
	}
	if opt.RefineFactor == 0 {
		opt.RefineFactor = DefaultRefineFactor
	}
	if opt.RadiusWeight == 0 {
		opt.RadiusWeight = DefaultRadiusWeight
	}
	if math.IsNaN(float64(opt.RadiusWeight)) || math.IsInf(float64(opt.RadiusWeight), 0) {
		return fmt.Errorf("ann: search: radius weight %v", opt.RadiusWeight)
	}
	return nil
}

// Search returns the K nearest vectors to q (largest inner product, or
// smallest squared L2 distance), best first, ties by smaller id. With a
// refine copy the scores are exact; without, they are the PQ estimates.
// Fewer than K come back only when fewer eligible vectors live in the
// probed lists.
func (ix *Index) Search(q []float32, opt SearchOptions) ([]kernels.Result, error) {
	return ix.SearchInto(nil, q, opt)
}

// SearchInto is Search appending its results to dst[:0]: a caller that
// keeps dst from one query to the next searches without allocating.
func (ix *Index) SearchInto(dst []kernels.Result, q []float32, opt SearchOptions) ([]kernels.Result, error) {
	if err := ix.checkSearch(q, &opt); err != nil {
		return nil, err
	}
	if ix.live.Load() == 0 {
		return nil, fmt.Errorf("ann: search: %w", ErrEmpty)
	}
	s, _ := ix.searchers.Get().(*searcher)
	if s == nil {
		s = new(searcher)
	}
	defer ix.searchers.Put(s)
	ix.structMu.RLock()
	defer ix.structMu.RUnlock()
	return ix.search(s, q, &opt, dst), nil
}

// SearchBatch runs Search for every row of queries (n x Dim) on up to
// threads goroutines (0 means GOMAXPROCS) and returns the results in order.
func (ix *Index) SearchBatch(queries []float32, opt SearchOptions, threads int) ([][]kernels.Result, error) {
	d := ix.opt.Dim
	if len(queries)%d != 0 {
		return nil, fmt.Errorf("ann: search batch: %d values are not a whole number of %d-dimensional queries", len(queries), d)
	}
	n := len(queries) / d
	out := make([][]kernels.Result, n)
	errs := make([]error, n)
	if threads <= 0 {
		threads = ix.opt.Threads
	}
	var wg sync.WaitGroup
	for t := range min(threads, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := t; i < n; i += threads {
				out[i], errs[i] = ix.Search(queries[i*d:(i+1)*d], opt)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("query %d: %w", i, err)
		}
	}
	return out, nil
}

func (ix *Index) search(s *searcher, q []float32, opt *SearchOptions, dst []kernels.Result) []kernels.Result {
	o := ix.opt
	largest := o.Metric.Largest()
	clk := stageClock{on: opt.Stages != nil}
	if clk.on {
		clk.st.Searches = 1
		clk.last = time.Now()
	}
	if ix.rot != nil {
		s.qrot = grow(s.qrot, o.Dim)
		rotatePacked(s.qrot, q, ix.rotPack, 1)
		q = s.qrot
	}

	// Coarse: the nprobe best lists (by inner product with the centroid for
	// InnerProduct, by distance for L2).
	s.coarse = grow(s.coarse, o.Lists)
	if largest {
		kernels.DotBatch(s.coarse, q, ix.centroids)
	} else {
		kernels.L2SqBatch(s.coarse, q, ix.centroids)
	}
	if s.probe == nil || s.probe.K() != opt.NProbe || s.probe.Largest() != largest {
		s.probe = kernels.NewSelector(opt.NProbe, largest)
	}
	rank := s.coarse
	if w := opt.RadiusWeight; largest && w > 0 {
		// A list's best inner product is <q, c> plus the largest <q, r> of
		// its residuals, which grows with the list's radius. s.coarse keeps
		// <q, c>, the bias of the list's scores.
		w *= float32(math.Sqrt(float64(kernels.Dot(q, q))))
		s.rank = grow(s.rank, o.Lists)
		for l, c := range s.coarse {
			s.rank[l] = c + w*math.Float32frombits(ix.radius[l].Load())
		}
		rank = s.rank
	}
	s.probe.Reset()
	s.probe.Push(rank, nil)
	s.probes = s.probe.Results(s.probes)
	clk.lap(&clk.st.Probe)

	// Candidates by PQ score: K*RefineFactor of them with a refine copy.
	kc := opt.K
	if o.Refine != RefineNone {
		kc = opt.K * opt.RefineFactor
	}
	if s.cand == nil || s.cand.K() != kc || s.cand.Largest() != largest {
		s.cand = kernels.NewSelector(kc, largest)
	}
	s.cand.Reset()
	if len(opt.Exclude) > 0 {
		if s.exclude == nil {
			s.exclude = make(map[int64]struct{}, len(opt.Exclude))
		}
		clear(s.exclude)
		for _, id := range opt.Exclude {
			s.exclude[id] = struct{}{}
		}
	}
	filtering := len(opt.Exclude) > 0 || opt.Allow != nil
	s.everyone = !filtering
	eligible := func(L *invList, pos int) bool {
		if L.isDead(pos) {
			return false
		}
		if !filtering {
			return true
		}
		id := L.ids[pos]
		if _, ok := s.exclude[id]; ok && len(opt.Exclude) > 0 {
			return false
		}
		return opt.Allow == nil || opt.Allow.Has(id)
	}

	s.table = grow(s.table, o.M*ix.ksub)
	var scale, bias float32
	if o.Bits == 4 {
		s.lut = grow(s.lut, kernels.FastScan4LUTSize(o.M))
	}
	if !o.Residual || largest {
		// Inner product: <q, c + r> = <q, c> + <q, r>; the table of <q, r>
		// is the same for every list. L2 without residuals: the table of q
		// itself is.
		ix.pq.Table(s.table, q, o.Metric)
		if o.Bits == 4 {
			scale, bias = kernels.QuantizeTable4(s.lut, s.table, o.M, o.Metric)
		}
	}
	clk.lap(&clk.st.Table)
	s.resid = grow(s.resid, o.Dim)
	s.ids = grow(s.ids, filterChunk)
	s.keys = grow(s.keys, filterChunk)
	s.fdist = grow(s.fdist, filterChunk)
	s.sums = grow(s.sums, filterChunk)

	s.snaps = s.snaps[:0]
	if len(s.snapOf) != o.Lists {
		s.snapOf = make([]int32, o.Lists)
	}
	for i, p := range s.probes {
		if i+1 < len(s.probes) {
			ix.lists[s.probes[i+1].ID].prefetch()
		}
		l := int(p.ID)
		var cbias float32
		if largest {
			cbias = s.coarse[l]
		} else if o.Residual {
			// L2: the table is of the residual query q - c.
			c := ix.centroids[l*o.Dim : (l+1)*o.Dim]
			for j := range q {
				s.resid[j] = q[j] - c[j]
			}
			ix.pq.Table(s.table, s.resid, kernels.L2)
			if o.Bits == 4 {
				scale, bias = kernels.QuantizeTable4(s.lut, s.table, o.M, kernels.L2)
			}
			clk.lap(&clk.st.Table)
		}
		L := &ix.lists[l]
		L.mu.RLock()
		s.snaps = append(s.snaps, listSnap{ids: L.ids[:L.n:L.n], f16: L.f16, f32: L.f32, dead: L.dead})
		s.snapOf[l] = int32(len(s.snaps))
		if o.Bits == 4 {
			ix.scan4(s, L, l, cbias, scale, bias, eligible, &clk)
		} else {
			ix.scan8(s, L, l, cbias, eligible, &clk)
		}
		L.mu.RUnlock()
	}

	s.cands = s.cand.Candidates(s.cands)
	clk.lap(&clk.st.Reservoir)
	if s.final == nil || s.final.K() != opt.K || s.final.Largest() != largest {
		s.final = kernels.NewSelector(opt.K, largest)
	}
	s.final.Reset()
	// Gather the survivors' ids and refine rows from the snapshots taken in
	// the scan; a vector deleted since the scan is dropped here.
	s.locs = s.locs[:0]
	s.rows16 = s.rows16[:0]
	s.rows32 = s.rows32[:0]
	s.scores = s.scores[:0]
	for _, c := range s.cands {
		w := locOf(c.ID)
		ls := &s.snaps[s.snapOf[w.list]-1]
		pos := int(w.pos)
		if ls.deadAt(pos) {
			continue
		}
		s.locs = append(s.locs, c.ID)
		s.scores = append(s.scores, c.Score)
		switch o.Refine {
		case RefineF16:
			s.rows16 = append(s.rows16, ls.f16[pos*o.Dim:(pos+1)*o.Dim:(pos+1)*o.Dim])
		case RefineF32:
			s.rows32 = append(s.rows32, ls.f32[pos*o.Dim:(pos+1)*o.Dim:(pos+1)*o.Dim])
		}
	}

	clk.lap(&clk.st.Gather)
	switch o.Refine {
	case RefineF16:
		if largest {
			kernels.DotF16Many(s.scores, q, s.rows16)
		} else {
			kernels.L2SqF16Many(s.scores, q, s.rows16)
		}
	case RefineF32:
		for i, v := range s.rows32 {
			if largest {
				s.scores[i] = kernels.Dot(q, v)
			} else {
				s.scores[i] = kernels.L2Sq(q, v)
			}
		}
	}
	clk.lap(&clk.st.Refine)
	// The best K by exact score, candidates named by their index; only the
	// winners' ids are then read (a cache miss each), unless the K-th score
	// ties with a loser, whose id may be the smaller: then every id is read
	// and the selection runs again by id.
	s.final.Push(s.scores, nil)
	clear(s.rows16) // drop references to list memory
	clear(s.rows32)
	dst = s.final.Results(dst)
	if len(dst) == opt.K && ties(s.scores, dst) {
		s.outIDs = s.outIDs[:0]
		for _, key := range s.locs {
			s.outIDs = append(s.outIDs, s.idOf(key))
		}
		s.final.Reset()
		s.final.Push(s.scores, s.outIDs)
		dst = s.final.Results(dst)
	} else {
		for i := range dst {
			dst[i].ID = s.idOf(s.locs[dst[i].ID])
		}
		orderTies(dst)
	}
	for i := range s.snaps {
		s.snapOf[s.probes[i].ID] = 0
	}
	clear(s.snaps) // drop references to list memory
	clk.lap(&clk.st.Select)
	if clk.on {
		opt.Stages.Add(clk.st)
	}
	return dst
}

// idOf is the id of the vector at a loc key, from the scan's snapshots.
func (s *searcher) idOf(key int64) int64 {
	w := locOf(key)
	return s.snaps[s.snapOf[w.list]-1].ids[w.pos]
}

// ties reports whether the last (K-th) of the selected results scores the
// same as some candidate left out.
func ties(scores []float32, sel []kernels.Result) bool {
	kth := sel[len(sel)-1].Score
	in := 0
	for _, r := range sel {
		if r.Score == kth {
			in++
		}
	}
	all := 0
	for _, v := range scores {
		if v == kth {
			all++
		}
	}
	return all > in
}

// orderTies sorts each run of equal scores in res (ordered by score) by id.
func orderTies(res []kernels.Result) {
	for i := 1; i < len(res); i++ {
		for j := i; j > 0 && res[j].Score == res[j-1].Score && res[j].ID < res[j-1].ID; j-- {
			res[j], res[j-1] = res[j-1], res[j]
		}
	}
}

// scan4 scans one 4-bit list into the candidate selector. While the
// selector has no bound yet every vector is scored; after, the fused filter
// returns only the vectors whose quantized sum beats the bound.
func (ix *Index) scan4(s *searcher, L *invList, l int, cbias, scale, bias float32, eligible func(*invList, int) bool, clk *stageClock) {
	o := ix.opt
	n := L.n
	bb := kernels.FastScan4BlockBytes(o.M)
	for start := 0; start < n; {
		bound, ok := s.cand.Bound()
		if !ok {
			end := min(n, start+filterChunk)
			sums := s.sums[:end-start]
			kernels.FastScan4(sums, L.codes[start/32*bb:], o.M, s.lut)
			clk.lap(&clk.st.Scan)
			if clk.on {
				clk.st.Scanned += int64(len(sums))
				clk.st.Offered += int64(len(sums))
			}
			for j, sum := range sums {
				if pos := start + j; eligible(L, pos) {
					s.cand.Add(loc{uint32(l), uint32(pos)}.key(), float32(sum)/scale+bias+cbias)
				}
			}
			clk.lap(&clk.st.Reservoir)
			start = end
			continue
		}
		th := kernels.FastScan4Threshold(bound-cbias, scale, bias)
		if th < 65535 {
			th++ // keep ties with the bound: the exact order decides them
		}
		cnt, scanned := kernels.FastScan4Filter(s.ids, s.sums, L.codes[start/32*bb:], n-start, o.M, s.lut, th, int32(start))
		clk.lap(&clk.st.Scan)
		if clk.on {
			clk.st.Scanned += int64(scanned)
			clk.st.Offered += int64(cnt)
		}
		keys, scores := s.keys[:cnt], s.fdist[:cnt]
		if s.everyone && L.dead == nil {
			hi := int64(l) << 32
			for j, pos := range s.ids[:cnt] {
				keys[j] = hi | int64(pos)
				scores[j] = float32(s.sums[j])/scale + bias + cbias
			}
		} else {
			keys, scores = keys[:0], scores[:0]
			for j := range cnt {
				if pos := int(s.ids[j]); eligible(L, pos) {
					keys = append(keys, loc{uint32(l), uint32(pos)}.key())
					scores = append(scores, float32(s.sums[j])/scale+bias+cbias)
				}
			}
		}
		s.cand.Push(scores, keys)
		clk.lap(&clk.st.Reservoir)
		start += scanned
	}
}

// scan8 scores one 8-bit list with the ADC scan and offers every eligible
// vector to the candidate selector.
func (ix *Index) scan8(s *searcher, L *invList, l int, cbias float32, eligible func(*invList, int) bool, clk *stageClock) {
	o := ix.opt
	for start := 0; start < L.n; start += filterChunk {
		end := min(L.n, start+filterChunk)
		s.fdist = grow(s.fdist, end-start)
		kernels.PQScan8(s.fdist, L.codes[start*o.M:end*o.M], o.M, s.table)
		clk.lap(&clk.st.Scan)
		bound, ok := s.cand.Bound()
		largest := o.Metric.Largest()
		for j, v := range s.fdist {
			v += cbias
			if ok && (largest && v < bound || !largest && v > bound) {
				continue
			}
			if pos := start + j; eligible(L, pos) {
				s.cand.Add(loc{uint32(l), uint32(pos)}.key(), v)
			}
		}
		clk.lap(&clk.st.Reservoir)
	}
}

// grow returns b resized to n, reallocated only when it is too small.
func grow[T any](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n)
	}
	return b[:n]
}
