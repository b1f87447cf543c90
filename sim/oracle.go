package sim

import (
	"math"
	"slices"
)

// Context is what the behaviour model knows of an impression beyond the
// user and the reel.
type Context struct {
	Time     int64 // ms since the Unix epoch: picks the day's interest and the local hour
	Position int   // position in the session, from 0
	Prev     int64 // the previous reel of the session, 0 for none
}

// loopCap bounds the fraction watched: a completed reel loops on by at most
// loopCap-1 more plays.
const loopCap = 10

// Probs are the true probabilities of one impression's outcomes. Skip, Like,
// Comment, Share and Follow are marginal probabilities per impression.
// The watched fraction F of an impression is distributed as follows:
// with probability Skip the viewer leaves within 2 s (a skip); otherwise,
// with probability Complete F = 1 + min(Loop·E, 9) with E exponential of
// mean 1, and else F = MinFrac + (1-MinFrac)·U^(1/Kappa) with U uniform.
// WatchThrough gives the exact tail of this law.
type Probs struct {
	Skip    float64 // P(the viewer leaves within 2 s)
	Like    float64 // P(like)
	Comment float64 // P(comment)
	Share   float64 // P(share)
	Follow  float64 // P(follow the author); 0 where the user already follows them

	Complete float64 // P(watched to the end | not a skip)
	MinFrac  float64 // 2 s over the duration: the least fraction of a watch
	Kappa    float64 // shape of a partial watch's fraction
	Loop     float64 // mean extra fraction watched after the end (replays)
	Duration float64 // seconds

	// engagement probabilities given a watch, before the completion factor
	like, comment, share, follow float64
	boost, partial               float64
}

// WatchThrough returns P(the impression is not a skip and the fraction
// watched is at least theta), exactly. theta above 1 asks for loops.
func (p Probs) WatchThrough(theta float64) float64 {
	if p.Duration == 0 {
		return 0
	}
	watch := 1 - p.Skip
	if theta <= p.MinFrac {
		return watch
	}
	var tail float64
	switch {
	case theta <= 1:
		x := (theta - p.MinFrac) / (1 - p.MinFrac)
		tail = p.Complete + (1-p.Complete)*(1-fexp(p.Kappa*flog(x)))
	case theta <= loopCap && p.Loop > 0:
		tail = p.Complete * fexp(-(theta-1)/p.Loop)
	}
	return watch * tail
}

// engage returns the probability of an engagement of base probability q
// given the completion outcome.
func (p *Probs) engage(q float64, complete bool) float64 {
	if complete {
		return min(1, q*p.boost)
	}
	return min(1, q*p.partial)
}

