package ann

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/reelrank/reelrank/kernels"
)

// Refine says which copy of every vector the index keeps to re-rank its
// candidates exactly: none (the PQ score is final), float16 (2 bytes a
// dimension, nearly exact) or float32 (exact).
type Refine uint8

const (
	RefineNone Refine = iota
	RefineF16
	RefineF32
)

// String names the refine copy as the command line spells it.
func (r Refine) String() string {
	switch r {
	case RefineNone:
		return "none"
	case RefineF16:
		return "f16"
	case RefineF32:
		return "f32"
	}
	return fmt.Sprintf("Refine(%d)", uint8(r))
}

// ParseRefine reads none, f16 or f32.
func ParseRefine(s string) (Refine, error) {
	switch s {
	case "none", "":
		return RefineNone, nil
	case "f16", "fp16", "float16":
		return RefineF16, nil
	case "f32", "fp32", "float32", "flat":
		return RefineF32, nil
	}
	return 0, fmt.Errorf("ann: unknown refine %q (want none, f16 or f32)", s)
}

// Options describe an index. Dim and Metric are required; the rest have defaults.
type Options struct {
	Dim    int            // vector dimension
	Metric kernels.Metric // kernels.InnerProduct or kernels.L2
	Lists  int            // inverted lists (coarse centroids); default 1024
	M      int            // PQ sub-quantizers, a divisor of Dim; default Dim/2 (Dim if odd)
	Bits   int            // 4 (fast-scan) or 8 bits per sub-quantizer code; default 4
	Refine Refine         // refine copy kept for exact re-ranking; default none
	Seed   uint64         // training seed: same data and seed, same index
	// Residual (L2 only) quantizes each vector's residual from its list
	// centroid, which is more accurate but needs a lookup table per probed
	// list; without it the vector itself is quantized and one table serves
	// the whole query. Inner product always quantizes residuals: there the
	// table is shared by every list anyway.
	Residual bool
	// OPQ learns an orthogonal rotation of the vectors that lowers the
	// product quantizer's error (optimized product quantization) and
	// applies it to every vector and query; distances are unchanged by it.
	// It costs a Dim x Dim matrix-vector product a query. OPQIters is the
	// number of its alternating steps (default 10).
	OPQ      bool
	OPQIters int
	// TrainPerList caps the k-means sample at Lists*TrainPerList points
	// (default 64); TrainIters is the number of Lloyd iterations (default 10).
	TrainPerList int
	TrainIters   int
	// Threads for training and bulk adds; 0 means GOMAXPROCS.
	Threads int
}

func (o *Options) fill() error {
	if o.Dim <= 0 {
		return fmt.Errorf("ann: dimension %d, want > 0", o.Dim)
	}
	if o.Metric != kernels.InnerProduct && o.Metric != kernels.L2 {
		return fmt.Errorf("ann: unknown metric %v", o.Metric)
	}
	if o.Lists == 0 {
		o.Lists = 1024
	}
	if o.Lists < 1 || o.Lists > 1<<20 {
		return fmt.Errorf("ann: %d lists, want 1..%d", o.Lists, 1<<20)
	}
	if o.M == 0 {
		o.M = o.Dim
		if o.Dim%2 == 0 {
			o.M = o.Dim / 2
		}
	}
	if o.M < 1 || o.Dim%o.M != 0 {
		return fmt.Errorf("ann: M = %d sub-quantizers does not divide dimension %d", o.M, o.Dim)
	}
	if o.Bits == 0 {
		o.Bits = 4
	}
	if o.Bits != 4 && o.Bits != 8 {
		return fmt.Errorf("ann: %d-bit codes, want 4 or 8", o.Bits)
	}
	if o.Refine > RefineF32 {
		return fmt.Errorf("ann: unknown refine %v", o.Refine)
	}
	if o.TrainPerList == 0 {
		o.TrainPerList = 64
	}
	if o.TrainIters == 0 {
		o.TrainIters = 10
	}
	if o.OPQIters == 0 {
		o.OPQIters = 10
	}
	if o.TrainPerList < 1 || o.TrainIters < 1 || o.OPQIters < 1 {
		return fmt.Errorf("ann: TrainPerList %d, TrainIters %d and OPQIters %d must be positive", o.TrainPerList, o.TrainIters, o.OPQIters)
	}
	if o.Threads <= 0 {
		o.Threads = runtime.GOMAXPROCS(0)
	}
	if o.Metric == kernels.InnerProduct {
		o.Residual = true
	}
	return nil
}

