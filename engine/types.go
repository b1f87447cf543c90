package engine

import (
	"errors"
	"strconv"
	"time"
)

// Errors the server maps to its typed error responses. Every error the
// engine returns for a request wraps one of these, or the context's error
// (context.DeadlineExceeded, context.Canceled) when the request's deadline
// passed or it was cancelled.
var (
	// ErrBadRequest: the request breaks a rule (a negative id, n out of
	// range, a vector of the wrong dimension or with NaN, an invalid
	// event); retrying it unchanged fails again.
	ErrBadRequest = errors.New("engine: bad request")
	// ErrNotFound: a reel the request names does not exist (or was
	// deleted).
	ErrNotFound = errors.New("engine: not found")
	// ErrUnavailable: the engine cannot serve now: it has no model, or the
	// event log cannot be written.
	ErrUnavailable = errors.New("engine: unavailable")
)

// Source says where a recommended reel came from. The values are those of
// wire.Source.
type Source uint8

// The sources.
const (
	// SourceANN: retrieved from the embedding index and placed by score.
	SourceANN Source = iota
	// SourceFresh: from the pool of recent uploads (or of reels the index
	// could not take yet) and placed by score.
	SourceFresh
	// SourceExplore: placed by an exploration draw (whatever pool it came
	// from), or an exploration-pool reel placed by score.
	SourceExplore
	// SourceRegion, SourceLanguage, SourceFollowed and SourcePopular: from
	// the feature store's candidate sources (features.Store.Sources) and
	// placed by score: popular among users of the viewer's country,
	// popular among reels in the viewer's language, a recent reel of an
	// author the viewer follows, popular overall.
	SourceRegion
	SourceLanguage
	SourceFollowed
	SourcePopular
)

// String returns "ann", "fresh", "explore", "region", "language",
// "followed", "popular" or "source(n)".
func (s Source) String() string {
	switch s {
	case SourceANN:
		return "ann"
	case SourceFresh:
		return "fresh"
	case SourceExplore:
		return "explore"
	case SourceRegion:
		return "region"
	case SourceLanguage:
		return "language"
	case SourceFollowed:
		return "followed"
	case SourcePopular:
		return "popular"
	}
	return "source(" + strconv.Itoa(int(s)) + ")"
}

// Context is the situation a request is made in (wire.Context).
type Context struct {
	// Time is the request's time in ms since the Unix epoch; 0 means the
	// engine's clock. Features are computed as of it.
	Time int64
	// Session is the viewer's session id.
	Session int64
	// Position is the slot being filled in the session, from 0.
	Position int32
	// Profile codes, numbered from 1 in the feature store's order; 0 is
	// unknown. They describe a user the store does not know (cold start)
	// and are ignored for known users.
	Country, Language uint16
	AgeBucket, Device uint8
	// Recent lists the reels shown before in this session, most recent
	// last. They are never recommended again in the session, and the
	// authors of the last of them count for author diversity.
	Recent []int64
}

// RecommendRequest asks for the N best reels for a user
// (wire.RecommendRequest).
type RecommendRequest struct {
	User    int64
	Context Context
	N       int     // 1..MaxN
	Exclude []int64 // reels never to return (seen, blocked)
}

// MaxN bounds RecommendRequest.N.
const MaxN = 1000

// Item is one recommended reel (wire.Item).
type Item struct {
	Reel int64
	// Score is the weighted sum of the heads' probabilities; the greedy
	// slots are in descending order of it.
	Score float32
	// Probs holds one probability per head of the response (Heads).
	Probs []float32
	// Propensity is the probability that the policy put this reel in this
	// slot, given the slots above it; see the package doc.
	Propensity float64
	Source     Source
}

// Timings says where a Recommend spent its time and how many candidates
// each stage saw (wire.Timings).
type Timings struct {
	// Features covers both feature look-ups: the user's before the tower
	// and the candidates' before the ranker.
	Features time.Duration
	// Tower is the user tower's forward pass.
	Tower time.Duration
	// ANN is the index search, the fresh and exploration pools, the
	// filters and the deduplication.
	ANN time.Duration
	// Rank is the multitask ranker over every candidate. On a GPU it
	// holds RankWait and RankDevice: the time queued for a batch, and the
	// batch's pass on the GPU (shared with the batch's other requests;
	// zero when the CPU scored it).
	Rank                 time.Duration
	RankWait, RankDevice time.Duration
	// Postrank is the weighted score, the ordering, author diversity and
	// the exploration slots.
	Postrank time.Duration
	Total    time.Duration
	// ANNCandidates came back from the index (after the filters);
	// FreshCandidates and ExploreCandidates are the pools' reels added
	// beside them, duplicates removed; Ranked is how many the ranker
	// scored: the rest of them came from the feature store's candidate
	// sources (Config.Sources; Item.Source names each).
	ANNCandidates, FreshCandidates, ExploreCandidates, Ranked uint32
}

// Response answers a RecommendRequest (wire.RecommendResponse).
type Response struct {
	Items []Item
	// Heads names the ranker's heads in the order of Item.Probs. It is
	// the model's own slice: do not modify it.
	Heads []string
	// ModelVersion and Arm name the model that served every item of the
	// response: a response is served by one model from start to end, even
	// when Swap runs meanwhile.
	ModelVersion string
	Arm          string
	Timings      Timings

	probs []float32 // the slab of the items' Probs, reused by RecommendInto
	// reels and authors of the items, for the arm's metrics.
	reels, authors []int64
}

// ScoreResponse answers Score (wire.ScoreResponse), in the order of the
// reels asked for.
type ScoreResponse struct {
	Heads        []string  // the model's own slice: do not modify it
	Scores       []float32 // one final score per reel
	Probs        []float32 // len(Scores) rows of len(Heads) probabilities
	ModelVersion string
	Arm          string
}

// SearchResponse answers Search, best first (wire.SearchResponse).
type SearchResponse struct {
	IDs []int64
	// Scores are inner products, or negated squared distances for an L2
	// index: higher is nearer.
	Scores []float32
}

// Reel is a reel's catalogue entry for Upsert (wire.Reel).
type Reel struct {
	ID     int64
	Author int64
	// Upload is the upload time in ms since the Unix epoch; 0 means now.
	Upload int64
	// Duration is the reel's length in seconds.
	Duration float32
	// Category is the reel's category, or -1 to derive it from the
	// embedding.
	Category int32
	// Embedding is the content embedding (the store's EmbedDim values), or
	// empty.
	Embedding []float32
	// Description is accepted for the wire's sake; the features do not
	// read it.
	Description string
	// Language is the reel's language as a profile code, numbered from 1
	// as Context's; 0 is unknown.
	Language uint16
}

// EventResult answers Event (wire.EventResponse).
type EventResult struct {
	Accepted, Rejected uint32
	// Reason says why the first rejected event was, with its index in the
	// batch; empty when none was.
	Reason string
	// Replayed says the answer is that of an earlier batch with the same
	// idempotency key, which was applied then and not again now.
	Replayed bool
}

// WriteResult answers Upsert and Delete.
type WriteResult struct {
	// Replaced (Upsert) reports whether the store knew the reel.
	Replaced bool
	// Replayed says the answer is that of an earlier write with the same
	// idempotency key, which was applied then and not again now.
	Replayed bool
}

// MaxKey is the longest idempotency key, in bytes (wire.MaxKey).
const MaxKey = 128

// Health answers whether the engine can serve (wire.HealthResponse).
type Health struct {
	OK     bool
	Status string
}
