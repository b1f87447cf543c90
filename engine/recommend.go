package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/features"
)

// Recommend answers a request with up to N reels for the user. See the
// package doc for the pipeline. It fails with an error wrapping
// ErrBadRequest, ErrUnavailable or the context's error.
func (e *Engine) Recommend(ctx context.Context, req RecommendRequest) (*Response, error) {
	out := new(Response)
	if err := e.RecommendInto(ctx, &req, out); err != nil {
		return nil, err
	}
	return out, nil
}

// RecommendInto is Recommend writing into out, whose slices it reuses: a
// server that keeps one Response per connection makes a request allocate
// almost nothing.
func (e *Engine) RecommendInto(ctx context.Context, req *RecommendRequest, out *Response) error {
	start := time.Now()
	out.Items = out.Items[:0]
	out.reels, out.authors = out.reels[:0], out.authors[:0]
	out.Timings = Timings{}
	r, err := e.recommend(ctx, req, out, start)
	out.Timings.Total = time.Since(start)
	if err != nil {
		out.Items = out.Items[:0]
		out.reels, out.authors = out.reels[:0], out.authors[:0]
	}
	e.ctr.record(&out.Timings, len(out.Items), r.explored, err)
	if a := r.arm; a != nil {
		a.stats.request(out.Timings.Total, err != nil && !isCtxErr(err), r.degenerate, out.reels, out.authors)
		if a.role == RoleCanary {
			e.tick(a.stats, 1)
		}
	}
	return err
}

// outcome is what RecommendInto records of a request beside its response.
type outcome struct {
	explored   int
	arm        *armEntry
	degenerate bool
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// stageErr wraps the context's error with the stage it stopped before.
func stageErr(ctx context.Context, stage string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("engine: recommend: before %s: %w", stage, err)
	}
	return nil
}

// badRequest returns an error wrapping ErrBadRequest: "engine: bad
// request: op: what".
func badRequest(op, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrBadRequest, op, fmt.Sprintf(format, args...))
}

// checkContext validates a request's context and ids.
func checkContext(op string, user int64, c *Context) error {
	switch {
	case user < 0:
		return badRequest(op, "user %d is negative", user)
	case c.Session < 0 || c.Position < 0:
		return badRequest(op, "negative session %d or position %d", c.Session, c.Position)
	case c.Time < 0:
		return badRequest(op, "negative time %d", c.Time)
	}
	for i, id := range c.Recent {
		if id < 0 {
			return badRequest(op, "recent reel %d is %d", i, id)
		}
	}
	return nil
}

// featureContext fills the features' context of a request, with the
// profile of an unknown user from its codes.
func (e *Engine) featureContext(user int64, c *Context, prof *features.User) (features.Context, int64) {
	t := c.Time
	if t == 0 {
		// The present, or the oldest time the store still answers when
		// admitted events lie ahead of the clock (up to Config.MaxLead).
		t = max(e.cfg.Clock().UnixMilli(), e.store.Stats().Newest-e.store.Config().Tolerance.Milliseconds())
	}
	*prof = features.User{ID: user, Country: int(c.Country) - 1, Language: int(c.Language) - 1,
		AgeBucket: int(c.AgeBucket) - 1, Device: int(c.Device) - 1}
	return features.Context{Time: t, Session: c.Session, Position: int(c.Position), Recent: c.Recent, Profile: prof}, t
}

// featuresErr maps the store's errors: a time too far in the past or a
// bad id is the request's fault.
func featuresErr(op string, err error) error {
	if errors.Is(err, features.ErrPast) || errors.Is(err, features.ErrBadID) {
		return fmt.Errorf("%w: %s: %w", ErrBadRequest, op, err)
	}
	return fmt.Errorf("engine: %s: %w", op, err)
}

