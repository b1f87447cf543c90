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
//	e, err := engine.Open(engine.Config{Dir: "served"}, m, loadBaseStore)
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
//  3. ann: the index's K nearest reels (Config.K, default 600), leaving
//     out Exclude and the session's Recent reels; then the feature store's
//     candidate sources (Config.Sources: reels popular in the viewer's
//     country and in their language, recent reels of the authors they
//     follow, popular reels; see features.Store.Sources); then the FreshMax newest
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
// Swap catches an incoming model's index up with both.
//
// Event admits a batch by one rule, features.Store.Admit: a valid event,
// stamped at most Config.MaxLead (5 min) after the engine's clock (an
// event stamped 0 takes the clock), and within what the store can apply
// (its Horizon). The rest is rejected, counted, and neither logged nor
// applied. The rule is applied once, when an event is first accepted; a
// replay applies every logged event.
//
// # Arms, canaries and drift
//
// Users are spread over arms by a salted hash of their id (Config.ArmSalt):
// the control (the Model the engine started with, or one promoted or
// swapped in since), at most one canary (LoadCanary, at a share), and a
// popularity holdout (Config.HoldoutShare, SetShares) that bypasses the
// ranker: its candidates are ordered by their watch-throughs over the
// store's longest window, with no exploration. A growing share keeps the
// users it had. Every response names its arm; an impression logged with
// no arm gets its user's. Each arm has its own post-rank head weights.
//
// LoadCanary checks a model (the spec, the dimensions), runs probe
// requests through it (scores finite, within [0, 1], not constant, the
// index answering), catches its index up with the catalogue, and serves
// it. CanaryPolicy promotes it after enough impressions, and rolls it back
// when its watch-through per impression falls below the control's by a
// margin at a confidence, when its errors or degenerate answers (NaN or
// constant scores) or its p99 leave bounds. Promote, Rollback and
// SetShares do the same by hand; every change and its reason goes to the
// history (ArmsStatus), the log, and Config.OnArmsChange. ArmsStatus holds
// each arm's online metrics with 95% intervals.
//
// Experiments (SetExperiments) are arms at fixed shares beside the
// control, each with its own post-rank settings (ArmSettings: head
// weights, ε or no exploration, epsilon-greedy or Thompson, and whether
// exploration picks among the uncertain reels or the fresh ones, a
// fresh-reel share) and either its own model or the control's, whichever
// that is after promotions. They take the first buckets of the hash, so a
// canary or a holdout share moves none of their users.
//
// A Model with a training reference (SetReference) is watched for drift
// while it serves as the control: every Config.DriftSample-th impression
// that comes back becomes a row as training makes its rows, and each
// series' population stability index over a sliding window is in
// ArmsStatus(true) and Model.Drift.
//
// # Shards
//
// An engine serves one shard of the catalogue with Config.Shard (i of n;
// the zero Shard is all of it): the reels whose id the jump hash of
// internal/hashx places in shard i, the rule client.ShardOf applies. A
// sharded engine's index holds its reels alone: the model's index is cut
// to them when the engine starts and whenever a model is swapped in,
// loaded as a canary or an experiment (Index.Delete of the others, then
// Compact). The fresh and exploration pools take its reels alone, and the
// feature store's candidate sources propose its reels alone (each source
// fills its quota from this shard's part of its ranking, so the shards'
// proposals together are the unsharded one's). An Upsert, Delete or Score
// of another shard's reel is refused with ErrWrongShard before anything
// is written or logged (a misrouted request; Search and Recommend answer
// from the shard's reels).
//
// User features are replicated, not sharded: a client sends every event
// that names a user to every shard (client.Sharded.Event), so that each
// shard ranks with the same user features and a request needs one round
// trip. The engine admits and applies an event whatever reel it names, by
// the one rule live and replay share (features.Store.Admit): the store
// keeps the counters of other shards' reels too, which the user×reel and
// category features read, at the cost of every shard holding every reel's
// counters. An upload (an event that names no user) goes to its reel's
// shard alone, and joins the pools there only. A reel upserted after the
// split is known with its content (category, embedding) only to its shard,
// so another shard's history embedding and category rates of a user who
// watched it lack its part: they agree on every reel the shards were
// started with.
//
// With Config.Dir the folder records the shard it is served as
// (shard.json): it holds the catalogue changes of that shard alone, so
// Open refuses to serve it as another shard, or unsharded, unless
// Config.Reshard is set (a folder with state from before shards were
// recorded counts as unsharded). Stats and Health name the shard.
//
// # Durability
//
// With Config.Dir (Open; New with a Dir is Open over its store), every
// write is durable before it is acknowledged, and a restart over the same
// folder comes back to the state of an engine that never stopped:
//
//   - An Event batch goes to the event log, an Upsert or Delete to the
//     catalogue journal (both internal/wal: segment files, one writer,
//     files 0600). A write is appended and applied under one lock, so the
//     order in memory is the order in the logs; it is acknowledged once an
//     fsync holds it, and concurrent writes share one fsync (group
//     commit). A catalogue entry records how many events were logged
//     before it, and a replay interleaves the two logs as they were
//     applied, with the same results.
//   - A log that fails a write or an fsync stops taking writes
//     (fail-stop): every later write is answered ErrUnavailable, Health
//     says why, and a restart starts from what is on disk. A full disk is
//     ErrNoSpace. Nothing of a refused write is acknowledged, and the
//     errors name no path (the operator's log, Config.Logger, has them).
//   - A write with an idempotency key (EventKeyed, UpsertKeyed,
//     DeleteKeyed) is applied once however often it is sent: a retry is
//     answered with the first result, Replayed set. The key is logged with
//     the write and kept in checkpoints, so that a retry after a crash is
//     recognised; the engine remembers Config.MaxKeys keys.
//   - Checkpoint (every CheckpointInterval, or once the event log passes
//     CheckpointBytes) snapshots the store, writes checkpoint.json (where
//     the logs resume, the reels upserted and deleted since the model,
//     the keys), drops the log segments the snapshot holds and the older
//     snapshot, and compacts the index's deleted slots. A restart loads
//     the snapshot and replays the tails; the folder holds one snapshot
//     and what was written since.
//   - A damaged record before a log's end is an error naming it, not a
//     silent skip; a torn last record (a crash in the middle of a write
//     that was never acknowledged) is cut.
//
// A write is visible to requests from the moment it is applied, a little
// before its fsync returns; if that fsync fails, the engine has served
// from a write it then refuses (and stops taking writes).
//
// # Errors
//
// Every error of a request wraps ErrBadRequest (a bad id, n, vector or
// time), ErrNotFound (a reel that does not exist or was deleted),
// ErrUnavailable (no model, or a log that cannot be written),
// ErrWrongShard (a reel of another shard, see Shards), or
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
