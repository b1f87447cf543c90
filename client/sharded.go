package client

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

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
	// the shards that answered when some (not all) failed or were too
	// late: the merged answer comes back together with a *PartialError,
	// and a merged Recommend or Search names the shards it went without
	// in MissingShards. Without it any shard's failure fails the request.
	AllowPartial bool
	// ShardTimeout, with AllowPartial, is the longest a Recommend,
	// Search, Stats or Health waits for a shard, from the call's start: a
	// shard that has not answered by then is dropped (counted missing,
	// its error context.DeadlineExceeded) and the others' merged answer
	// returned. 0: no bound of its own (the caller's deadline, less
	// MergeShare, still bounds the wait).
	ShardTimeout time.Duration
	// MergeShare, with AllowPartial, is the share of the caller's
	// remaining deadline kept for the merge and the caller: the shards
	// are waited for at most (1-MergeShare) of it, so that a shard that
	// misses the deadline costs the answer its part, not the whole
	// answer. 0 means 0.1; negative: none kept (a late shard then holds
	// the answer to the caller's deadline). At most 0.9.
	MergeShare float64
	// Observe, when set, is called after every Recommend and Search with
	// what the fan-out cost (see Observation): the seam for measuring
	// the overhead of fanning out and merging (`reelrank bench load
	// --shards`). It runs on the caller's goroutine and must be quick and
	// safe for concurrent use.
	Observe func(Observation)
}

// Observation is what a Sharded reports of one Recommend or Search to
// ShardedOptions.Observe.
type Observation struct {
	Kind wire.Kind // the request's kind
	// Total is the call's time, from its start to the merged answer (or
	// its error); Slowest the longest the call waited for one shard: its
	// slowest round trip (a shard that failed included), or, for a shard
	// dropped past its budget, the time until it was dropped. Total -
	// Slowest is what fanning out and merging added.
	Total, Slowest time.Duration
	// Shards is the number of shards asked, Missing those whose answer
	// the merge went without.
	Shards, Missing int
}

// Overhead is Total - Slowest: the time fanning out and merging added to
// the slowest shard's answer (0 when no shard answered).
func (o Observation) Overhead() time.Duration {
	if o.Slowest <= 0 {
		return 0
	}
	return max(o.Total-o.Slowest, 0)
}

// withDefaults fills the options' zero fields.
func (o ShardedOptions) withDefaults() (ShardedOptions, error) {
	switch {
	case o.ShardTimeout < 0:
		return o, fmt.Errorf("client: sharded: negative ShardTimeout %v", o.ShardTimeout)
	case math.IsNaN(o.MergeShare) || o.MergeShare > 0.9:
		return o, fmt.Errorf("client: sharded: MergeShare %v over 0.9", o.MergeShare)
	case o.MergeShare == 0:
		o.MergeShare = 0.1
	case o.MergeShare < 0:
		o.MergeShare = 0
	}
	return o, nil
}

// Sharded spreads a catalogue over shards, each a *Client (itself one or
// more replicas). It is safe for concurrent use. The rules:
//
//   - Recommend and Search go to every shard; the answers are merged by
//     score, best first, a reel id kept once (at its best score), and cut
//     to N (K). Recommend's stage timings are the slowest shard's (the
//     shards work in parallel) and its candidate counts the sums. With
//     AllowPartial a shard that fails, or has not answered within its
//     budget (ShardTimeout, MergeShare), is left out, and the merged
//     answer's MissingShards names it.
//   - Score splits its reels by ShardOf(reel) and asks each shard for its
//     own, then puts the answers back in request order (a server serving
//     a shard, `reelrank serve --shard`, answers WrongShard for another
//     shard's reel).
//   - Upsert and Delete go to ShardOf(reel id).
//   - Event sends an event that names a user (Has carries eventlog.FUser)
//     to every shard, and one that does not (an upload) to ShardOf(reel):
//     user features are replicated, so that every shard ranks a user with
//     the same features and a Recommend needs one round trip to each. A
//     batch is not atomic across shards.
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

