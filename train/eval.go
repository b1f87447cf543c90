package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/kernels"
	"github.com/reelrank/reelrank/ranker"
)

// Retrieval is evaluated at one instant, the start of the test days: the
// oracle's 100 best reels for a user at that instant (sim.World.ScoreAll,
// watch-through at Theta, over the reels uploaded by then) against the
// 1,000 reels whose tower vectors score highest with the user's. Both
// towers read the store's features as of that instant.
const (
	retrievalK      = 1000
	retrievalOracle = 100
)

// retrievalSnap is the store's view at the first test instant: the
// features of a sample of users and of every reel uploaded by then.
type retrievalSnap struct {
	time    int64
	users   []int64
	userVec []float32 // rows of len(Spec.User)
	reels   []int64   // ids 1..n in upload order, as ScoreAll numbers them
	reelVec []float32 // rows of len(Spec.Reel)
	emb     []float32 // rows of EmbedDim
	// cfg, when set, asks for the candidate sources' lists of a sample of
	// the users (the first of the random order), kept in sources.
	cfg     *Config
	sources map[int64]*sourceLists
}

// take reads the store as of t. It samples users up front (the test rows
// that say which users are active come later) and keeps those with test
// rows at evaluation.
func (rs *retrievalSnap) take(c *Catalogue, s *features.Store, t int64) error {
	rs.time = t
	users := s.Users() // the catalogue's, and those the log brought so far
	rng := rand.New(rand.NewPCG(uint64(t), 1))
	n := min(len(users), 20_000)
	for _, i := range rng.Perm(len(users))[:n] {
		rs.users = append(rs.users, users[i].ID)
	}
	if rs.cfg != nil {
		src := storeSources(s)
		if err := rs.takeSources(src, rs.users, t, rs.cfg.Sources.withDefaults(), rs.cfg.RetrievalUsers); err != nil {
			return err
		}
	}
	slices.Sort(rs.users)
	req := &features.Request{Context: features.Context{Time: t}}
	for _, u := range rs.users {
		req.User = u
		if err := s.Features(req); err != nil {
			return fmt.Errorf("train: retrieval features of user %d: %w", u, err)
		}
		rs.userVec = append(rs.userVec, req.UserVec...)
	}
	for _, r := range c.Reels {
		if r.Upload <= t {
			rs.reels = append(rs.reels, r.ID)
		}
	}
	rv, emb, err := reelFeatures(s, rs.reels, t)
	if err != nil {
		return err
	}
	rs.reelVec, rs.emb = rv, emb
	return nil
}

// reelTable holds every reel's features as of one instant, the end of the
// training days: the reel tower trains on these rather than on each row's
// own, because retrieval scores the whole catalogue as of one instant. Trained on each impression's own reel features, the in-batch
// softmax learns to match a user's context time with the reels' short
// windows (which reel was being shown then), a shortcut that does not
// exist when the catalogue is scored at once.
type reelTable struct {
	time    int64
	row     map[int64]int32
	reelVec []float32
	emb     []float32
}

func (rt *reelTable) take(c *Catalogue, s *features.Store, t int64) error {
	rt.time = t
	rt.row = map[int64]int32{}
	var ids []int64
	for _, r := range c.Reels {
		if r.Upload <= t {
			rt.row[r.ID] = int32(len(ids))
			ids = append(ids, r.ID)
		}
	}
	var err error
	rt.reelVec, rt.emb, err = reelFeatures(s, ids, t)
	return err
}

// reelFeatures returns the reel features and content embeddings of ids as
// of t.
func reelFeatures(s *features.Store, ids []int64, t int64) (reelVec, emb []float32, err error) {
	req := &features.Request{Context: features.Context{Time: t}, Embeddings: true}
	sp := s.Spec()
	reelVec = make([]float32, 0, len(ids)*len(sp.Reel))
	emb = make([]float32, 0, len(ids)*sp.EmbedDim)
	const chunk = 4096
	for lo := 0; lo < len(ids); lo += chunk {
		req.Reels = ids[lo:min(lo+chunk, len(ids))]
		if err := s.Features(req); err != nil {
			return nil, nil, fmt.Errorf("train: reel features as of %s: %w", day0(t), err)
		}
		reelVec = append(reelVec, req.ReelVec...)
		emb = append(emb, req.Emb...)
	}
	return reelVec, emb, nil
}

