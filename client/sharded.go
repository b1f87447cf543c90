package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/reelrank/reelrank/internal/hashx"
	"github.com/reelrank/reelrank/wire"
)

// hasUser is eventlog.FUser, the bit of wire.Event.Has that says the
// event names a user (the tests check that the two agree).
const hasUser = 1 << 2

// ShardOf returns the shard, of n, that owns an id: jump consistent
// hashing (Lamping and Veach, 2014) of the id mixed by the splitmix64
// finalizer. Growing n to n+1 moves only a 1/(n+1) share of the ids, all
// to the new shard. Reels are placed by their id, users by theirs; a
// loader that fills the shards must use the same rule.
func ShardOf(id int64, n int) int { return hashx.Jump(id, n) }

// ShardedOptions configures a Sharded.
type ShardedOptions struct {
	// AllowPartial lets Recommend, Search, Stats and Health answer from
	// the shards that answered when some (not all) failed: the merged
	// answer comes back together with a *PartialError. Without it any
	// shard's failure fails the request.
	AllowPartial bool
}

// Sharded spreads a catalogue over shards, each a *Client (itself one or
// more replicas). It is safe for concurrent use. The rules:
//
//   - Recommend and Search go to every shard; the answers are merged by
//     score, best first, a reel id kept once (at its best score), and cut
//     to N (K). Recommend's stage timings are the slowest shard's (the
//     shards work in parallel) and its candidate counts the sums.
//   - Score splits its reels by ShardOf(reel) and asks each shard for its
//     own, then puts the answers back in request order.
//   - Upsert and Delete go to ShardOf(reel id).
//   - Event splits a batch by owner: ShardOf(user) for an event that names
//     a user (Has carries eventlog.FUser), ShardOf(reel) for one that does
//     not (an upload). A batch is not atomic across shards.
//   - Stats and Health ask every shard and add up the answers.
//
// Each shard's Client hedges and fails over between its replicas by its
// own Options. The merge cannot see authors: a merged Recommend keeps each
// shard's author diversity, not the list's as a whole, and an explored
// item's propensity is the one its shard's policy gave it.
type Sharded struct {
	shards []*Client
	opt    ShardedOptions
}

// NewSharded returns a Sharded over shards, shard i owning the ids with
// ShardOf(id, len(shards)) == i. It takes ownership: Close closes them.
func NewSharded(shards []*Client, opt ShardedOptions) (*Sharded, error) {
	if len(shards) == 0 {
		return nil, errors.New("client: sharded: no shards")
	}
	for i, c := range shards {
		if c == nil {
			return nil, fmt.Errorf("client: sharded: shard %d is nil", i)
		}
	}
	return &Sharded{shards: slices.Clone(shards), opt: opt}, nil
}

// DialSharded dials every shard, shards[i] listing the replica addresses
// of shard i, with the same Options for all.
func DialSharded(ctx context.Context, shards [][]string, opt Options, sopt ShardedOptions) (*Sharded, error) {
	clients := make([]*Client, 0, len(shards))
	for i, addrs := range shards {
		c, err := DialReplicas(ctx, addrs, opt)
		if err != nil {
			for _, c := range clients {
				c.Close()
			}
			return nil, fmt.Errorf("client: shard %d: %w", i, err)
		}
		clients = append(clients, c)
	}
	return NewSharded(clients, sopt)
}

// Shards returns the shards' clients, shard i at index i.
func (s *Sharded) Shards() []*Client { return slices.Clone(s.shards) }

// Close closes every shard's Client.
func (s *Sharded) Close() error {
	for _, c := range s.shards {
		c.Close()
	}
	return nil
}

// PartialError reports the shards that failed when others answered (see
// ShardedOptions.AllowPartial).
type PartialError struct {
	Shards int           // the number of shards asked
	Failed map[int]error // each failed shard's error, by shard index
}

