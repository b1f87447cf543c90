package features

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/reelrank/reelrank/kernels"
)

// Context is what a request knows beyond the user: when, and where in the
// session.
type Context struct {
	// Time is the request's time in ms since the Unix epoch: the features
	// are as of this time.
	Time int64
	// Session is the viewer's session id. The store's session features
	// (time since start, watch-throughs, last reels' categories) count only
	// when it is the session of the user's latest impression.
	Session int64
	// Position is the slot being filled, from 0.
	Position int
	// Recent optionally lists the reels shown before in this session, most
	// recent last; when set, the last reels' categories come from it
	// instead of the store's session state.
	Recent []int64
	// Profile is the profile of a user the store does not know (cold
	// start); it is ignored for known users.
	Profile *User
}

// Request asks for the features of one user and n candidate reels. The
// output slices are grown as needed and reused across calls.
type Request struct {
	User    int64
	Context Context
	Reels   []int64

	// Embeddings asks for the reels' content embeddings in Emb.
	Embeddings bool

	// UserVec holds len(Spec.User) features.
	UserVec []float32
	// ReelVec holds len(Reels) rows of len(Spec.Reel) features.
	ReelVec []float32
	// CrossVec holds len(Reels) rows of len(Spec.Cross) features.
	CrossVec []float32
	// Emb holds len(Reels) rows of EmbedDim values when Embeddings is set;
	// zeros for a reel with no embedding.
	Emb []float32
	// Known counts the candidates the store had metadata or events for.
	Known int

	scratch requestScratch
}

type requestScratch struct {
	f        [maxWindows + 2]float64
	f32      [maxWindows]float32
	prior    [maxWindows][nCounters]float64
	ap       [maxWindows][nCounters]float32 // PriorStrength × prior
	idx      []int32
	recs     []reelRec
	arecs    []authorRec
	emb      []float32
	dots     []float32
	hist     []float32
	histNorm float32 // |hist|
	userWT   float32 // the user's smoothed watch-through rate, longest window
	lastCat  int16   // the category of the session's last reel, or -1
	userLang int16   // the user's language slot
	ucatRate []float32
	ucatImp  []float32
	intv     []float32 // the user's interest direction in embedding space
	intNorm  float32   // |intv|
	idots    []float32 // intv · each candidate's embedding
}

