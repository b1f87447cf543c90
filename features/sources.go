package features

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// CandidateSource names where a candidate came from.
type CandidateSource uint8

// The candidate sources, in the order Sources gives them.
const (
	SourceRegion   CandidateSource = iota + 1 // popular among users of the viewer's country
	SourceLanguage                            // popular among reels in the viewer's language
	SourceFollowed                            // recent reels of authors the viewer follows
	SourcePopular                             // popular overall
)

// String returns "region", "language", "followed", "popular" or
// "source(n)".
func (c CandidateSource) String() string {
	switch c {
	case SourceRegion:
		return "region"
	case SourceLanguage:
		return "language"
	case SourceFollowed:
		return "followed"
	case SourcePopular:
		return "popular"
	}
	return fmt.Sprintf("source(%d)", uint8(c))
}

// SourceQuotas says how many candidates each source gives (0: none).
type SourceQuotas struct{ Region, Language, Followed, Popular int }

// Candidate is one reel a source proposes.
type Candidate struct {
	Reel   int64
	Source CandidateSource
}

// The sources' bounds. See the package doc.
const (
	// SourceListLen is how many reels each popularity list (per country,
	// per language, overall) keeps: a source proposes at most this many.
	SourceListLen = 1024
	// FollowedFresh: a followed author's reels uploaded within it come
	// first, newest first.
	FollowedFresh = 24 * time.Hour
	// FollowedWindow: older reels, up to this age, follow by decayed
	// watch-throughs. A followed author's reel keeps its pull on the
	// follower whatever its age: on the serve world a 7-day window found
	// 4 reels a user and recalled 0.0008 of the oracle's top 100, 90 days
	// 78 reels and 0.021.
	FollowedWindow = 90 * 24 * time.Hour
	// FollowedPerAuthor bounds the reels of one author the followed
	// source looks at (the newest within FollowedWindow).
	FollowedPerAuthor = 32
	// regionFloor: a per-country count below it (decayed watch-throughs as
	// of a landmark move) is dropped then.
	regionFloor = 1e-3
)

// topEntry is one member of a popularity list: the reel's index and its
// forward-decayed watch-throughs in the popularity window.
type topEntry struct {
	score float32
	idx   int32
}

// below reports whether a ranks after b: a lower score, or the same score
// and a reel the store saw later. It is a total order, so a list's members
// are exactly the SourceListLen first reels by it, whatever the order the
// counts came in.
func below(a, b topEntry) bool {
	return a.score < b.score || a.score == b.score && a.idx > b.idx
}

// topList keeps the best SourceListLen reels by a score that only grows
// (forward-decayed counts), as a min-heap by below with the members'
// positions. A reel not in it ranks below every member: its count grew
// last when it was offered, and the members' counts only grew since.
type topList struct {
	h   []topEntry
	pos map[int32]int32
}

// offer tells the list that reel idx's score is now score (no less than
// before).
func (l *topList) offer(idx int32, score float32) {
	if !(score > 0) {
		return
	}
	if l.pos == nil {
		l.pos = map[int32]int32{}
	}
	if p, ok := l.pos[idx]; ok {
		l.h[p].score = score
		l.down(int(p))
		return
	}
	e := topEntry{score: score, idx: idx}
	if len(l.h) < SourceListLen {
		l.h = append(l.h, e)
		l.pos[idx] = int32(len(l.h) - 1)
		l.up(len(l.h) - 1)
		return
	}
	if below(l.h[0], e) {
		delete(l.pos, l.h[0].idx)
		l.h[0] = e
		l.pos[idx] = 0
		l.down(0)
	}
}

func (l *topList) swap(i, j int) {
	l.h[i], l.h[j] = l.h[j], l.h[i]
	l.pos[l.h[i].idx], l.pos[l.h[j].idx] = int32(i), int32(j)
}

func (l *topList) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !below(l.h[i], l.h[p]) {
			return
		}
		l.swap(i, p)
		i = p
	}
}

func (l *topList) down(i int) {
	n := len(l.h)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if c+1 < n && below(l.h[c+1], l.h[c]) {
			c++
		}
		if !below(l.h[c], l.h[i]) {
			return
		}
		l.swap(i, c)
		i = c
	}
}

func (l *topList) has(idx int32) bool {
	_, ok := l.pos[idx]
	return ok
}