// uploadsKey is the idempotency key of the uploads part of a batch that
// also holds events naming users, which go to the same shards under the
// batch's own key.
func uploadsKey(key string) string {
	if key == "" {
		return ""
	}
	if k := key + "/uploads"; len(k) <= wire.MaxKey {
		return k
	}
	sum := sha256.Sum256([]byte(key))
	return "uploads/" + hex.EncodeToString(sum[:])
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
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Sharded{shards: slices.Clone(shards), opt: opt}, nil
}

// DialSharded dials every shard, shards[i] listing the replica addresses
// of shard i, with the same Options for all.
func DialSharded(ctx context.Context, shards [][]string, opt Options, sopt ShardedOptions) (*Sharded, error) {
	if _, err := sopt.withDefaults(); err != nil {
		return nil, err
	}
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
// only, when it is not nil) and returns their answers by shard index,
// with the longest time it waited for a shard: the slowest round trip,
// a failed shard's included, or the budget a dropped shard ran out. When a
// shard fails and partial answers are not allowed, the others are
// cancelled and the first error returned. With partial answers, the
// shards are waited for within their budget (budget), and a shard that
// failed or has not answered by then is in the *PartialError returned
// beside the others' answers.
func (s *Sharded) fanOut(ctx context.Context, only []int, partial bool,
	ask func(ctx context.Context, i int) (wire.Message, error)) ([]wire.Message, time.Duration, error) {
	if only == nil {
		only = make([]int, len(s.shards))
		for i := range only {
			only[i] = i
		}
	}
	out := make([]wire.Message, len(s.shards))
	if len(only) == 1 {
		i := only[0]
		start := time.Now()
		m, err := ask(ctx, i)
		if err != nil {
			if partial {
				return nil, 0, &PartialError{Shards: 1, Failed: map[int]error{i: err}}
			}
			return nil, 0, fmt.Errorf("client: shard %d: %w", i, err)
		}
		out[i] = m
		return out, time.Since(start), nil
	}
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wait := ctx // what the shards' calls run under: the caller's deadline, or the shards' budget
	if partial {
		if dl, ok := s.budget(ctx, start); ok {
			var stop context.CancelFunc
			wait, stop = context.WithDeadline(ctx, dl)
			defer stop()
		}
	}
	type answer struct {
		i   int
		m   wire.Message
		err error
		rtt time.Duration
	}
	ch := make(chan answer, len(only)) // buffered: a shard answering after the budget does not block
	for _, i := range only {
		go func() {
			t := time.Now()
			m, err := ask(wait, i)
			if err != nil {
				m = nil // not a typed nil pointer of the failed call
			}
			ch <- answer{i, m, err, time.Since(t)}
		}()
	}
	answered := make([]bool, len(s.shards))
	failed := make(map[int]error)
	var slowest time.Duration
	take := func(a answer) error {
		answered[a.i] = true
		slowest = max(slowest, a.rtt) // a failure too: the merge waited for it
		if a.err != nil {
			if !partial {
				return fmt.Errorf("client: shard %d: %w", a.i, a.err)
			}
			failed[a.i] = a.err
			return nil
		}
		out[a.i] = a.m
		return nil
	}
	for got := 0; got < len(only); {
		select {
		case a := <-ch:
			got++
			if err := take(a); err != nil {
				return nil, 0, err // cancel stops the others
			}
			continue
		case <-wait.Done():
		}
		// The budget passed, or the caller gave up: the answers already
		// in, then the shards still out are missing.
		for drained := false; !drained; {
			select {
			case a := <-ch:
				got++
				if err := take(a); err != nil {
					return nil, 0, err
				}
			default:
				drained = true
			}
		}
		// The shards still out were waited for until now.
		slowest = max(slowest, time.Since(start))
		for _, i := range only {
			if !answered[i] {
				err := wait.Err()
				if ctx.Err() == nil {
					err = fmt.Errorf("no answer within the shard's budget of %v: %w", time.Since(start).Round(time.Microsecond), context.DeadlineExceeded)
				}
				if !partial {
					return nil, 0, fmt.Errorf("client: shard %d: %w", i, err)
				}
				failed[i] = err
			}
		}
		break
	}
	switch {
	case len(failed) == 0:
		return out, slowest, nil
	case len(failed) == len(only):
		return nil, 0, &PartialError{Shards: len(only), Failed: failed}
	}
	return out, slowest, &PartialError{Shards: len(only), Failed: failed}
}

// budget returns when the shards of a call begun at start stop being
// waited for: ShardTimeout after start, and (1-MergeShare) of the way to
// ctx's deadline; ok is false when neither bounds it.
func (s *Sharded) budget(ctx context.Context, start time.Time) (dl time.Time, ok bool) {
	if s.opt.ShardTimeout > 0 {
		dl, ok = start.Add(s.opt.ShardTimeout), true
	}
	if d, has := ctx.Deadline(); has && s.opt.MergeShare > 0 {
		keep := time.Duration(float64(max(d.Sub(start), 0)) * s.opt.MergeShare)
		if c := d.Add(-keep); !ok || c.Before(dl) {
			dl, ok = c, true
		}
	}
	return dl, ok
}

// missing returns the shards a *PartialError names, ascending (nil for
// any other error).
func missing(err error) []int {
	var pe *PartialError
	if !errors.As(err, &pe) {
		return nil
	}
	idx := make([]int, 0, len(pe.Failed))
	for i := range pe.Failed {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	return idx
}

// observe reports a Recommend or Search to ShardedOptions.Observe.
func (s *Sharded) observe(k wire.Kind, start time.Time, slowest time.Duration, missing int) {
	if s.opt.Observe == nil {
		return
	}
	s.opt.Observe(Observation{Kind: k, Total: time.Since(start), Slowest: slowest, Shards: len(s.shards), Missing: missing})
}

// Recommend asks every shard for req.N reels and merges the answers (see
// Sharded). With AllowPartial, an answer from some shards comes with a
// *PartialError, and its MissingShards names the others.
func (s *Sharded) Recommend(ctx context.Context, req *wire.RecommendRequest) (*wire.RecommendResponse, error) {
	start := time.Now()
	resps, slowest, err := s.fanOut(ctx, nil, s.opt.AllowPartial, func(ctx context.Context, i int) (wire.Message, error) {
		return s.shards[i].Recommend(ctx, req)
	})
	if resps == nil {
		s.observe(wire.KindRecommendRequest, start, 0, len(s.shards))
		return nil, err
	}
	merged, merr := MergeRecommend(collect[*wire.RecommendResponse](resps), req.N)
	if merr != nil {
		s.observe(wire.KindRecommendRequest, start, 0, len(s.shards))
		return nil, merr
	}
	merged.MissingShards = missing(err)
	s.observe(wire.KindRecommendRequest, start, slowest, len(merged.MissingShards))
	return merged, err
}

// Search asks every shard for req.K reels and merges them by score.
// With AllowPartial, an answer from some shards comes with a
// *PartialError, and its MissingShards names the others.
func (s *Sharded) Search(ctx context.Context, req *wire.SearchRequest) (*wire.SearchResponse, error) {
	start := time.Now()
	resps, slowest, err := s.fanOut(ctx, nil, s.opt.AllowPartial, func(ctx context.Context, i int) (wire.Message, error) {
		return s.shards[i].Search(ctx, req)
	})
	if resps == nil {
		s.observe(wire.KindSearchRequest, start, 0, len(s.shards))
		return nil, err
	}
	merged := MergeSearch(collect[*wire.SearchResponse](resps), req.K)
	merged.MissingShards = missing(err)
	s.observe(wire.KindSearchRequest, start, slowest, len(merged.MissingShards))
	return merged, err
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
	resps, _, err := s.fanOut(ctx, only, false, func(ctx context.Context, i int) (wire.Message, error) {
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

// EventRoute says where an event goes among n shards: to every shard
// when it names a user (its user features are replicated), or to the
// owner of its reel, shard, when it does not (an upload).
func EventRoute(e *wire.Event, n int) (shard int, every bool) {
	if e.Has&hasUser != 0 {
		return 0, true
	}
	return ShardOf(e.Reel, n), false
}

// Event sends the batch's events by EventRoute, the shards in parallel:
// the events that name a user to every shard, the uploads each to its
// reel's shard. The answer counts each event of the batch once: an event
// that names a user as accepted as many times as the shard that accepted
// fewest of them did (the shards apply one rule, so they agree unless
// their clocks differ), an upload by its shard's answer. Its reason is
// the first shard's (in shard order) that gave one, and it is Replayed
// when any shard answered its part from the record of an earlier
// attempt. When a shard fails, the error says which; the other parts may
// have been applied. Every part carries req.Key (each shard keeps its own
// record of keys; the uploads of a batch that also names users carry a
// key derived from it), so a batch sent again with the same key after
// such a failure is applied where it was not and answered from the
// record where it was. Without a key each shard's Client gives its part
// one of its own, which covers a broken connection but not a second call.
func (s *Sharded) Event(ctx context.Context, req *wire.EventRequest) (*wire.EventResponse, error) {
	n := len(s.shards)
	var users []wire.Event
	uploads := make([][]wire.Event, n)
	var upShards []int
	for j := range req.Events {
		i, every := EventRoute(&req.Events[j], n)
		if every {
			users = append(users, req.Events[j])
			continue
		}
		if len(uploads[i]) == 0 {
			upShards = append(upShards, i)
		}
		uploads[i] = append(uploads[i], req.Events[j])
	}
	sort.Ints(upShards)
	var (
		userResps, upResps []wire.Message
		userErr, upErr     error
		wg                 sync.WaitGroup
	)
	if len(users) > 0 || len(upShards) == 0 {
		only := []int(nil) // every shard
		if len(req.Events) == 0 {
			only = []int{0} // an empty batch: one shard answers it
		}
		wg.Go(func() {
			userResps, _, userErr = s.fanOut(ctx, only, false, func(ctx context.Context, i int) (wire.Message, error) {
				return s.shards[i].Event(ctx, &wire.EventRequest{Events: users, Key: req.Key})
			})
		})
	}
	if len(upShards) > 0 {
		key := req.Key
		if len(users) > 0 {
			key = uploadsKey(req.Key)
		}
		wg.Go(func() {
			upResps, _, upErr = s.fanOut(ctx, upShards, false, func(ctx context.Context, i int) (wire.Message, error) {
				return s.shards[i].Event(ctx, &wire.EventRequest{Events: uploads[i], Key: key})
			})
		})
	}
	wg.Wait()
	if userErr != nil {
		return nil, userErr
	}
	if upErr != nil {
		return nil, upErr
	}
	out := &wire.EventResponse{}
	reasons := make([]string, n)
	if userResps != nil {
		least := uint32(len(users))
		for i, m := range userResps {
			r, ok := m.(*wire.EventResponse)
			if !ok {
				continue
			}
			least = min(least, r.Accepted)
			out.Replayed = out.Replayed || r.Replayed
			reasons[i] = r.Reason
		}
		out.Accepted = least
		out.Rejected = uint32(len(users)) - least
	}
	for _, i := range upShards {
		r := upResps[i].(*wire.EventResponse)
		out.Accepted += r.Accepted
		out.Rejected += r.Rejected
		out.Replayed = out.Replayed || r.Replayed
		if reasons[i] == "" {
			reasons[i] = r.Reason
		}
	}
	for i, why := range reasons {
		if why != "" {
			out.Reason = "shard " + strconv.Itoa(i) + ": " + why
			break
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
	resps, _, err := s.fanOut(ctx, nil, s.opt.AllowPartial, func(ctx context.Context, i int) (wire.Message, error) {
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
	resps, _, err := s.fanOut(ctx, nil, s.opt.AllowPartial, func(ctx context.Context, i int) (wire.Message, error) {
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
