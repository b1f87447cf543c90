package sim

import (
	"context"
	"math"
	"testing"
)

// memWorld builds a world in memory without writing it.
func memWorld(t testing.TB, c Config) *World {
	t.Helper()
	w := newWorld(c)
	ctx := context.Background()
	for _, f := range []func(context.Context, int) error{w.buildUsers, w.buildReels, w.buildFollows} {
		if err := f(ctx, 0); err != nil {
			t.Fatal(err)
		}
	}
	w.finish()
	return w
}

func within(t *testing.T, what string, got, p float64, n int) {
	t.Helper()
	se := math.Sqrt(p*(1-p)/float64(n)) + 1e-9
	if math.Abs(got-p) > 4.5*se {
		t.Errorf("%s: empirical %.5f, oracle %.5f (%.1f standard errors)", what, got, p, (got-p)/se)
	}
}

// TestSamplerMatchesOracle draws many outcomes of a few impressions and
// compares the frequencies with Probs, head by head and for WatchThrough.
func TestSamplerMatchesOracle(t *testing.T) {
	w := memWorld(t, testConfig())
	n := 200_000
	if testing.Short() {
		n = 40_000
	}
	r := NewRand(99)
	cases := []struct {
		user, reel int64
		c          Context
	}{
		{1, 1, Context{Time: w.startMS + 3_600_000}},
		{17, 250, Context{Time: w.startMS + 50_000_000, Position: 3, Prev: 4}},
		{400, 2, Context{Time: w.startMS + 2*msPerDay, Position: 12, Prev: 7}},
	}
	// and the pair the user likes best among the first reels, so that the
	// engagement heads are well away from zero
	best, bestZ := int64(1), -1.0
	for reel := int64(1); reel <= 500; reel++ {
		if p := w.Probs(5, reel, Context{Time: w.startMS}); p.Like > bestZ {
			best, bestZ = reel, p.Like
		}
	}
	cases = append(cases, struct {
		user, reel int64
		c          Context
	}{5, best, Context{Time: w.startMS}})
	thetas := []float64{0.1, 0.3, 0.5, 0.9, 1, 1.2, 2}
	for _, tc := range cases {
		p := w.Probs(tc.user, tc.reel, tc.c)
		var skip, like, comment, share, follow int
		through := make([]int, len(thetas))
		for range n {
			o := sample(&p, r)
			if o.skip {
				skip++
				if o.secs >= 2 || o.secs <= 0 {
					t.Fatalf("skip of %v s", o.secs)
				}
				continue
			}
			if o.secs < 2 {
				t.Fatalf("watch of %v s", o.secs)
			}
			for i, th := range thetas {
				if o.frac >= th {
					through[i]++
				}
			}
			like += b2i(o.like)
			comment += b2i(o.comment)
			share += b2i(o.share)
			follow += b2i(o.follow)
		}
		f := func(k int) float64 { return float64(k) / float64(n) }
		within(t, "skip", f(skip), p.Skip, n)
		within(t, "like", f(like), p.Like, n)
		within(t, "comment", f(comment), p.Comment, n)
		within(t, "share", f(share), p.Share, n)
		within(t, "follow", f(follow), p.Follow, n)
		for i, th := range thetas {
			within(t, "watch-through", f(through[i]), p.WatchThrough(th), n)
		}
		if got := p.WatchThrough(0); math.Abs(got-(1-p.Skip)) > 1e-12 {
			t.Errorf("WatchThrough(0) = %v, want 1-Skip = %v", got, 1-p.Skip)
		}
		if p.WatchThrough(loopCap+1) != 0 {
			t.Error("WatchThrough above the loop cap is not 0")
		}
		t.Logf("user %d reel %d: %+v", tc.user, tc.reel, p)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestOracleMatchesLog replays the shared world's log through the oracle of
// the opened world: the sums of the true probabilities over the logged
// impressions must match the counts of the outcomes.
func TestOracleMatchesLog(t *testing.T) {
	dir, _ := sharedWorld(t)
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	log := sharedLog(t)
	prev := map[int64]int64{}
	type acc struct{ want, varsum, got float64 }
	heads := map[string]*acc{"skip": {}, "like": {}, "comment": {}, "share": {}, "follow": {}, "through": {}}
	probs := map[[2]int64]Probs{}
	for _, l := range log {
		switch l.Type {
		case "impression":
			p := w.Probs(l.User, l.Reel, Context{Time: l.TS, Position: l.Pos, Prev: prev[l.Sess]})
			prev[l.Sess] = l.Reel
			probs[[2]int64{l.Sess, int64(l.Pos)}] = p
			for name, x := range map[string]float64{"skip": p.Skip, "like": p.Like, "comment": p.Comment,
				"share": p.Share, "follow": p.Follow, "through": p.WatchThrough(0.8)} {
				heads[name].want += x
				heads[name].varsum += x * (1 - x)
			}
		case "skip", "like", "comment", "share", "follow":
			heads[l.Type].got++
		case "watch":
			if l.Frac >= 0.8 {
				heads["through"].got++
			}
		}
	}
	for name, a := range heads {
		if z := (a.got - a.want) / math.Sqrt(a.varsum); math.Abs(z) > 4.5 {
			t.Errorf("%s: %v in the log, the oracle expects %.1f (%.1f standard errors)", name, a.got, a.want, z)
		}
	}
}

// TestPositionBiasAndFatigue: the same impression later in a session is
// skipped more and engaged with less.
func TestPositionBiasAndFatigue(t *testing.T) {
	w := memWorld(t, testConfig())
	var down int
	pairs := 0
	for u := int64(1); u <= 50; u++ {
		for reel := int64(1); reel <= 40; reel++ {
			pairs++
			ctx := Context{Time: w.startMS + 10*msPerHour}
			p0 := w.Probs(u, reel, ctx)
			ctx.Position = 10
			p10 := w.Probs(u, reel, ctx)
			ctx.Position = 80
			p80 := w.Probs(u, reel, ctx)
			if p0.Skip < p10.Skip && p10.Skip < p80.Skip &&
				p0.Like > p10.Like && p10.Like > p80.Like &&
				p0.WatchThrough(0.5) > p10.WatchThrough(0.5) && p0.Share > p80.Share {
				down++
			}
		}
	}
	if down != pairs {
		t.Errorf("probabilities fall with position for %d of %d pairs", down, pairs)
	}
	// Repeating the previous reel's topic costs watch time.
	p := w.Probs(3, 10, Context{Time: w.startMS})
	same := w.Probs(3, 10, Context{Time: w.startMS, Prev: 10})
	if !(same.Skip > p.Skip) {
		t.Errorf("repeating the topic: skip %v, without %v", same.Skip, p.Skip)
	}
}

// TestDrift: a user's interest on day 10 differs from day 0 but stays
// correlated with it, and the oracle follows it.
func TestDrift(t *testing.T) {
	c := testConfig()
	c.Days = 14
	c.Users = 500
	w := memWorld(t, c)
	var corr, n float64
	changed := 0
	for u := int64(1); u <= int64(c.Users); u++ {
		a := w.Interest(u, w.startMS, nil)
		b := w.Interest(u, w.startMS+10*msPerDay+5, nil)
		r := pearson(a, b)
		corr += r
		n++
		if r < 0.9999 {
			changed++
		}
		// Same day, same interest: the oracle is a function of the day.
		if x, y := w.Interest(u, w.startMS+10*msPerDay, nil), w.Interest(u, w.startMS+11*msPerDay-1, nil); pearson(x, y) != 1 && !equal32(x, y) {
			t.Fatalf("user %d: interest changes within a day", u)
		}
	}
	corr /= n
	if changed != c.Users {
		t.Errorf("%d of %d users' interest changed by day 10", changed, c.Users)
	}
	if corr < 0.6 || corr > 0.97 {
		t.Errorf("mean correlation of day 0 and day 10 interest: %.3f, want clearly positive and below 0.97", corr)
	}
	moved := 0
	for reel := int64(1); reel <= 100; reel++ {
		if w.Probs(1, reel, Context{Time: w.startMS}).Like != w.Probs(1, reel, Context{Time: w.startMS + 10*msPerDay}).Like {
			moved++
		}
	}
	if moved < 90 {
		t.Errorf("the oracle changed for only %d of 100 reels between day 0 and day 10", moved)
	}
	t.Logf("mean correlation day 0 vs day 10: %.3f", corr)
}

func equal32(a, b []float32) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

func pearson(a, b []float32) float64 {
	var ma, mb float64
	for i := range a {
		ma += float64(a[i])
		mb += float64(b[i])
	}
	ma /= float64(len(a))
	mb /= float64(len(b))
	var sab, saa, sbb float64
	for i := range a {
		x, y := float64(a[i])-ma, float64(b[i])-mb
		sab += x * y
		saa += x * x
		sbb += y * y
	}
	return sab / math.Sqrt(saa*sbb)
}

func TestScoreAll(t *testing.T) {
	w := memWorld(t, testConfig())
	at := w.startMS + 2*msPerDay
	for _, theta := range []float64{0.5, 1} {
		got := w.ScoreAll(9, at, theta, nil)
		if int64(len(got)) != w.Available(at) || len(got) <= w.initialReels {
			t.Fatalf("%d scores, %d reels available", len(got), w.Available(at))
		}
		for i, x := range got {
			want := float32(w.Probs(9, int64(i+1), Context{Time: at}).WatchThrough(theta))
			if x != want {
				t.Fatalf("reel %d: ScoreAll %v, Probs %v", i+1, x, want)
			}
		}
	}
	if z := w.ScoreAll(0, at, 0.5, nil); len(z) == 0 || z[0] != 0 {
		t.Error("unknown user: want zeros")
	}
	if p := w.Probs(0, 1, Context{}); p != (Probs{}) || p.WatchThrough(0.5) != 0 {
		t.Error("unknown user: want the zero Probs")
	}
	if p := w.Probs(1, int64(w.NumReels()+1), Context{}); p != (Probs{}) {
		t.Error("unknown reel: want the zero Probs")
	}
	allocs := testing.AllocsPerRun(100, func() { w.Probs(3, 4, Context{Time: at, Position: 2, Prev: 9}) })
	if allocs != 0 {
		t.Errorf("Probs allocates %v times", allocs)
	}
	dst := make([]float32, 0, w.NumReels())
	if allocs := testing.AllocsPerRun(5, func() { dst = w.ScoreAll(3, at, 0.5, dst) }); allocs != 0 {
		t.Errorf("ScoreAll with room allocates %v times", allocs)
	}
}
