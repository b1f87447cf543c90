package features

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/kernels"
)

// Errors callers can branch on.
var (
	// ErrPast is returned for a request whose time lies more than
	// Config.Tolerance before the newest applied event: the store keeps the
	// present, not the past. Replay from a snapshot to see an earlier time.
	ErrPast = errors.New("features: time before the newest applied event")
	// ErrBadEmbedding is returned for an embedding of the wrong dimension or
	// with a NaN or an infinity.
	ErrBadEmbedding = errors.New("features: bad embedding")
	// ErrBadID is returned for a negative id.
	ErrBadID = errors.New("features: negative id")
)

// The counters every reel, author, user and the whole store keep per window.
const (
	cImp     = iota // impressions
	cWatch          // impressions not skipped
	cWT             // watches at or past Config.WatchThrough
	cFrac           // sum of fractions watched, each capped at 1
	cLike           // likes
	cComment        // comments
	cShare          // shares
	cFollow         // follows of the author from this reel
	nCounters
)

// User is a viewer's profile. Values at or past the configured widths land
// in the one-hots' last ("other") slot.
type User struct {
	ID        int64
	Country   int
	Language  int
	AgeBucket int
	Device    int
}

// Reel is a reel's metadata as the catalogue knows it.
type Reel struct {
	ID     int64
	Author int64
	// Upload is the upload time in ms since the Unix epoch.
	Upload int64
	// Duration is the reel's length in seconds.
	Duration float32
	// Embedding is the content embedding, Config.EmbedDim values, or nil.
	Embedding []float32
	// Category is the reel's category in [0, Config.Categories), or -1 to
	// derive it from the embedding by the store's clustering.
	Category int
	// Language is the reel's language as a profile code: its slot plus
	// one, 1..Config.Languages (a larger code is the last, "other" slot, as
	// for users); 0 is unknown.
	Language int
}

// Store is the feature store: it applies events to decayed counters per
// reel, author and user, and answers feature requests as of a time. All
// methods are safe for concurrent use; writers apply in batches under one
// lock, readers share it.
type Store struct {
	cfg  Config
	spec Spec
	nw   int // windows
	cs   int // counter stride: nCounters*nw

	rebaseLim int64   // rebaseAfter()
	warmSink  float32 // keeps warm's loads

	// tau holds the decay constants in ms: the windows, then the category
	// window, then the history window.
	tau []float64

	mu    sync.RWMutex
	logMu sync.Mutex // held by ApplyLog for its whole read
	// landmark is the time (ms) all forward-decayed sums are relative to:
	// an event at t adds exp((t-landmark)/tau), a reading at t multiplies by
	// exp(-(t-landmark)/tau). set is false until the first event or Put.
	landmark int64
	set      bool
	// newest is the newest event time applied.
	newest int64

	global []float64 // cs counters over every event

	reels   reelTable
	authors authorTable
	users   userTable

	centroids []float32 // Categories × EmbedDim, nil until fitted

	src sourceState // the candidate sources (sources.go)

	logCk   eventlog.Checkpoint // where ApplyLog stopped, for snapshots
	applied int64               // events applied
}

type reelTable struct {
	index idIndex
	id    []int64
	recs  []reelRec
	emb   []float32 // EmbedDim stride
}

// maxCtr is the counters of the most windows.
const maxCtr = nCounters * maxWindows

// reelRec is what a request reads of a reel besides its embedding: 128
// bytes, two cache lines.
type reelRec struct {
	reelMeta
	ctr [maxCtr]float32 // the first cs are used
}

// reelMeta is what a request reads of a reel besides its counters, packed
// into one cache line's share.
type reelMeta struct {
	upload   int64 // ms; 0 when unknown
	author   int32 // author index, -1 when unknown
	cat      int16 // -1 when unknown
	hasEmb   bool
	catGiven bool  // the category came with the reel, not from the clustering
	lang     int16 // language slot, -1 when unknown
	duration float32
	logDur   float32 // log1p(duration)
	norm     float32 // |embedding|
}