// embedCatalogue returns the reel tower's vectors of every reel of the
// catalogue as of t, in the catalogue's order.
func embedCatalogue(c *Catalogue, s *features.Store, rt *ranker.ReelTower, t int64) ([]int64, []float32, error) {
	var ids []int64
	for _, r := range c.Reels {
		ids = append(ids, r.ID)
	}
	vecs := make([]float32, len(ids)*rt.Dim)
	if err := rt.EmbedStore(vecs, s, ids, t); err != nil {
		return nil, nil, fmt.Errorf("train: embed the catalogue: %w", err)
	}
	return ids, vecs, nil
}

// evaluate scores the test rows with the f32 and bf16 rankers, the oracle
// (when there is one) and the popularity baseline, and measures each head.
func evaluate(ctx context.Context, cfg *Config, or Oracle, d *dataset, te span, f32, bf16 *ranker.Multitask) (*Report, error) {
	n := te.len()
	scores := [2][]float32{make([]float32, n*numHeads), make([]float32, n*numHeads)}
	for k, m := range []*ranker.Multitask{f32, bf16} {
		if err := scoreRows(ctx, cfg.Threads, d, te, m, scores[k]); err != nil {
			return nil, err
		}
	}
	var oracle []float32
	if or != nil {
		oracle = make([]float32, n*numHeads)
		parallel(n, cfg.Threads, func(_, lo, hi int) {
			for r := lo; r < hi; r++ {
				i := te.lo + r
				or.Heads(oracle[r*numHeads:(r+1)*numHeads], d.user[i], d.reel[i], d.time[i], int(d.pos[i]), d.prev[i], cfg.Theta)
			}
		})
	}
	// Popularity: the reel's positives of the head in every row before,
	// a point-in-time count.
	pop := make([]float32, n*numHeads)
	counts := map[int64]*[numHeads]int32{}
	for i := range d.n {
		c := counts[d.reel[i]]
		if c == nil {
			c = new([numHeads]int32)
			counts[d.reel[i]] = c
		}
		if i >= te.lo && i < te.hi {
			for h := range numHeads {
				pop[(i-te.lo)*numHeads+h] = float32(c[h])
			}
		}
		for h := range numHeads {
			if d.labels[i]&(1<<h) != 0 {
				c[h]++
			}
		}
	}
	rep := &Report{Oracle: or != nil}
	labels := make([]bool, n)
	col := func(src []float32, h int, rows []int) []float32 {
		out := make([]float32, len(rows))
		for k, r := range rows {
			out[k] = src[r*numHeads+h]
		}
		return out
	}
	all := make([]int, n)
	var explore []int
	for r := range all {
		all[r] = r
		if d.explore[te.lo+r] {
			explore = append(explore, r)
		}
	}
	auc := func(s []float32, lab []bool) float64 {
		a, err := AUC(s, lab, nil)
		if err != nil {
			return math.NaN()
		}
		return a
	}
	for h := range numHeads {
		hr := HeadReport{Head: headNames[h]}
		var pos int
		for r := range n {
			labels[r] = d.labels[te.lo+r]&(1<<h) != 0
			if labels[r] {
				pos++
			}
		}
		hr.Positives, hr.BaseRate = pos, float64(pos)/float64(n)
		m := col(scores[0], h, all)
		hr.AUC = auc(m, labels)
		hr.AUCBF16 = auc(col(scores[1], h, all), labels)
		hr.PopularityAUC = auc(col(pop, h, all), labels)
		if e, err := ECE(m, labels, nil, 20); err == nil {
			hr.ECE = e
		}
		if oracle != nil {
			hr.OracleAUC = auc(col(oracle, h, all), labels)
			if e, err := ECE(col(oracle, h, all), labels, nil, 20); err == nil {
				hr.OracleECE = e
			}
			hr.OracleShare = (hr.AUC - 0.5) / (hr.OracleAUC - 0.5)
			hr.LiftShare = (hr.AUC - hr.PopularityAUC) / (hr.OracleAUC - hr.PopularityAUC)
		}
		if l, err := LogLoss(m, labels, nil); err == nil {
			hr.LogLoss = l
		}
		if len(explore) > 0 {
			el := make([]bool, len(explore))
			for k, r := range explore {
				el[k] = labels[r]
			}
			hr.Explore = &SliceReport{Rows: len(explore), AUC: auc(col(scores[0], h, explore), el), PopularityAUC: auc(col(pop, h, explore), el)}
			if oracle != nil {
				hr.Explore.OracleAUC = auc(col(oracle, h, explore), el)
			}
		}
		if !math.IsNaN(hr.AUC) && !math.IsNaN(hr.AUCBF16) {
			rep.BF16MaxAUCLoss = max(rep.BF16MaxAUCLoss, hr.AUC-hr.AUCBF16)
		}
		rep.Heads = append(rep.Heads, hr)
	}
	return rep, nil
}

