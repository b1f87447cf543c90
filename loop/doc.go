// Package loop closes the learning loop on a simulated world: the
// simulator's users open sessions on the simulator's clock and are served
// by the engine itself (engine.Recommend, the path a TCP request takes);
// their impressions and outcomes, drawn from the world's oracle, flow back
// as events into the engine's log and feature store; and every simulated
// night the models are retrained on the engine's log so far and go
// through the engine's canary.
//
// # Arms
//
// The users are spread over arms by the engine's salted hash, an equal
// share each: the control (ArmEpsilon: the model trained with
// inverse-propensity weights, ε-greedy exploration of uncertain reels),
// and engine experiments beside it: no exploration (ArmNone), Thompson
// sampling (ArmThompson), a fresh-reel share (ArmFresh), a model trained
// without inverse-propensity weights (ArmNoIPS), and the popularity
// holdout (ArmHoldout). Every night the control's new model is loaded as
// a canary on part of the control's users; the engine promotes it after
// enough impressions or rolls it back by its rules, and a canary still
// loaded at the next midnight is promoted then. The experiments on the
// control's model follow it; ArmNoIPS gets its own new model after the
// engine's probe requests pass.
//
// # Days
//
// The simulator's own policy (popularity with a uniform slice) serves
// the first Config.Warmup days, as the logs of a system before this one
// would. The engine observes the served events every Config.Period
// (sim.GenerateOptions.Period), so its counters and session features are
// at most a period old. Training at midnight uses every day but the last
// for training and the last for validation (train.Config.TestDays < 0).
//
// # The report
//
// Run writes report.md (with SVG charts beside it) and report.json: per
// day and arm, the watch time per user, the watch-through rate, the
// distinct reels and authors served (catalogue and author coverage), the
// fresh-reel share, the distinct topics per active user, and the oracle's
// regret (per sampled impression: the best available reel's true
// watch-through probability for the user at that time, less the served
// reel's); and per night the models trained, their validation AUC and
// retrieval recall beside the oracle's, and what became of them.
//
// With Config.Threads = 1 a loop is deterministic; with more, the
// sessions of a period run in parallel and the engine's exploration draws
// depend on their order.
package loop
