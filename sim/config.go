package sim

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Config describes a world. The zero value is not valid: start from
// DefaultConfig and change what you need.
type Config struct {
	Users    int       `json:"users"`     // users, ids 1..Users; every user may author reels
	Reels    int       `json:"reels"`     // reels in the catalogue at Start (uploads during the days come on top)
	Days     int       `json:"days"`      // simulated days of sessions, from Start
	Seed     uint64    `json:"seed"`      // the one seed every random choice derives from
	Topics   int       `json:"topics"`    // latent topics (2..256)
	EmbedDim int       `json:"embed_dim"` // dimension of the content embeddings
	Start    time.Time `json:"start"`     // the first simulated day begins here (UTC midnight is natural)

	UploadRate       float64 `json:"upload_rate"`        // mean fraction of users who upload a reel on a day
	SessionsPerDay   float64 `json:"sessions_per_day"`   // mean sessions per user and day (scaled by activity and weekday)
	SessionLength    float64 `json:"session_length"`     // mean impressions per session before behaviour changes it
	MaxSessionLength int     `json:"max_session_length"` // a session ends after this many impressions
	FollowsPerUser   float64 `json:"follows_per_user"`   // mean initial follow edges per user
	DriftPeriod      int     `json:"drift_period"`       // days between two independent anchors of a user's drifting interest
	DriftScale       float64 `json:"drift_scale"`        // size of the drifting part of interest beside the stable core
	EmbedNoise       float64 `json:"embed_noise"`        // norm of the noise in a content embedding, against a topic signal of norm about 1
	CatalogueAge     float64 `json:"catalogue_age"`      // mean age in days of the reels that exist at Start

	Oracle OracleParams `json:"oracle"` // the behaviour model's coefficients
}

// OracleParams are the coefficients of the ground-truth behaviour model
// (see Probs). Each head is a logistic function of a shared score
//
//	z = Affinity·(user interest in the reel's topics on that day)
//	  + float32(ReelQuality·quality + AuthorQuality·author quality) + Followed·[follows author]
//	  - LanguageMismatch·[languages differ] - Repeat·[same topic as previous reel]
//	  - Fatigue·ln(1+position) + TimeOfDay·cos(2π(local hour - 21)/24)
//
// plus the head's own intercept and terms.
type OracleParams struct {
	Affinity         float64 `json:"affinity"`
	ReelQuality      float64 `json:"reel_quality"`
	AuthorQuality    float64 `json:"author_quality"`
	Followed         float64 `json:"followed"`
	LanguageMismatch float64 `json:"language_mismatch"`
	Repeat           float64 `json:"repeat"`
	Fatigue          float64 `json:"fatigue"`
	TimeOfDay        float64 `json:"time_of_day"`

	// Skip = σ(SkipBase - SkipSlope·z + SkipDuration·(dur-30)/30 + SkipPosition·ln(1+pos) + DeviceSkip[device]).
	SkipBase     float64    `json:"skip_base"`
	SkipSlope    float64    `json:"skip_slope"`
	SkipDuration float64    `json:"skip_duration"`
	SkipPosition float64    `json:"skip_position"`
	DeviceSkip   [4]float64 `json:"device_skip"`

	// Given no skip: P(watched to the end) = σ(CompleteBase + CompleteSlope·z - CompleteDuration·(dur-30)/30);
	// a partial watch's fraction is m + (1-m)·B with B ~ Beta(κ, 1), κ = exp(KappaBase + KappaSlope·z),
	// m = 2 s / duration; a completed watch loops on by an exponential fraction of mean LoopBase·(0.5+complete).
	CompleteBase     float64 `json:"complete_base"`
	CompleteSlope    float64 `json:"complete_slope"`
	CompleteDuration float64 `json:"complete_duration"`
	KappaBase        float64 `json:"kappa_base"`
	KappaSlope       float64 `json:"kappa_slope"`
	LoopBase         float64 `json:"loop_base"`

	// Engagement happens only after a watch. Its base probability σ(Base + Slope·z + ...) is
	// multiplied by CompleteBoost after a completed watch and by PartialFactor after a partial one.
	LikeBase            float64    `json:"like_base"`
	LikeSlope           float64    `json:"like_slope"`
	LikeQuality         float64    `json:"like_quality"`
	CommentBase         float64    `json:"comment_base"`
	CommentSlope        float64    `json:"comment_slope"`
	ShareBase           float64    `json:"share_base"`
	ShareSlope          float64    `json:"share_slope"`
	FollowBase          float64    `json:"follow_base"`
	FollowSlope         float64    `json:"follow_slope"`
	FollowAuthorQuality float64    `json:"follow_author_quality"`
	AgeEngage           [6]float64 `json:"age_engage"` // added to every engagement logit, per age bucket
	CompleteBoost       float64    `json:"complete_boost"`
	PartialFactor       float64    `json:"partial_factor"`
}

