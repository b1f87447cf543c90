package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	"github.com/reelrank/reelrank/drift"
	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/ranker"
	"github.com/reelrank/reelrank/sim"
)

// PrecisionChoice says which arithmetic the bundle's ranker serves in.
type PrecisionChoice uint8

const (
	// Auto serves bf16 when it costs less than MaxBF16AUCLoss of test AUC
	// on every head, f32 otherwise.
	Auto PrecisionChoice = iota
	// ForceF32 always serves f32.
	ForceF32
	// ForceBF16 always serves bf16.
	ForceBF16
)

// MaxBF16AUCLoss is the most test AUC a head may lose to bf16 inference
// for Auto to choose it.
const MaxBF16AUCLoss = 0.001

// Config configures a training run. The zero value trains the default
// models.
type Config struct {
	// Theta is the fraction of a reel that must be watched, without a
	// skip, for a watch-through (default: the store's WatchThrough, 0.8).
	Theta float32
	// LabelWindow is how long after an impression its outcomes count
	// (default 30 min).
	LabelWindow time.Duration
	// ValidDays and TestDays are the days of the log, counted back from
	// its last day, held out for early stopping and for the report
	// (default 1 and 2). Training uses every day before them. A negative
	// TestDays holds out no test day: training then uses every day but
	// the validation days, and the report measures the models on the
	// validation days (which early stopping has seen) and says so.
	ValidDays, TestDays int
	// IPS weighs training rows by their clipped inverse serving
	// propensity: w = min(1/p, IPSClip·median(1/p)), scaled to mean 1.
	IPS     bool
	IPSClip float64 // default 10
	// ExploreArm names the exploration arm whose impressions form the
	// report's exploration slice (default "explore").
	ExploreArm string
	Ranker     RankerConfig
	Towers     TowerConfig
	Precision  PrecisionChoice
	// RetrievalUsers is the number of test users retrieval is evaluated
	// on (default 500).
	RetrievalUsers int
	// Sources sizes the candidate sources retrieval is also measured with
	// (train/sources.go).
	Sources SourceConfig
	// Threads bounds the worker goroutines (default GOMAXPROCS).
	Threads int
	// Seed seeds every random choice; the same seed, data and thread
	// count give the same models.
	Seed uint64
	// Version names the bundle's model version (default derived from the
	// data's time range).
	Version string
	// Store configures the feature store (its EmbedDim must be the
	// world's; zero takes the world's).
	Store features.Config
	// Log receives progress lines; nil is silent.
	Log func(format string, args ...any)
}

func (c *Config) fill(embedDim int) {
	if c.Store.EmbedDim == 0 {
		c.Store.EmbedDim = embedDim
	}
	if c.Store.WatchThrough == 0 && c.Theta > 0 {
		c.Store.WatchThrough = c.Theta
	}
	if c.Theta == 0 {
		c.Theta = features.DefaultConfig().WatchThrough
		if c.Store.WatchThrough > 0 {
			c.Theta = c.Store.WatchThrough
		}
	}
	if c.LabelWindow <= 0 {
		c.LabelWindow = 30 * time.Minute
	}
	if c.ValidDays <= 0 {
		c.ValidDays = 1
	}
	switch {
	case c.TestDays == 0:
		c.TestDays = 2
	case c.TestDays < 0:
		c.TestDays = -1
	}
	if c.IPSClip <= 0 {
		c.IPSClip = 10
	}
	if c.ExploreArm == "" {
		c.ExploreArm = "explore"
	}
	if c.RetrievalUsers <= 0 {
		c.RetrievalUsers = 500
	}
	if c.Threads <= 0 {
		c.Threads = runtime.GOMAXPROCS(0)
	}
	if c.Log == nil {
		c.Log = func(string, ...any) {}
	}
	c.Ranker.fill()
	c.Towers.fill()
}

func (c *Config) check(days int) error {
	switch {
	case !(c.Theta > 0 && c.Theta <= 1):
		return fmt.Errorf("train: theta %v outside (0, 1]", c.Theta)
	case c.ValidDays+c.testDays() >= days:
		return fmt.Errorf("train: %d validation and %d test days leave no training day of %d", c.ValidDays, c.testDays(), days)
	case c.Threads > 1024:
		return fmt.Errorf("train: %d threads", c.Threads)
	case c.Precision > ForceBF16:
		return fmt.Errorf("train: unknown precision choice %d", c.Precision)
	}
	if err := c.Ranker.check(); err != nil {
		return err
	}
	return c.Towers.check()
}