func (e *Engine) recommend(ctx context.Context, req *RecommendRequest, out *Response, start time.Time) (r outcome, err error) {
	if err := stageErr(ctx, "features"); err != nil {
		return r, err
	}
	if err := checkContext("recommend", req.User, &req.Context); err != nil {
		return r, err
	}
	if req.N < 1 || req.N > MaxN {
		return r, badRequest("recommend", "n = %d outside 1..%d", req.N, MaxN)
	}
	for i, id := range req.Exclude {
		if id < 0 {
			return r, badRequest("recommend", "excluded reel %d is %d", i, id)
		}
	}
	lv, arm := e.armFor(req.User)
	if lv == nil {
		return r, fmt.Errorf("%w: recommend: no model", ErrUnavailable)
	}
	r.arm = arm
	e.noteUser(req.User)
	m := lv.m
	out.Heads, out.ModelVersion, out.Arm = m.heads, m.version, lv.arm
	tm := &out.Timings
	s := e.getScratch()
	defer e.putScratch(s)

	// The user's features.
	fr := &s.freq
	var t int64
	fr.User = req.User
	fr.Context, t = e.featureContext(req.User, &req.Context, &s.profile)
	fr.Context.Position = m.bundle.Ranker.Position(fr.Context.Position) // a bundle may fix the position it scores at
	fr.Reels = s.cands[:0]
	fr.Embeddings = true
	if err := e.store.Features(fr); err != nil {
		return r, featuresErr("recommend: user features", err)
	}
	t1 := time.Now()
	tm.Features = t1.Sub(start)
	if err := stageErr(ctx, "tower"); err != nil {
		return r, err
	}

	// The user tower: the query vector.
	tower := m.bundle.UserTower
	s.query = grow(s.query, tower.Dim())
	if err := tower.Embed(fr.UserVec, s.query); err != nil {
		return r, fmt.Errorf("engine: recommend: user tower: %w", err)
	}
	t2 := time.Now()
	tm.Tower = t2.Sub(t1)
	if err := stageErr(ctx, "ann"); err != nil {
		return r, err
	}

	// Recall: the index, the fresh pool, the exploration pool; filtered
	// and deduplicated.
	s.pcg.Seed(e.cfg.Seed, e.seq.Add(1))
	counts, err := e.recall(s, req, lv, t)
	if err != nil {
		return r, err
	}
	tm.ANNCandidates, tm.FreshCandidates, tm.ExploreCandidates = counts.ANNCandidates, counts.FreshCandidates, counts.ExploreCandidates
	t3 := time.Now()
	tm.ANN = t3.Sub(t2)
	if err := stageErr(ctx, "features"); err != nil {
		return r, err
	}

	// The candidates' features.
	n := len(s.cands)
	tm.Ranked = uint32(n)
	fr.Reels = s.cands
	if err := e.store.Features(fr); err != nil {
		return r, featuresErr("recommend: candidate features", err)
	}
	t4 := time.Now()
	tm.Features += t4.Sub(t3)
	if err := stageErr(ctx, "rank"); err != nil {
		return r, err
	}

	// The ranker, or popularity for the holdout.
	if lv.holdout {
		e.popularity(s, len(m.heads))
	} else if b := e.batcherFor(m.bundle.Ranker); b != nil {
		in, err := m.bundle.Ranker.RequestInputs(fr)
		if err != nil {
			return r, fmt.Errorf("engine: recommend: ranker: %w", err)
		}
		bt, err := b.Score(ctx, in, &s.scores)
		if err != nil {
			return r, fmt.Errorf("engine: recommend: ranker: %w", err)
		}
		tm.RankWait = bt.Wait
		if !bt.Fallback && bt.Backend != "cpu" {
			tm.RankDevice = bt.Pass
		}
	} else {
		sc, err := s.scorerFor(m.bundle.Ranker)
		if err != nil {
			return r, fmt.Errorf("engine: recommend: ranker: %w", err)
		}
		if err := sc.Score(fr, &s.scores); err != nil {
			return r, fmt.Errorf("engine: recommend: ranker: %w", err)
		}
	}
	t5 := time.Now()
	tm.Rank = t5.Sub(t4)
	if err := stageErr(ctx, "postrank"); err != nil {
		return r, err
	}

	// Post-rank.
	r.explored = e.postrank(s, lv, req, out)
	r.degenerate = s.degenerate
	tm.Postrank = time.Since(t5)
	if len(s.grad) > 0 {
		e.explore.remove(s.grad...)
	}
	return r, nil
}

// recall gathers the candidates into s.cands (with their sources in
// s.src): the index's K nearest to the query, then the feature store's
// candidate sources (sources.go), then the fresh pool, then a sample of
// the exploration pool, leaving out the request's exclusions and the
// session's recent reels, each reel once.
func (e *Engine) recall(s *scratch, req *RecommendRequest, lv *live, t int64) (Timings, error) {
	clear(s.seen)
	for _, id := range req.Exclude {
		s.seen[id] = -1
	}
	for _, id := range req.Context.Recent {
		s.seen[id] = -1
	}
	s.cands, s.src = s.cands[:0], s.src[:0]
	add := func(id int64, src Source) bool {
		if _, dup := s.seen[id]; dup {
			return false
		}
		s.seen[id] = int32(len(s.cands))
		s.cands = append(s.cands, id)
		s.src = append(s.src, src)
		return true
	}
	var tm Timings
	if ix := lv.m.index; ix.Trained() && ix.Len() > 0 {
		exclude := req.Exclude
		if len(req.Context.Recent) > 0 {
			s.annEx = append(append(s.annEx[:0], req.Exclude...), req.Context.Recent...)
			exclude = s.annEx
		}
		res, err := ix.SearchInto(s.annRes, s.query, ann.SearchOptions{K: e.cfg.K, NProbe: lv.nprobe, Exclude: exclude})
		if err != nil && !errors.Is(err, ann.ErrEmpty) {
			return tm, fmt.Errorf("engine: recommend: ann: %w", err)
		}
		s.annRes = res
		for _, r := range res {
			if add(r.ID, SourceANN) {
				tm.ANNCandidates++
			}
		}
	}
	if err := e.addSources(s, req.User, t, add); err != nil {
		return tm, err
	}
	if e.cfg.FreshMax > 0 {
		s.pool = e.fresh.newest(s.pool[:0], t-e.cfg.FreshWindow.Milliseconds(), t, e.cfg.FreshMax)
		for _, id := range s.pool {
			if add(id, SourceFresh) {
				tm.FreshCandidates++
			}
		}
	}
	if e.cfg.ExploreMax > 0 {
		s.pool = e.explore.sample(s.rng, e.cfg.ExploreMax, s.pool[:0])
		for _, id := range s.pool {
			if add(id, SourceExplore) {
				tm.ExploreCandidates++
			}
		}
	}
	return tm, nil
}