// Errors a caller may test for with errors.Is.
var (
	ErrNotTrained = errors.New("ann: index is not trained")
	ErrEmpty      = errors.New("ann: index is empty")
	ErrDuplicate  = errors.New("ann: id already in the index")
	ErrNotFound   = errors.New("ann: id not in the index")
	ErrBadVector  = errors.New("ann: vector has NaN or Inf")
)

// Index is an IVF-PQ index: a coarse k-means quantizer splits the vectors
// into inverted lists; each vector's residual from its list centroid is
// product-quantized (4-bit codes scanned with in-register lookups, or 8-bit
// codes); an optional float16 or float32 copy re-ranks the best candidates
// exactly.
//
// Search, Add and Delete may run concurrently from many goroutines. Searches
// hold a list's read lock only while scanning it, so writers wait at most one
// list scan; Compact waits for searches in flight.
type Index struct {
	opt  Options
	dsub int
	ksub int

	// Set once by Train, read-only after.
	trained   atomic.Bool
	centroids []float32 // Lists x Dim
	cnorms    []float32 // ||c||^2 per list
	centPack  *kernels.PackedB
	pqCent    []float32 // M x ksub x dsub, m-major
	pq        *kernels.PQCodebook
	rot       []float32 // Dim x Dim OPQ rotation (x·rot), nil without OPQ
	rotPack   *kernels.PackedB

	structMu sync.RWMutex // searches read; Compact writes (positions move)
	idMu     sync.Mutex   // guards where; taken by Add, Delete, Compact
	where    map[int64]loc
	lists    []invList
	radius   []atomic.Uint32 // per list: float32 bits of the mean ||x - c||
	live     atomic.Int64

	searchers sync.Pool // *searcher: the scratch of one search at a time

	unmapMu sync.Mutex
	unmap   func() error // releases the file mapping of an index from Open
}

// loc is a vector's place: its list and its position in the list.
type loc struct {
	list, pos uint32
}

func (l loc) key() int64     { return int64(l.list)<<32 | int64(l.pos) }
func locOf(key int64) loc    { return loc{uint32(key >> 32), uint32(key)} }
func (l loc) String() string { return fmt.Sprintf("list %d pos %d", l.list, l.pos) }

// invList is one inverted list. Vectors are appended; deleted ones are marked
// in dead and dropped by Compact.
type invList struct {
	mu    sync.RWMutex
	n     int
	ids   []int64
	codes []byte        // 4-bit: blocks of 32 (kernels.PackCodes4); 8-bit: n x M
	f16   []kernels.F16 // n x Dim with RefineF16
	f32   []float32     // n x Dim with RefineF32
	dead  []uint64      // tombstones, one bit a position; nil until the first delete
	ndead int
	// rsum is the sum of the residual norms ||x - c|| of the vectors added
	// (Compact scales it down with the list), so that rsum/n is the list's
	// mean radius, which probing weighs.
	rsum float64
	// head is the codes as of the last change, published for searches to
	// prefetch the next list they will scan without taking its lock.
	head atomic.Pointer[[]byte]
}

// publish makes the list's codes the ones searches prefetch. It is called
// with the list's write lock held (or before the index is shared).
func (l *invList) publish() {
	c := l.codes
	l.head.Store(&c)
}

// prefetchBytes is how much of the next list a search asks the CPU to
// bring into cache while it scans the current one: enough for the
// hardware prefetcher to take over from there.
const prefetchBytes = 4096

// prefetch asks the CPU to bring the start of the list's codes into cache.
func (l *invList) prefetch() {
	if h := l.head.Load(); h != nil {
		c := *h
		kernels.Prefetch(c[:min(len(c), prefetchBytes)])
	}
}

func (l *invList) isDead(pos int) bool {
	return l.dead != nil && l.dead[pos>>6]&(1<<(pos&63)) != 0
}

// New makes an empty, untrained index.
func New(opt Options) (*Index, error) {
	if err := opt.fill(); err != nil {
		return nil, err
	}
	ix := &Index{opt: opt, dsub: opt.Dim / opt.M, ksub: 1 << opt.Bits}
	ix.where = make(map[int64]loc)
	ix.lists = make([]invList, opt.Lists)
	ix.radius = make([]atomic.Uint32, opt.Lists)
	return ix, nil
}

// Options returns the index's options, defaults filled in.
func (ix *Index) Options() Options { return ix.opt }