// scoreRows scores each row of s with m, one row a request.
func scoreRows(ctx context.Context, threads int, d *dataset, s span, m *ranker.Multitask, out []float32) error {
	return scoreAt(ctx, threads, d, s.len(), func(r int) int { return s.lo + r }, m, out)
}

// scoreAt scores rows at(0) .. at(n-1) with m, one row a request, into
// out's rows 0..n-1.
func scoreAt(ctx context.Context, threads int, d *dataset, n int, at func(r int) int, m *ranker.Multitask, out []float32) error {
	if err := m.Prepare(); err != nil {
		return fmt.Errorf("train: evaluate: %w", err)
	}
	nu, nr := len(d.spec.User), len(d.spec.Reel)
	errs := make([]error, threads)
	parallel(n, threads, func(wi, lo, hi int) {
		sc, err := m.NewScorer()
		if err != nil {
			errs[wi] = err
			return
		}
		var res ranker.Scores
		for r := lo; r < hi; r++ {
			if r%4096 == 0 && ctx.Err() != nil {
				errs[wi] = ctx.Err()
				return
			}
			i := at(r)
			x := d.row(i)
			in := ranker.Inputs{User: x[:nu], Reel: x[nu : nu+nr], Cross: x[nu+nr:], Emb: d.embRow(i), N: 1}
			if err := sc.ScoreInputs(in, &res); err != nil {
				errs[wi] = fmt.Errorf("train: evaluate row %d: %w", i, err)
				return
			}
			copy(out[r*numHeads:(r+1)*numHeads], res.Probs[:numHeads])
		}
	})
	return errors.Join(errs...)
}