func (l *topList) reset() {
	l.h = l.h[:0]
	clear(l.pos)
}

// sourceState is what the candidate sources keep beside the counters.
type sourceState struct {
	pw int // the popularity window: the store's window nearest a day
	// region holds per country slot (the last, "other or unknown", has
	// none) the forward-decayed watch-throughs in window pw of viewers
	// from that country, per reel index.
	region    []map[int32]float32
	regionTop []topList
	langTop   []topList // per language slot but the last, by the reels' own counts
	popTop    topList   // every reel, by its own count
	// byAuthor lists per author index its reels by upload time, then
	// index: derived from the reels' metadata, not snapshot.
	byAuthor [][]int32
}

// popWindow returns the index of the window nearest a day (by ratio; the
// longer of two as near).
func popWindow(ws []time.Duration) int {
	best, bi := math.Inf(1), 0
	for i, w := range ws {
		d := math.Abs(math.Log(float64(w) / float64(24*time.Hour)))
		if d < best || d == best && w > ws[bi] {
			best, bi = d, i
		}
	}
	return bi
}

func (s *Store) initSources() {
	src := &s.src
	src.pw = popWindow(s.cfg.Windows)
	src.region = make([]map[int32]float32, s.cfg.Countries-1)
	for c := range src.region {
		src.region[c] = map[int32]float32{}
	}
	src.regionTop = make([]topList, s.cfg.Countries-1)
	src.langTop = make([]topList, s.cfg.Languages-1)
}

// reelWT returns reel index i's forward-decayed watch-throughs in the
// popularity window.
func (s *Store) reelWT(i int32) float32 {
	return s.reels.recs[i].ctr[s.src.pw*nCounters+cWT]
}

// sourceWatchThrough updates the sources after a watch-through of reel r
// by user u, of forward weight g in the popularity window. The caller
// holds mu and has counted it in the reel's counters.
func (s *Store) sourceWatchThrough(r, u int32, g float64) {
	src := &s.src
	score := s.reelWT(r)
	src.popTop.offer(r, score)
	if l := int(s.reels.recs[r].lang); l >= 0 && l < len(src.langTop) {
		src.langTop[l].offer(r, score)
	}
	if c := int(s.users.profile[4*u]); c < len(src.region) {
		m := src.region[c]
		v := m[r] + float32(g)
		m[r] = v
		src.regionTop[c].offer(r, v)
	}
}

// sourceLanguage moves reel r from the language list of slot old to that
// of its language now. The caller holds mu.
func (s *Store) sourceLanguage(r int32, old int16) {
	src := &s.src
	now := s.reels.recs[r].lang
	if old == now {
		return
	}
	if o := int(old); o >= 0 && o < len(src.langTop) && src.langTop[o].has(r) {
		s.rebuildLang(o)
	}
	if n := int(now); n >= 0 && n < len(src.langTop) {
		src.langTop[n].offer(r, s.reelWT(r))
	}
}

// rebuildLang rebuilds language slot l's list from the reels' counts.
func (s *Store) rebuildLang(l int) {
	t := &s.src.langTop[l]
	t.reset()
	for i := range s.reels.recs {
		if int(s.reels.recs[i].lang) == l {
			t.offer(int32(i), s.reelWT(int32(i)))
		}
	}
}

// rebuildSources rebuilds every popularity list from the counts: after a
// landmark move (whose rescale may round two counts to a tie) and a
// snapshot load, so that the lists are always the first reels by the
// counts in below's order.
func (s *Store) rebuildSources() {
	src := &s.src
	src.popTop.reset()
	for l := range src.langTop {
		src.langTop[l].reset()
	}
	for i := range s.reels.recs {
		r := int32(i)
		v := s.reelWT(r)
		if !(v > 0) {
			continue
		}
		src.popTop.offer(r, v)
		if l := int(s.reels.recs[i].lang); l >= 0 && l < len(src.langTop) {
			src.langTop[l].offer(r, v)
		}
	}
	for c, m := range src.region {
		t := &src.regionTop[c]
		t.reset()
		// Offered in index order, so that the heap's layout, too, is a
		// function of the counts.
		keys := make([]int32, 0, len(m))
		for r := range m {
			keys = append(keys, r)
		}
		slices.Sort(keys)
		for _, r := range keys {
			t.offer(r, m[r])
		}
	}
}