// Len returns the number of live vectors.
func (ix *Index) Len() int { return int(ix.live.Load()) }

// Trained reports whether Train has run.
func (ix *Index) Trained() bool { return ix.trained.Load() }

// checkVectors validates a flat batch of vectors of the index's dimension.
func (ix *Index) checkVectors(what string, x []float32) (int, error) {
	d := ix.opt.Dim
	if len(x)%d != 0 {
		return 0, fmt.Errorf("ann: %s: %d values are not a whole number of %d-dimensional vectors", what, len(x), d)
	}
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return 0, fmt.Errorf("%w: %s: vector %d, dimension %d is %v", ErrBadVector, what, i/d, i%d, v)
		}
	}
	return len(x) / d, nil
}

// Train learns the coarse centroids and the product quantizer from x (n
// vectors of the index's dimension, n at least Lists and at least 2^Bits).
// Training a trained index is an error: make a new one.
func (ix *Index) Train(x []float32) error {
	n, err := ix.checkVectors("train", x)
	if err != nil {
		return err
	}
	ix.idMu.Lock() // one Train at a time; Adds wait for it
	defer ix.idMu.Unlock()
	if ix.trained.Load() {
		return errors.New("ann: train: index is already trained")
	}
	o := ix.opt
	if n < o.Lists {
		return fmt.Errorf("ann: train: %d vectors for %d lists: need at least one per list", n, o.Lists)
	}
	if o.OPQ {
		// Learn the rotation on a sample, then train everything else on
		// the rotated sample: the index lives in the rotated space.
		x = sampleRows(x, o.Dim, max(o.Lists*o.TrainPerList, 65536), o.Seed+3)
		rot, err := trainOPQ(x, o.Dim, o.M, ix.ksub, o.OPQIters, o.Seed+4, o.Threads)
		if err != nil {
			return fmt.Errorf("ann: train rotation: %w", err)
		}
		xr := make([]float32, len(x))
		rotate(xr, x, rot, o.Dim)
		x, n = xr, len(xr)/o.Dim
		ix.setRotation(rot)
	}
	cent, err := TrainKMeans(x, o.Dim, KMeansOptions{K: o.Lists, Iters: o.TrainIters, Seed: o.Seed, MaxPerCentroid: o.TrainPerList, Threads: o.Threads})
	if err != nil {
		return fmt.Errorf("ann: train coarse quantizer: %w", err)
	}
	ix.setCentroids(cent)

	// The product quantizer learns from the residuals of a sample.
	ns := min(n, max(65536, 64*ix.ksub))
	sample := sampleRows(x, o.Dim, ns, o.Seed+1)
	labels := make([]int32, ns)
	ix.assign(labels, sample, o.Threads)
	res := sample
	if o.Residual {
		res = make([]float32, len(sample))
		for i := range ns {
			c := ix.centroids[int(labels[i])*o.Dim:][:o.Dim]
			for j := range o.Dim {
				res[i*o.Dim+j] = sample[i*o.Dim+j] - c[j]
			}
		}
	}
	if ns < ix.ksub {
		return fmt.Errorf("ann: train: %d vectors for %d-bit codes: need at least %d", n, o.Bits, ix.ksub)
	}
	pqCent := make([]float32, o.M*ix.ksub*ix.dsub)
	sub := make([]float32, ns*ix.dsub)
	for m := range o.M {
		for i := range ns {
			copy(sub[i*ix.dsub:(i+1)*ix.dsub], res[i*o.Dim+m*ix.dsub:])
		}
		c, err := TrainKMeans(sub, ix.dsub, KMeansOptions{K: ix.ksub, Iters: o.TrainIters, Seed: o.Seed + 2 + uint64(m), MaxPerCentroid: 256, Threads: o.Threads})
		if err != nil {
			return fmt.Errorf("ann: train sub-quantizer %d: %w", m, err)
		}
		copy(pqCent[m*ix.ksub*ix.dsub:], c)
	}
	ix.pqCent = pqCent
	ix.pq = kernels.NewPQCodebook(pqCent, o.M, ix.ksub, ix.dsub)
	ix.trained.Store(true)
	return nil
}