// evaluateRetrieval measures, for the towers and for the most popular
// reels of the training and validation days, recall@1000 of the reels
// each sampled test user watched through on the test days (among those
// uploaded by the first test instant), and with an oracle recall@1000 of
// the oracle's top 100.
func evaluateRetrieval(ctx context.Context, cfg *Config, or Oracle, d *dataset, tr, te span, rs *retrievalSnap,
	ut *ranker.UserTower, rt *ranker.ReelTower, rep *Report, rng *rand.Rand) error {
	active := map[int64]bool{}
	inCat := make(map[int64]bool, len(rs.reels))
	for _, id := range rs.reels {
		inCat[id] = true
	}
	watched := map[int64][]int64{} // test user → reels watched through
	for i := te.lo; i < te.hi; i++ {
		active[d.user[i]] = true
		if d.labels[i]&(1<<headWatch) != 0 && inCat[d.reel[i]] && !slices.Contains(watched[d.user[i]], d.reel[i]) {
			watched[d.user[i]] = append(watched[d.user[i]], d.reel[i])
		}
	}
	nu := len(d.spec.User)
	var users []int
	for k, u := range rs.users {
		if active[u] {
			users = append(users, k)
		}
	}
	rng.Shuffle(len(users), func(i, j int) { users[i], users[j] = users[j], users[i] })
	// The users with source lists (a random subset of the sample) first,
	// so that the sources are measured on as many of them as may be.
	slices.SortStableFunc(users, func(a, b int) int {
		_, okA := rs.sources[rs.users[a]]
		_, okB := rs.sources[rs.users[b]]
		switch {
		case okA == okB:
			return 0
		case okA:
			return -1
		}
		return 1
	})
	users = users[:min(len(users), cfg.RetrievalUsers)]
	sc := cfg.Sources.withDefaults()
	topN := retrievalK
	if rs.sources != nil {
		topN = max(topN, sc.TowerK)
	}
	popN := topN
	for s := range numSources {
		popN += sc.quota(s)
	}
	if len(users) == 0 {
		return errNoUsers
	}
	D := rt.Dim
	vecs := make([]float32, len(rs.reels)*D)
	if err := rt.EmbedBatch(rs.reels, rs.reelVec, rs.emb, vecs); err != nil {
		return fmt.Errorf("train: retrieval: %w", err)
	}
	// Popularity: the most watched-through reels before the test days.
	counts := map[int64]float32{}
	for i := range te.lo {
		if d.labels[i]&(1<<headWatch) != 0 {
			counts[d.reel[i]]++
		}
	}
	popScore := make([]float32, len(rs.reels))
	for k, id := range rs.reels {
		popScore[k] = counts[id]
	}
	popTop := TopK(popScore, rs.reels, popN)
	known := 0
	for _, id := range rs.reels {
		if k, err := rt.Known(id); err == nil && k {
			known++
		}
	}
	recall := make([]float64, len(users))
	popRecall := make([]float64, len(users))
	testRecall := make([]float64, len(users))
	testPopRecall := make([]float64, len(users))
	errs := make([]error, cfg.Threads)
	evals := make([]*sourceEval, cfg.Threads)
	parallel(len(users), cfg.Threads, func(wi, lo, hi int) {
		ev := newSourceEval(sc)
		evals[wi] = ev
		q := make([]float32, D)
		scores := make([]float32, len(rs.reels))
		var best []int64
		for k := lo; k < hi; k++ {
			if ctx.Err() != nil {
				errs[wi] = ctx.Err()
				return
			}
			u := users[k]
			if err := ut.Embed(rs.userVec[u*nu:(u+1)*nu], q); err != nil {
				errs[wi] = fmt.Errorf("train: retrieval: %w", err)
				return
			}
			for r := range rs.reels {
				scores[r] = kernels.Dot(q, vecs[r*D:(r+1)*D])
			}
			got := TopK(scores, rs.reels, topN)
			testRecall[k] = math.NaN() // no watch-through to find
			if rel := watched[rs.users[u]]; len(rel) > 0 {
				testRecall[k], _ = RecallAtK(got, rel, retrievalK)
				testPopRecall[k], _ = RecallAtK(popTop, rel, retrievalK)
			}
			if or != nil {
				best = or.Best(best[:0], rs.users[u], rs.time, cfg.Theta, retrievalOracle)
				recall[k], _ = RecallAtK(got, best, retrievalK)
				popRecall[k], _ = RecallAtK(popTop, best, retrievalK)
				if lists, ok := rs.sources[rs.users[u]]; ok {
					ev.add(got, popTop, lists, best)
				}
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	rr := RetrievalReport{Users: len(users), Catalogue: len(rs.reels), IDVectors: len(rt.IDs), CatalogueWithID: known, At: day0(rs.time)}
	if or != nil {
		rr.Recall, rr.PopularityRecall = mean(recall), mean(popRecall)
		all := newSourceEval(sc)
		for _, ev := range evals {
			if ev != nil {
				all.merge(ev)
			}
		}
		rr.Sources = all.report()
	}
	var tr2, tp []float64
	for k := range users {
		if !math.IsNaN(testRecall[k]) {
			tr2, tp = append(tr2, testRecall[k]), append(tp, testPopRecall[k])
		}
	}
	rr.TestUsers, rr.TestRecall, rr.TestPopularityRecall = len(tr2), mean(tr2), mean(tp)
	rep.Retrieval = rr
	return nil
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(max(len(v), 1))
}
