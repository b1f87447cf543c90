// Package train trains reelrank's models from event logs and judges them.
//
// So far it holds LoadWorld, which puts a simulated world's catalogue into
// a feature store (profiles, follower counts, follows, reels with their
// content embeddings, then the categories), and the evaluation metrics the
// reports use: AUC (weighted, ties counted as one half, one sort), the
// expected calibration error, log loss, and recall@K with a top-K
// selection on the kernels.
package train