// setCentroids installs the coarse centroids and what assignment needs.
func (ix *Index) setCentroids(cent []float32) {
	d, k := ix.opt.Dim, ix.opt.Lists
	ix.centroids = cent
	ix.cnorms = make([]float32, k)
	ct := make([]float32, d*k) // C^T, d x k, for the GEMM
	for c := range k {
		row := cent[c*d : (c+1)*d]
		ix.cnorms[c] = kernels.Dot(row, row)
		for j, v := range row {
			ct[j*k+c] = v
		}
	}
	ix.centPack = kernels.PackB(ct, d, k)
}

// setRotation installs the OPQ rotation and its packed form.
func (ix *Index) setRotation(rot []float32) {
	ix.rot = rot
	ix.rotPack = kernels.PackB(rot, ix.opt.Dim, ix.opt.Dim)
}

// sampleRows picks n of the rows of x (all of them, in order, when n covers
// them), the same ones for the same seed.
func sampleRows(x []float32, d, n int, seed uint64) []float32 {
	total := len(x) / d
	if n >= total {
		return x
	}
	perm := rand.New(rand.NewPCG(seed, 0x5eed5eed)).Perm(total)[:n]
	out := make([]float32, n*d)
	for i, r := range perm {
		copy(out[i*d:(i+1)*d], x[r*d:(r+1)*d])
	}
	return out
}

// assignBlock is how many vectors one GEMM of the coarse assignment scores.
const assignBlock = 256

// assign writes the nearest coarse centroid (L2) of every row of x, using
// the GEMM against the packed centroids block by block, in parallel.
func (ix *Index) assign(labels []int32, x []float32, threads int) {
	d, k := ix.opt.Dim, ix.opt.Lists
	n := len(x) / d
	blocks := (n + assignBlock - 1) / assignBlock
	threads = max(1, min(threads, blocks))
	var wg sync.WaitGroup
	var next atomic.Int64
	for range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scores := make([]float32, assignBlock*k)
			for {
				b := int(next.Add(1) - 1)
				if b >= blocks {
					return
				}
				lo, hi := b*assignBlock, min(n, (b+1)*assignBlock)
				s := scores[:(hi-lo)*k]
				kernels.GemmPacked(s, x[lo*d:hi*d], hi-lo, ix.centPack, nil, kernels.ActNone)
				for i := range hi - lo {
					row := s[i*k : (i+1)*k]
					best, bestD := 0, float32(math.Inf(1))
					for c, dot := range row {
						if dd := ix.cnorms[c] - 2*dot; dd < bestD {
							best, bestD = c, dd
						}
					}
					labels[lo+i] = int32(best)
				}
			}
		}()
	}
	wg.Wait()
}

// encode writes the PQ codes (one byte a sub-quantizer) of x, or of its
// residual from centroid c with Options.Residual, using tab as scratch
// (M*ksub floats) and r (Dim floats).
func (ix *Index) encode(codes []byte, x, c, r, tab []float32) {
	if ix.opt.Residual {
		for j := range x {
			r[j] = x[j] - c[j]
		}
		x = r
	}
	ix.pq.Table(tab, x, kernels.L2)
	for m := range ix.opt.M {
		row := tab[m*ix.ksub : (m+1)*ix.ksub]
		best := 0
		for j, v := range row {
			if v < row[best] {
				best = j
			}
		}
		codes[m] = byte(best)
	}
}

// Add inserts vectors x (len(ids) vectors of the index's dimension) under
// ids, which must be new and distinct. Nothing is added when any id or vector
// is bad. Searches running meanwhile see each list's new vectors as soon as
// that list is written.
func (ix *Index) Add(ids []int64, x []float32) error {
	return ix.AddThreads(ids, x, ix.opt.Threads)
}

