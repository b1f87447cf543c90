package engine

import (
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/internal/wal"
	"github.com/reelrank/reelrank/ranker"
)

// Exploration says how an exploration slot picks its reel.
type Exploration uint8

const (
	// EpsilonGreedy picks uniformly among the uncertain candidates.
	EpsilonGreedy Exploration = iota
	// Thompson picks the uncertain candidate whose watch-through rate,
	// drawn from its Beta posterior, is highest.
	Thompson
)

// String returns "epsilon-greedy" or "thompson".
func (x Exploration) String() string {
	switch x {
	case EpsilonGreedy:
		return "epsilon-greedy"
	case Thompson:
		return "thompson"
	}
	return fmt.Sprintf("Exploration(%d)", uint8(x))
}

// Config tunes an Engine. The zero value of a field means its default.
type Config struct {
	// K is how many candidates the index recalls (default 600, at most
	// 4096). With the sources' defaults the two give the ranker about a
	// thousand candidates, before the fresh and exploration pools.
	K int
	// Sources are the quotas of the feature store's candidate sources,
	// added after the index's candidates (see features.Store.Sources). A
	// zero field means its default: Region 150, Language 100, Followed 100,
	// Popular 50 (the holdout's popularity ranking then sees the popular
	// reels whatever the index recalls); a negative one turns the source
	// off. Each at most 4096.
	Sources features.SourceQuotas
	// Nprobe is how many inverted lists a search scans (default an eighth
	// of the index's lists, at least 1; capped at the index's lists).
	Nprobe int

	// FreshWindow and FreshMax size the fresh pool: the FreshMax newest
	// reels uploaded within FreshWindow of the request join the candidates
	// whatever the index says, so that a reel uploaded a minute ago can be
	// shown (defaults 6 h and 200).
	FreshWindow time.Duration
	FreshMax    int

	// ExploreMax is how many reels of the exploration pool (reels with
	// fewer than ExploreImpressions decayed impressions over the store's
	// longest window) join the candidates of a request, drawn at random,
	// and also how many uncertain candidates, the best-scored first, an
	// exploration slot chooses among (default 100).
	ExploreMax int
	// ExploreImpressions is the evidence under which a reel counts as
	// uncertain (default 50 decayed impressions).
	ExploreImpressions float64
	// Epsilon is the probability that a slot is an exploration slot, when
	// uncertain candidates are left for it to pick from (default 0.05; a
	// negative value turns exploration off).
	Epsilon float64
	// Exploration says how an exploration slot picks its reel.
	Exploration Exploration
	// ThompsonRounds is how many Thompson draws a request makes; an
	// exploration slot takes the winner of one of them, chosen at random
	// (default 32). See the package doc.
	ThompsonRounds int

	// DiversityWindow: no author appears twice in any DiversityWindow
	// consecutive slots (default 5; 1 turns the rule off).
	DiversityWindow int

	// Weights overrides the final score's weight of the named heads; the
	// other heads keep the bundle's weights. A name the model has no head
	// for is an error.
	Weights map[string]float32

	// Dir, when set, is the folder of the engine's durable state: the
	// event log, the catalogue journal and the checkpoints (see Open).
	// Every write is logged and fsynced before it is acknowledged, and a
	// restart over the same folder applies every acknowledged write again.
	Dir string
	// MaxLead refuses events stamped more than MaxLead after the engine's
	// clock (default 5 min; negative: no bound).
	MaxLead time.Duration
	// CheckpointInterval is how often the engine checkpoints its folder
	// (default 10 min; negative: never on a timer), and CheckpointBytes the
	// size of the event log past which it checkpoints at once (default
	// 256 MiB; negative: never on size). See Engine.Checkpoint.
	CheckpointInterval time.Duration
	CheckpointBytes    int64
	// MaxKeys is how many idempotency keys the engine remembers, the
	// oldest forgotten first (default 1,000,000; negative: none, and keys
	// are ignored).
	MaxKeys int
	// Logger receives what goes wrong off the request path (a failed log,
	// a failed checkpoint), with the paths clients are not told. Nil means
	// slog.Default().
	Logger *slog.Logger

	// Canary is the policy that promotes or rolls back a canary (see
	// LoadCanary).
	Canary CanaryPolicy
	// ControlSettings are the post-rank settings of the control arm the
	// engine starts with (a restart passes those ArmsState recorded).
	ControlSettings ArmSettings
	// HoldoutShare is the share of users served by popularity alone,
	// bypassing the ranker (0: no holdout; SetShares changes it live).
	HoldoutShare float64
	// DriftSample: every DriftSample-th impression that comes back is
	// turned into a row for the control model's drift monitor (default
	// 4; negative: none). See Model.SetReference.
	DriftSample int
	// ArmSalt salts the hash of user ids that assigns users to arms:
	// the same salt keeps every user in the same arm across restarts.
	ArmSalt uint64
	// OnArmsChange, when set, is called after every change of the arms
	// (load, promote, rollback, shares, swap), with the state a restart
	// needs to serve the same arms; it runs under the arms' lock and must
	// not call back into the engine.
	OnArmsChange func(ArmsState)

	// Shard is the part of the catalogue the engine serves (the zero
	// Shard: all of it). A sharded engine's index, fresh and exploration
	// pools and candidate sources hold the reels it owns alone; an Upsert,
	// Delete or Score of another shard's reel is refused (ErrWrongShard).
	// Events are applied whatever reel they name, so that every shard,
	// receiving every event that names a user, ranks with the same user
	// features. See the package doc.
	Shard Shard
	// Reshard lets Open serve a folder last served as another shard (see
	// Open); without it that is an error.
	Reshard bool

	// Device is where the ranker scores: ranker.CPU (the default, each
	// request on its own goroutine) or ranker.CUDA, where a ranker.Batcher
	// gathers concurrent requests' candidates into one GPU pass per batch
	// (Batch tunes it), falling back to the CPU when the GPU fails. Resolve
	// ranker.Auto with ranker.ResolveDevice first. A model the GPU cannot
	// run (an MMoE) is scored on the CPU.
	Device ranker.Device
	Batch  ranker.BatcherConfig

	// fs, when set, is the file system of the logs (tests inject faults).
	fs wal.FS

	// Seed seeds the exploration draws: the same seed and the same
	// sequence of requests give the same answers.
	Seed uint64

	// Clock is the engine's time: the time of requests that carry none and
	// the present of the fresh pool and of Upsert. Nil means time.Now.
	Clock func() time.Time

	// ArchiveDir, when set, is a folder into which Checkpoint moves
	// (renames) the log segments it drops, events-*.jsonl and
	// catalogue-*.jsonl under their own names, instead of removing them:
	// training then reads the whole served log. It must be on the file
	// system of Dir; a relative path is taken relative to Dir. Empty:
	// dropped segments are removed.
	ArchiveDir string
}

