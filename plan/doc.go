// Package plan sizes a reelrank fleet from figures measured on a machine.
//
// `reelrank calibrate` measures the machine it runs on (the kernels'
// rates, the index's cost and recall over nprobe on generated catalogues of
// two sizes, the ranker's candidates a second, the engine's Recommend on a
// served model stage by stage, the wire's cost a request, the memory of a
// user and of a reel) and writes a Calibration. Make turns a Calibration
// and a Target (reels, requests a second, a p99 and a recall) into a Plan:
// shards, replicas a shard, cores, memory and GPUs a replica, with every
// step of the arithmetic in Plan.Steps:
//
//   - the index's cost a query, t(n, p) = A + B·L + C·p + D·n·p/L, fitted
//     to the calibration's sweep, and the nprobe a recall needs as the
//     catalogue grows, fitted across its two sizes;
//   - a shard's request on one core: the calibrated stages, the ranker's and
//     the features' cost scaled by the candidates a shard ranks (each of s
//     shards recalls k/s plus three binomial standard deviations);
//   - the queue: M/G/c with Erlang C's chance of waiting and Allen and
//     Cunneen's correction for the service time's spread, its exponential
//     tail convolved with the calibrated distribution of the service time,
//     under a utilisation bound;
//   - the fan-out: every shard must keep its 0.99^(1/s) quantile for the
//     merged answer to keep p99, plus the merge and a network round trip;
//   - memory: the index's bytes a reel in each layout, the feature store's
//     users (replicated on every shard) and reels, the model, the Go heap's
//     headroom;
//   - indexing a day's new reels.
//
// WriteReport writes the plan as Markdown with SVG charts drawn by
// gonum.org/v1/plot: QPS against recall, p99 against offered load, and cost
// against catalogue size.
//
// # Kubernetes
//
// EmitK8s writes a Fleet (FleetOf a Plan) as manifests, one file per
// shard, NAME-shard-I.yaml: a headless Service (replica J answers at
// NAME-shard-I-J.NAME-shard-I), a PodDisruptionBudget allowing one replica
// down at a time, and a StatefulSet whose pods run `reelrank serve --shard
// I/N --bundle /var/lib/reelrank/model` with the plan's cores, memory and
// GPUs as requests (memory and GPUs also as limits, no CPU limit,
// GOMAXPROCS the cores). Each pod has one volume at /var/lib/reelrank,
// sized for the model and its logs together (the archive must be on the
// logs' file system). Pods run as non-root with a read-only root, and are
// probed at /healthz and /readyz on the metrics port. The token comes from
// a Secret the operator creates (Fleet.TokenSecret, default NAME-token):
// no manifest holds one, and no fleet serves without one. The image is the
// repository's Dockerfile, built by `make image`.
package plan
