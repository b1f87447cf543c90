// Package engine is reelrank's request pipeline: it answers "what should
// this user see next?" from a feature store (package features), a model
// bundle (package ranker) and an index of reel embeddings (package ann),
// and takes the catalogue's changes and the viewers' events. The TCP
// server is a thin layer over it; the engine's types map one to one onto
// the messages of package wire, which it does not import.
//
// # Serving
//
// A Model is a bundle (ranker, user tower, reel tower) with the index of
// its reel tower's embeddings and the name of the A/B arm it serves:
//
//	ix, err := engine.BuildIndex(ctx, store, bundle.ReelTower, ann.Options{Refine: ann.RefineF16}, 0)
//	m, err := engine.NewModel(bundle, ix, "control")
//	e, err := engine.New(engine.Config{EventLog: "events.jsonl"}, store, m)
//	resp, err := e.Recommend(ctx, engine.RecommendRequest{User: 42, N: 20,
//		Context: engine.Context{Session: 7, Position: 40, Recent: shown}})
//
// Recommend runs these stages, timing each (Response.Timings) and checking
// the context's deadline before each:
//
//  1. features: the user's features as of the request's time, from the
//     store. A user the store does not know is answered from the
//     context's profile codes (cold start).
//  2. tower: the user tower maps them to the query vector.
//  3. ann: the index's K nearest reels (Config.K, default 1000), leaving
//     out Exclude and the session's Recent reels; then the FreshMax newest
//     reels uploaded within FreshWindow (so a reel uploaded a minute ago
//     can be shown before any index has learnt it); then ExploreMax reels
//     drawn at random from the exploration pool (reels with little
//     evidence). Each reel once, deleted reels never.
//  4. features again, for every candidate: reel and user×reel vectors and
//     content embeddings.
//  5. rank: the multitask ranker's probabilities per head (watch-through,
//     like, comment, share, follow) for every candidate.
//  6. postrank: the final score Σ weight·probability (the bundle's
//     weights, or Config.Weights), then the slots, described next.
//
// Every response carries the ranker's heads, the model version and the
// arm; a request keeps the Model it started with, whatever Swap does
// meanwhile. Swap installs another Model atomically: the seam for hot
// reload, rollback and A/B arms.
//
// # Slots, exploration and propensities
//
// Slots are filled one after the other. The greedy choice g for a slot is
// the best-scored candidate not yet placed whose author did not appear in
// the DiversityWindow-1 slots before it (the session's Recent reels count
// as the slots before the first): no author appears twice in any
// DiversityWindow (default 5) consecutive slots. The exploration set E
// holds the ExploreMax best-scored uncertain candidates (fewer than
// ExploreImpressions decayed impressions over the store's longest
// window); E_j is the part of it the diversity rule allows at slot j.
//
// When E_j is not empty, slot j is an exploration slot with probability
// Epsilon. An exploration slot picks from E_j:
//
//   - EpsilonGreedy: uniformly, each with probability q = 1/|E_j|;
//   - Thompson: each uncertain reel's watch-through rate has a Beta
//     posterior Beta(r·(n+s), (1-r)·(n+s)), where n is its impressions, r
//     its smoothed watch-through rate and s the store's PriorStrength (the
//     smoothed rate is exactly that posterior's mean). A request draws
//     ThompsonRounds rounds of one rate per E reel; an exploration slot
//     takes the winner (the highest draw among E_j) of one round chosen
//     uniformly, so reel i is picked with q_i = (rounds i wins)/rounds.
//
// The propensity of a served item is the probability that this policy put
// that reel in that slot, given the slots above it:
//
//	explored pick i:  ε·q_i + (1-ε)·[i = g]
//	greedy g:         (1-ε) + ε·q_g           (q_g = 0 when g is not in E_j)
//	any slot with E_j empty, or ε = 0: 1
//
// so a list's probability is the product of its items' propensities
// (TestPostrankPropensitiesExact checks this against the frequencies of
// many runs). For Thompson, the probabilities are given the request's
// draws, which are independent of the viewer's response, so inverse
// propensity weighting with them stays unbiased. Item.Source is
// SourceExplore for a slot an exploration draw filled; otherwise the pool
// the reel came from (the index, the fresh pool, the exploration pool).
// The client logs the propensity and the arm with the impression event.
//
// # The catalogue and events
//
// Upsert puts a reel in the store, embeds it with the served reel tower
// (the content part alone for a reel the tower has no id vector for) and
// adds it to the index; with no index that can take it, the reel waits in
// the fresh pool. Delete takes a reel out of the index and the pools.
// Swap catches an incoming model's index up with both. With
// Config.CatalogueLog, both are journaled (fsynced before they apply) and
// New replays the journal, so a restarted engine keeps them.
//
// Event validates a batch, appends the valid events to the event log and
// fsyncs it, then applies them to the store, in that order and one batch
// at a time: an acknowledged event is on disk, and the log replays into
// the same store. A crash in the middle of a write leaves a last line
// without its newline, which the next engine cuts off.
//
// # Errors
//
// Every error of a request wraps ErrBadRequest (a bad id, n, vector or
// time), ErrNotFound (a reel that does not exist or was deleted),
// ErrUnavailable (no model, or an event log that cannot be written), or
// the context's error when its deadline passed: a request whose deadline
// has already passed fails before any work.
//
// # Concurrency and allocation
//
// Every method is safe for concurrent use. A request takes its scratch
// (feature buffers, a ranker.Scorer, the post-rank buffers, a random
// source seeded from Config.Seed and a request counter) from a pool;
// RecommendInto with a reused Response allocates one or two objects a
// request (the index's result slice). Stats returns cumulative counters
// per stage for the server to export.
package engine