// userCtx is what the model needs of a user at one time.
type userCtx struct {
	ui         int
	u          *userRec
	core, a, b []float32
	cd, sd     float32
	hour       float64
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func (w *World) setUser(uc *userCtx, ui int, t int64) {
	T := w.cfg.Topics
	d := floorDiv(t-w.startMS, msPerDay)
	d = max(0, min(d, int64(len(w.drift)-1)))
	dd := w.drift[d]
	iv := w.interest[ui*w.stride : (ui+1)*w.stride]
	uc.ui = ui
	uc.u = &w.users[ui]
	uc.core = iv[:T]
	uc.a = iv[(1+dd.k)*T : (2+dd.k)*T]
	uc.b = iv[(2+dd.k)*T : (3+dd.k)*T]
	uc.cd, uc.sd = dd.c, dd.s
	local := t + int64(w.countries[uc.u.country].OffsetMin)*60_000
	h := (local%msPerDay + msPerDay) % msPerDay / msPerHour
	uc.hour = w.hourEffect[h]
}

// score returns the shared score z of a (user, reel index) pair and
// whether the user follows the reel's author.
func (w *World) score(uc *userCtx, ri int, pos int, prevTopic int) (z float64, followed bool) {
	o := &w.cfg.Oracle
	r := &w.reels[ri]
	var A float32
	for j := range 3 {
		if wt := r.weight[j]; wt != 0 {
			t := r.topic[j]
			A += float32(wt) * (uc.core[t] + uc.cd*uc.a[t] + uc.sd*uc.b[t])
		}
	}
	z = o.Affinity*float64(A)/255 + float64(w.base[ri]) + uc.hour
	if pos < len(w.posLog) {
		z -= o.Fatigue * w.posLog[pos]
	} else {
		z -= o.Fatigue * math.Log1p(float64(pos))
	}
	if r.lang != uc.u.lang {
		z -= o.LanguageMismatch
	}
	if int(r.topic[0]) == prevTopic {
		z -= o.Repeat
	}
	followed = w.follows(uc.ui, r.author)
	if followed {
		z += o.Followed
	}
	return z, followed
}

// watchHeads fills the watch part of p (Skip, Complete, MinFrac, Kappa,
// Loop, Duration).
func (w *World) watchHeads(p *Probs, uc *userCtx, ri int, pos int, prevTopic int) {
	r := &w.reels[ri]
	z, _ := w.score(uc, ri, pos, prevTopic)
	var a [8]float64
	w.watchArgs(&a, uc, r, z, pos)
	expN(&a, 3)
	w.setWatch(p, &a, r)
}

// watchArgs puts the exponents of the watch heads in a[0:3]: e^a[0] and
// e^a[1] are the odds against a skip and against completion, e^a[2] is Kappa.
func (w *World) watchArgs(a *[8]float64, uc *userCtx, r *reelRec, z float64, pos int) {
	o := &w.cfg.Oracle
	pl := 0.0
	if pos < len(w.posLog) {
		pl = w.posLog[pos]
	} else {
		pl = math.Log1p(float64(pos))
	}
	dt := (float64(r.dur) - 30) / 30
	a[0] = -(o.SkipBase - o.SkipSlope*z + o.SkipDuration*dt + o.SkipPosition*pl + o.DeviceSkip[uc.u.device])
	a[1] = -(o.CompleteBase + o.CompleteSlope*z - o.CompleteDuration*dt)
	a[2] = o.KappaBase + o.KappaSlope*z
}

func (w *World) setWatch(p *Probs, a *[8]float64, r *reelRec) {
	dur := float64(r.dur)
	p.Skip = 1 / (1 + a[0])
	p.Complete = 1 / (1 + a[1])
	p.Kappa = min(20, max(0.1, a[2]))
	p.Loop = w.cfg.Oracle.LoopBase * (0.5 + p.Complete)
	p.MinFrac = 2 / dur
	p.Duration = dur
}

func (w *World) probs(uc *userCtx, ri int, pos int, prevTopic int) Probs {
	o := &w.cfg.Oracle
	var p Probs
	r := &w.reels[ri]
	z, followed := w.score(uc, ri, pos, prevTopic)
	var a [8]float64
	w.watchArgs(&a, uc, r, z, pos)
	e := o.AgeEngage[uc.u.age]
	a[3] = -(o.LikeBase + o.LikeSlope*z + o.LikeQuality*float64(r.quality) + e)
	a[4] = -(o.CommentBase + o.CommentSlope*z + e)
	a[5] = -(o.ShareBase + o.ShareSlope*z + e)
	a[6] = -(o.FollowBase + o.FollowSlope*z + o.FollowAuthorQuality*float64(w.users[r.author-1].authorQ) + e)
	expN(&a, 7)
	w.setWatch(&p, &a, r)
	p.boost, p.partial = o.CompleteBoost, o.PartialFactor
	p.like = 1 / (1 + a[3])
	p.comment = 1 / (1 + a[4])
	p.share = 1 / (1 + a[5])
	if !followed {
		p.follow = 1 / (1 + a[6])
	}
	watch := 1 - p.Skip
	marg := func(q float64) float64 {
		return watch * (p.Complete*p.engage(q, true) + (1-p.Complete)*p.engage(q, false))
	}
	p.Like, p.Comment, p.Share, p.Follow = marg(p.like), marg(p.comment), marg(p.share), marg(p.follow)
	return p
}

// Probs returns the true outcome probabilities of showing reel to user in
// context c: the oracle. It does not allocate and is safe for concurrent
// use. The interest used is the user's interest on the day of c.Time
// (clamped to the simulated days). Ids out of range give the zero Probs.
func (w *World) Probs(user, reel int64, c Context) Probs {
	if user < 1 || user > int64(len(w.users)) || reel < 1 || reel > int64(len(w.reels)) {
		return Probs{}
	}
	var uc userCtx
	w.setUser(&uc, int(user-1), c.Time)
	prev := -1
	if c.Prev >= 1 && c.Prev <= int64(len(w.reels)) {
		prev = int(w.reels[c.Prev-1].topic[0])
	}
	return w.probs(&uc, int(reel-1), max(0, c.Position), prev)
}

// ScoreAll fills dst[i] with the probability that user watches reel i+1
// through fraction theta (Probs.WatchThrough) at time t, at position 0 with
// no previous reel, for every reel uploaded by t, and returns dst resized
// to that many reels. An unknown user gets zeros.
func (w *World) ScoreAll(user int64, t int64, theta float64, dst []float32) []float32 {
	n := w.available(t)
	dst = slices.Grow(dst[:0], n)[:n]
	if user < 1 || user > int64(len(w.users)) {
		clear(dst)
		return dst
	}
	var uc userCtx
	w.setUser(&uc, int(user-1), t)
	// ln((theta - m)/(1 - m)) per duration, as WatchThrough computes it
	var lnx [91]float64
	for d := 5; d <= 90; d++ {
		m := 2 / float64(d)
		lnx[d] = flog((theta - m) / (1 - m))
	}
	var p Probs
	for i := range dst {
		r := &w.reels[i]
		w.watchHeads(&p, &uc, i, 0, -1)
		if theta > p.MinFrac && theta <= 1 {
			tail := p.Complete + (1-p.Complete)*(1-fexp(p.Kappa*lnx[r.dur]))
			dst[i] = float32((1 - p.Skip) * tail)
		} else {
			dst[i] = float32(p.WatchThrough(theta))
		}
	}
	return dst
}

// Interest writes user's latent interest over topics on the day of t into
// dst (grown to Topics) and returns it: a log-affinity per topic, the core
// plus the day's drifting part. Latent: the truth, not a feature.
func (w *World) Interest(user int64, t int64, dst []float32) []float32 {
	T := w.cfg.Topics
	dst = slices.Grow(dst[:0], T)[:T]
	if user < 1 || user > int64(len(w.users)) {
		clear(dst)
		return dst
	}
	var uc userCtx
	w.setUser(&uc, int(user-1), t)
	for i := range dst {
		dst[i] = uc.core[i] + uc.cd*uc.a[i] + uc.sd*uc.b[i]
	}
	return dst
}

// outcome is one sampled impression outcome.
type outcome struct {
	skip                         bool
	complete                     bool
	frac, secs                   float64
	like, comment, share, follow bool
}

// sample draws an impression's outcome from exactly the law of p.
func sample(p *Probs, r *Rand) outcome {
	var o outcome
	if r.Float64() < p.Skip {
		o.skip = true
		o.secs = min(0.25+1.7*r.Float64(), p.Duration)
		o.frac = o.secs / p.Duration
		return o
	}
	o.complete = r.Float64() < p.Complete
	if o.complete {
		o.frac = 1 + min(r.Exp()*p.Loop, loopCap-1)
	} else {
		u := r.Float64()
		o.frac = p.MinFrac + (1-p.MinFrac)*math.Pow(u, 1/p.Kappa)
	}
	o.secs = max(2, o.frac*p.Duration)
	o.like = r.Float64() < p.engage(p.like, o.complete)
	o.comment = r.Float64() < p.engage(p.comment, o.complete)
	o.share = r.Float64() < p.engage(p.share, o.complete)
	o.follow = r.Float64() < p.engage(p.follow, o.complete)
	return o
}
