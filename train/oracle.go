package train

import (
	"time"

	"github.com/reelrank/reelrank/sim"
)

// Oracle knows the true behaviour behind a log, as a simulator does. With
// one, the report sets the models beside the truth: each head's oracle
// AUC and calibration, and retrieval's recall of the oracle's best reels.
// Its methods are called from several goroutines at once.
type Oracle interface {
	// Heads writes the true probability of each head, in the ranker's task
	// order (watch-through at theta, like, comment, share, follow), of
	// user's outcome for reel shown at time t (ms), at position pos of a
	// session whose previous impression was reel prev (0: none).
	Heads(out []float32, user, reel, t int64, pos int, prev int64, theta float32)
	// Best appends to dst the k reels of the highest true watch-through
	// probability at theta for user at time t, among those uploaded by
	// then.
	Best(dst []int64, user, t int64, theta float32, k int) []int64
}

// oracleSpan is an oracle that knows the days its log covers.
type oracleSpan interface {
	Span() (start time.Time, days int)
}

// WorldOracle is the oracle of a simulated world.
func WorldOracle(w *sim.World) Oracle {
	o := &worldOracle{w: w}
	for _, r := range w.Reels() {
		o.ids = append(o.ids, r.ID)
	}
	return o
}

type worldOracle struct {
	w   *sim.World
	ids []int64 // in upload order, as ScoreAll numbers them
}

func (o *worldOracle) Heads(out []float32, user, reel, t int64, pos int, prev int64, theta float32) {
	p := o.w.Probs(user, reel, sim.Context{Time: t, Position: pos, Prev: prev})
	out[headWatch] = float32(p.WatchThrough(float64(theta)))
	out[headLike], out[headComment], out[headShare], out[headFollow] = float32(p.Like), float32(p.Comment), float32(p.Share), float32(p.Follow)
}

func (o *worldOracle) Best(dst []int64, user, t int64, theta float32, k int) []int64 {
	scores := o.w.ScoreAll(user, t, float64(theta), nil)
	n := min(len(scores), len(o.ids))
	return append(dst, TopK(scores[:n], o.ids[:n], k)...)
}

func (o *worldOracle) Span() (time.Time, int) {
	c := o.w.Config()
	return c.Start, c.Days
}