// Error lists the failed shards.
func (e *PartialError) Error() string {
	idx := make([]int, 0, len(e.Failed))
	for i := range e.Failed {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var b strings.Builder
	fmt.Fprintf(&b, "client: %d of %d shards failed", len(idx), e.Shards)
	for _, i := range idx {
		fmt.Fprintf(&b, "; shard %d: %v", i, e.Failed[i])
	}
	return b.String()
}

// Unwrap returns the shards' errors, for errors.Is and errors.As.
func (e *PartialError) Unwrap() []error {
	out := make([]error, 0, len(e.Failed))
	for _, err := range e.Failed {
		out = append(out, err)
	}
	return out
}

// fanOut calls ask for every shard in parallel (or for the shards in
// only, when it is not nil) and returns their answers by shard index.
// When a shard fails and partial answers are not allowed, the others are
// cancelled and the first error returned.
func (s *Sharded) fanOut(ctx context.Context, only []int, partial bool,
	ask func(ctx context.Context, i int) (wire.Message, error)) ([]wire.Message, error) {
	if only == nil {
		only = make([]int, len(s.shards))
		for i := range only {
			only[i] = i
		}
	}
	out := make([]wire.Message, len(s.shards))
	errs := make([]error, len(s.shards))
	if len(only) == 1 {
		i := only[0]
		out[i], errs[i] = ask(ctx, i)
		if errs[i] != nil {
			return nil, fmt.Errorf("client: shard %d: %w", i, errs[i])
		}
		return out, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for _, i := range only {
		wg.Go(func() {
			m, err := ask(ctx, i)
			if err != nil {
				m = nil // not a typed nil pointer of the failed call
			}
			out[i], errs[i] = m, err
			if err != nil && !partial {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("client: shard %d: %w", i, err)
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	failed := make(map[int]error)
	for _, i := range only {
		if errs[i] != nil {
			failed[i] = errs[i]
		}
	}
	switch {
	case len(failed) == 0:
		return out, nil
	case len(failed) == len(only):
		return nil, &PartialError{Shards: len(only), Failed: failed}
	}
	return out, &PartialError{Shards: len(only), Failed: failed}
}

// Recommend asks every shard for req.N reels and merges the answers (see
// Sharded). With AllowPartial, an answer from some shards comes with a
// *PartialError.
func (s *Sharded) Recommend(ctx context.Context, req *wire.RecommendRequest) (*wire.RecommendResponse, error) {
	resps, err := s.fanOut(ctx, nil, s.opt.AllowPartial, func(ctx context.Context, i int) (wire.Message, error) {
		return s.shards[i].Recommend(ctx, req)
	})
	if resps == nil {
		return nil, err
	}
	merged, merr := MergeRecommend(collect[*wire.RecommendResponse](resps), req.N)
	if merr != nil {
		return nil, merr
	}
	return merged, err
}

// Search asks every shard for req.K reels and merges them by score.
// With AllowPartial, an answer from some shards comes with a
// *PartialError.
func (s *Sharded) Search(ctx context.Context, req *wire.SearchRequest) (*wire.SearchResponse, error) {
	resps, err := s.fanOut(ctx, nil, s.opt.AllowPartial, func(ctx context.Context, i int) (wire.Message, error) {
		return s.shards[i].Search(ctx, req)
	})
	if resps == nil {
		return nil, err
	}
	return MergeSearch(collect[*wire.SearchResponse](resps), req.K), err
}

// Score asks each shard about the reels it owns and returns the scores in
// the order of req.Reels.
func (s *Sharded) Score(ctx context.Context, req *wire.ScoreRequest) (*wire.ScoreResponse, error) {
	n := len(s.shards)
	if len(req.Reels) == 0 {
		return s.shards[ShardOf(req.User, n)].Score(ctx, req)
	}
	groups := make([][]int, n) // indices into req.Reels, by shard
	for j, reel := range req.Reels {
		g := ShardOf(reel, n)
		groups[g] = append(groups[g], j)
	}
	var only []int
	for i, g := range groups {
		if len(g) > 0 {
			only = append(only, i)
		}
	}
	resps, err := s.fanOut(ctx, only, false, func(ctx context.Context, i int) (wire.Message, error) {
		sub := *req
		sub.Reels = make([]int64, len(groups[i]))
		for k, j := range groups[i] {
			sub.Reels[k] = req.Reels[j]
		}
		return s.shards[i].Score(ctx, &sub)
	})
	if err != nil {
		return nil, err
	}
	out := &wire.ScoreResponse{Scores: make([]float32, len(req.Reels))}
	var versions []string
	for _, i := range only {
		r := resps[i].(*wire.ScoreResponse)
		if len(r.Scores) != len(groups[i]) {
			return nil, fmt.Errorf("client: shard %d: %d scores for %d reels: %w", i, len(r.Scores), len(groups[i]), ErrBadResponse)
		}
		if out.Heads == nil {
			out.Heads = r.Heads
			out.Probs = make([]float32, len(req.Reels)*len(r.Heads))
		}
		perm, err := headPerm(out.Heads, r.Heads)
		if err != nil {
			return nil, fmt.Errorf("client: shard %d: %w", i, err)
		}
		h := len(out.Heads)
		for k, j := range groups[i] {
			out.Scores[j] = r.Scores[k]
			for d, src := range perm {
				out.Probs[j*h+d] = r.Probs[k*h+src]
			}
		}
		versions = append(versions, r.ModelVersion)
	}
	out.ModelVersion = joinDistinct(versions)
	return out, nil
}

// Upsert sends the reel to the shard that owns its id.
func (s *Sharded) Upsert(ctx context.Context, req *wire.UpsertRequest) (*wire.UpsertResponse, error) {
	i := ShardOf(req.Reel.ID, len(s.shards))
	r, err := s.shards[i].Upsert(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("client: shard %d: %w", i, err)
	}
	return r, nil
}

// Delete sends the delete to the shard that owns the id.
func (s *Sharded) Delete(ctx context.Context, req *wire.DeleteRequest) (*wire.DeleteResponse, error) {
	i := ShardOf(req.ID, len(s.shards))
	r, err := s.shards[i].Delete(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("client: shard %d: %w", i, err)
	}
	return r, nil
}

// EventShard returns the shard, of n, that an event goes to: the owner of
// its user, or of its reel when it names no user.
func EventShard(e *wire.Event, n int) int {
	if e.Has&hasUser != 0 {
		return ShardOf(e.User, n)
	}
	return ShardOf(e.Reel, n)
}

// Event splits the batch by EventShard and sends the parts in parallel;
// the answer adds up the shards' counts, its reason is the first shard's
// (in shard order) that gave one, and it is Replayed when any shard
// answered its part from the record of an earlier attempt. When a shard
// fails, the error says which; the other parts may have been applied.
// Every part carries req.Key (each shard keeps its own record of keys), so
// a batch sent again with the same key after such a failure is applied
// where it was not and answered from the record where it was. Without a
// key each shard's Client gives its part one of its own, which covers a
// broken connection but not a second call.
func (s *Sharded) Event(ctx context.Context, req *wire.EventRequest) (*wire.EventResponse, error) {
	n := len(s.shards)
	parts := make([][]wire.Event, n)
	for j := range req.Events {
		i := EventShard(&req.Events[j], n)
		parts[i] = append(parts[i], req.Events[j])
	}
	var only []int
	for i, p := range parts {
		if len(p) > 0 {
			only = append(only, i)
		}
	}
	if len(only) == 0 {
		only = []int{0}
	}
	resps, err := s.fanOut(ctx, only, false, func(ctx context.Context, i int) (wire.Message, error) {
		return s.shards[i].Event(ctx, &wire.EventRequest{Events: parts[i], Key: req.Key})
	})
	if err != nil {
		return nil, err
	}
	out := &wire.EventResponse{}
	for _, i := range only {
		r := resps[i].(*wire.EventResponse)
		out.Accepted += r.Accepted
		out.Rejected += r.Rejected
		out.Replayed = out.Replayed || r.Replayed
		if out.Reason == "" && r.Reason != "" {
			out.Reason = "shard " + strconv.Itoa(i) + ": " + r.Reason
		}
	}
	return out, nil
}

// Stats asks every shard and adds up their counters: requests, errors,
// index sizes, connections, requests in flight and events are summed;
// uptime is the shortest; the model version is the shards' one, or their
// distinct versions joined by commas. Use Shards()[i].Stats for one
// shard's.
func (s *Sharded) Stats(ctx context.Context) (*wire.StatsResponse, error) {
	resps, err := s.fanOut(ctx, nil, s.opt.AllowPartial, func(ctx context.Context, i int) (wire.Message, error) {
		return s.shards[i].Stats(ctx)
	})
	if resps == nil {
		return nil, err
	}
	out := &wire.StatsResponse{}
	var versions []string
	first := true
	for _, m := range resps {
		r, ok := m.(*wire.StatsResponse)
		if !ok {
			continue
		}
		if first || r.Uptime < out.Uptime {
			out.Uptime = r.Uptime
		}
		first = false
		out.Requests += r.Requests
		out.IndexSize += r.IndexSize
		out.Connections += r.Connections
		out.InFlight += r.InFlight
		out.Events += r.Events
		for len(out.Errors) < len(r.Errors) {
			out.Errors = append(out.Errors, 0)
		}
		for c, v := range r.Errors {
			out.Errors[c] += v
		}
		versions = append(versions, r.ModelVersion)
	}
	out.ModelVersion = joinDistinct(versions)
	return out, err
}

// Health asks every shard; the answer is OK when every shard that
// answered is, and its status lists the shards' statuses.
func (s *Sharded) Health(ctx context.Context) (*wire.HealthResponse, error) {
	resps, err := s.fanOut(ctx, nil, s.opt.AllowPartial, func(ctx context.Context, i int) (wire.Message, error) {
		return s.shards[i].Health(ctx)
	})
	if resps == nil {
		return nil, err
	}
	out := &wire.HealthResponse{OK: true}
	var parts []string
	for i, m := range resps {
		r, ok := m.(*wire.HealthResponse)
		if !ok {
			continue
		}
		out.OK = out.OK && r.OK
		parts = append(parts, fmt.Sprintf("shard %d: %s", i, r.Status))
	}
	out.Status = strings.Join(parts, "; ")
	return out, err
}

// Do sends a request by its type, as the typed methods do, so that code
// written against Client.Do (a load generator) can drive a Sharded.
func (s *Sharded) Do(ctx context.Context, req wire.Message) (wire.Message, error) {
	switch m := req.(type) {
	case *wire.RecommendRequest:
		return nonNil(s.Recommend(ctx, m))
	case *wire.ScoreRequest:
		return nonNil(s.Score(ctx, m))
	case *wire.SearchRequest:
		return nonNil(s.Search(ctx, m))
	case *wire.UpsertRequest:
		return nonNil(s.Upsert(ctx, m))
	case *wire.DeleteRequest:
		return nonNil(s.Delete(ctx, m))
	case *wire.EventRequest:
		return nonNil(s.Event(ctx, m))
	case *wire.StatsRequest:
		return nonNil(s.Stats(ctx))
	case *wire.HealthRequest:
		return nonNil(s.Health(ctx))
	}
	return nil, fmt.Errorf("client: sharded: %s is not a request it routes", req.Kind())
}

// nonNil turns a typed nil answer into a nil interface.
func nonNil[T interface {
	comparable
	wire.Message
}](m T, err error) (wire.Message, error) {
	var zero T
	if m == zero {
		return nil, err
	}
	return m, err
}

// collect returns the answers of type T, skipping failed shards.
func collect[T wire.Message](ms []wire.Message) []T {
	out := make([]T, 0, len(ms))
	for _, m := range ms {
		if t, ok := m.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// MergeRecommend merges shards' answers to one RecommendRequest into the
// n best items: by score, best first (ties by reel id), each reel once at
// its best score. Probabilities follow the first answer's heads; another
// answer may list the same heads in another order, but not other heads.
// Stage timings are the slowest answer's, candidate counts the sums; the
// model version and arm are the answers' one value, or their distinct
// values joined by commas.
func MergeRecommend(resps []*wire.RecommendResponse, n int) (*wire.RecommendResponse, error) {
	out := &wire.RecommendResponse{}
	if len(resps) == 0 {
		return out, nil
	}
	out.Heads = resps[0].Heads
	var versions, arms []string
	total := 0
	for _, r := range resps {
		total += len(r.Items)
	}
	items := make([]wire.Item, 0, total)
	for i, r := range resps {
		perm, err := headPerm(out.Heads, r.Heads)
		if err != nil {
			return nil, fmt.Errorf("client: merge answer %d: %w", i, err)
		}
		ident := identity(perm)
		for _, it := range r.Items {
			if !ident {
				probs := make([]float32, len(perm))
				for d, src := range perm {
					probs[d] = it.Probs[src]
				}
				it.Probs = probs
			}
			items = append(items, it)
		}
		versions = append(versions, r.ModelVersion)
		arms = append(arms, r.Arm)
		t, o := &r.Timings, &out.Timings
		o.Features, o.Tower, o.ANN = max(o.Features, t.Features), max(o.Tower, t.Tower), max(o.ANN, t.ANN)
		o.Rank, o.Postrank, o.Total = max(o.Rank, t.Rank), max(o.Postrank, t.Postrank), max(o.Total, t.Total)
		o.ANNCandidates += t.ANNCandidates
		o.FreshCandidates += t.FreshCandidates
		o.ExploreCandidates += t.ExploreCandidates
		o.Ranked += t.Ranked
	}
	slices.SortStableFunc(items, func(a, b wire.Item) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.Reel, b.Reel)
	})
	seen := make(map[int64]struct{}, min(total, n))
	for _, it := range items {
		if len(out.Items) == n {
			break
		}
		if _, dup := seen[it.Reel]; dup {
			continue
		}
		seen[it.Reel] = struct{}{}
		out.Items = append(out.Items, it)
	}
	out.ModelVersion, out.Arm = joinDistinct(versions), joinDistinct(arms)
	return out, nil
}

// MergeSearch merges shards' answers to one SearchRequest into the k
// nearest: by score, best first (ties by id), each id once at its best.
func MergeSearch(resps []*wire.SearchResponse, k int) *wire.SearchResponse {
	type hit struct {
		id    int64
		score float32
	}
	var hits []hit
	for _, r := range resps {
		for j, id := range r.IDs {
			hits = append(hits, hit{id, r.Scores[j]})
		}
	}
	slices.SortFunc(hits, func(a, b hit) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	out := &wire.SearchResponse{}
	seen := make(map[int64]struct{}, min(len(hits), k))
	for _, h := range hits {
		if len(out.IDs) == k {
			break
		}
		if _, dup := seen[h.id]; dup {
			continue
		}
		seen[h.id] = struct{}{}
		out.IDs = append(out.IDs, h.id)
		out.Scores = append(out.Scores, h.score)
	}
	return out
}

// headPerm returns, for each head of want, its index in got; an error
// when got's heads are not a permutation of want's.
func headPerm(want, got []string) ([]int, error) {
	if len(want) != len(got) {
		return nil, fmt.Errorf("heads %q and %q differ: %w", want, got, ErrBadResponse)
	}
	perm := make([]int, len(want))
	for d, h := range want {
		src := slices.Index(got, h)
		if src < 0 {
			return nil, fmt.Errorf("heads %q and %q differ: %w", want, got, ErrBadResponse)
		}
		perm[d] = src
	}
	return perm, nil
}

func identity(perm []int) bool {
	for i, p := range perm {
		if i != p {
			return false
		}
	}
	return true
}

// joinDistinct returns the distinct non-empty values of vs in order,
// joined by commas.
func joinDistinct(vs []string) string {
	var out []string
	for _, v := range vs {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return strings.Join(out, ",")
}