const (
	maxK     = 4096
	maxBatch = 1 << 16 // reels of a Score call
)

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.K, 600)
	def(&c.Sources.Region, 150)
	def(&c.Sources.Language, 100)
	def(&c.Sources.Followed, 100)
	def(&c.Sources.Popular, 50)
	def(&c.FreshMax, 200)
	def(&c.ExploreMax, 100)
	def(&c.ThompsonRounds, 32)
	def(&c.DiversityWindow, 5)
	if c.FreshWindow == 0 {
		c.FreshWindow = 6 * time.Hour
	}
	if c.ExploreImpressions == 0 {
		c.ExploreImpressions = 50
	}
	switch {
	case c.Epsilon == 0:
		c.Epsilon = 0.05
	case c.Epsilon < 0:
		c.Epsilon = 0
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.MaxLead == 0 {
		c.MaxLead = 5 * time.Minute
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = 10 * time.Minute
	}
	if c.CheckpointBytes == 0 {
		c.CheckpointBytes = 256 << 20
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = 1_000_000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Canary = c.Canary.withDefaults()
	if c.DriftSample == 0 {
		c.DriftSample = 4
	}
	return c
}

func (c *Config) validate() error {
	switch {
	case c.K < 1 || c.K > maxK:
		return fmt.Errorf("engine: K = %d outside 1..%d", c.K, maxK)
	case c.Sources.Region > maxK || c.Sources.Language > maxK || c.Sources.Followed > maxK || c.Sources.Popular > maxK:
		return fmt.Errorf("engine: a source's quota in %+v is over %d", c.Sources, maxK)
	case c.Nprobe < 0:
		return fmt.Errorf("engine: negative Nprobe %d", c.Nprobe)
	case c.FreshWindow < 0 || c.FreshMax < 0:
		return fmt.Errorf("engine: negative FreshWindow %v or FreshMax %d", c.FreshWindow, c.FreshMax)
	case c.ExploreMax < 0:
		return fmt.Errorf("engine: negative ExploreMax %d", c.ExploreMax)
	case !(c.ExploreImpressions > 0) || math.IsInf(c.ExploreImpressions, 0):
		return fmt.Errorf("engine: ExploreImpressions %v must be positive", c.ExploreImpressions)
	case !(c.Epsilon >= 0 && c.Epsilon <= 1):
		return fmt.Errorf("engine: Epsilon %v outside [0, 1]", c.Epsilon)
	case c.Exploration > Thompson:
		return fmt.Errorf("engine: unknown exploration %v", c.Exploration)
	case c.ThompsonRounds < 1 || c.ThompsonRounds > 1<<16:
		return fmt.Errorf("engine: ThompsonRounds %d outside 1..%d", c.ThompsonRounds, 1<<16)
	case c.DiversityWindow < 1 || c.DiversityWindow > 64:
		return fmt.Errorf("engine: DiversityWindow %d outside 1..64", c.DiversityWindow)
	}
	switch c.Device {
	case "", ranker.CPU, ranker.CUDA:
	default:
		return fmt.Errorf("engine: device %q: want cpu or cuda (resolve auto with ranker.ResolveDevice)", c.Device)
	}
	if err := c.Shard.validate(); err != nil {
		return err
	}
	c.Shard = c.Shard.norm()
	if err := c.Canary.validate(); err != nil {
		return err
	}
	if !(c.HoldoutShare >= 0 && c.HoldoutShare < 1) {
		return fmt.Errorf("engine: HoldoutShare %v outside [0, 1)", c.HoldoutShare)
	}
	for name, w := range c.Weights {
		if math.IsNaN(float64(w)) || math.IsInf(float64(w), 0) {
			return fmt.Errorf("engine: weight of head %q is %v", name, w)
		}
	}
	return nil
}