// testDays is the number of test days, 0 for none (TestDays < 0).
func (c *Config) testDays() int { return max(c.TestDays, 0) }

// Result is a training run's output.
type Result struct {
	// Bundle holds the ranker, both towers and the report.
	Bundle *ranker.Bundle
	// Report is the evaluation on the test days.
	Report *Report
	// ReelIDs and ReelVectors are the reel tower's unit vectors of every
	// reel in the catalogue at the end of the log, rows of Dim values:
	// what the ANN index is built from.
	ReelIDs     []int64
	ReelVectors []float32
	// Store is the feature store after the whole log: serving goes on
	// from it.
	Store *features.Store
	// Reference is the drift reference of the served ranker: the
	// distribution of each of its inputs ("user/<name>", "reel/<name>",
	// "cross/<name>" for the features of Spec) and of each head's
	// predicted probability ("head/<task>") over a sample of the training
	// rows. The engine's drift monitor compares serving with it.
	Reference *drift.Reference
}

// Run trains the ranker and the two towers on the event log file at
// events, for the catalogue of the simulated world w (profiles, reels,
// authors, follows), and evaluates them on the held-out test days against
// the world's oracle and a popularity baseline. It is RunCatalogue with
// CatalogueOfWorld(w) and WorldOracle(w), over the one file, with the
// world's days.
func Run(ctx context.Context, w *sim.World, events string, cfg Config) (*Result, error) {
	return run(ctx, CatalogueOfWorld(w), []eventlog.Part{{Path: events}}, events, WorldOracle(w), cfg)
}

// RunCatalogue trains the ranker and the two towers on the event log
// events names (see EventParts: a file, a folder of served segments, or
// several, comma-separated) for the catalogue cat, and evaluates them on
// the held-out test days against a popularity baseline and, when oracle
// is not nil, against the oracle. The days are those of the log, from the
// first event's UTC day to the last's (or the oracle's, when it knows
// them).
func RunCatalogue(ctx context.Context, cat *Catalogue, events string, oracle Oracle, cfg Config) (*Result, error) {
	parts, err := EventParts(events)
	if err != nil {
		return nil, err
	}
	return run(ctx, cat, parts, events, oracle, cfg)
}