type authorTable struct {
	index idIndex
	id    []int64
	recs  []authorRec
}

type authorRec struct {
	id      int64 // the author's id, beside the counters that apply reads
	base    int64 // follower count the catalogue gave
	follows int64 // follow events applied
	ctr     [maxCtr]float32
}

// userSess is a user's current session and the weight of their history,
// read and written together.
type userSess struct {
	histW float64 // the history embedding's total weight
	id    int64   // the session of the latest impression
	at    int64   // its start, ms
	n     int32   // impressions so far in it
	wt    int32   // watch-throughs so far in it
}

type userTable struct {
	index    idIndex
	id       []int64
	profile  []uint8 // 4 per user: country, language, age, device (already clamped)
	ctr      []float32
	catImp   []float32 // Categories stride, decayed by CategoryWindow
	catWT    []float32
	hist     []float32 // EmbedDim stride, decayed by HistoryWindow
	sess     []userSess
	follows  [][]int64 // sorted author ids
	lastCats []int16   // LastReels stride, most recent first, -1 empty
}

// NewStore returns an empty store.
func NewStore(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Store{cfg: cfg, nw: len(cfg.Windows)}
	s.cs = nCounters * s.nw
	for _, w := range cfg.Windows {
		s.tau = append(s.tau, float64(w.Milliseconds()))
	}
	s.tau = append(s.tau, float64(cfg.CategoryWindow.Milliseconds()), float64(cfg.HistoryWindow.Milliseconds()))
	s.global = make([]float64, s.cs)
	s.spec = newSpec(cfg)
	s.rebaseLim = s.rebaseAfter()
	s.initSources()
	return s, nil
}

// Config returns the store's configuration with defaults filled in.
func (s *Store) Config() Config { return s.cfg }

// Stats counts what the store holds.
type Stats struct {
	Users, Reels, Authors int
	Applied               int64 // events applied
	Newest                int64 // newest applied event time, ms
	Categorized           bool  // the clustering is fitted
}

// Stats returns counts of the store's contents.
func (s *Store) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return Stats{Users: len(s.users.id), Reels: len(s.reels.id), Authors: len(s.authors.id),
		Applied: s.applied, Newest: s.newest, Categorized: s.centroids != nil}
}

// rebaseAfter bounds how far past the landmark an event may lie before
// every sum is rescaled to a new landmark (an O(state) sweep): 50 times the
// fastest decay constant, so that a float32 sum holds at most exp(50)
// (5e21) times its count, far from overflow. With the default 1-hour window
// that is a sweep every 50 hours of event time.
func (s *Store) rebaseAfter() int64 {
	fastest := s.tau[0]
	for _, t := range s.tau {
		fastest = math.Min(fastest, t)
	}
	// The float32 sums stay below exp(50) times their counts.
	lim := 50 * fastest
	return int64(lim)
}

// touch moves the landmark so that time t can be added without overflow.
// The caller holds mu for writing.
func (s *Store) touch(t int64) {
	if !s.set {
		s.landmark, s.set = t, true
		return
	}
	if t-s.landmark > s.rebaseLim {
		s.rebase(t)
	}
}

// minHistW is the history weight below which a history counts as empty.
const minHistW = 1e-20

