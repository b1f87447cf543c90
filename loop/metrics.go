package loop

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sync"

	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/internal/hashx"
	"github.com/reelrank/reelrank/sim"
)

// freshAge is how young a reel counts as fresh in the report's fresh-reel
// share: uploaded within a day of its impression.
const freshAge = msPerDay

// imp is one impression, as the report needs it.
type imp struct {
	day  uint16
	user uint32
	reel uint32
	t    int64
}

// userDay is what a user did on a day.
type userDay struct {
	impressions, watchThroughs, fresh int32
	seconds                           float64
	topics                            [4]uint64 // the topics of the reels shown, a bit each
}

// collector gathers the served events. The users' arms are known from
// the first model on; the days before are attributed at the end.
type collector struct {
	w       *sim.World
	cfg     Config
	theta   float32
	topic   []uint8 // per reel, from 1: its main topic
	upload  []int64 // per reel, from 1
	author  []int64 // per reel, from 1
	days    []map[uint32]*userDay
	imps    []imp
	samples []imp // impressions whose regret the oracle computes
	groupOf []uint8
	summ    []string
}

func newCollector(w *sim.World, cfg Config) *collector {
	c := &collector{w: w, cfg: cfg, theta: 0.8}
	if t := cfg.Train.Theta; t > 0 {
		c.theta = t
	}
	n := w.NumReels()
	c.topic, c.upload, c.author = make([]uint8, n+1), make([]int64, n+1), make([]int64, n+1)
	for _, r := range w.Reels() {
		c.topic[r.ID] = uint8(r.Topics[0])
		c.upload[r.ID], c.author[r.ID] = r.Upload, r.Author
	}
	c.days = make([]map[uint32]*userDay, cfg.World.Days+1)
	for i := range c.days {
		c.days[i] = map[uint32]*userDay{}
	}
	return c
}

func (c *collector) dayOf(t int64) int {
	return int(min(max((t-c.w.Start())/msPerDay, 0), int64(len(c.days)-1)))
}

func (c *collector) user(day int, u int64) *userDay {
	m := c.days[day]
	ud := m[uint32(u)]
	if ud == nil {
		ud = &userDay{}
		m[uint32(u)] = ud
	}
	return ud
}

// sampleRate keeps one impression in sampleEvery for the regret: a hash
// of the session and position, so that the sample is the same whatever
// the threads.
const sampleEvery = 4

func (c *collector) observe(evs []eventlog.Event) {
	for i := range evs {
		ev := &evs[i]
		if ev.User < 1 || ev.Reel < 1 || ev.Reel >= int64(len(c.topic)) {
			continue
		}
		day := c.dayOf(ev.Time)
		switch ev.Type {
		case eventlog.Impression:
			ud := c.user(day, ev.User)
			ud.impressions++
			tp := c.topic[ev.Reel]
			ud.topics[tp/64] |= 1 << (tp % 64)
			if ev.Time-c.upload[ev.Reel] < freshAge {
				ud.fresh++
			}
			im := imp{day: uint16(day), user: uint32(ev.User), reel: uint32(ev.Reel), t: ev.Time}
			c.imps = append(c.imps, im)
			if hashx.Mix64(uint64(ev.Session)*1_000_003+uint64(ev.Position))%sampleEvery == 0 {
				c.samples = append(c.samples, im)
			}
		case eventlog.Watch, eventlog.Skip:
			ud := c.user(day, ev.User)
			if !math.IsNaN(float64(ev.Seconds)) && ev.Seconds > 0 {
				ud.seconds += float64(ev.Seconds)
			}
			if ev.Type == eventlog.Watch && ev.Fraction >= c.theta {
				ud.watchThroughs++
			}
		}
	}
}

// endDay notes the day's totals for the progress line.
func (c *collector) endDay(day int) {
	var n, wt int64
	var secs float64
	for _, ud := range c.days[day] {
		n += int64(ud.impressions)
		wt += int64(ud.watchThroughs)
		secs += ud.seconds
	}
	c.summ = append(c.summ, fmt.Sprintf("%d impressions, %d users, watch-through %.4f, %.0f s watched per user",
		n, len(c.days[day]), float64(wt)/float64(max(n, 1)), secs/float64(max(c.w.NumUsers(), 1))))
}

func (c *collector) summary(day int) string {
	if day < len(c.summ) {
		return c.summ[day]
	}
	return ""
}

