package sim

import (
	"cmp"
	"context"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

const (
	msPerDay  = 86_400_000
	msPerHour = 3_600_000
)

// userRec is a user in memory (24 bytes plus the interest vectors).
type userRec struct {
	activity  float32 // latent: mean 1, scales sessions per day
	authorQ   float32 // latent: quality as an author
	creator   float32 // latent: upload propensity multiplier, mean 1
	followers uint32  // in-degree of the initial follow graph
	reels     uint32  // reels authored, over the whole world
	country   uint8
	lang      uint8
	age       uint8
	device    uint8
	focus     [2]uint8 // latent: the author's two favourite topics
}

// reelRec is a reel in memory: 24 bytes; its embedding and description are
// derived from the seed when needed.
type reelRec struct {
	upload  int64   // ms since the Unix epoch
	author  uint32  // user id
	quality float32 // latent
	topic   [3]uint8
	weight  [3]uint8 // topic mix, summing to 255
	dur     uint8    // seconds, 5..90
	lang    uint8    // the author's language
}

// driftDay says how a day's interest mixes the anchors:
// core + c·anchor[k] + s·anchor[k+1].
type driftDay struct {
	k    int
	c, s float32
}

// World is a synthetic world: its users, authors, reels, follow graph and
// the ground-truth behaviour model. Open loads one from disk; Generate builds
// one in memory and hands it to the policy. A World is read-only and safe for
// concurrent use, except Close.
type World struct {
	cfg          Config
	users        []userRec
	interest     []float32 // per user: core, then anchors 0..anchors-1, each Topics long
	stride       int       // (1+anchors)·Topics
	anchors      int
	reels        []reelRec
	base         []float32 // per reel: ReelQuality·quality + AuthorQuality·author quality, the user-free part of z
	initialReels int
	followOff    []uint64 // CSR: followees of user u are followTo[followOff[u-1]:followOff[u]]
	followTo     []uint32
	startMS      int64

	drift      []driftDay // per simulated day 0..Days
	hourEffect [24]float64
	posLog     [256]float64
	topicVecs  []float32 // Topics × EmbedDim unit prototypes
	topicNames []string
	topicWords [][]string
	countries  []Country

	emb        []byte // reels.fvecs when opened, nil in a generated world
	embRelease func() error
}

// anchorsFor returns how many interest anchors a world needs.
func anchorsFor(c Config) int { return c.Days/c.DriftPeriod + 2 }

// newWorld sets up the derived tables of a world for c (no entities yet).
func newWorld(c Config) *World {
	w := &World{cfg: c, anchors: anchorsFor(c), startMS: c.Start.UnixMilli(), countries: countryTable}
	w.stride = (1 + w.anchors) * c.Topics
	w.drift = make([]driftDay, c.Days+1)
	for d := range w.drift {
		k := d / c.DriftPeriod
		s := float64(d%c.DriftPeriod) / float64(c.DriftPeriod)
		w.drift[d] = driftDay{k: k, c: float32(math.Cos(math.Pi / 2 * s)), s: float32(math.Sin(math.Pi / 2 * s))}
	}
	for h := range w.hourEffect {
		w.hourEffect[h] = c.Oracle.TimeOfDay * math.Cos(2*math.Pi*float64(h-21)/24)
	}
	for p := range w.posLog {
		w.posLog[p] = math.Log1p(float64(p))
	}
	w.topicNames, w.topicWords = topicTables(c.Topics)
	w.topicVecs = make([]float32, c.Topics*c.EmbedDim)
	r := NewRand(derive(c.Seed, tagTopics, 0, 0))
	for t := range c.Topics {
		v := w.topicVecs[t*c.EmbedDim : (t+1)*c.EmbedDim]
		var n float64
		for i := range v {
			x := r.Norm()
			v[i] = float32(x)
			n += x * x
		}
		n = 1 / math.Sqrt(n)
		for i := range v {
			v[i] = float32(float64(v[i]) * n)
		}
	}
	return w
}

// threadsOr returns n, or GOMAXPROCS when n <= 0.
func threadsOr(n int) int {
	if n <= 0 {
		return runtime.GOMAXPROCS(0)
	}
	return n
}

// parallel runs f over [0, n) in chunks of size chunk on up to threads
// goroutines. f must write only what its chunk owns, so that the result
// does not depend on scheduling. It stops early when ctx is done.
func parallel(ctx context.Context, threads, n, chunk int, f func(lo, hi int)) error {
	if n <= 0 {
		return ctx.Err()
	}
	chunks := (n + chunk - 1) / chunk
	threads = min(threadsOr(threads), chunks)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range threads {
		wg.Go(func() {
			for {
				if ctx.Err() != nil {
					return
				}
				c := int(next.Add(1) - 1)
				if c >= chunks {
					return
				}
				f(c*chunk, min(n, (c+1)*chunk))
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

func pickWeighted(r *Rand, w []float64) int {
	var sum float64
	for _, x := range w {
		sum += x
	}
	u := r.Float64() * sum
	for i, x := range w {
		if u < x {
			return i
		}
		u -= x
	}
	return len(w) - 1
}

// buildUsers draws every user's attributes and latent interests.
func (w *World) buildUsers(ctx context.Context, threads int) error {
	c := w.cfg
	w.users = make([]userRec, c.Users)
	w.interest = make([]float32, c.Users*w.stride)
	cw := make([]float64, len(countryTable))
	for i, k := range countryTable {
		cw[i] = k.Weight
	}
	T := c.Topics
	return parallel(ctx, threads, c.Users, 4096, func(lo, hi int) {
		var r Rand
		for i := lo; i < hi; i++ {
			id := uint64(i + 1)
			r.reseed(c.Seed, tagUser, id, 0)
			u := &w.users[i]
			u.country = uint8(pickWeighted(&r, cw))
			u.lang = uint8(countryTable[u.country].Language)
			if u.lang != 0 && r.Float64() < 0.15 {
				u.lang = 0 // a second language: English
			}
			u.age = uint8(pickWeighted(&r, ageWeights))
			u.device = uint8(pickWeighted(&r, deviceWeights))
			u.activity = float32(math.Exp(0.8*r.Norm() - 0.32))
			u.creator = float32(math.Exp(1.2*r.Norm() - 0.72))
			u.authorQ = float32(r.Norm())

			r.reseed(c.Seed, tagInterest, id, 0)
			iv := w.interest[i*w.stride : (i+1)*w.stride]
			core := iv[:T]
			for t := range core {
				core[t] = float32(-0.6 + 0.5*r.Norm())
			}
			favs := 2 + int(r.IntN(2))
			for f := range favs {
				core[r.IntN(int64(T))] += float32(2.2 - 0.5*float64(f))
			}
			for a := range w.anchors {
				an := iv[(1+a)*T : (2+a)*T]
				for t := range an {
					an[t] = float32(c.DriftScale * 0.6 * r.Norm())
				}
				an[r.IntN(int64(T))] += float32(c.DriftScale * 1.5)
			}
			best, second := 0, 1
			if core[second] > core[best] {
				best, second = second, best
			}
			for t := 2; t < T; t++ {
				switch {
				case core[t] > core[best]:
					best, second = t, best
				case core[t] > core[second]:
					second = t
				}
			}
			u.focus = [2]uint8{uint8(best), uint8(second)}
		}
	})
}

// localTime draws a time of day in ms (UTC) for a user of country k,
// following the diurnal curve of local hours.
func localTime(r *Rand, k int) int64 {
	h := pickWeighted(r, diurnal[:])
	local := int64(h)*msPerHour + r.IntN(msPerHour)
	utc := local - int64(countryTable[k].OffsetMin)*60_000
	return ((utc % msPerDay) + msPerDay) % msPerDay
}

// buildReels draws the catalogue at Start and the uploads of every day,
// numbers the reels in upload order and draws their attributes.
func (w *World) buildReels(ctx context.Context, threads int) error {
	c := w.cfg
	wts := make([]float64, c.Users)
	for i := range w.users {
		wts[i] = float64(w.users[i].creator)
	}
	creators := newAlias(wts)
	// Uploads during the simulated days: each user uploads on a day with
	// probability UploadRate·creator (at most 1), at a local time of day.
	perChunk := make([][]reelRec, (c.Users+4095)/4096)
	err := parallel(ctx, threads, c.Users, 4096, func(lo, hi int) {
		var out []reelRec
		var r Rand
		for i := lo; i < hi; i++ {
			u := &w.users[i]
			p := min(1, c.UploadRate*float64(u.creator))
			for d := range c.Days {
				r.reseed(c.Seed, tagUpload, uint64(i+1), uint64(d))
				if r.Float64() < p {
					t := w.startMS + int64(d)*msPerDay + localTime(&r, int(u.country))
					out = append(out, reelRec{author: uint32(i + 1), upload: t})
				}
			}
		}
		perChunk[lo/4096] = out
	})
	if err != nil {
		return err
	}
	n := c.Reels
	for _, p := range perChunk {
		n += len(p)
	}
	// The catalogue at Start: authors by creator weight, ages exponential.
	w.reels = make([]reelRec, c.Reels, n)
	pre := w.reels
	err = parallel(ctx, threads, c.Reels, 8192, func(lo, hi int) {
		var r Rand
		for i := lo; i < hi; i++ {
			r.reseed(c.Seed, tagPreReel, uint64(i), 0)
			age := min(r.Exp()*c.CatalogueAge, 10*c.CatalogueAge)
			pre[i] = reelRec{author: uint32(creators.sample(&r) + 1), upload: w.startMS - 1 - int64(age*msPerDay)}
		}
	})
	if err != nil {
		return err
	}
	cmpRec := func(a, b reelRec) int {
		return cmp.Or(cmp.Compare(a.upload, b.upload), cmp.Compare(a.author, b.author))
	}
	slices.SortFunc(pre, cmpRec)
	for _, p := range perChunk {
		w.reels = append(w.reels, p...)
	}
	slices.SortFunc(w.reels[c.Reels:], cmpRec)
	w.initialReels = c.Reels
	for i := range w.reels {
		w.users[w.reels[i].author-1].reels++
	}
	T := int64(c.Topics)
	return parallel(ctx, threads, len(w.reels), 8192, func(lo, hi int) {
		var r Rand
		for i := lo; i < hi; i++ {
			rr := &w.reels[i]
			r.reseed(c.Seed, tagReel, uint64(i+1), 0)
			u := &w.users[rr.author-1]
			rr.lang = u.lang
			var t0 int
			switch x := r.Float64(); {
			case x < 0.6:
				t0 = int(u.focus[0])
			case x < 0.85:
				t0 = int(u.focus[1])
			default:
				t0 = int(r.IntN(T))
			}
			topics := [3]int{t0, t0, t0}
			k := 1
			if x := r.Float64(); x > 0.4 {
				k = 2
				if x > 0.8 {
					k = 3
				}
			}
			for j := 1; j < k; j++ {
				for {
					t := int(r.IntN(T))
					if t != topics[0] && (j < 2 || t != topics[1]) {
						topics[j] = t
						break
					}
				}
			}
			var mix [3]float64
			switch k {
			case 1:
				mix = [3]float64{1, 0, 0}
			case 2:
				a := 0.5 + 0.45*r.Float64()
				mix = [3]float64{a, 1 - a, 0}
			case 3:
				a := 0.45 + 0.4*r.Float64()
				b := (1 - a) * (0.5 + 0.4*r.Float64())
				mix = [3]float64{a, b, 1 - a - b}
			}
			w0 := uint8(math.Round(255 * mix[0]))
			w1 := uint8(math.Round(255 * mix[1]))
			rr.weight = [3]uint8{w0, w1, 255 - w0 - w1}
			rr.topic = [3]uint8{uint8(topics[0]), uint8(topics[1]), uint8(topics[2])}
			if k < 3 {
				rr.topic[2] = rr.topic[0]
				if k < 2 {
					rr.topic[1] = rr.topic[0]
				}
			}
			rr.quality = float32(r.Norm())
			rr.dur = uint8(min(90, 5+int(r.Exp()*17)))
		}
	})
}

// buildFollows draws the initial follow graph: each user follows authors of
// the initial catalogue, some for their popularity, some for their topic.
func (w *World) buildFollows(ctx context.Context, threads int) error {
	c := w.cfg
	isAuthor := make([]bool, c.Users)
	for i := range w.initialReels {
		isAuthor[w.reels[i].author-1] = true
	}
	var authors []int
	var wts []float64
	byTopic := make([][]int, c.Topics)
	byTopicW := make([][]float64, c.Topics)
	for i, ok := range isAuthor {
		if !ok {
			continue
		}
		u := &w.users[i]
		x := float64(u.creator) * math.Exp(0.5*float64(u.authorQ))
		authors = append(authors, i+1)
		wts = append(wts, x)
		byTopic[u.focus[0]] = append(byTopic[u.focus[0]], i+1)
		byTopicW[u.focus[0]] = append(byTopicW[u.focus[0]], x)
	}
	global := newAlias(wts)
	topical := make([]alias, c.Topics)
	for t := range topical {
		topical[t] = newAlias(byTopicW[t])
	}
	const chunk = 4096
	lists := make([][]uint32, (c.Users+chunk-1)/chunk)
	counts := make([]uint32, c.Users)
	T := c.Topics
	err := parallel(ctx, threads, c.Users, chunk, func(lo, hi int) {
		var out []uint32
		var r Rand
		var mine []uint32
		for i := lo; i < hi; i++ {
			r.reseed(c.Seed, tagFollow, uint64(i+1), 0)
			n := r.Poisson(c.FollowsPerUser * math.Sqrt(float64(w.users[i].activity)))
			n = min(n, len(authors)-1, 1000)
			core := w.interest[i*w.stride : i*w.stride+T]
			mine = mine[:0]
			for range 3 * n {
				if len(mine) == n {
					break
				}
				var a int
				if r.Float64() < 0.6 {
					a = authors[global.sample(&r)]
				} else {
					// a topic the user likes: the best of three random topics
					t := int(r.IntN(int64(T)))
					for range 2 {
						if t2 := int(r.IntN(int64(T))); core[t2] > core[t] {
							t = t2
						}
					}
					if len(byTopic[t]) == 0 {
						continue
					}
					a = byTopic[t][topical[t].sample(&r)]
				}
				if a == i+1 || slices.Contains(mine, uint32(a)) {
					continue
				}
				mine = append(mine, uint32(a))
			}
			slices.Sort(mine)
			counts[i] = uint32(len(mine))
			out = append(out, mine...)
		}
		lists[lo/chunk] = out
	})
	if err != nil {
		return err
	}
	w.followOff = make([]uint64, c.Users+1)
	for i, n := range counts {
		w.followOff[i+1] = w.followOff[i] + uint64(n)
	}
	w.followTo = make([]uint32, 0, w.followOff[c.Users])
	for _, l := range lists {
		w.followTo = append(w.followTo, l...)
	}
	for _, a := range w.followTo {
		w.users[a-1].followers++
	}
	return nil
}

// finish computes what the oracle derives from the entities.
func (w *World) finish() {
	o := &w.cfg.Oracle
	w.base = make([]float32, len(w.reels))
	for i := range w.reels {
		r := &w.reels[i]
		w.base[i] = float32(o.ReelQuality*float64(r.quality) + o.AuthorQuality*float64(w.users[r.author-1].authorQ))
	}
}

// follows reports whether user (0-based index) initially follows author.
func (w *World) follows(ui int, author uint32) bool {
	l := w.followTo[w.followOff[ui]:w.followOff[ui+1]]
	lo, hi := 0, len(l)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if l[m] < author {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(l) && l[lo] == author
}

// available returns how many reels are uploaded at or before t: the reels
// available at t are ids 1..available(t).
func (w *World) available(t int64) int {
	lo, hi := 0, len(w.reels)
	if hi > 0 && w.reels[hi-1].upload <= t {
		return hi
	}
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if w.reels[m].upload <= t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// embedInto writes reel id's content embedding into dst (EmbedDim long):
// its topic mix over the topic prototypes plus noise, of unit norm.
func (w *World) embedInto(dst []float32, id int64) {
	c := w.cfg
	D := c.EmbedDim
	rr := &w.reels[id-1]
	var r Rand
	r.reseed(c.Seed, tagEmbed, uint64(id), 0)
	scale := c.EmbedNoise / math.Sqrt(float64(D))
	var n float64
	for i := range D {
		x := scale * r.Norm()
		for j := range 3 {
			if rr.weight[j] != 0 {
				x += float64(rr.weight[j]) / 255 * float64(w.topicVecs[int(rr.topic[j])*D+i])
			}
		}
		dst[i] = float32(x)
		n += x * x
	}
	if n > 0 {
		f := 1 / math.Sqrt(n)
		for i := range dst[:D] {
			dst[i] = float32(float64(dst[i]) * f)
		}
	}
}

// description returns reel id's text: a hashtag for its main topic and
// words of its topics, with some filler.
func (w *World) description(dst []byte, id int64) []byte {
	rr := &w.reels[id-1]
	var r Rand
	r.reseed(w.cfg.Seed, tagDescription, uint64(id), 0)
	dst = append(dst, '#')
	dst = append(dst, w.topicNames[rr.topic[0]]...)
	n := 3 + int(r.IntN(5))
	for range n {
		dst = append(dst, ' ')
		if r.Float64() < 0.15 {
			dst = append(dst, fillerWords[r.IntN(int64(len(fillerWords)))]...)
			continue
		}
		x := int(r.IntN(255))
		j := 0
		for j < 2 && x >= int(rr.weight[j]) {
			x -= int(rr.weight[j])
			j++
		}
		ws := w.topicWords[rr.topic[j]]
		dst = append(dst, ws[r.IntN(int64(len(ws)))]...)
	}
	return dst
}
