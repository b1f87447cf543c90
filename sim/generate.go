package sim

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/internal/fsutil"
)

// GenerateOptions tune how Generate runs; none of them changes the bytes
// it writes.
type GenerateOptions struct {
	Threads  int       // goroutines (0: GOMAXPROCS)
	Progress io.Writer // one line per stage and per simulated day; nil for none
	Policy   Policy    // who picks the reels; nil for NewMixture(0.1)
	// Period is how often the policy observes the events so far (see
	// Policy): 0 is once a simulated day; otherwise a divisor of a day of
	// at least a minute. A policy that learns during the day (a serving
	// engine's feature store) wants minutes. With a policy that keeps the
	// Policy contract, the period changes no byte either.
	Period time.Duration
}

// Summary says what Generate wrote.
type Summary struct {
	Dir     string
	Counts  Counts
	Policy  string     // the policy's type
	Files   []FileInfo // every file with its size and checksum
	Bytes   int64      // all files together
	Elapsed time.Duration
}

// evRec is one event while a day is buffered: 64 bytes.
type evRec struct {
	ts      int64
	session int64
	prop    float64
	arm     string
	user    uint32
	reel    uint32
	secs    float32
	frac    float32
	pos     int32
	seq     uint32
	typ     eventlog.Type
}

func cmpEv(a, b evRec) int {
	return cmp.Or(cmp.Compare(a.ts, b.ts), cmp.Compare(a.session, b.session), cmp.Compare(a.seq, b.seq))
}

// event converts r to a log event carrying exactly the fields of its type.
func (w *World) event(r *evRec, e *eventlog.Event) {
	*e = eventlog.Event{Type: r.typ, Time: r.ts, Reel: int64(r.reel)}
	if r.reel != 0 {
		e.Author = int64(w.reels[r.reel-1].author)
	}
	inSession := eventlog.FUser | eventlog.FReel | eventlog.FAuthor | eventlog.FSession | eventlog.FPosition
	e.Has = eventlog.Required(r.typ)
	switch r.typ {
	case eventlog.Upload:
		return
	case eventlog.Follow:
		e.Has |= inSession
	}
	e.User, e.Session, e.Position = int64(r.user), r.session, r.pos
	switch r.typ {
	case eventlog.Impression:
		e.Propensity, e.Arm = r.prop, r.arm
	case eventlog.Watch:
		e.Seconds, e.Fraction = r.secs, r.frac
	case eventlog.Skip:
		e.Seconds = r.secs
	}
}

// plan is one planned session of a day.
type plan struct {
	user  uint32
	start int64
}

// gen is the state of one Generate run.
type gen struct {
	w        *World
	cfg      Config
	opt      GenerateOptions
	policy   Policy
	busy     []int64 // per user: when their last session ended
	sessions int64
	counts   Counts
}

const userChunk = 1024

func progress(opt *GenerateOptions, format string, a ...any) {
	if opt.Progress != nil {
		fmt.Fprintf(opt.Progress, format+"\n", a...)
	}
}