// AddThreads is Add with the assignment and encoding spread over at most
// threads goroutines (1: all on the caller's).
func (ix *Index) AddThreads(ids []int64, x []float32, threads int) error {
	threads = max(1, threads)
	if !ix.trained.Load() {
		return fmt.Errorf("ann: add: %w", ErrNotTrained)
	}
	n, err := ix.checkVectors("add", x)
	if err != nil {
		return err
	}
	if n != len(ids) {
		return fmt.Errorf("ann: add: %d vectors for %d ids", n, len(ids))
	}
	if n == 0 {
		return nil
	}
	o := ix.opt
	if ix.rot != nil {
		xr := make([]float32, len(x))
		rotatePacked(xr, x, ix.rotPack, threads)
		x = xr
	}
	labels := make([]int32, n)
	ix.assign(labels, x, threads)
	codes := make([]byte, n*o.M)
	radius := make([]float32, n)
	parallel(n, threads, func(lo, hi int) {
		r, tab := make([]float32, o.Dim), make([]float32, o.M*ix.ksub)
		for i := lo; i < hi; i++ {
			c := ix.centroids[int(labels[i])*o.Dim:][:o.Dim]
			xi := x[i*o.Dim : (i+1)*o.Dim]
			ix.encode(codes[i*o.M:(i+1)*o.M], xi, c, r, tab)
			radius[i] = float32(math.Sqrt(float64(kernels.L2Sq(xi, c))))
		}
	})

	ix.idMu.Lock()
	defer ix.idMu.Unlock()
	seen := make(map[int64]struct{}, n)
	for _, id := range ids {
		if _, ok := ix.where[id]; ok {
			return fmt.Errorf("%w: add: id %d", ErrDuplicate, id)
		}
		if _, ok := seen[id]; ok {
			return fmt.Errorf("%w: add: id %d twice in one batch", ErrDuplicate, id)
		}
		seen[id] = struct{}{}
	}
	// Group by list, keeping the input order within a list.
	byList := make(map[int32][]int, 0)
	for i, l := range labels {
		byList[l] = append(byList[l], i)
	}
	for l, rows := range byList {
		ix.appendList(int(l), rows, ids, x, codes, radius)
	}
	ix.live.Add(int64(n))
	return nil
}

