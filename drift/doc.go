// Package drift compares what a model sees while serving with what it saw
// in training.
//
// A Reference holds, for each named series (an input feature of the
// ranker or one of its heads), the bin edges of the training distribution's
// quantiles and the share of training values in each bin, plus a bin for
// NaN. A Builder makes a Reference from a sample of training rows (a
// reservoir, so that any number of rows fits in bounded memory). A Monitor
// keeps the same bins' counts over a sliding window of the most recent
// serving values and reports each series' population stability index
//
//	PSI = Σ_i (a_i − e_i) · ln(a_i / e_i)
//
// where e_i is the training share of bin i and a_i the window's, both
// floored at a small epsilon. By the usual reading, a PSI under 0.1 is
// stable, 0.1 to 0.25 a shift worth a look, and over 0.25 drift.
//
// The package depends on nothing of the project's: training builds
// references and the engine monitors them.
package drift