// DayArm is one arm's figures on one day.
type DayArm struct {
	Day int    `json:"day"` // from 1
	Arm string `json:"arm"`
	// Users is the arm's population, Active those with an impression.
	Users       int   `json:"users"`
	Active      int   `json:"active_users"`
	Impressions int64 `json:"impressions"`
	// WatchTimePerUser is the seconds watched per user of the arm.
	WatchTimePerUser float64 `json:"watch_time_per_user_s"`
	// WatchThroughRate is watch-throughs per impression.
	WatchThroughRate float64 `json:"watch_through_rate"`
	// Reels and Authors are the distinct reels and authors served that
	// day; CumulativeReels since the first day.
	Reels           int `json:"distinct_reels"`
	Authors         int `json:"distinct_authors"`
	CumulativeReels int `json:"cumulative_reels"`
	// FreshShare is the share of impressions of reels uploaded within the
	// day before.
	FreshShare float64 `json:"fresh_share"`
	// TopicsPerUser is the distinct topics an active user was shown.
	TopicsPerUser float64 `json:"topics_per_user"`
	// Regret is the oracle's mean regret per impression: the best
	// available reel's true watch-through probability less the served
	// reel's, for the user at the impression's time; CumulativeRegret sums
	// the daily means from the first day.
	Regret           float64 `json:"regret"`
	CumulativeRegret float64 `json:"cumulative_regret"`
	RegretSamples    int     `json:"regret_samples"`
}

// figures aggregates the collected events per day and arm.
func (c *collector) figures(ctx context.Context, threads int) ([]DayArm, error) {
	arms := c.cfg.Arms
	days := c.cfg.World.Days
	pop := make([]int, len(arms))
	for u := 1; u < len(c.groupOf); u++ {
		pop[c.groupOf[u]]++
	}
	out := make([]DayArm, 0, days*len(arms))
	idx := func(d, g int) int { return d*len(arms) + g }
	for d := range days {
		for g, a := range arms {
			out = append(out, DayArm{Day: d + 1, Arm: a, Users: pop[g]})
		}
	}
	group := func(u uint32) int {
		if int(u) < len(c.groupOf) {
			return int(c.groupOf[u])
		}
		return 0
	}
	topics := make([]float64, len(out))
	for d := range days {
		for u, ud := range c.days[d] {
			f := &out[idx(d, group(u))]
			f.Active++
			f.Impressions += int64(ud.impressions)
			f.WatchTimePerUser += ud.seconds
			f.WatchThroughRate += float64(ud.watchThroughs)
			f.FreshShare += float64(ud.fresh)
			n := 0
			for _, b := range ud.topics {
				n += bits.OnesCount64(b)
			}
			topics[idx(d, group(u))] += float64(n)
		}
	}
	// Distinct reels and authors, per day and in all.
	reels := make([]map[uint32]bool, len(out))
	authors := make([]map[int64]bool, len(out))
	all := make([]map[uint32]bool, len(arms))
	for i := range out {
		reels[i], authors[i] = map[uint32]bool{}, map[int64]bool{}
	}
	for g := range arms {
		all[g] = map[uint32]bool{}
	}
	for _, im := range c.imps {
		if int(im.day) >= days {
			continue
		}
		i := idx(int(im.day), group(im.user))
		reels[i][im.reel] = true
		authors[i][c.author[im.reel]] = true
	}
	for d := range days {
		for g := range arms {
			i := idx(d, g)
			for r := range reels[i] {
				all[g][r] = true
			}
			f := &out[i]
			f.Reels, f.Authors, f.CumulativeReels = len(reels[i]), len(authors[i]), len(all[g])
			f.WatchTimePerUser /= float64(max(f.Users, 1))
			f.WatchThroughRate /= float64(max(f.Impressions, 1))
			f.FreshShare /= float64(max(f.Impressions, 1))
			f.TopicsPerUser = topics[i] / float64(max(f.Active, 1))
		}
	}
	if err := c.regret(ctx, threads, out, idx, group); err != nil {
		return nil, err
	}
	return out, nil
}

// regret computes the oracle's regret of up to RegretSample sampled
// impressions per day and arm.
func (c *collector) regret(ctx context.Context, threads int, out []DayArm, idx func(d, g int) int, group func(uint32) int) error {
	days := c.cfg.World.Days
	per := make([][]imp, len(out))
	for _, im := range c.samples {
		if int(im.day) >= days {
			continue
		}
		i := idx(int(im.day), group(im.user))
		if len(per[i]) < c.cfg.RegretSample {
			per[i] = append(per[i], im)
		}
	}
	var jobs []int
	for i := range per {
		if len(per[i]) > 0 {
			jobs = append(jobs, i)
		}
	}
	sums := make([]float64, len(out))
	var wg sync.WaitGroup
	next := make(chan int)
	threads = max(threads, 1)
	for range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []float32
			for i := range next {
				var s float64
				for _, im := range per[i] {
					buf = c.w.ScoreAll(int64(im.user), im.t, float64(c.theta), buf[:0])
					if int(im.reel) > len(buf) {
						continue
					}
					s += float64(slices.Max(buf) - buf[im.reel-1])
				}
				sums[i] = s
			}
		}()
	}
	for _, i := range jobs {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	cum := make([]float64, len(c.cfg.Arms))
	for d := range days {
		for g := range c.cfg.Arms {
			i := idx(d, g)
			f := &out[i]
			f.RegretSamples = len(per[i])
			if f.RegretSamples > 0 {
				f.Regret = sums[i] / float64(f.RegretSamples)
			}
			cum[g] += f.Regret
			f.CumulativeRegret = cum[g]
		}
	}
	return nil
}
