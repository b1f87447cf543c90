// Package train trains reelrank's models from an event log and judges them
// against the simulated world's truth.
//
//	w, _ := sim.Open("world")
//	res, err := train.Run(ctx, w, "world/events.jsonl", train.Config{})
//	// res.Bundle: ranker, user tower, reel tower, report; save with ranker.Save.
//	// res.ReelIDs, res.ReelVectors: the catalogue's reel vectors, for the index.
//	// res.Store: the feature store after the log, for serving.
//
// # Rows
//
// [Run] loads the world's catalogue into a feature store ([LoadWorld]) and
// replays the log through it (features.Store.Replay): every impression
// becomes a row holding the features as they were just before it, and the
// labels that followed within Config.LabelWindow. Watch-through is a
// fraction watched of at least Theta without a skip (default the store's
// 0.8); every other impression is its negative. Like, comment, share and
// follow are further heads. Rows carry the serving propensity; with
// Config.IPS the ranker weighs them by min(1/p, IPSClip·median(1/p)),
// scaled to mean 1.
//
// The split is by time: the last TestDays days of the world are the test
// set, the ValidDays before them the validation set, and every earlier day
// trains. Nothing of a later day reaches an earlier row, because each row
// comes from the point-in-time replay.
//
// # The ranker
//
// A shared bottom (default 256-256-128, ReLU) over [user | reel | cross |
// content embedding] with one logit per head, trained on the weighted sum
// of the heads' binary cross-entropies with Adam, in mini-batches split
// across the cores (each worker's gradients summed). Inputs are
// standardised while training; the export folds the standardisation into
// the first layer, so the served model reads the store's raw features.
// Training stops when the validation loss has not improved for Patience
// epochs and keeps the best epoch. The bundle's precision is bf16 when it
// costs less than [MaxBF16AUCLoss] of test AUC on every head (Auto).
//
// # The towers
//
// The user tower maps the user vector, the reel tower the reel's features
// and content embedding plus a learned vector per reel id (for reels with
// MinCount training watch-throughs), both to unit vectors. They train on
// the training days' watch-throughs with a sampled softmax whose
// negatives are the other rows' reels and reels drawn uniformly from the
// catalogue, each logit corrected by the log of its column's expected
// count (the sampling-bias correction). Id vectors are dropped from a
// share of the examples, so that the content part alone places a new
// reel. The reel tower reads every reel's features as of the end of the
// training days, as retrieval reads the whole catalogue as of one instant.
//
// # The report
//
// On the test days, per head: AUC of the f32 and bf16 rankers, of the
// oracle (the simulator's true probability) and of a popularity baseline
// (the reel's positives so far), the share of the oracle's lift, the
// expected calibration error, and the same on the exploration arm's slice.
// For retrieval, at the first test instant: recall@1000 of the oracle's
// top 100 reels for a sample of test users, for the towers and for the
// 1,000 most watched reels. [Report] renders as report.md and report.json.
//
// TestCeiling and TestRetrievalCeiling measure what the log can support at
// all: the oracle's own score with the latent truth known up to noise.
//
// The metrics are exported: [AUC] (weighted, ties counted as one half),
// [ECE], [LogLoss], [RecallAtK] and [TopK].
package train
