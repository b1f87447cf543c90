package wire

import (
	"math"
	"strconv"
	"time"
)

// Source says where a recommended reel came from.
type Source uint8

// The sources.
const (
	SourceANN      Source = iota // retrieved from the embedding index
	SourceFresh                  // the pool of freshly uploaded reels
	SourceExplore                // an exploration slot
	SourceRegion                 // popular among users of the viewer's country
	SourceLanguage               // popular among reels in the viewer's language
	SourceFollowed               // a recent reel of an author the viewer follows
	SourcePopular                // popular overall
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

// EventType is an event's type, numbered as eventlog.Type.
type EventType uint8

// The event types, equal to eventlog's.
const (
	EventInvalid EventType = iota
	EventImpression
	EventWatch
	EventSkip
	EventLike
	EventComment
	EventShare
	EventFollow
	EventUpload
)

// Context is the situation a request is made in.
type Context struct {
	Time     int64 // milliseconds since the Unix epoch
	Session  int64 // the viewer's session id
	Position int32 // the slot being filled in the session, from 0
	// Profile codes, numbered from 1 in the feature store's order; 0 is
	// unknown. The engine uses them for users it does not know.
	Country, Language uint16
	AgeBucket, Device uint8
	// Recent lists the reels shown before in this session, most recent last.
	Recent []int64
}

// RecommendRequest asks for the N best reels for a user.
type RecommendRequest struct {
	User    int64
	Context Context
	N       int     // 1..MaxN
	Exclude []int64 // reels never to return (seen, blocked)
}

// Item is one recommended reel.
type Item struct {
	Reel       int64
	Score      float32   // the final score the list is ordered by
	Probs      []float32 // one probability per head of the response
	Propensity float64   // the probability that the policy put this reel here, in (0, 1]
	Source     Source
}

// Timings says where a Recommend spent its time, and how many candidates
// each stage saw. Durations travel in whole microseconds.
type Timings struct {
	Features, Tower, ANN, Rank, Postrank, Total               time.Duration
	ANNCandidates, FreshCandidates, ExploreCandidates, Ranked uint32
}

// RecommendResponse answers a RecommendRequest.
type RecommendResponse struct {
	Items        []Item
	Heads        []string // the ranker's heads, in the order of Item.Probs
	ModelVersion string
	Arm          string // the A/B arm that served the request
	Timings      Timings
	// MissingShards lists, ascending, the shards whose answers a merge of
	// several shards' answers (client.Sharded) went without: a partial
	// answer. A server leaves it empty.
	MissingShards []int
}

// ScoreRequest asks for the ranker's probabilities of given reels, for
// services that retrieve candidates on their own.
type ScoreRequest struct {
	User    int64
	Context Context
	Reels   []int64 // at most MaxCandidates
}

// ScoreResponse answers a ScoreRequest in the order of its reels.
type ScoreResponse struct {
	Heads        []string
	Scores       []float32 // one final score per reel
	Probs        []float32 // len(Scores) rows of len(Heads) values
	ModelVersion string
}

// SearchRequest asks the embedding index for the K nearest reels.
type SearchRequest struct {
	Vector  []float32 // the query, of the index's dimension (checked by the engine)
	K       int       // 1..MaxK
	Nprobe  int       // lists to scan, 0..MaxNprobe; 0 is the index's default
	Exclude []int64
}

// SearchResponse answers a SearchRequest, best first.
type SearchResponse struct {
	IDs    []int64
	Scores []float32 // inner product or negated distance: higher is nearer
	// MissingShards: as RecommendResponse.MissingShards.
	MissingShards []int
}

// Reel is a reel's catalogue entry.
type Reel struct {
	ID       int64
	Author   int64
	Upload   int64   // upload time, milliseconds since the Unix epoch
	Duration float32 // seconds
	// Category is the reel's category, or -1 to let the engine derive it
	// from the embedding (a frame without the field means -1).
	Category    int32
	Embedding   []float32 // the content embedding, or empty
	Description string
	// Language is the reel's language as a profile code (numbered from 1
	// in the feature store's order, as Context's); 0 is unknown.
	Language uint16
}

// UpsertRequest adds a reel or replaces the one with its id.
type UpsertRequest struct {
	Reel Reel
	// Key is the request's idempotency key (at most MaxKey bytes; empty
	// for none): a server applies a write with a key at most once, and
	// answers a repeat from its record of the first attempt. See the
	// package documentation, Idempotent writes.
	Key string
}

// UpsertResponse answers an UpsertRequest.
type UpsertResponse struct {
	Replaced bool // a reel with this id existed
	// Replayed says the server answered from its record of an earlier
	// request with the same Key instead of applying this one.
	Replayed bool
}

// DeleteRequest removes a reel; an unknown id is answered NotFound.
type DeleteRequest struct {
	ID  int64
	Key string // the idempotency key, as UpsertRequest's
}

// DeleteResponse answers a DeleteRequest.
type DeleteResponse struct {
	Replayed bool // answered from the record of an earlier request with the same Key
}

// Event is one event with the event log's fields (eventlog.Event without
// Line): Has holds eventlog.Field bits, Type is numbered as eventlog.Type.
type Event struct {
	Type       EventType
	Has        uint16
	Time       int64 // milliseconds since the Unix epoch
	User       int64
	Reel       int64
	Author     int64
	Session    int64
	Position   int32
	Propensity float64
	Arm        string
	Seconds    float32
	Fraction   float32
}

// EventRequest carries a batch of events for the feature store and the log.
type EventRequest struct {
	Events []Event
	Key    string // the idempotency key of the whole batch, as UpsertRequest's
}

// EventResponse answers an EventRequest: how many events were applied, how
// many refused, and why the first refused one was.
type EventResponse struct {
	Accepted, Rejected uint32
	Reason             string
	// Replayed says the counts are those of an earlier request with the
	// same Key, which the server answered from its record: no event of
	// this one was applied again.
	Replayed bool
}

// StatsRequest asks for the server's counters.
type StatsRequest struct{}

// StatsResponse holds the server's counters since it started.
type StatsResponse struct {
	Uptime       time.Duration // whole microseconds
	Requests     uint64
	Errors       []uint64 // Errors[c] counts error responses of ErrorCode c
	IndexSize    uint64   // reels in the index
	ModelVersion string
	Connections  uint32 // open now
	InFlight     uint32 // requests being served now
	Events       uint64 // events applied
}

// HealthRequest asks whether the server can serve.
type HealthRequest struct{}

// HealthResponse answers a HealthRequest.
type HealthResponse struct {
	OK     bool
	Status string
}

// AuthRequest presents the connection's token. A server configured with a
// token requires it as the first frame of every connection; see the package
// documentation.
type AuthRequest struct {
	Token string
}

// AuthResponse answers an accepted AuthRequest.
type AuthResponse struct{}

// AdminRequest changes or reads the served models. Op is one of the
// Admin* operations.
type AdminRequest struct {
	Op string
	// Bundle is the model folder to load, a path on the server's machine.
	Bundle string
	// Share is the canary's share of users (load, shares) and Holdout the
	// holdout's (shares); a negative value leaves it as it is (load: the
	// policy's share).
	Share, Holdout float64
	// Weights is a JSON object of head weights for the loaded arm's
	// post-rank, such as {"like": 2}; empty for none.
	Weights string
	// Reason is recorded with a promote or a rollback.
	Reason string
	// Force loads without the probe requests (drills).
	Force bool
}

// The admin operations.
const (
	AdminLoad     = "load"
	AdminPromote  = "promote"
	AdminRollback = "rollback"
	AdminShares   = "shares"
	AdminStatus   = "status"
	AdminDrift    = "drift"
)

// AdminResponse answers an AdminRequest with a JSON document: the arms'
// status after the operation (drift: the drift report).
type AdminResponse struct {
	JSON []byte
}

// Kind methods.

func (*RecommendRequest) Kind() Kind  { return KindRecommendRequest }
func (*RecommendResponse) Kind() Kind { return KindRecommendResponse }
func (*ScoreRequest) Kind() Kind      { return KindScoreRequest }
func (*ScoreResponse) Kind() Kind     { return KindScoreResponse }
func (*SearchRequest) Kind() Kind     { return KindSearchRequest }
func (*SearchResponse) Kind() Kind    { return KindSearchResponse }
func (*UpsertRequest) Kind() Kind     { return KindUpsertRequest }
func (*UpsertResponse) Kind() Kind    { return KindUpsertResponse }
func (*DeleteRequest) Kind() Kind     { return KindDeleteRequest }
func (*DeleteResponse) Kind() Kind    { return KindDeleteResponse }
func (*EventRequest) Kind() Kind      { return KindEventRequest }
func (*EventResponse) Kind() Kind     { return KindEventResponse }
func (*StatsRequest) Kind() Kind      { return KindStatsRequest }
func (*StatsResponse) Kind() Kind     { return KindStatsResponse }
func (*HealthRequest) Kind() Kind     { return KindHealthRequest }
func (*HealthResponse) Kind() Kind    { return KindHealthResponse }
func (*AuthRequest) Kind() Kind       { return KindAuthRequest }
func (*AuthResponse) Kind() Kind      { return KindAuthResponse }
func (*AdminRequest) Kind() Kind      { return KindAdminRequest }
func (*AdminResponse) Kind() Kind     { return KindAdminResponse }

// The rules every message obeys on the wire, checked by both Encode and
// Decode: ids and positions are non-negative, floats are finite, counts
// and strings are within the limits.

func checkID(what string, id int64) error {
	if id < 0 {
		return badRequest("%s %d is negative", what, id)
	}
	return nil
}

func checkIDs(what string, ids []int64, limit int) error {
	if len(ids) > limit {
		return badRequest("%d %s, over the limit of %d", len(ids), what, limit)
	}
	for i, id := range ids {
		if id < 0 {
			return badRequest("%s[%d] = %d is negative", what, i, id)
		}
	}
	return nil
}

// finite32 and finite64 report whether v is neither NaN nor ±Inf: its
// exponent bits are not all ones.
func finite32(v float32) bool { return math.Float32bits(v)&0x7f800000 != 0x7f800000 }

func finite64(v float64) bool { return math.Float64bits(v)&0x7ff0000000000000 != 0x7ff0000000000000 }

func checkFloat(what string, v float32) error {
	if !finite32(v) {
		return badRequest("%s is %v", what, v)
	}
	return nil
}

func checkFloats(what string, vs []float32, limit int) error {
	if len(vs) > limit {
		return badRequest("%d %s, over the limit of %d", len(vs), what, limit)
	}
	for i, v := range vs {
		if !finite32(v) {
			return badRequest("%s[%d] is %v", what, i, v)
		}
	}
	return nil
}

func checkString(what, s string) error {
	if len(s) > MaxString {
		return badRequest("%s of %d bytes, over the limit of %d", what, len(s), MaxString)
	}
	return nil
}

func checkKey(key string) error {
	if len(key) > MaxKey {
		return badRequest("idempotency key of %d bytes, over the limit of %d", len(key), MaxKey)
	}
	return nil
}

func checkStrings(what string, ss []string, limit int) error {
	if len(ss) > limit {
		return badRequest("%d %s, over the limit of %d", len(ss), what, limit)
	}
	for _, s := range ss {
		if err := checkString(what, s); err != nil {
			return err
		}
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *Context) check() error {
	if c.Session < 0 || c.Position < 0 {
		return badRequest("context: negative session %d or position %d", c.Session, c.Position)
	}
	return checkIDs("recent reels", c.Recent, MaxRecent)
}

func (m *RecommendRequest) check() error {
	if m.N < 1 || m.N > MaxN {
		return badRequest("recommend: n = %d outside 1..%d", m.N, MaxN)
	}
	return firstErr(checkID("user", m.User), m.Context.check(), checkIDs("excluded reels", m.Exclude, MaxExclude))
}

func (m *RecommendResponse) check() error {
	if len(m.Items) > MaxN {
		return badRequest("recommend: %d items, over the limit of %d", len(m.Items), MaxN)
	}
	t := &m.Timings
	if t.Features < 0 || t.Tower < 0 || t.ANN < 0 || t.Rank < 0 || t.Postrank < 0 || t.Total < 0 {
		return badRequest("recommend: negative timing")
	}
	if err := firstErr(checkStrings("heads", m.Heads, MaxHeads), checkString("model version", m.ModelVersion),
		checkString("arm", m.Arm), checkShards(m.MissingShards)); err != nil {
		return err
	}
	for i := range m.Items {
		it := &m.Items[i]
		switch {
		case it.Reel < 0:
			return badRequest("recommend: item %d: reel %d is negative", i, it.Reel)
		case !finite32(it.Score) || !finite64(it.Propensity):
			return badRequest("recommend: item %d: score %v, propensity %v", i, it.Score, it.Propensity)
		case len(it.Probs) != len(m.Heads):
			return badRequest("recommend: item %d has %d probabilities for %d heads", i, len(it.Probs), len(m.Heads))
		}
		if err := checkFloats("probabilities", it.Probs, MaxHeads); err != nil {
			return err
		}
	}
	return nil
}

func (m *ScoreRequest) check() error {
	return firstErr(checkID("user", m.User), m.Context.check(), checkIDs("reels", m.Reels, MaxCandidates))
}

func (m *ScoreResponse) check() error {
	if err := firstErr(checkStrings("heads", m.Heads, MaxHeads), checkFloats("scores", m.Scores, MaxCandidates),
		checkString("model version", m.ModelVersion)); err != nil {
		return err
	}
	if len(m.Probs) != len(m.Scores)*len(m.Heads) {
		return badRequest("score: %d probabilities for %d reels of %d heads", len(m.Probs), len(m.Scores), len(m.Heads))
	}
	return checkFloats("probabilities", m.Probs, MaxCandidates*MaxHeads)
}

func (m *SearchRequest) check() error {
	switch {
	case len(m.Vector) == 0:
		return badRequest("search: empty vector")
	case m.K < 1 || m.K > MaxK:
		return badRequest("search: k = %d outside 1..%d", m.K, MaxK)
	case m.Nprobe < 0 || m.Nprobe > MaxNprobe:
		return badRequest("search: nprobe = %d outside 0..%d", m.Nprobe, MaxNprobe)
	}
	return firstErr(checkFloats("vector", m.Vector, MaxDim), checkIDs("excluded reels", m.Exclude, MaxExclude))
}

func (m *SearchResponse) check() error {
	if len(m.IDs) != len(m.Scores) {
		return badRequest("search: %d ids and %d scores", len(m.IDs), len(m.Scores))
	}
	return firstErr(checkIDs("ids", m.IDs, MaxK), checkFloats("scores", m.Scores, MaxK), checkShards(m.MissingShards))
}

// checkShards checks a list of shard indexes.
func checkShards(s []int) error {
	if len(s) > MaxShards {
		return badRequest("%d missing shards, over the limit of %d", len(s), MaxShards)
	}
	for i, v := range s {
		if v < 0 || v >= MaxShards {
			return badRequest("missing shard %d is %d, outside 0..%d", i, v, MaxShards-1)
		}
	}
	return nil
}

func (m *UpsertRequest) check() error {
	r := &m.Reel
	if r.Category < -1 {
		return badRequest("upsert: category %d", r.Category)
	}
	return firstErr(checkKey(m.Key), checkID("reel", r.ID), checkID("author", r.Author), checkFloat("duration", r.Duration),
		checkFloats("embedding", r.Embedding, MaxDim), checkString("description", r.Description))
}

func (*UpsertResponse) check() error { return nil }

func (m *DeleteRequest) check() error { return firstErr(checkKey(m.Key), checkID("reel", m.ID)) }

func (*DeleteResponse) check() error { return nil }

func (m *EventRequest) check() error {
	if err := checkKey(m.Key); err != nil {
		return err
	}
	if len(m.Events) > MaxEvents {
		return badRequest("events: %d, over the limit of %d", len(m.Events), MaxEvents)
	}
	for i := range m.Events {
		e := &m.Events[i]
		switch {
		case e.User < 0 || e.Reel < 0 || e.Author < 0 || e.Session < 0 || e.Position < 0:
			return badRequest("event %d: negative id or position", i)
		case !finite64(e.Propensity) || !finite32(e.Seconds) || !finite32(e.Fraction):
			return badRequest("event %d: propensity %v, seconds %v, fraction %v", i, e.Propensity, e.Seconds, e.Fraction)
		case len(e.Arm) > MaxString:
			return badRequest("event %d: arm of %d bytes", i, len(e.Arm))
		}
	}
	return nil
}

func (m *EventResponse) check() error { return checkString("reason", m.Reason) }

func (*StatsRequest) check() error { return nil }

func (m *StatsResponse) check() error {
	if m.Uptime < 0 {
		return badRequest("stats: negative uptime")
	}
	if len(m.Errors) > MaxErrorCodes {
		return badRequest("stats: %d error codes, over the limit of %d", len(m.Errors), MaxErrorCodes)
	}
	return checkString("model version", m.ModelVersion)
}

func (*HealthRequest) check() error { return nil }

func (m *HealthResponse) check() error { return checkString("status", m.Status) }

func (m *AuthRequest) check() error { return checkString("token", m.Token) }

func (*AuthResponse) check() error { return nil }

func (m *AdminRequest) check() error {
	switch m.Op {
	case AdminLoad, AdminPromote, AdminRollback, AdminShares, AdminStatus, AdminDrift:
	default:
		return badRequest("admin: unknown op %q", m.Op)
	}
	if math.IsNaN(m.Share) || math.IsInf(m.Share, 0) || m.Share > 1 || math.IsNaN(m.Holdout) || math.IsInf(m.Holdout, 0) || m.Holdout > 1 {
		return badRequest("admin: shares %v and %v are not within [-1, 1]", m.Share, m.Holdout)
	}
	for _, f := range []struct{ name, v string }{{"bundle", m.Bundle}, {"weights", m.Weights}, {"reason", m.Reason}} {
		if err := checkString("admin "+f.name, f.v); err != nil {
			return err
		}
	}
	return nil
}

func (m *AdminResponse) check() error {
	if len(m.JSON) > MaxAdminJSON {
		return badRequest("admin: a JSON document of %d bytes, over the limit of %d", len(m.JSON), MaxAdminJSON)
	}
	return nil
}

func (m *Error) check() error { return checkString("error message", m.Message) }
