// Package ann is reelrank's recall stage: an IVF-PQ index over reel
// embeddings that finds about a thousand candidates for a user vector in a
// millisecond or two, on one core.
//
// # How it works
//
// A k-means coarse quantizer ([TrainKMeans]) splits the catalogue into
// Lists inverted lists. Each vector is stored in the list of its nearest
// centroid as a product-quantizer code: M sub-quantizers of 16 centroids
// (4-bit codes, scanned 32 vectors at a time with in-register table lookups
// by kernels.FastScan4) or of 256 (8-bit codes, kernels.PQScan8). For inner
// product the code describes the residual from the centroid, so the score
// is <q, c> + <q, r> and one lookup table serves every list; for L2 the
// vector itself is coded unless Options.Residual asks for residuals.
// Options.OPQ first learns an orthogonal rotation that lowers the
// quantization error where a few directions carry most of the variance.
//
// A search ranks the lists by <q, c> plus a share of each list's radius
// (SearchOptions.RadiusWeight), scans the NProbe best with a running
// candidate reservoir whose bound becomes the fast-scan filter's threshold,
// then re-ranks the best K*RefineFactor candidates exactly against float16
// (or float32) copies of the vectors, prefetching them as it goes.
// Exclusions and an allow bitmap are applied to candidates inside the scan,
// so K results come back whenever K eligible vectors live in the probed
// lists.
//
// # Online updates
//
// Add assigns and encodes new vectors with the trained quantizers and
// appends them to their lists; Delete marks them dead at once (a running
// search never returns them) and Compact reclaims their space. Searches
// hold a list's read lock only while scanning it, so writers never wait
// long, and Add, Delete and Search may all run at once.
//
// # Files
//
// Save writes a versioned file with a checksum per section, to a temporary
// file renamed into place; Open maps it read-only and is ready at once. The
// TEXMEX .fvecs/.ivecs/.bvecs and Fashion-MNIST IDX readers ([ReadVectors])
// load benchmark data. Bad input of every kind (dimension mismatches, NaN or
// Inf, k or nprobe out of range, colliding ids, corrupt or truncated files)
// is an error that says what is wrong, never a panic.
package ann