// Generate builds the world of cfg and writes it into dir (created if
// needed): the entities, the content embeddings, the oracle's parameters,
// and the event log of Days simulated days of sessions served by
// opt.Policy. Every file is written under a temporary name and renamed at
// the end, world.json last; an existing world in dir is replaced. The same
// cfg gives the same bytes, whatever opt.Threads or GOMAXPROCS.
func Generate(ctx context.Context, cfg Config, dir string, opt GenerateOptions) (Summary, error) {
	began := time.Now()
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	if opt.Policy == nil {
		opt.Policy = NewMixture(0.1)
	}
	switch {
	case opt.Period == 0:
		opt.Period = msPerDay * time.Millisecond
	case opt.Period < time.Minute || opt.Period > msPerDay*time.Millisecond || (msPerDay*time.Millisecond)%opt.Period != 0:
		return Summary{}, fmt.Errorf("%w: period %v: want a divisor of a day of at least a minute", ErrConfig, opt.Period)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Summary{}, fmt.Errorf("sim: create %s: %w", dir, err)
	}
	w := newWorld(cfg)
	g := &gen{w: w, cfg: cfg, opt: opt, policy: opt.Policy}
	step := time.Now()
	if err := w.buildUsers(ctx, opt.Threads); err != nil {
		return Summary{}, err
	}
	if err := w.buildReels(ctx, opt.Threads); err != nil {
		return Summary{}, err
	}
	if err := w.buildFollows(ctx, opt.Threads); err != nil {
		return Summary{}, err
	}
	w.finish()
	progress(&opt, "sim: %d users, %d reels (%d uploaded during the days), %d follows built in %v",
		len(w.users), len(w.reels), len(w.reels)-w.initialReels, len(w.followTo), time.Since(step).Round(time.Millisecond))

	var outs []*outFile
	defer func() {
		for _, o := range outs {
			o.discard()
		}
	}()
	var files []FileInfo
	write := func(name string, f func(o *outFile) error) error {
		o, err := createOut(dir, name)
		if err != nil {
			return err
		}
		outs = append(outs, o)
		if err := f(o); err != nil {
			return err
		}
		fi, err := o.finish()
		if err != nil {
			return err
		}
		files = append(files, fi)
		return nil
	}
	step = time.Now()
	err := errors.Join(
		write(FileUsers, w.writeUsers),
		write(FileReels, w.writeReels),
		write(FileFollows, w.writeFollows),
	)
	if err == nil {
		err = write(FileEmbeddings, func(o *outFile) error { return w.writeEmbeddings(ctx, opt.Threads, o) })
	}
	if err == nil {
		err = write(FileReelsText, func(o *outFile) error { return w.writeReelsText(ctx, opt.Threads, o) })
	}
	if err != nil {
		return Summary{}, err
	}
	progress(&opt, "sim: entities and embeddings written in %v", time.Since(step).Round(time.Millisecond))

	if err := g.policy.Init(w); err != nil {
		return Summary{}, err
	}
	if err := write(FileEvents, g.simulate(ctx)); err != nil {
		return Summary{}, err
	}

	c := &g.counts
	c.Users, c.Reels, c.InitialReels = int64(len(w.users)), int64(len(w.reels)), int64(w.initialReels)
	c.Uploads = c.Reels - c.InitialReels
	c.Follows = int64(len(w.followTo))
	for i := range w.users {
		if w.users[i].reels > 0 {
			c.Authors++
		}
	}
	c.Sessions = g.sessions
	policyName := fmt.Sprintf("%T", g.policy)
	m := w.manifest(*c, policyName, files)
	mb, err := jsonIndent(m)
	if err != nil {
		return Summary{}, err
	}
	// Replace: the old manifest goes first, so that a crash in between
	// leaves no world rather than a mixed one; the new manifest goes last.
	if err := os.Remove(filepath.Join(dir, FileManifest)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Summary{}, fmt.Errorf("sim: replace %s: %w", filepath.Join(dir, FileManifest), err)
	}
	for _, o := range outs {
		if err := o.commit(); err != nil {
			return Summary{}, err
		}
	}
	outs = nil
	mo, err := createOut(dir, FileManifest)
	if err != nil {
		return Summary{}, err
	}
	outs = append(outs, mo)
	if _, err := mo.Write(mb); err != nil {
		return Summary{}, err
	}
	fi, err := mo.finish()
	if err != nil {
		return Summary{}, err
	}
	if err := mo.commit(); err != nil {
		return Summary{}, err
	}
	outs = nil
	if err := fsutil.SyncDir(dir); err != nil {
		return Summary{}, fmt.Errorf("sim: sync %s: %w", dir, err)
	}
	files = append(files, fi)
	s := Summary{Dir: dir, Counts: *c, Policy: policyName, Files: files, Elapsed: time.Since(began)}
	for _, f := range files {
		s.Bytes += f.Bytes
	}
	return s, nil
}