func run(ctx context.Context, cat *Catalogue, parts []eventlog.Part, events string, oracle Oracle, cfg Config) (*Result, error) {
	start := time.Now()
	if cat == nil {
		return nil, errors.New("train: no catalogue")
	}
	day := int64(24 * time.Hour / time.Millisecond)
	var begin int64
	var days int
	if sp, ok := oracle.(oracleSpan); ok {
		t, d := sp.Span()
		begin, days = t.UnixMilli(), d
	} else {
		first, last, err := logSpan(parts)
		if err != nil {
			return nil, err
		}
		begin = first - first%day
		days = int((last-begin)/day) + 1
	}
	cfg.fill(cat.EmbedDim)
	if err := cfg.check(days); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x7261696e))
	store, err := features.NewStore(cfg.Store)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := cat.Load(store); err != nil {
		return nil, err
	}
	end := begin + int64(days)*day
	testFrom := end - int64(cfg.testDays())*day
	validFrom := testFrom - int64(cfg.ValidDays)*day
	// The models are measured from evalFrom on: the test days, or the
	// validation days when there are none.
	evalFrom := testFrom
	if cfg.testDays() == 0 {
		evalFrom = validFrom
		cfg.Log("catalogue: %d users, %d reels; training days %s – %s, validation to %s, no test day (the report measures the validation days)",
			len(cat.Users), len(cat.Reels), day0(begin), day0(validFrom), day0(end))
	} else {
		cfg.Log("catalogue: %d users, %d reels; training days %s – %s, validation to %s, test to %s",
			len(cat.Users), len(cat.Reels), day0(begin), day0(validFrom), day0(testFrom), day0(end))
	}

	// Replay the log: rows in time order, and the catalogue's reel
	// features as of the first test instant for the retrieval evaluation.
	f := eventlog.OpenParts(parts)
	defer f.Close()
	rd := eventlog.NewReader(f, eventlog.Options{Tolerance: cfg.Store.Tolerance})
	ds := newDataset(store.Spec())
	rs := &retrievalSnap{cfg: &cfg}
	rt0 := &reelTable{}
	var snapErr error
	var last int64 // the newest event applied
	t0 := time.Now()
	st, err := store.Replay(rd, features.ReplayOptions{
		LabelWindow: cfg.LabelWindow, Embeddings: true,
		Emit: func(b *features.RowBatch) error {
			ds.add(b, cfg.Theta, cfg.ExploreArm)
			return nil
		},
		Progress: func(_ int64, newest int64) {
			last = newest
			if newest >= validFrom && rt0.time == 0 && snapErr == nil {
				snapErr = rt0.take(cat, store, newest)
			}
			if newest >= evalFrom && rs.time == 0 && snapErr == nil {
				snapErr = rs.take(cat, store, newest)
			}
		},
	})
	if err != nil && !features.IsApplyError(err) {
		return nil, fmt.Errorf("train: replay %s: %w", events, err)
	}
	if snapErr != nil {
		return nil, snapErr
	}
	rep := rd.Report()
	cfg.Log("replay: %d events, %d rows, %d refused, %d bad lines in %.1f s", st.Events, ds.n, st.Refused, rep.Bad, time.Since(t0).Seconds())
	if rs.time == 0 || rt0.time == 0 {
		return nil, fmt.Errorf("train: the log ends before its evaluation days begin (%s): %w", day0(evalFrom), ErrNoData)
	}
	tr, va, te := splitSpans(ds, validFrom, testFrom, cfg.testDays() > 0)
	if tr.len() < cfg.Ranker.Batch || va.len() == 0 || te.len() == 0 {
		return nil, fmt.Errorf("train: %d training, %d validation and %d test rows: %w", tr.len(), va.len(), te.len(), ErrNoData)
	}
	weights := ds.weights(tr, false, 0)
	if cfg.IPS {
		weights = ipsWeights(ds, tr, cfg.IPSClip)
	}

	// The ranker.
	t0 = time.Now()
	rt := newRankerTrainer(cfg.Ranker, ds, tr, weights, cfg.Threads, rng, cfg.Log)
	epochs, err := rt.fit(ctx, tr, va, rng)
	if err != nil {
		return nil, err
	}
	rankerSecs := time.Since(t0).Seconds()

	// The towers.
	t0 = time.Now()
	tt, err := newTowerTrainer(cfg.Towers, ds, tr, rt0, cfg.Threads, rng, cfg.Log)
	if err != nil {
		return nil, err
	}
	towerLoss, err := tt.train(ctx, rng)
	if err != nil {
		return nil, err
	}
	ut, rtw, err := tt.export()
	if err != nil {
		return nil, err
	}
	towerSecs := time.Since(t0).Seconds()

	// Evaluation and precision.
	t0 = time.Now()
	f32, err := rt.export(ranker.F32)
	if err != nil {
		return nil, err
	}
	bf16, err := rt.export(ranker.BF16)
	if err != nil {
		return nil, err
	}
	report, err := evaluate(ctx, &cfg, oracle, ds, te, f32, bf16)
	if err != nil {
		return nil, err
	}
	if err := evaluateRetrieval(ctx, &cfg, oracle, ds, tr, te, rs, ut, rtw, report, rng); err != nil {
		return nil, err
	}
	model := f32
	switch cfg.Precision {
	case Auto:
		if report.BF16MaxAUCLoss < MaxBF16AUCLoss {
			model = bf16
		}
	case ForceBF16:
		model = bf16
	}
	report.Precision = model.Precision.String()
	// The drift reference is of the newest rows (the validation and test
	// days): the population the model serves next, once counters and
	// catalogue have grown past the log's first days.
	ref, err := buildReference(ctx, &cfg, ds, span{va.lo, te.hi}, model)
	if err != nil {
		return nil, err
	}
	evalSecs := time.Since(t0).Seconds()

	// The catalogue's reel vectors as of the end of the log.
	ids, vecs, err := embedCatalogue(cat, store, rtw, max(end, last))
	if err != nil {
		return nil, err
	}

	report.fill(&cfg, cat, oracle != nil, ds, tr, va, te, st, epochs, towerLoss)
	report.Seconds = Seconds{Replay: 0, Ranker: rankerSecs, Towers: towerSecs, Eval: evalSecs}
	report.Seconds.Total = time.Since(start).Seconds()
	report.Seconds.Replay = report.Seconds.Total - rankerSecs - towerSecs - evalSecs
	version := cfg.Version
	if version == "" {
		version = fmt.Sprintf("%s.%d", time.UnixMilli(ds.time[va.lo]).UTC().Format("2006-01-02"), cfg.Seed)
	}
	report.Version = version
	md, js, err := report.render()
	if err != nil {
		return nil, err
	}
	b := &ranker.Bundle{Version: version, Spec: store.Spec(), Ranker: model, UserTower: ut, ReelTower: rtw,
		TrainFrom: time.UnixMilli(ds.time[0]).UTC(), TrainTo: time.UnixMilli(ds.time[va.lo-1]).UTC(),
		Created: time.Now().UTC(), Report: md, ReportJSON: js}
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("train: bundle: %w", err)
	}
	return &Result{Bundle: b, Report: report, ReelIDs: ids, ReelVectors: vecs, Store: store, Reference: ref}, nil
}