// DefaultOracle returns the default behaviour coefficients.
func DefaultOracle() OracleParams {
	return OracleParams{
		Affinity: 1.0, ReelQuality: 0.6, AuthorQuality: 0.4, Followed: 0.8,
		LanguageMismatch: 0.5, Repeat: 0.3, Fatigue: 0.22, TimeOfDay: 0.15,
		SkipBase: -1.0, SkipSlope: 1.1, SkipDuration: 0.35, SkipPosition: 0.12,
		DeviceSkip:   [4]float64{0, 0.05, 0.3, 0.15},
		CompleteBase: -0.3, CompleteSlope: 0.9, CompleteDuration: 0.7,
		KappaBase: 0.2, KappaSlope: 0.45, LoopBase: 0.3,
		LikeBase: -3.0, LikeSlope: 1.0, LikeQuality: 0.4,
		CommentBase: -5.0, CommentSlope: 0.9,
		ShareBase: -4.6, ShareSlope: 1.0,
		FollowBase: -5.6, FollowSlope: 0.8, FollowAuthorQuality: 0.6,
		AgeEngage:     [6]float64{0.3, 0.25, 0, -0.15, -0.3, -0.4},
		CompleteBoost: 1.6, PartialFactor: 0.6,
	}
}

// DefaultStart is the default first simulated day, a Monday.
var DefaultStart = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// DefaultConfig returns the default world: 100,000 users, 500,000 reels,
// 14 days, about 2.5 million impressions.
func DefaultConfig() Config {
	return Config{
		Users: 100_000, Reels: 500_000, Days: 14, Seed: 1,
		Topics: 32, EmbedDim: 64, Start: DefaultStart,
		UploadRate: 0.01, SessionsPerDay: 0.3, SessionLength: 8, MaxSessionLength: 200,
		FollowsPerUser: 12, DriftPeriod: 28, DriftScale: 0.8, EmbedNoise: 0.5, CatalogueAge: 60,
		Oracle: DefaultOracle(),
	}
}

// Presets names the worlds Preset knows, in the order it lists them.
var presetNames = []string{"default", "serve", "dense"}

// PresetNames returns the names Preset takes.
func PresetNames() []string { return slices.Clone(presetNames) }

// Preset returns a named world:
//
//   - "default": DefaultConfig, the benchmark world (100,000 users, 500,000
//     reels, 14 days), where a test reel has a median of a few prior
//     impressions;
//   - "serve": the world `reelrank serve` builds when given no bundle
//     (20,000 users, 50,000 reels, 10 days), small enough to simulate and
//     train in minutes;
//   - "dense": a world with evidence (4,000 users, 5,000 reels, 14 days,
//     8 topics, four sessions a user a day), where a test reel has a
//     median of well over 30 prior impressions and a test user of several
//     hundred, so that models can come near the oracle. The oracle's
//     score rests on each user's interest in each of a reel's topics:
//     a user's impressions are the evidence for it, spread over the
//     topics, so the preset trades users for sessions and has fewer,
//     broader topics (see train/ceiling_test.go: a model that knows the
//     reels exactly gets 85% of the oracle's lift over popularity only
//     once it knows the interests to about a quarter of their spread).
func Preset(name string) (Config, error) {
	c := DefaultConfig()
	switch name {
	case "default":
	case "serve":
		c.Users, c.Reels, c.Days = 20_000, 50_000, 10
	case "dense":
		c.Users, c.Reels, c.Days, c.Topics = 4_000, 5_000, 14, 8
		c.SessionsPerDay = 4
	default:
		return Config{}, fmt.Errorf("%w: unknown preset %q (want one of %v)", ErrConfig, name, presetNames)
	}
	return c, nil
}

// ErrConfig is wrapped by every error of Config.Validate.
var ErrConfig = errors.New("sim: invalid config")

// Limits of a world.
const (
	MaxUsers  = 1<<31 - 1
	MaxReels  = 1<<32 - 2 // initial catalogue plus uploads
	MaxDays   = 3650
	MaxTopics = 256
	MaxDim    = 4096
)

