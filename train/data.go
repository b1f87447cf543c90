package train

import (
	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/features"
)

// Head bits of a row's labels, in the ranker's task order.
const (
	headWatch = iota
	headLike
	headComment
	headShare
	headFollow
	numHeads
)

// headNames are the ranker's tasks in head-bit order.
var headNames = [numHeads]string{"watch", "like", "comment", "share", "follow"}

// dataset holds every impression of a replay as a training row, in
// impression (time) order: the store's features as of the impression,
// the reel's content embedding (by index into a table shared by the rows
// of one reel), the labels and what the evaluation needs of the context.
type dataset struct {
	spec    features.Spec
	width   int // len(User) + len(Reel) + len(Cross)
	n       int
	x       [][]float32 // chunks of chunkRows rows of [user | reel | cross]
	emb     []int32     // row → embedding table row
	embTab  []float32   // rows of EmbedDim values
	embOf   map[int64]int32
	user    []int64
	reel    []int64
	time    []int64
	pos     []int32
	prev    []int64 // the session's previous impression's reel, 0 for none
	labels  []uint8 // bit h set: head h positive
	prop    []float32
	explore []bool // served by the exploration arm

	lastInSession map[int64]int64
}

func newDataset(spec features.Spec) *dataset {
	return &dataset{
		spec:          spec,
		width:         len(spec.User) + len(spec.Reel) + len(spec.Cross),
		embOf:         map[int64]int32{},
		lastInSession: map[int64]int64{},
	}
}

// Rows are kept in chunks, so that a dataset of gigabytes grows without
// copying itself.
const (
	chunkShift = 15
	chunkRows  = 1 << chunkShift
)

// labelBits turns an impression's labels into head bits: watch-through
// when the fraction watched reaches theta without a skip; every other
// impression (skips, short watches, no outcome) is a negative.
func labelBits(l *features.Labels, theta float32) uint8 {
	var b uint8
	if l.Outcome && !l.Skip && l.Fraction >= theta {
		b |= 1 << headWatch
	}
	if l.Like {
		b |= 1 << headLike
	}
	if l.Comment {
		b |= 1 << headComment
	}
	if l.Share {
		b |= 1 << headShare
	}
	if l.Follow {
		b |= 1 << headFollow
	}
	return b
}

// add appends a replay batch's rows.
func (d *dataset) add(b *features.RowBatch, theta float32, exploreArm string) {
	nu, nr, nc, D := len(d.spec.User), len(d.spec.Reel), len(d.spec.Cross), d.spec.EmbedDim
	for i := range b.N {
		e := &b.Impressions[i]
		if d.n%chunkRows == 0 {
			d.x = append(d.x, make([]float32, 0, chunkRows*d.width))
		}
		c := &d.x[len(d.x)-1]
		*c = append(*c, b.User[i*nu:(i+1)*nu]...)
		*c = append(*c, b.Reel[i*nr:(i+1)*nr]...)
		*c = append(*c, b.Cross[i*nc:(i+1)*nc]...)
		k, ok := d.embOf[e.Reel]
		if !ok {
			k = int32(len(d.embTab) / max(D, 1))
			d.embOf[e.Reel] = k
			d.embTab = append(d.embTab, b.Emb[i*D:(i+1)*D]...)
		}
		d.emb = append(d.emb, k)
		d.user = append(d.user, e.User)
		d.reel = append(d.reel, e.Reel)
		d.time = append(d.time, e.Time)
		d.pos = append(d.pos, e.Position)
		d.prev = append(d.prev, d.lastInSession[e.Session])
		d.lastInSession[e.Session] = e.Reel
		d.labels = append(d.labels, labelBits(&b.Labels[i], theta))
		p := float32(1)
		if e.Has&eventlog.FProp != 0 && e.Propensity > 0 {
			p = float32(e.Propensity)
		}
		d.prop = append(d.prop, p)
		d.explore = append(d.explore, exploreArm != "" && e.Arm == exploreArm)
		d.n++
	}
}

// row returns row i's features.
func (d *dataset) row(i int) []float32 {
	j := i & (chunkRows - 1)
	return d.x[i>>chunkShift][j*d.width : (j+1)*d.width]
}

// embRow returns row i's content embedding.
func (d *dataset) embRow(i int) []float32 {
	D := d.spec.EmbedDim
	k := int(d.emb[i])
	return d.embTab[k*D : (k+1)*D]
}

// span is a half-open range of rows.
type span struct{ lo, hi int }

func (s span) len() int { return s.hi - s.lo }

// splitAt returns the first row at or after time t (rows are in time order).
func (d *dataset) splitAt(t int64) int {
	lo, hi := 0, d.n
	for lo < hi {
		m := (lo + hi) / 2
		if d.time[m] < t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// weights returns the rows' training weights: 1, or the clipped inverse
// propensity when ips is set, scaled to mean 1 over the span.
func (d *dataset) weights(s span, ips bool, clip float32) []float32 {
	w := make([]float32, d.n)
	var sum float64
	for i := s.lo; i < s.hi; i++ {
		v := float32(1)
		if ips {
			v = min(1/d.prop[i], clip)
		}
		w[i] = v
		sum += float64(v)
	}
	if sum > 0 {
		f := float32(float64(s.len()) / sum)
		for i := s.lo; i < s.hi; i++ {
			w[i] *= f
		}
	}
	return w
}