// splitSpans returns the training, validation and evaluation rows: the
// rows before validFrom, those from validFrom to testFrom, and those
// after. Without test days the validation rows run to the end of the log
// (a session that crosses the last midnight included) and are the
// evaluation rows as well.
func splitSpans(d *dataset, validFrom, testFrom int64, test bool) (tr, va, te span) {
	tr = span{0, d.splitAt(validFrom)}
	if !test {
		va = span{tr.hi, d.n}
		return tr, va, va
	}
	va = span{tr.hi, d.splitAt(testFrom)}
	return tr, va, span{va.hi, d.n}
}

func day0(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02") }

// ipsWeights are min(1/p, clip·median(1/p)) over the span, scaled to mean 1.
func ipsWeights(d *dataset, s span, clip float64) []float32 {
	inv := make([]float32, 0, s.len())
	for i := s.lo; i < s.hi; i++ {
		inv = append(inv, 1/d.prop[i])
	}
	slices.Sort(inv)
	limit := float32(float64(inv[len(inv)/2]) * clip)
	return d.weights(s, true, limit)
}

// fit trains the ranker with early stopping on the validation loss.
func (rt *rankerTrainer) fit(ctx context.Context, tr, va span, rng *rand.Rand) ([]rankerEpoch, error) {
	perm := make([]int, tr.len())
	for i := range perm {
		perm[i] = tr.lo + i
	}
	h := adamHyper{lr: rt.cfg.LR, b1: 0.9, b2: 0.999, eps: 1e-8}
	rt.log("ranker: %d training rows, %d validation rows; initial validation loss %.5f", tr.len(), va.len(), rt.validLoss(va))
	// The best epoch, never the untrained weights: where the validation
	// day's rates differ from the training days' (a policy that changed,
	// as in a learning loop), the first epochs can score worse on it than
	// the initial biases, and keeping those would serve an untrained
	// ranker.
	best := math.Inf(1)
	var bestW [][]float32
	var epochs []rankerEpoch
	since := 0
	for ep := range rt.cfg.Epochs {
		t0 := time.Now()
		rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		loss, err := rt.epoch(ctx, perm, &h)
		if err != nil {
			return nil, fmt.Errorf("train: ranker: %w", err)
		}
		vl := rt.validLoss(va)
		e := rankerEpoch{Epoch: ep + 1, TrainLoss: loss, ValidLoss: vl, Seconds: time.Since(t0).Seconds()}
		epochs = append(epochs, e)
		rt.log("ranker: epoch %d: training loss %.5f, validation loss %.5f (%.1f s)", e.Epoch, loss, vl, e.Seconds)
		if vl < best {
			best, bestW, since = vl, rt.snapshot(), 0
		} else if since++; since >= rt.cfg.Patience {
			break
		}
		h.lr *= rt.cfg.LRDecay
	}
	if bestW == nil {
		return nil, fmt.Errorf("train: ranker: no epoch gave a finite validation loss (%v)", epochs)
	}
	rt.restore(bestW)
	return epochs, nil
}

// errNoUsers is returned when no test user can be evaluated.
var errNoUsers = errors.New("train: no test user to evaluate retrieval on")