// rebase rescales every forward-decayed sum to the landmark t.
func (s *Store) rebase(t int64) {
	dt := float64(t - s.landmark)
	f := make([]float64, len(s.tau))
	for i, tau := range s.tau {
		f[i] = math.Exp(-dt / tau)
	}
	for i := range s.global {
		s.global[i] *= f[i/nCounters]
	}
	var f32 [maxWindows]float32
	for w := range s.nw {
		f32[w] = float32(f[w])
	}
	scale := func(ctr []float32) {
		for len(ctr) >= s.cs {
			for w := range s.nw {
				c := ctr[w*nCounters : (w+1)*nCounters]
				for k := range c {
					c[k] *= f32[w]
				}
			}
			ctr = ctr[s.cs:]
		}
	}
	for i := range s.reels.recs {
		scale(s.reels.recs[i].ctr[:s.cs])
	}
	for i := range s.authors.recs {
		scale(s.authors.recs[i].ctr[:s.cs])
	}
	scale(s.users.ctr)
	fc, fh := float32(f[s.nw]), float32(f[s.nw+1])
	for i := range s.users.catImp {
		s.users.catImp[i] *= fc
		s.users.catWT[i] *= fc
	}
	for i := range s.users.hist {
		s.users.hist[i] *= fh
	}
	d := s.cfg.EmbedDim
	for i := range s.users.sess {
		ss := &s.users.sess[i]
		if ss.histW *= f[s.nw+1]; ss.histW < minHistW {
			// Decayed to nothing: drop it before the float32 sums lose
			// their last bits and the mean turns into Inf/Inf.
			ss.histW = 0
			clear(s.users.hist[i*d : (i+1)*d])
		}
	}
	s.rebaseSources(float32(f[s.src.pw]))
	s.landmark = t
}

// expo returns exp(sign*(t-landmark)/tau) for the first n constants into
// dst, with the exponent clamped so that nothing overflows.
func (s *Store) expo(dst []float64, t int64, sign float64, n int) []float64 {
	dt := float64(t - s.landmark)
	if !s.set {
		dt = 0
	}
	dst = dst[:0]
	for _, tau := range s.tau[:n] {
		dst = append(dst, fastExp(min(max(sign*dt/tau, -700), 700)))
	}
	return dst
}

