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
package bench
