// Package train trains reelrank's models from event logs and judges them.
//
// So far it holds the evaluation metrics the reports use: AUC (weighted,
// ties counted as one half, one sort), the expected calibration error,
// log loss, and recall@K with a top-K selection on the kernels.
package train