// postrank turns the ranker's probabilities into the response: final
// scores by the live weights, then the slots. It returns how many slots
// exploration filled.
func (e *Engine) postrank(s *scratch, lv *live, req *RecommendRequest, out *Response) int {
	n := len(s.cands)
	T := s.scores.Tasks
	p := &s.pr
	p.reset(n)
	w := lv.weights
	nR := len(e.spec.Reel)
	rv := s.freq.ReelVec
	s.grad = s.grad[:0]
	lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
	bad := false
	for i := range n {
		var sc float32
		if lv.holdout {
			sc = s.scores.Score[i]
		} else {
			probs := s.scores.Probs[i*T : (i+1)*T]
			for t, pr := range probs {
				sc += w[t] * pr
			}
		}
		if math.IsNaN(float64(sc)) || math.IsInf(float64(sc), 0) {
			sc = float32(math.Inf(-1))
			bad = true
		} else {
			lo, hi = min(lo, sc), max(hi, sc)
		}
		p.score[i] = sc
		// The reel's evidence over the longest window: impressions, and
		// the smoothed watch-through rate, which is the mean of a Beta
		// posterior with prior pseudo-impressions.
		li := rv[i*nR+e.impCol] // log1p(impressions)
		unc := li < e.logExplore
		if lv.freshPool {
			// A fresh-reel share explores the reels uploaded within the
			// fresh window, whatever their evidence.
			p.uncertain[i] = e.ageCol >= 0 && e.knownCol >= 0 && rv[i*nR+e.knownCol] > 0 && rv[i*nR+e.ageCol] < e.logFresh
		} else {
			p.uncertain[i] = unc
		}
		if unc || p.uncertain[i] {
			rate := min(max(float64(rv[i*nR+e.wtCol]), 1e-6), 1-1e-6)
			k := math.Expm1(float64(li)) + e.prior
			p.alpha[i], p.beta[i] = rate*k, (1-rate)*k
		}
		if !unc && s.src[i] == SourceExplore {
			s.grad = append(s.grad, s.cands[i])
		}
	}
	p.author = e.store.ReelAuthors(s.cands, p.author[:0])
	if r := req.Context.Recent; len(r) > 0 && e.cfg.DiversityWindow > 1 {
		p.recent = e.store.ReelAuthors(r[max(0, len(r)-(e.cfg.DiversityWindow-1)):], p.recent[:0])
	}
	s.degenerate = bad || (n > 1 && hi-lo < 1e-7*max(1, abs32(hi)))
	p.eps, p.mode, p.rounds = lv.eps, lv.mode, e.cfg.ThompsonRounds
	if lv.holdout {
		p.eps = 0 // popularity alone
	}
	p.window, p.exploreMax = e.cfg.DiversityWindow, e.cfg.ExploreMax
	slots := p.run(s.rng, req.N)

	// The items; their probabilities share one slab.
	k := len(slots)
	if cap(out.Items) < k {
		out.Items = make([]Item, k)
	}
	out.Items = out.Items[:k]
	out.probs = grow(out.probs, k*T)
	slab := out.probs
	explored := 0
	for j, sl := range slots {
		i := int(sl.cand)
		src := s.src[i]
		if sl.explored {
			src = SourceExplore
			explored++
		}
		probs := slab[j*T : (j+1)*T : (j+1)*T]
		copy(probs, s.scores.Probs[i*T:(i+1)*T])
		out.Items[j] = Item{Reel: s.cands[i], Score: p.score[i], Probs: probs, Propensity: sl.prop, Source: src}
		// The arm's metrics count the reels and authors served; postrank
		// has the authors at hand.
		out.reels = append(out.reels, s.cands[i])
		out.authors = append(out.authors, p.author[i])
	}
	return explored
}

func abs32(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}

// popularity scores the candidates for the holdout arm, bypassing the
// ranker: a reel's score is its watch-throughs over the store's longest
// window (impressions × smoothed watch-through rate); the first head's
// probability is the smoothed rate, the others 0.
func (e *Engine) popularity(s *scratch, T int) {
	n := len(s.cands)
	nR := len(e.spec.Reel)
	rv := s.freq.ReelVec
	sc := &s.scores
	sc.Tasks = T
	sc.Probs = grow(sc.Probs, n*T)
	clear(sc.Probs)
	sc.Score = grow(sc.Score, n)
	for i := range n {
		rate := rv[i*nR+e.wtCol]
		imp := float32(math.Expm1(float64(rv[i*nR+e.impCol])))
		if T > 0 {
			sc.Probs[i*T] = rate
		}
		sc.Score[i] = rate * imp
	}
}