// Validate reports the first bad value of c, wrapping ErrConfig.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
	}
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	switch {
	case c.Users < 1 || c.Users > MaxUsers:
		return bad("users %d outside [1, %d]", c.Users, MaxUsers)
	case c.Reels < 1 || c.Reels > MaxReels:
		return bad("reels %d outside [1, %d]", c.Reels, MaxReels)
	case c.Days < 0 || c.Days > MaxDays:
		return bad("days %d outside [0, %d]", c.Days, MaxDays)
	case c.Topics < 2 || c.Topics > MaxTopics:
		return bad("topics %d outside [2, %d]", c.Topics, MaxTopics)
	case c.EmbedDim < 2 || c.EmbedDim > MaxDim:
		return bad("embed dim %d outside [2, %d]", c.EmbedDim, MaxDim)
	case c.Start.Before(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) || c.Start.After(time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)):
		return bad("start %v outside [2000, 2200)", c.Start)
	case !(c.UploadRate >= 0 && c.UploadRate <= 1):
		return bad("upload rate %v outside [0, 1]", c.UploadRate)
	case !(c.SessionsPerDay >= 0 && c.SessionsPerDay <= 50):
		return bad("sessions per day %v outside [0, 50]", c.SessionsPerDay)
	case c.MaxSessionLength < 1 || c.MaxSessionLength > 10000:
		return bad("max session length %d outside [1, 10000]", c.MaxSessionLength)
	case !(c.SessionLength >= 1 && c.SessionLength <= float64(c.MaxSessionLength)):
		return bad("session length %v outside [1, max session length %d]", c.SessionLength, c.MaxSessionLength)
	case !(c.FollowsPerUser >= 0 && c.FollowsPerUser <= 1000):
		return bad("follows per user %v outside [0, 1000]", c.FollowsPerUser)
	case c.DriftPeriod < 1 || c.DriftPeriod > MaxDays:
		return bad("drift period %d outside [1, %d]", c.DriftPeriod, MaxDays)
	case !(c.DriftScale >= 0 && c.DriftScale <= 10):
		return bad("drift scale %v outside [0, 10]", c.DriftScale)
	case !(c.EmbedNoise >= 0 && c.EmbedNoise <= 100):
		return bad("embed noise %v outside [0, 100]", c.EmbedNoise)
	case !(c.CatalogueAge > 0 && c.CatalogueAge <= 3650):
		return bad("catalogue age %v outside (0, 3650]", c.CatalogueAge)
	}
	if uint64(c.Reels)+uint64(math.Ceil(c.UploadRate*float64(c.Users)))*uint64(c.Days) > MaxReels {
		return bad("reels %d plus uploads over %d days exceed %d", c.Reels, c.Days, uint64(MaxReels))
	}
	o := c.Oracle
	vals := []float64{o.Affinity, o.ReelQuality, o.AuthorQuality, o.Followed, o.LanguageMismatch, o.Repeat, o.Fatigue, o.TimeOfDay,
		o.SkipBase, o.SkipSlope, o.SkipDuration, o.SkipPosition, o.CompleteBase, o.CompleteSlope, o.CompleteDuration,
		o.KappaBase, o.KappaSlope, o.LoopBase, o.LikeBase, o.LikeSlope, o.LikeQuality, o.CommentBase, o.CommentSlope,
		o.ShareBase, o.ShareSlope, o.FollowBase, o.FollowSlope, o.FollowAuthorQuality, o.CompleteBoost, o.PartialFactor}
	vals = append(vals, o.DeviceSkip[:]...)
	vals = append(vals, o.AgeEngage[:]...)
	for i, v := range vals {
		if !finite(v) || math.Abs(v) > 100 {
			return bad("oracle coefficient %d is %v, want a finite number within ±100", i, v)
		}
	}
	switch {
	case o.LoopBase < 0:
		return bad("oracle loop base %v is negative", o.LoopBase)
	case o.CompleteBoost < 0 || o.PartialFactor < 0:
		return bad("oracle complete boost %v and partial factor %v must not be negative", o.CompleteBoost, o.PartialFactor)
	case o.CompleteBoost > 10 || o.PartialFactor > 10:
		return bad("oracle complete boost %v or partial factor %v above 10", o.CompleteBoost, o.PartialFactor)
	}
	return nil
}