// PutUser adds or updates a user's profile.
func (s *Store) PutUser(u User) error {
	if u.ID < 0 {
		return fmt.Errorf("features: put user %d: %w", u.ID, ErrBadID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.user(u.ID)
	p := s.users.profile[4*i : 4*i+4]
	p[0] = clampSlot(u.Country, s.cfg.Countries)
	p[1] = clampSlot(u.Language, s.cfg.Languages)
	p[2] = clampSlot(u.AgeBucket, s.cfg.AgeBuckets)
	p[3] = clampSlot(u.Device, s.cfg.Devices)
	return nil
}

// clampSlot maps v to its one-hot slot: v itself in [0, width-1), the last
// slot ("other or unknown") for anything else.
func clampSlot(v, width int) uint8 {
	if v < 0 || v >= width-1 {
		return uint8(width - 1)
	}
	return uint8(v)
}

// PutReel adds or updates a reel's metadata. With a Category of -1 and an
// embedding, the category is the nearest centroid once the clustering is
// fitted (FitCategories).
func (s *Store) PutReel(r Reel) error {
	if err := s.CheckReel(r); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.reel(r.ID)
	m := &s.reels.recs[i].reelMeta
	up := m.upload
	if r.Upload > 0 || m.upload == 0 {
		up = r.Upload // an upload event may have set it already
	}
	s.placeReel(i, s.author(r.Author), up)
	m.duration = r.Duration
	m.logDur = fastLog1p(r.Duration)
	oldLang := m.lang
	m.lang = -1
	if r.Language > 0 {
		m.lang = int16(clampSlot(r.Language-1, s.cfg.Languages))
	}
	s.sourceLanguage(i, oldLang)
	d := s.cfg.EmbedDim
	if r.Embedding != nil {
		e := s.reels.emb[int(i)*d : int(i+1)*d]
		copy(e, r.Embedding)
		m.hasEmb = true
		m.norm = float32(math.Sqrt(float64(kernels.Dot(e, e))))
	}
	switch {
	case r.Category >= 0:
		m.cat, m.catGiven = int16(r.Category), true
	case s.centroids != nil && m.hasEmb:
		m.cat = int16(nearest(s.reels.emb[int(i)*d:int(i+1)*d], s.centroids, d))
	}
	return nil
}

// CheckReel reports what PutReel would refuse r for, without putting it.
func (s *Store) CheckReel(r Reel) error {
	if r.ID < 0 || r.Author < 0 {
		return fmt.Errorf("features: put reel %d: %w", r.ID, ErrBadID)
	}
	if r.Embedding != nil {
		if err := s.checkEmbedding(r.Embedding); err != nil {
			return fmt.Errorf("features: put reel %d: %w", r.ID, err)
		}
	}
	if r.Category < -1 || r.Category >= s.cfg.Categories {
		return fmt.Errorf("features: put reel %d: category %d outside [-1, %d)", r.ID, r.Category, s.cfg.Categories)
	}
	if !(r.Duration >= 0 && r.Duration < 1e6) {
		return fmt.Errorf("features: put reel %d: duration %v outside [0, 1e6) s", r.ID, r.Duration)
	}
	if r.Language < 0 {
		return fmt.Errorf("features: put reel %d: language code %d is negative", r.ID, r.Language)
	}
	return nil
}

func (s *Store) checkEmbedding(e []float32) error {
	if len(e) != s.cfg.EmbedDim {
		return fmt.Errorf("%w: dimension %d, want %d", ErrBadEmbedding, len(e), s.cfg.EmbedDim)
	}
	for j, v := range e {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: value %d is %v", ErrBadEmbedding, j, v)
		}
	}
	return nil
}

// PutAuthor sets an author's follower count as the catalogue knows it;
// follow events add to it.
func (s *Store) PutAuthor(id, followers int64) error {
	if id < 0 || followers < 0 {
		return fmt.Errorf("features: put author %d: %w", id, ErrBadID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authors.recs[s.author(id)].base = followers
	return nil
}

// PutFollow records that user follows author, as the catalogue knew it
// before the log (the author's follower count already includes it).
func (s *Store) PutFollow(user, author int64) error {
	if user < 0 || author < 0 {
		return fmt.Errorf("features: put follow %d -> %d: %w", user, author, ErrBadID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addFollow(s.user(user), author)
	return nil
}

func (s *Store) addFollow(u int32, author int64) bool {
	f := s.users.follows[u]
	j, found := slices.BinarySearch(f, author)
	if found {
		return false
	}
	s.users.follows[u] = slices.Insert(f, j, author)
	return true
}

// FitCategories clusters the content embeddings of the reels that have one
// into Config.Categories categories by k-means (deterministic in seed) and
// assigns every reel without a given category to its nearest centroid.
// The centroids are part of the store's state: later reels are assigned to
// them, and snapshots keep them.
func (s *Store) FitCategories(seed uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, k := s.cfg.EmbedDim, s.cfg.Categories
	var x []float32
	var rows []int32
	for i := range s.reels.recs {
		if s.reels.recs[i].hasEmb && !s.reels.recs[i].catGiven {
			x = append(x, s.reels.emb[i*d:(i+1)*d]...)
			rows = append(rows, int32(i))
		}
	}
	if len(rows) < k {
		return fmt.Errorf("features: fit categories: %d reels with embeddings, want at least %d", len(rows), k)
	}
	c, err := ann.TrainKMeans(x, d, ann.KMeansOptions{K: k, Seed: seed, Iters: 15})
	if err != nil {
		return fmt.Errorf("features: fit categories: %w", err)
	}
	labels := make([]int32, len(rows))
	ann.AssignL2(labels, nil, x, d, c, 0)
	s.centroids = c
	for j, i := range rows {
		s.reels.recs[i].cat = int16(labels[j])
	}
	return nil
}

// Centroids returns a copy of the category centroids, or nil.
func (s *Store) Centroids() []float32 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.centroids)
}

func nearest(e, centroids []float32, d int) int {
	best, bi := float32(math.Inf(1)), 0
	for c := 0; c*d < len(centroids); c++ {
		var sum float32
		row := centroids[c*d : (c+1)*d]
		for j, v := range e {
			t := v - row[j]
			sum += t * t
		}
		if sum < best {
			best, bi = sum, c
		}
	}
	return bi
}

// reel returns the index of reel id, adding it. The caller holds mu.
func (s *Store) reel(id int64) int32 {
	if i, ok := s.reels.index.get(id); ok {
		return i
	}
	r := &s.reels
	i := int32(len(r.id))
	r.index.put(id, i)
	r.id = append(r.id, id)
	r.recs = append(r.recs, reelRec{reelMeta: reelMeta{author: -1, cat: -1, lang: -1}})
	r.emb = extend(r.emb, s.cfg.EmbedDim)
	return i
}

// extend appends n zeros to v.
func extend[T any](v []T, n int) []T {
	return slices.Grow(v, n)[:len(v)+n]
}

func (s *Store) author(id int64) int32 {
	if i, ok := s.authors.index.get(id); ok {
		return i
	}
	a := &s.authors
	i := int32(len(a.id))
	a.index.put(id, i)
	a.id = append(a.id, id)
	a.recs = append(a.recs, authorRec{id: id})
	return i
}

func (s *Store) user(id int64) int32 {
	if i, ok := s.users.index.get(id); ok {
		return i
	}
	u := &s.users
	i := int32(len(u.id))
	u.index.put(id, i)
	u.id = append(u.id, id)
	u.profile = append(u.profile, uint8(s.cfg.Countries-1), uint8(s.cfg.Languages-1), uint8(s.cfg.AgeBuckets-1), uint8(s.cfg.Devices-1))
	u.ctr = extend(u.ctr, s.cs)
	u.catImp = extend(u.catImp, s.cfg.Categories)
	u.catWT = extend(u.catWT, s.cfg.Categories)
	u.hist = extend(u.hist, s.cfg.EmbedDim)
	u.sess = append(u.sess, userSess{id: -1})
	u.follows = append(u.follows, nil)
	for range s.cfg.LastReels {
		u.lastCats = append(u.lastCats, -1)
	}
	return i
}

// windowName names a window for feature names: 1h, 1d, 7d, 90m.
func windowName(w time.Duration) string {
	switch {
	case w%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", w/(24*time.Hour))
	case w%time.Hour == 0:
		return fmt.Sprintf("%dh", w/time.Hour)
	case w%time.Minute == 0:
		return fmt.Sprintf("%dm", w/time.Minute)
	}
	return fmt.Sprintf("%ds", w/time.Second)
}

// idIndex maps ids to dense indexes: a slice for ids up to about twice the
// number held (the common case of ids numbered from 1), a map beyond.
type idIndex struct {
	dense  []int32 // dense[id] is the index+1, 0 when absent
	sparse map[int64]int32
	n      int
}

func (x *idIndex) get(id int64) (int32, bool) {
	if uint64(id) < uint64(len(x.dense)) {
		i := x.dense[id]
		return i - 1, i > 0
	}
	i, ok := x.sparse[id]
	return i, ok
}

// grow extends the dense slice to n ids and moves the sparse entries it
// now covers into it, so that get finds them there.
func (x *idIndex) grow(n int64) {
	x.dense = extend(x.dense, int(n)-len(x.dense))
	for id, i := range x.sparse {
		if id >= 0 && id < n {
			x.dense[id] = i + 1
			delete(x.sparse, id)
		}
	}
}

func (x *idIndex) put(id int64, i int32) {
	x.n++
	if id >= 0 && id < int64(len(x.dense)) {
		x.dense[id] = i + 1
		return
	}
	if limit := 2*int64(x.n) + 1<<16; id >= 0 && id < limit {
		x.grow(min(max(id+1, 2*int64(len(x.dense))), limit))
		x.dense[id] = i + 1
		return
	}
	if x.sparse == nil {
		x.sparse = map[int64]int32{}
	}
	x.sparse[id] = i
}
