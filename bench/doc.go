// Package bench holds the benchmark harnesses that `go test -bench` and
// `reelrank bench` share, so that a figure printed by the command line and a
// figure in BENCHMARKS.md come from the same code.
//
// KernelFigures times the hot loops of package kernels at the SIMD level the
// process runs (cap it with REELRANK_SIMD to time a lower level), checks each
// result against a float64 or sorting oracle first, and reports throughput in
// the unit that makes each kernel comparable with its peers: GB/s for
// bandwidth-bound scans, GFLOP/s for arithmetic, items/s for selection.
//
// RunANN builds or loads an IVF-PQ index and measures recall, QPS and
// latency per nprobe (`reelrank bench ann`).
//
// Load is the open-loop load generator behind `reelrank bench load`: it
// sends requests at fixed offered rates on a schedule that does not wait
// for answers, measures each latency from the request's intended send time
// (so a stall shows in every request it delays: coordinated omission
// corrected), and reports HdrHistogram percentiles, achieved rate,
// goodput, errors by type and the server's stage timings per step. With
// LoadConfig.Shards it drives a client.Sharded over several shards
// (`reelrank bench load --shards`) with partial answers allowed: an answer
// that misses shards counts as a success and as partial, and each step
// reports the merge overhead, the time fanning out and merging added to
// the slowest shard's round trip, request by request (client's
// ShardedOptions.Observe), at p50 and p99.
//
// Calibrate measures the machine for `reelrank calibrate` into a
// plan.Calibration: the kernels' rates, the index's recall and queries a
// second across nprobe on generated catalogues of the reels1m set's shape
// (two sizes, so that package plan can fit the cost of a query to the
// catalogue and nprobe), build and add rates, the ranker's candidates a
// second, the wire's cost a request and the merge of shards' answers.
// ServedLatency and ServedSaturation time a running server with the Load
// mix: open loop at a rate too light to queue (the base latency the plan's
// queue adds its waits to, after a warm-up whose times are dropped) and
// closed loop (the most it carries). ThisMachine names the CPU, its cores
// and SIMD level.
//
// Every `reelrank bench` command appends a Run to a history file
// (AppendRun: one JSON line, one write to a file opened O_APPEND, then
// fsync; bench/history.jsonl in the checkout by default): the CPU, cores
// and SIMD level, the commit the binary was built from (Commit), the time,
// the command's settings and its Metrics, each with its unit, the way it
// improves and, where the command repeats (--count), one sample a
// repetition. ReadHistory skips a corrupt or truncated line with a warning
// naming it. SelectRuns picks runs by "last", "prev", index or commit
// prefix; Compare sets two selections side by side the way benchstat does:
// the medians, the change, and a Mann–Whitney U test (MannWhitney: exact
// for small samples without ties, the normal approximation otherwise) whose
// p-value must fall under alpha for a change to count, and a significant
// change for the worse past a threshold is a regression (`reelrank bench
// compare`, and `bench check` against bench/baseline/<cpu>.jsonl, which
// make bench-check runs). PlotHistory draws p99 over commits, recall
// against queries a second, and latency against offered load as SVG.
package bench
