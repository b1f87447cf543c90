// Package train trains reelrank's models from an event log and judges them
// against a popularity baseline and, for a simulated world, the world's
// truth.
//
//	w, _ := sim.Open("world")
//	res, err := train.Run(ctx, w, "world/events.jsonl", train.Config{})
//	// res.Bundle: ranker, user tower, reel tower, report; save with ranker.Save.
//	// res.ReelIDs, res.ReelVectors: the catalogue's reel vectors, for the index.
//	// res.Store: the feature store after the log, for serving.
//	// res.Reference: the drift reference of the ranker's inputs and heads.
//
// Any log trains, with no simulator: [RunCatalogue] takes a [Catalogue]
// and an optional [Oracle] ([WorldOracle] adapts a *sim.World; Run is
// RunCatalogue with the world's catalogue and oracle):
//
//	cat, err := train.OpenCatalogue("model")              // served folder, snapshot or export
//	res, err := train.RunCatalogue(ctx, cat, "model", nil, train.Config{})
//
// # The catalogue
//
// A Catalogue is what is known before the log: users with profile slots,
// authors with follower counts, follows, reels with author, upload time,
// duration, language and content embedding. It comes from a world
// ([CatalogueOfWorld]), a feature store or its snapshot
// ([CatalogueOfStore], [LoadSnapshotCatalogue]: the static parts only,
// never the counters, which would hand a snapshot's future to every row;
// its follow graph does include the follow events the store applied), a
// served model folder ([LoadServedCatalogue]: its features.snap, then the
// reels upserted and deleted while serving, from served/checkpoint.json,
// its snapshot and the catalogue journal served/catalogue-*.jsonl; a torn
// last journal line is skipped), or an export ([ReadCatalogue],
// [Catalogue.Write]). [OpenCatalogue] tells the three files apart: a
// folder is a served model folder, a file starting with the snapshot magic
// a snapshot, anything else an export.
//
// The export is JSON lines, UTF-8, one object per line, blank lines
// skipped, unknown keys ignored. The first line is the header; then one
// line per user, author, follow and reel, in any order (a later reel of
// the same id replaces the earlier):
//
//	{"kind":"catalogue","version":1,"embed_dim":32}
//	{"kind":"user","id":42,"country":3,"language":1,"age":2,"device":0}
//	{"kind":"author","id":77,"followers":1200}
//	{"kind":"follow","user":42,"author":77}
//	{"kind":"reel","id":9001,"author":77,"upload":1767571200123,"duration":14.5,"language":2,"category":-1,"embedding":[0.12,-0.03,...]}
//
// Keys: user: id (required), country, language, age, device: one-hot
// slots from 0, -1 or absent for "other or unknown". author: id
// (required), followers (>= 0, default 0). follow: user and author
// (required). reel: id and author (required), upload (ms since the Unix
// epoch, default 0: unknown), duration (seconds in [0, 1e6)), language (a
// user language slot plus one; 0 or absent: unknown), category (-1 or
// absent: derived from the embedding), embedding (exactly embed_dim finite
// numbers, or absent). Ids and counts are integers >= 0. A bad line (not
// a JSON object, no or an unknown kind, a missing key, a negative id, an
// embedding of the wrong dimension) fails the read; the error names the
// first ten bad lines by number.
//
// # The events
//
// RunCatalogue's events ([EventParts]) are a comma-separated list of a
// log file (as `reelrank simulate` writes it), a folder of log segments
// events-<20-digit sequence>.jsonl (as `reelrank serve` writes them into
// served/), or a served model folder (its served/ segments). A segment
// folder's archive/ (engine.Config.ArchiveDir, where checkpoints move the
// segments they drop) is read first, then the folder, in sequence order.
// The newest segment of a folder may end in a torn line (a running
// server's): it is left out. The server's extra keys ("req", "req_n",
// "req_rej", "req_why") are ignored as any unknown key is. Without an
// oracle that knows them, the days are the log's: from the UTC day of its
// first event to that of its last.
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
// comes from the point-in-time replay. A negative TestDays holds out no
// test day, for a retrain that should learn from every day but the
// validation day: the report then measures the validation days, which
// early stopping has seen, and says so.
//
// Position: the session position is a user feature (sess_log_pos, with
// sess_log_secs beside it). RankerConfig.NoPosition trains without them
// (the ablation that measures them); RankerConfig.FixPosition records in
// the bundle a position at which the engine scores every candidate.
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
// oracle (the simulator's true probability, with an oracle only) and of a popularity baseline
// (the reel's positives so far), the share of the oracle's lift, the
// expected calibration error, and the same on the exploration arm's slice.
// For retrieval, at the first test instant, for a sample of test users,
// for the towers and for the 1,000 most watched reels: recall@1000 of the
// reels each user watched through on the test days (among those uploaded
// by then), and with an oracle recall@1000 of the oracle's top 100.
// Without an oracle the oracle's figures are zero, left out of
// report.json and of report.md (Report.Oracle says which). [Report]
// renders as report.md and report.json.
//
// # The drift reference
//
// Result.Reference holds the quantile bins (package drift) of the served
// ranker's inputs, "user/<name>", "reel/<name>" and "cross/<name>" for
// the features of the store's Spec, and of its predicted probability per
// head, "head/<task>", over up to 20,000 training rows spread over the
// training days ([ReferenceNames]).
//
// TestCeiling and TestRetrievalCeiling measure what the log can support at
// all: the oracle's own score with the latent truth known up to noise.
//
// The metrics are exported: [AUC] (weighted, ties counted as one half),
// [ECE], [LogLoss], [RecallAtK] and [TopK].
package train
