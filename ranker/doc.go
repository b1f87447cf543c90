// Package ranker holds reelrank's models and their inference: the
// multitask ranker that orders a request's candidates, the two towers of
// retrieval, and the bundle folder a trained model version ships in.
//
// # The ranker
//
// A [Multitask] reads one input row per candidate, x = [user | reel |
// cross | emb]: the feature store's vectors (features.Request's UserVec,
// ReelVec, CrossVec) and the reel's content embedding (Emb; the user's
// watch-history embedding is inside the user vector). A shared bottom MLP,
// or an [MMoE] (expert MLPs mixed per task by softmax gates over x), feeds
// one sigmoid head per task: watch-through, like, comment, share, follow.
// A candidate's score is Σ_t Weights[t]·p_t.
//
//	m, _ := ranker.NewMultitask(store.Spec(), ranker.Config{Hidden: []int{256, 256, 128}}, rng)
//	var scores ranker.Scores
//	err := m.Score(req, &scores) // scores.Probs: n×5, scores.Score: n
//
// Training fills the exported fields ([Dense] layers of In×Out row-major
// weights, biases and a kernels.Activation); [NewMultitask] only makes a
// random start. Validate reports shapes that do not fit and weights that
// are not finite; Score refuses inputs of the wrong length and NaN or
// infinite features with an error wrapping [ErrBadInput], naming the
// candidate and the feature.
//
// # Hoisting the user out of the first layer
//
// The user's features are the same for every candidate, so the first
// layer's weights are split by input rows, W1 = [W1u; W1rest], and
//
//	x·W1 + b1 = rest·W1rest + (u·W1u + b1) = rest·W1rest + z
//
// z is one row, computed once per request; the GEMM of all n candidates'
// rest rows then takes z as its bias (the kernels add the bias per output
// column, which is what z is). At the store's widths this cuts the first
// layer's inner dimension from 373 to 143 (BenchmarkFirstLayer: 2.6x). The
// later layers run as one GEMM over n rows each; the heads run as one GEMM
// of width×T with the sigmoid fused. In an MMoE, the gates are hoisted the
// same way, and because a head is linear before its sigmoid, each expert's
// output is projected on all heads (n×T) and the projections are mixed,
// instead of mixing n×width outputs per task.
//
// The weights are packed for the kernels on first use ([Multitask.Prepare]).
// Precision [BF16] packs them with kernels.PackBF16 and runs
// kernels.GemmBF16: about 1.8x the speed; on random inputs its
// probabilities differ from f32 by 1e-3 on average and 6e-3 at most
// (TestBF16Accuracy logs the figures).
//
// # Concurrency and allocation
//
// A prepared model is immutable and safe to share between goroutines. The
// scratch of a request lives in a [Scorer]: one per goroutine
// (Multitask.NewScorer), or let [Multitask.Score] take one from its pool.
// A warm Scorer scores without allocating.
//
// # The towers
//
// [UserTower] maps the user vector through an MLP to a unit vector.
// [ReelTower] adds a learned per-reel-id vector to an MLP over the reel's
// features and content embedding, then normalises; a reel without an id
// vector (new since training) gets the content part alone, so new reels
// are retrievable from their first impression.
//
// # The bundle
//
// [Save] writes a folder:
//
//	model.fb     flatbuffers (bundle.fbs, root Model, file identifier "RRMB"):
//	             format version, model version, the feature spec's names and
//	             fingerprint, every layer's shape, activation, weights and
//	             biases, tasks and score weights, precision, both towers, the
//	             reel-id table with its ids, training time range, creation time
//	bundle.json  {"format":"reelrank-bundle","format_version":1,"model_version":...,
//	             "files":[{"name","size","crc32c"}...]}
//	report.md    the trainer's report, verbatim
//	report.json  the same as data, verbatim
//
// It writes a temporary folder beside the target, syncs every file and the
// folder, and renames it into place, so a crash leaves the old bundle or the
// new one, never part of one. [Load] checks the manifest, each file's size
// and CRC-32C, model.fb's identifier and every table, vtable, vector and
// string offset before it touches the flatbuffers accessors (the Go
// flatbuffers runtime does not verify, and a bad offset would panic), then
// validates the models; any failure wraps [ErrBadBundle]. [Bundle.Check]
// refuses a bundle trained on another feature spec with [ErrSpecMismatch].
package ranker