// Features fills r's outputs as of r.Context.Time. Unknown users and reels
// get cold-start values: global rates, zero counts, the "other" profile
// slots (or Context.Profile's). It returns ErrPast when the time lies more
// than Config.Tolerance before the newest applied event.
func (s *Store) Features(r *Request) error {
	if r.User < 0 {
		return fmt.Errorf("features: user %d: %w", r.User, ErrBadID)
	}
	for _, id := range r.Reels {
		if id < 0 {
			return fmt.Errorf("features: reel %d: %w", id, ErrBadID)
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	t := r.Context.Time
	if s.set && t < s.newest-s.cfg.Tolerance.Milliseconds() {
		return fmt.Errorf("features: as of %s, newest event %s: %w",
			time.UnixMilli(t).UTC().Format(time.RFC3339Nano), time.UnixMilli(s.newest).UTC().Format(time.RFC3339Nano), ErrPast)
	}
	s.features(r)
	return nil
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// features computes r's outputs; the caller holds mu (either way).
func (s *Store) features(r *Request) {
	sp := &s.spec
	r.UserVec = grow(r.UserVec, len(sp.User))
	n := len(r.Reels)
	r.ReelVec = grow(r.ReelVec, n*len(sp.Reel))
	r.CrossVec = grow(r.CrossVec, n*len(sp.Cross))
	if r.Embeddings {
		r.Emb = grow(r.Emb, n*s.cfg.EmbedDim)
	}
	sc := &r.scratch
	t := r.Context.Time
	f := s.expo(sc.f[:0], t, -1, len(s.tau))
	s.priors(&sc.prior, f)
	for w := range s.nw {
		sc.f32[w] = float32(f[w])
		for c := range nCounters {
			sc.ap[w][c] = float32(s.cfg.PriorStrength * sc.prior[w][c])
		}
	}
	u, known := s.users.index.get(r.User)
	if !known {
		u = -1
	}
	s.userVec(r.UserVec, u, &r.Context, f, sc)

	// Resolve the candidates and gather each one's counters, metadata and
	// embedding into contiguous scratch (the embeddings into the output
	// when asked for). The gather is loads and stores only, so the CPU
	// overlaps many cache misses; the compute pass then streams.
	if cap(sc.idx) < n {
		sc.idx = make([]int32, n)
		sc.recs = make([]reelRec, n)
		sc.arecs = make([]authorRec, n)
	}
	idx, recs, arecs := sc.idx[:n], sc.recs[:n], sc.arecs[:n]
	d := s.cfg.EmbedDim
	emb := r.Emb
	if !r.Embeddings {
		sc.emb = grow(sc.emb, n*d)
		emb = sc.emb
	}
	// One pass per table, each with independent iterations and no calls,
	// so that many misses are in flight at once.
	r.Known = 0
	for i, id := range r.Reels {
		ri, ok := s.reels.index.get(id)
		if !ok {
			ri = -1
		} else {
			r.Known++
		}
		idx[i] = ri
	}
	for i, ri := range idx {
		if ri >= 0 {
			recs[i] = s.reels.recs[ri]
		} else {
			recs[i] = reelRec{reelMeta: reelMeta{author: -1, cat: -1}}
		}
	}
	gatherRows(emb, s.reels.emb, idx, d)
	// The authors' records, likewise.
	for i := range recs {
		if a := recs[i].author; a >= 0 {
			arecs[i] = s.authors.recs[a]
		} else {
			arecs[i] = authorRec{}
		}
	}
	sc.dots = grow(sc.dots, n)
	if sc.histNorm > 0 {
		kernels.DotBatch(sc.dots, sc.hist, emb)
	}
	sc.idots = grow(sc.idots, n)
	if sc.intNorm > 0 {
		kernels.DotBatch(sc.idots, sc.intv, emb)
	}
	nr, nc := len(sp.Reel), len(sp.Cross)
	for i := range idx {
		rec, arec := &recs[i], &arecs[i]
		s.reelVec(r.ReelVec[i*nr:(i+1)*nr], rec, arec, t, sc)
		s.crossVec(r.CrossVec[i*nc:(i+1)*nc], u, &rec.reelMeta, sc.dots[i], sc.idots[i], sc)
	}
}

// Default rates before the store has seen anything.
var defaultRates = [nCounters]float64{cImp: 1, cWatch: 0.7, cWT: 0.3, cFrac: 0.5, cLike: 0.03, cComment: 0.005, cShare: 0.005, cFollow: 0.002}

// priors sets, per window, every counter's global rate per impression (cFrac
// per watch), blended with the default rates while the store has seen few
// impressions.
func (s *Store) priors(p *[maxWindows][nCounters]float64, f []float64) {
	for w := range s.nw {
		g := s.global[w*nCounters : (w+1)*nCounters]
		imp := g[cImp] * f[w]
		const seen = 100 // pseudo-impressions of the defaults
		for c := range nCounters {
			num, den := g[c]*f[w], imp
			if c == cFrac {
				den = g[cWatch] * f[w]
			}
			p[w][c] = (num + seen*defaultRates[c]) / (den + seen)
		}
	}
}

// rate is a count over impressions, smoothed toward the prior with alpha
// pseudo-impressions.
func rate(x, n, prior, alpha float64) float32 {
	return float32((x + alpha*prior) / (n + alpha))
}

func log1p(x float64) float32 {
	if x <= 0 {
		return 0
	}
	return float32(math.Log1p(x))
}

func (s *Store) userVec(dst []float32, u int32, c *Context, f []float64, sc *requestScratch) {
	clear(dst)
	cfg := &s.cfg
	o := 0
	// Profile one-hots.
	var prof [4]uint8
	switch {
	case u >= 0:
		copy(prof[:], s.users.profile[4*int(u):])
	case c.Profile != nil:
		prof = [4]uint8{clampSlot(c.Profile.Country, cfg.Countries), clampSlot(c.Profile.Language, cfg.Languages),
			clampSlot(c.Profile.AgeBucket, cfg.AgeBuckets), clampSlot(c.Profile.Device, cfg.Devices)}
	default:
		prof = [4]uint8{uint8(cfg.Countries - 1), uint8(cfg.Languages - 1), uint8(cfg.AgeBuckets - 1), uint8(cfg.Devices - 1)}
	}
	sc.userLang = int16(prof[1])
	for j, width := range [4]int{cfg.Countries, cfg.Languages, cfg.AgeBuckets, cfg.Devices} {
		dst[o+int(prof[j])] = 1
		o += width
	}
	// Rates per window.
	alpha := cfg.PriorStrength
	var uc []float32
	if u >= 0 {
		uc = s.users.ctr[int(u)*s.cs : int(u+1)*s.cs]
	}
	userWT := sc.prior[s.nw-1][cWT]
	for w := range s.nw {
		var x [nCounters]float64
		if uc != nil {
			for k := range nCounters {
				x[k] = float64(uc[w*nCounters+k]) * f[w]
			}
		}
		p := &sc.prior[w]
		n := x[cImp]
		dst[o] = log1p(n)
		dst[o+1] = rate(x[cWatch], n, p[cWatch], alpha)
		dst[o+2] = rate(x[cWT], n, p[cWT], alpha)
		dst[o+3] = rate(x[cLike], n, p[cLike], alpha)
		dst[o+4] = rate(x[cComment], n, p[cComment], alpha)
		dst[o+5] = rate(x[cShare], n, p[cShare], alpha)
		dst[o+6] = rate(x[cFollow], n, p[cFollow], alpha)
		if w == s.nw-1 {
			userWT = float64(dst[o+2])
			sc.userWT = dst[o+2]
		}
		o += len(userRates)
	}
	if u >= 0 {
		dst[o] = log1p(float64(len(s.users.follows[u])))
	}
	o++
	// Categories: counts and watch-through rates, kept in the scratch for
	// the cross features.
	k := cfg.Categories
	sc.ucatImp = grow(sc.ucatImp, k)
	sc.ucatRate = grow(sc.ucatRate, k)
	fc := f[s.nw]
	ua := alpha / 4
	for j := range k {
		var imp, wt float64
		if u >= 0 {
			imp = float64(s.users.catImp[int(u)*k+j]) * fc
			wt = float64(s.users.catWT[int(u)*k+j]) * fc
		}
		sc.ucatImp[j] = log1p(imp)
		sc.ucatRate[j] = rate(wt, imp, userWT, ua)
	}
	copy(dst[o:], sc.ucatImp)
	o += k
	copy(dst[o:], sc.ucatRate)
	o += k
	s.interest(sc, k)
	// The watch-history embedding: the decayed mean of watched reels'
	// embeddings (the forward decay cancels in the ratio).
	d := cfg.EmbedDim
	sc.hist = grow(sc.hist, d)
	clear(sc.hist)
	if u >= 0 && s.users.sess[u].histW > minHistW {
		inv := 1 / s.users.sess[u].histW
		for j, v := range s.users.hist[int(u)*d : int(u+1)*d] {
			sc.hist[j] = float32(float64(v) * inv)
		}
		dst[o+d] = log1p(s.users.sess[u].histW * f[s.nw+1])
	}
	sc.histNorm = float32(math.Sqrt(float64(kernels.Dot(sc.hist, sc.hist))))
	copy(dst[o:], sc.hist)
	o += d + 1
	// The session.
	dst[o] = log1p(float64(c.Position))
	inSession := u >= 0 && s.users.sess[u].id == c.Session
	sessN, sessWT := 0.0, 0.0
	if inSession {
		dst[o+1] = log1p(float64(c.Time-s.users.sess[u].at) / 1000)
		sessN, sessWT = float64(s.users.sess[u].n), float64(s.users.sess[u].wt)
	}
	dst[o+2] = rate(sessWT, sessN, userWT, 2)
	o += 3
	last := dst[o : o+k]
	weight := float32(1)
	sc.lastCat = -1
	switch {
	case len(c.Recent) > 0:
		for i := len(c.Recent) - 1; i >= 0 && i >= len(c.Recent)-cfg.LastReels; i-- {
			cat := int16(-1)
			if ri, ok := s.reels.index.get(c.Recent[i]); ok {
				cat = s.reels.recs[ri].cat
			}
			if i == len(c.Recent)-1 {
				sc.lastCat = cat
			}
			if cat >= 0 {
				last[cat] += weight
			}
			weight /= 2
		}
	case inSession:
		lc := s.users.lastCats[int(u)*cfg.LastReels : int(u+1)*cfg.LastReels]
		sc.lastCat = lc[0]
		for _, cat := range lc {
			if cat >= 0 {
				last[cat] += weight
			}
			weight /= 2
		}
	}
	o += k
	// The context: time of day and day of week, as angles.
	tm := time.UnixMilli(c.Time).UTC()
	hour := (float64(tm.Hour()) + float64(tm.Minute())/60) * (2 * math.Pi / 24)
	dow := float64(tm.Weekday()) * (2 * math.Pi / 7)
	dst[o], dst[o+1] = float32(math.Sin(hour)), float32(math.Cos(hour))
	dst[o+2], dst[o+3] = float32(math.Sin(dow)), float32(math.Cos(dow))
	o += 4
	if o != len(dst) {
		panic(fmt.Sprintf("features: user vector wrote %d features, spec has %d", o, len(dst)))
	}
}

func (s *Store) reelVec(dst []float32, m *reelRec, a *authorRec, t int64, sc *requestScratch) {
	rc, ac := &m.ctr, &a.ctr
	alpha := float32(s.cfg.PriorStrength)
	o := 0
	for w := range s.nw {
		fw := sc.f32[w]
		c := (*[nCounters]float32)(rc[w*nCounters:])
		ap := &sc.ap[w]
		d := (*[8]float32)(dst[o:])
		n := c[cImp] * fw
		watch := c[cWatch] * fw
		inv := 1 / (n + alpha)
		d[0] = fastLog1p(n)
		d[1] = (watch + ap[cWatch]) * inv
		d[2] = (c[cWT]*fw + ap[cWT]) * inv
		d[3] = (c[cFrac]*fw + ap[cFrac]) / (watch + alpha)
		d[4] = (c[cLike]*fw + ap[cLike]) * inv
		d[5] = (c[cComment]*fw + ap[cComment]) * inv
		d[6] = (c[cShare]*fw + ap[cShare]) * inv
		d[7] = (c[cFollow]*fw + ap[cFollow]) * inv
		o += len(reelRates)
	}
	var known, ageH, fresh float32
	if m.upload > 0 {
		known = 1
		h := float32(max(t-m.upload, 0)) / 3.6e6
		ageH = fastLog1p(h)
		if h < 1 {
			fresh = 1
		}
	}
	dst[o], dst[o+1], dst[o+2], dst[o+3], dst[o+4] = known, ageH, fresh, m.logDur, fastLog1p(float32(float64(a.base)+float64(a.follows)))
	o += 5
	for w := range s.nw {
		fw := sc.f32[w]
		c := (*[nCounters]float32)(ac[w*nCounters:])
		ap := &sc.ap[w]
		d := (*[4]float32)(dst[o:])
		imp := c[cImp] * fw
		inv := 1 / (imp + alpha)
		d[0] = fastLog1p(imp)
		d[1] = (c[cWT]*fw + ap[cWT]) * inv
		d[2] = (c[cLike]*fw + ap[cLike]) * inv
		d[3] = (c[cFollow]*fw + ap[cFollow]) * inv
		o += len(authRates)
	}
	cats := dst[o : o+s.cfg.Categories]
	clear(cats)
	if m.cat >= 0 {
		cats[m.cat] = 1
	}
	o += s.cfg.Categories
	langs := dst[o : o+s.cfg.Languages]
	clear(langs)
	if m.lang >= 0 {
		langs[m.lang] = 1
	}
}

// interest sets the user's interest direction in embedding space: the
// category centroids weighed by the log-ratio of the user's watch-through
// rate in the category to their rate overall,
//
//	intv = Σ_k ln(ucat_wt_rate_k / user_wt_rate) · centroid_k.
//
// A category the user has not seen has its rate smoothed to the user's
// and weighs nothing. Its dot with a reel's embedding spreads the
// category rates over a reel's whole content, where x_ucat_wt_rate reads
// its nearest category alone: a reel of mixed topics, or one near the
// edge of its category, gets the interest of every category it is close
// to.
func (s *Store) interest(sc *requestScratch, k int) {
	d := s.cfg.EmbedDim
	sc.intv = grow(sc.intv, d)
	clear(sc.intv)
	sc.intNorm = 0
	if len(s.centroids) != k*d || !(sc.userWT > 0) {
		return
	}
	ref := math.Log(float64(sc.userWT))
	for j := range k {
		l := float32(math.Log(float64(max(sc.ucatRate[j], 1e-6))) - ref)
		if l == 0 {
			continue
		}
		for i, c := range s.centroids[j*d : (j+1)*d] {
			sc.intv[i] += l * c
		}
	}
	sc.intNorm = float32(math.Sqrt(float64(kernels.Dot(sc.intv, sc.intv))))
}

func (s *Store) crossVec(dst []float32, u int32, m *reelMeta, dot, idot float32, sc *requestScratch) {
	clear(dst)
	cat := m.cat
	if cat >= 0 {
		dst[0] = sc.ucatRate[cat]
		dst[1] = sc.ucatImp[cat]
	} else {
		// An uncategorised reel: the user's overall watch-through rate.
		dst[0] = sc.userWT
	}
	if u >= 0 {
		if a := m.author; a >= 0 && len(s.users.follows[u]) > 0 {
			if _, ok := slices.BinarySearch(s.users.follows[u], s.authors.recs[a].id); ok {
				dst[2] = 1
			}
		}
		if m.hasEmb && sc.histNorm > 0 {
			dst[3] = dot
			if m.norm > 0 {
				dst[4] = dot / (m.norm * sc.histNorm)
			}
		}
	}
	if cat >= 0 && cat == sc.lastCat {
		dst[5] = 1
	}
	if m.lang >= 0 && m.lang == sc.userLang {
		dst[6] = 1
	}
	if m.hasEmb && sc.intNorm > 0 {
		dst[7] = idot
		if m.norm > 0 {
			dst[8] = idot / (m.norm * sc.intNorm)
		}
	}
}

// gatherRows copies row idx[i] of src (rows of width w) to row i of dst,
// zeros for an index of -1. Common widths copy as fixed-size arrays,
// which compile to inline moves instead of memmove calls.
func gatherRows(dst, src []float32, idx []int32, w int) {
	switch w {
	case 64:
		gather64(dst, src, idx)
	default:
		for i, ri := range idx {
			if ri >= 0 {
				copy(dst[i*w:(i+1)*w], src[int(ri)*w:int(ri+1)*w])
			} else {
				clear(dst[i*w : (i+1)*w])
			}
		}
	}
}

func gather64(dst, src []float32, idx []int32) {
	for i, ri := range idx {
		if ri >= 0 {
			*(*[64]float32)(dst[i*64:]) = *(*[64]float32)(src[int(ri)*64:])
		} else {
			*(*[64]float32)(dst[i*64:]) = [64]float32{}
		}
	}
}