// simulate returns the writer of the event log: it runs every day's
// sessions against the policy and writes the events in time order.
func (g *gen) simulate(ctx context.Context) func(o *outFile) error {
	return func(o *outFile) error {
		w, cfg := g.w, g.cfg
		g.counts.ByType = map[string]int64{}
		g.busy = make([]int64, cfg.Users)
		var carry []evRec
		nextUpload := w.initialReels
		period := g.opt.Period.Milliseconds()
		for d := range cfg.Days {
			step := time.Now()
			dayStart := w.startMS + int64(d)*msPerDay
			pl, err := g.plan(ctx, d, dayStart)
			if err != nil {
				return err
			}
			n := 0
			for from := dayStart; from < dayStart+msPerDay; from += period {
				to := from + period
				buf, err := g.run(ctx, pl, from, to, carry)
				if err != nil {
					return err
				}
				for nextUpload < len(w.reels) && w.reels[nextUpload].upload < to {
					buf = append(buf, evRec{typ: eventlog.Upload, ts: w.reels[nextUpload].upload, reel: uint32(nextUpload + 1), seq: uint32(nextUpload + 1)})
					nextUpload++
				}
				slices.SortFunc(buf, cmpEv)
				cut, _ := slices.BinarySearchFunc(buf, to, func(e evRec, t int64) int { return cmp.Compare(e.ts, t) })
				if err := g.flush(ctx, o, buf[:cut]); err != nil {
					return err
				}
				g.policy.Advance(to)
				n += cut
				carry = append(carry[:0:0], buf[cut:]...)
			}
			progress(&g.opt, "sim: day %d/%d: %d events in %v", d+1, cfg.Days, n, time.Since(step).Round(time.Millisecond))
		}
		if err := g.flush(ctx, o, carry); err != nil {
			return err
		}
		if len(carry) > 0 {
			g.policy.Advance(carry[len(carry)-1].ts + 1)
		}
		return nil
	}
}