// rebaseSources rescales the per-country counts by f (the popularity
// window's factor of a landmark move), drops those under regionFloor and
// rebuilds the lists.
func (s *Store) rebaseSources(f float32) {
	for _, m := range s.src.region {
		for r, v := range m {
			if v *= f; v < regionFloor {
				delete(m, r)
			} else {
				m[r] = v
			}
		}
	}
	s.rebuildSources()
}

// placeReel sets reel i's author index and upload time, keeping the
// per-author lists in order. The caller holds mu.
func (s *Store) placeReel(i, author int32, upload int64) {
	m := &s.reels.recs[i].reelMeta
	if m.author == author && m.upload == upload {
		return
	}
	src := &s.src
	if a := m.author; a >= 0 && int(a) < len(src.byAuthor) {
		l := src.byAuthor[a]
		if j, ok := s.findByAuthor(l, i, m.upload); ok {
			src.byAuthor[a] = slices.Delete(l, j, j+1)
		}
	}
	m.author, m.upload = author, upload
	if author >= 0 {
		if int(author) >= len(src.byAuthor) {
			src.byAuthor = extend(src.byAuthor, int(author)+1-len(src.byAuthor))
		}
		l := src.byAuthor[author]
		j, _ := s.findByAuthor(l, i, upload)
		src.byAuthor[author] = slices.Insert(l, j, i)
	}
}

// findByAuthor finds reel i of upload time up in an author's list.
func (s *Store) findByAuthor(l []int32, i int32, up int64) (int, bool) {
	return slices.BinarySearchFunc(l, i, func(x, i int32) int {
		xu := s.reels.recs[x].upload
		switch {
		case xu < up:
			return -1
		case xu > up:
			return 1
		}
		return int(x - i)
	})
}