// parallel runs f over [0, n) split into contiguous chunks, one a thread.
func parallel(n, threads int, f func(lo, hi int)) {
	threads = min(threads, max(1, n/64))
	if threads <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for t := range threads {
		lo, hi := t*n/threads, (t+1)*n/threads
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}

// appendList appends rows of a batch to list l; idMu is held.
func (ix *Index) appendList(l int, rows []int, ids []int64, x []float32, codes []byte, radius []float32) {
	o := ix.opt
	L := &ix.lists[l]
	L.mu.Lock()
	defer L.mu.Unlock()
	start := L.n
	for _, i := range rows {
		L.rsum += float64(radius[i])
		L.ids = append(L.ids, ids[i])
		switch o.Refine {
		case RefineF16:
			off := len(L.f16)
			L.f16 = append(L.f16, make([]kernels.F16, o.Dim)...)
			kernels.ToF16s(L.f16[off:], x[i*o.Dim:(i+1)*o.Dim])
		case RefineF32:
			L.f32 = append(L.f32, x[i*o.Dim:(i+1)*o.Dim]...)
		}
	}
	newN := start + len(rows)
	if o.Bits == 8 {
		for _, i := range rows {
			L.codes = append(L.codes, codes[i*o.M:(i+1)*o.M]...)
		}
	} else {
		// Repack from the start of the last partial block.
		b0 := start &^ (kernels.FastScan4BlockSize - 1)
		raw := make([]uint8, (newN-b0)*o.M)
		if start > b0 {
			bb := kernels.FastScan4BlockBytes(o.M)
			kernels.UnpackCodes4(raw[:(start-b0)*o.M], L.codes[b0/32*bb:], start-b0, o.M)
		}
		for j, i := range rows {
			copy(raw[(start-b0+j)*o.M:], codes[i*o.M:(i+1)*o.M])
		}
		need := kernels.FastScan4Size(newN, o.M)
		if cap(L.codes) < need {
			grown := make([]byte, need, max(need, 2*cap(L.codes)))
			copy(grown, L.codes)
			L.codes = grown
		}
		L.codes = L.codes[:need]
		bb := kernels.FastScan4BlockBytes(o.M)
		kernels.PackCodes4(L.codes[b0/32*bb:], raw, newN-b0, o.M)
	}
	if L.dead != nil {
		for len(L.dead)*64 < newN {
			L.dead = append(L.dead, 0)
		}
	}
	L.n = newN
	L.publish()
	ix.radius[l].Store(math.Float32bits(float32(L.rsum / float64(L.n))))
	for j, i := range rows {
		ix.where[ids[i]] = loc{uint32(l), uint32(start + j)}
	}
}

// Delete removes the vectors with these ids. Unknown ids are an error that
// names them; the known ones are deleted all the same. A deleted vector
// never comes back from a search, including one that is running.
func (ix *Index) Delete(ids ...int64) error {
	ix.idMu.Lock()
	defer ix.idMu.Unlock()
	var missing []int64
	for _, id := range ids {
		w, ok := ix.where[id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		L := &ix.lists[w.list]
		L.mu.Lock()
		if L.dead == nil {
			L.dead = make([]uint64, (L.n+63)/64)
		}
		// Atomic: a search gathers its candidates from a snapshot of the
		// list without holding its lock (see listSnap).
		atomic.OrUint64(&L.dead[w.pos>>6], 1<<(w.pos&63))
		L.ndead++
		L.mu.Unlock()
		delete(ix.where, id)
		ix.live.Add(-1)
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: delete: %d ids, first %d", ErrNotFound, len(missing), missing[0])
	}
	return nil
}

// Contains reports whether id is in the index.
func (ix *Index) Contains(id int64) bool {
	ix.idMu.Lock()
	defer ix.idMu.Unlock()
	_, ok := ix.where[id]
	return ok
}

// IDs appends the ids of the index's live vectors to dst, in no
// particular order, and returns it.
func (ix *Index) IDs(dst []int64) []int64 {
	ix.idMu.Lock()
	defer ix.idMu.Unlock()
	dst = slices.Grow(dst, len(ix.where))
	for id := range ix.where {
		dst = append(dst, id)
	}
	return dst
}

// Compact drops deleted vectors from the lists and returns how many slots it
// reclaimed. It waits for searches in flight and holds new ones meanwhile.
func (ix *Index) Compact() int {
	ix.structMu.Lock()
	defer ix.structMu.Unlock()
	ix.idMu.Lock()
	defer ix.idMu.Unlock()
	o := ix.opt
	freed := 0
	for l := range ix.lists {
		L := &ix.lists[l]
		if L.ndead == 0 {
			continue
		}
		keep := make([]int, 0, L.n-L.ndead)
		for p := range L.n {
			if !L.isDead(p) {
				keep = append(keep, p)
			}
		}
		raw := make([]uint8, L.n*o.M)
		if o.Bits == 4 {
			kernels.UnpackCodes4(raw, L.codes, L.n, o.M)
		} else {
			copy(raw, L.codes)
		}
		ids := make([]int64, len(keep))
		codes := make([]uint8, len(keep)*o.M)
		var f16 []kernels.F16
		var f32 []float32
		for j, p := range keep {
			ids[j] = L.ids[p]
			copy(codes[j*o.M:], raw[p*o.M:(p+1)*o.M])
			switch o.Refine {
			case RefineF16:
				f16 = append(f16, L.f16[p*o.Dim:(p+1)*o.Dim]...)
			case RefineF32:
				f32 = append(f32, L.f32[p*o.Dim:(p+1)*o.Dim]...)
			}
			ix.where[ids[j]] = loc{uint32(l), uint32(j)}
		}
		if o.Bits == 4 {
			packed := make([]byte, kernels.FastScan4Size(len(keep), o.M))
			kernels.PackCodes4(packed, codes, len(keep), o.M)
			codes = packed
		}
		freed += L.n - len(keep)
		rsum := L.rsum * float64(len(keep)) / float64(L.n)
		L.mu.Lock()
		L.rsum = rsum
		L.ids, L.codes, L.f16, L.f32 = ids, codes, f16, f32
		L.n, L.dead, L.ndead = len(keep), nil, 0
		L.publish()
		L.mu.Unlock()
	}
	return freed
}

// Stats describe an index's size.
type Stats struct {
	Vectors   int   // live vectors
	Deleted   int   // deleted, not yet compacted
	Lists     int   // inverted lists
	Empty     int   // lists with no vectors
	MaxList   int   // longest list
	DataBytes int64 // codes, ids, refine copies, centroids and codebooks
}

// BytesPerVector is DataBytes over live vectors.
func (s Stats) BytesPerVector() float64 {
	if s.Vectors == 0 {
		return 0
	}
	return float64(s.DataBytes) / float64(s.Vectors)
}

// Stats reports the index's size.
func (ix *Index) Stats() Stats {
	s := Stats{Lists: ix.opt.Lists}
	s.DataBytes = int64(4 * (len(ix.centroids) + len(ix.pqCent) + len(ix.rot)))
	for l := range ix.lists {
		L := &ix.lists[l]
		L.mu.RLock()
		s.Vectors += L.n - L.ndead
		s.Deleted += L.ndead
		if L.n == 0 {
			s.Empty++
		}
		s.MaxList = max(s.MaxList, L.n)
		s.DataBytes += int64(8*len(L.ids) + len(L.codes) + 2*len(L.f16) + 4*len(L.f32) + 8*len(L.dead))
		L.mu.RUnlock()
	}
	return s
}