// flush writes sorted events to the log and shows them to the policy.
func (g *gen) flush(ctx context.Context, o *outFile, evs []evRec) error {
	const chunk = 16384
	err := streamChunks(ctx, g.opt.Threads, len(evs), chunk, func(lo, hi int, dst []byte) []byte {
		var e eventlog.Event
		for i := lo; i < hi; i++ {
			g.w.event(&evs[i], &e)
			dst = append(eventlog.AppendJSON(dst, &e), '\n')
		}
		return dst
	}, o)
	if err != nil {
		return err
	}
	batch := make([]eventlog.Event, 0, min(len(evs), 1<<16))
	for i := range evs {
		r := &evs[i]
		g.counts.Events++
		g.counts.ByType[r.typ.String()]++
		if r.typ == eventlog.Impression {
			g.counts.Impressions++
		}
		batch = batch[:len(batch)+1]
		g.w.event(r, &batch[len(batch)-1])
		if len(batch) == cap(batch) {
			g.policy.Observe(batch)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		g.policy.Observe(batch)
	}
	return nil
}

// dayPlan is one simulated day's sessions: per chunk of users, the
// sessions in (user, start) order, and the id of each chunk's first.
type dayPlan struct {
	plans [][]plan
	bases []int64
}

// plan draws how many sessions each user has on day d and when they
// start, and numbers them.
func (g *gen) plan(ctx context.Context, d int, dayStart int64) (*dayPlan, error) {
	w, cfg := g.w, g.cfg
	nChunks := (cfg.Users + userChunk - 1) / userChunk
	plans := make([][]plan, nChunks)
	wk := 1.0
	if wd := cfg.Start.AddDate(0, 0, d).Weekday(); wd == time.Saturday || wd == time.Sunday {
		wk = 1.15
	}
	err := parallel(ctx, g.opt.Threads, cfg.Users, userChunk, func(lo, hi int) {
		var r Rand
		var out []plan
		var starts []int64
		for i := lo; i < hi; i++ {
			u := &w.users[i]
			r.reseed(cfg.Seed, tagPlan, uint64(i+1), uint64(d))
			n := min(48, r.Poisson(cfg.SessionsPerDay*float64(u.activity)*wk))
			starts = starts[:0]
			for range n {
				starts = append(starts, dayStart+localTime(&r, int(u.country)))
			}
			slices.Sort(starts)
			for _, s := range starts {
				out = append(out, plan{user: uint32(i + 1), start: s})
			}
		}
		plans[lo/userChunk] = out
	})
	if err != nil {
		return nil, err
	}
	// Session ids: dense, in (day, user, start) order.
	bases := make([]int64, nChunks)
	for c := range plans {
		bases[c] = g.sessions + 1
		g.sessions += int64(len(plans[c]))
	}
	return &dayPlan{plans: plans, bases: bases}, nil
}

// run runs the sessions of pl planned to start in [from, to) and returns
// their events, appended to carry, unsorted. A session starts at its
// planned time or a minute after its user's previous session ended,
// whichever is later.
func (g *gen) run(ctx context.Context, pl *dayPlan, from, to int64, carry []evRec) ([]evRec, error) {
	cfg := g.cfg
	nChunks := len(pl.plans)
	outs := make([][]evRec, nChunks)
	errs := make([]error, nChunks)
	err := parallel(ctx, g.opt.Threads, cfg.Users, userChunk, func(lo, hi int) {
		c := lo / userChunk
		var out []evRec
		sr := sessionRunner{g: g, shown: make([]int64, 0, 64)}
		for k, p := range pl.plans[c] {
			if p.start < from || p.start >= to {
				continue
			}
			ui := int(p.user - 1)
			start := max(p.start, g.busy[ui]+60_000)
			var end int64
			out, end, errs[c] = sr.run(out, ui, pl.bases[c]+int64(k), start)
			if errs[c] != nil {
				return
			}
			g.busy[ui] = end
		}
		outs[c] = out
	})
	if err != nil {
		return nil, err
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	n := len(carry)
	for _, o := range outs {
		n += len(o)
	}
	buf := slices.Grow(carry, n-len(carry))
	for _, o := range outs {
		buf = append(buf, o...)
	}
	return buf, nil
}

// sessionRunner runs sessions on one goroutine.
type sessionRunner struct {
	g      *gen
	shown  []int64
	pr, br Rand
	uc     userCtx
}

// run simulates one session of user index ui and appends its events.
func (s *sessionRunner) run(out []evRec, ui int, sid int64, t int64) ([]evRec, int64, error) {
	g := s.g
	w, cfg := g.w, g.cfg
	s.pr.reseed(cfg.Seed, tagPolicy, uint64(sid), 0)
	s.br.reseed(cfg.Seed, tagBehaviour, uint64(sid), 0)
	s.shown = s.shown[:0]
	user := uint32(ui + 1)
	prevTopic := -1
	var seq uint32
	leave := 1 / cfg.SessionLength
	var eng [4]evRec
	for pos := 0; pos < cfg.MaxSessionLength; pos++ {
		avail := int64(w.available(t))
		slot := Slot{User: int64(user), Time: t, Session: sid, Position: pos, Shown: s.shown, Available: avail}
		reel, prop, arm := g.policy.Choose(&slot, &s.pr)
		if reel == 0 {
			break
		}
		if reel < 1 || reel > avail || slices.Contains(s.shown, reel) || !(prop > 0 && prop <= 1) {
			return out, t, fmt.Errorf("%w %T: session %d, position %d: chose reel %d with propensity %v; want an unshown reel in 1..%d and a propensity in (0, 1]",
				ErrPolicy, g.policy, sid, pos, reel, prop, avail)
		}
		w.setUser(&s.uc, ui, t)
		rr := &w.reels[reel-1]
		p := w.probs(&s.uc, int(reel-1), pos, prevTopic)
		oc := sample(&p, &s.br)
		base := evRec{session: sid, user: user, reel: uint32(reel), pos: int32(pos)}
		ev := base
		ev.typ, ev.ts, ev.prop, ev.arm, ev.seq = eventlog.Impression, t, prop, arm, seq
		out = append(out, ev)
		seq++
		tOut := t + int64(math.Ceil(oc.secs*1000))
		ev = base
		ev.ts, ev.secs, ev.seq = tOut, float32(oc.secs), seq
		if oc.skip {
			ev.typ = eventlog.Skip
		} else {
			ev.typ, ev.frac = eventlog.Watch, float32(oc.frac)
		}
		out = append(out, ev)
		seq++
		// Engagement shortly after the watch, in time order.
		n := 0
		add := func(on bool, typ eventlog.Type, delay int64) {
			if on {
				e := base
				e.typ, e.ts = typ, tOut+delay
				eng[n] = e
				n++
			}
		}
		add(oc.like, eventlog.Like, 200+s.br.IntN(1500))
		add(oc.share, eventlog.Share, 500+s.br.IntN(3000))
		add(oc.follow, eventlog.Follow, 300+s.br.IntN(2000))
		add(oc.comment, eventlog.Comment, 3000+s.br.IntN(15000))
		slices.SortFunc(eng[:n], func(a, b evRec) int { return cmp.Or(cmp.Compare(a.ts, b.ts), cmp.Compare(a.typ, b.typ)) })
		next := tOut
		for i := range n {
			eng[i].seq = seq
			seq++
			out = append(out, eng[i])
			next = eng[i].ts
		}
		s.shown = append(s.shown, reel)
		prevTopic = int(rr.topic[0])
		mult := 1.0
		switch {
		case oc.skip:
			mult = 1.6
		case oc.complete:
			mult = 0.7
		}
		t = next + 300 + s.br.IntN(1200)
		if s.br.Float64() < min(1, leave*mult) {
			break
		}
	}
	return out, t, nil
}