// rebuildByAuthor rebuilds the per-author lists from the reels' metadata.
func (s *Store) rebuildByAuthor() {
	src := &s.src
	src.byAuthor = make([][]int32, len(s.authors.id))
	for i := range s.reels.recs {
		if a := s.reels.recs[i].author; a >= 0 {
			src.byAuthor[a] = append(src.byAuthor[a], int32(i))
		}
	}
	for _, l := range src.byAuthor {
		slices.SortFunc(l, func(x, y int32) int {
			if c := cmpInt64(s.reels.recs[x].upload, s.reels.recs[y].upload); c != 0 {
				return c
			}
			return int(x - y)
		})
	}
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// sourceScratch is a Sources call's working memory.
type sourceScratch struct {
	keys  []uint64
	fol   []followCand
	taken map[int64]struct{}
}

// followCand is a reel the followed source considers.
type followCand struct {
	fresh  bool
	score  float32
	upload int64
	idx    int32
}

var sourcePool = sync.Pool{New: func() any { return &sourceScratch{taken: map[int64]struct{}{}} }}

// Sources appends to dst each source's candidates for user (prof
// describes an unknown user, as in Context.Profile; may be nil) as of
// time t, in the order region, language, followed, popular, each source
// best first, at most its quota each; a reel proposed by two sources
// appears once, under the first. Reels in exclude are left out. Deleted/
// unknown reels never appear: the store knows no deletions, so exclude
// must report deleted reels; reels whose author the store does not know,
// or uploaded after t, are left out. exclude (nil: none) runs under the
// store's read lock: it must not call the store. See the package doc for
// how each source ranks its reels.
func (s *Store) Sources(dst []Candidate, user int64, prof *User, t int64, q SourceQuotas, exclude func(int64) bool) ([]Candidate, error) {
	if user < 0 {
		return dst, fmt.Errorf("features: sources: user %d: %w", user, ErrBadID)
	}
	if q.Region < 0 || q.Language < 0 || q.Followed < 0 || q.Popular < 0 {
		return dst, fmt.Errorf("features: sources: negative quota in %+v", q)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.set && t < s.newest-s.cfg.Tolerance.Milliseconds() {
		return dst, fmt.Errorf("features: sources: as of %s, newest event %s: %w",
			time.UnixMilli(t).UTC().Format(time.RFC3339Nano), time.UnixMilli(s.newest).UTC().Format(time.RFC3339Nano), ErrPast)
	}
	sc := sourcePool.Get().(*sourceScratch)
	defer sourcePool.Put(sc)
	clear(sc.taken)

	// The viewer's country and language slots.
	country, lang := -1, -1
	ui, known := s.users.index.get(user)
	switch {
	case known:
		country, lang = int(s.users.profile[4*ui]), int(s.users.profile[4*ui+1])
	case prof != nil:
		country, lang = int(clampSlot(prof.Country, s.cfg.Countries)), int(clampSlot(prof.Language, s.cfg.Languages))
	}
	// take appends reel index i under src unless it is left out; it
	// reports whether the source's quota is full.
	n := 0
	take := func(i int32, src CandidateSource, quota int) bool {
		rec := &s.reels.recs[i]
		if rec.author < 0 || rec.upload > t {
			return n >= quota
		}
		id := s.reels.id[i]
		if _, dup := sc.taken[id]; dup || exclude != nil && exclude(id) {
			return n >= quota
		}
		sc.taken[id] = struct{}{}
		dst = append(dst, Candidate{Reel: id, Source: src})
		n++
		return n >= quota
	}
	list := func(l *topList, src CandidateSource, quota int) {
		n = 0
		if quota == 0 || len(l.h) == 0 {
			return
		}
		sc.keys = sc.keys[:0]
		for _, e := range l.h {
			sc.keys = append(sc.keys, uint64(math.Float32bits(e.score))<<32|uint64(^uint32(e.idx)))
		}
		slices.Sort(sc.keys)
		for j := len(sc.keys) - 1; j >= 0; j-- {
			if take(int32(^uint32(sc.keys[j])), src, quota) {
				return
			}
		}
	}
	if country >= 0 && country < len(s.src.regionTop) {
		list(&s.src.regionTop[country], SourceRegion, q.Region)
	}
	if lang >= 0 && lang < len(s.src.langTop) {
		list(&s.src.langTop[lang], SourceLanguage, q.Language)
	}
	if known && q.Followed > 0 {
		s.followed(sc, ui, t)
		n = 0
		for _, k := range sc.keys {
			if take(int32(uint32(k)), SourceFollowed, q.Followed) {
				break
			}
		}
	}
	list(&s.src.popTop, SourcePopular, q.Popular)
	return dst, nil
}

// followed leaves in sc.keys, best first, the reel indexes (in the keys'
// low 32 bits) of the reels of the authors user index u follows, as of t:
// per author the FollowedPerAuthor newest uploaded in (t-FollowedWindow,
// t]; those within FollowedFresh first, newest first; then the older by
// decayed watch-throughs in the popularity window; ties by upload time,
// newest first, then the reel the store saw first.
func (s *Store) followed(sc *sourceScratch, u int32, t int64) {
	cands := sc.fol[:0]
	fresh, oldest := t-FollowedFresh.Milliseconds(), t-FollowedWindow.Milliseconds()
	for _, aid := range s.users.follows[u] {
		a, ok := s.authors.index.get(aid)
		if !ok || int(a) >= len(s.src.byAuthor) {
			continue
		}
		l := s.src.byAuthor[a]
		// The reels uploaded at or before t: those before the first later.
		end, _ := slices.BinarySearchFunc(l, t, func(x int32, t int64) int {
			if s.reels.recs[x].upload <= t {
				return -1
			}
			return 1
		})
		taken := 0
		for j := end - 1; j >= 0 && taken < FollowedPerAuthor; j-- {
			i := l[j]
			up := s.reels.recs[i].upload
			if up <= oldest || up <= 0 {
				break
			}
			cands = append(cands, followCand{fresh: up > fresh, score: s.reelWT(i), upload: up, idx: i})
			taken++
		}
	}
	sc.fol = cands
	slices.SortFunc(cands, func(x, y followCand) int {
		switch {
		case x.fresh != y.fresh:
			if x.fresh {
				return -1
			}
			return 1
		case !x.fresh && x.score != y.score:
			if x.score > y.score {
				return -1
			}
			return 1
		case x.upload != y.upload:
			return cmpInt64(y.upload, x.upload)
		}
		return int(x.idx - y.idx)
	})
	sc.keys = sc.keys[:0]
	for _, c := range cands {
		sc.keys = append(sc.keys, uint64(uint32(c.idx)))
	}
}
