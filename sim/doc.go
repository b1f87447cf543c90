// Package sim is a synthetic Reels world with a known ground truth, so that
// recommendation models can be trained on its logs and judged against the
// truth that produced them.
//
// # The world
//
// Users (ids 1..Users) have a country (which shifts their time of day),
// a language, an age bucket, a device, an activity level and a latent
// interest over Topics topics: a log-affinity per topic made of a stable
// core (two or three favourite topics) plus a drifting part that moves
// smoothly between random anchors every DriftPeriod days, so a user's taste
// on day 10 differs from day 0 but stays correlated with it.
//
// Every user may author reels (an author's id is the uploading user's id);
// authors have a latent quality, a topic focus and followers from the
// initial follow graph. The catalogue holds Reels reels at Start, uploaded
// over the preceding weeks, and grows every simulated day as about
// UploadRate of the users upload one reel each, at times that follow a
// diurnal curve in their local time. Reel ids are in upload order, so the
// reels available at time t are ids 1..World.Available(t). A reel has a
// topic mix of one to three topics, a duration of 5 to 90 s, a latent
// quality, a content embedding that is a noisy view of its topics (the
// topic prototypes mixed by weight, plus Gaussian noise, of unit norm) and
// a description made of its topics' words.
//
// # Behaviour: the oracle
//
// World.Probs(user, reel, Context{Time, Position, Prev}) returns the true
// probabilities of an impression: Skip (leaving within 2 s), Like,
// Comment, Share and Follow (marginals per impression), and the law of the
// fraction watched, whose tail Probs.WatchThrough(theta) gives exactly. All
// heads share one score of the user's interest in the reel's topics that
// day, reel and author quality, a followed author, a language mismatch, the
// local hour, a repeat of the previous reel's topic, and fatigue with the
// position in the session; skips also rise with duration, position and
// slow devices. The coefficients are Config.Oracle. The session runner
// samples every outcome from exactly these probabilities, so Probs bounds
// what any model can reach on the log (an oracle AUC); World.ScoreAll
// scores a user against the whole catalogue at once.
//
// # Exposure: policies
//
// Users only see what a Policy serves. Generate runs each user's sessions
// (their number per day scales with activity and the weekday, their starts
// follow the diurnal curve, their length depends on the outcomes) and asks
// the policy for every slot; the log records the policy's exact propensity
// of the reel it showed and its arm. RandomPolicy is uniform over the
// available catalogue; PopularityPolicy samples by smoothed, decaying
// popularity learnt from the log each day; Mixture (the default,
// NewMixture(0.1)) serves popularity with a uniform "explore" slice. See
// Policy for the concurrency contract that keeps the log deterministic.
//
// # Files
//
// Generate(ctx, cfg, dir, opt) writes into dir, each file under a
// temporary name renamed at the end, world.json last:
//
//	world.json    the manifest: format "reelrank-sim", version, the Config
//	              (the oracle's coefficients included), counts, the tables of
//	              countries, languages, devices, age buckets and topic words,
//	              and every file's size and CRC-32C.
//	users.bin     users in id order (see below).
//	reels.bin     reels in id order: upload ms int64, author uint32, quality
//	              float32, topics [3]uint8, weights [3]uint8 (sum 255),
//	              duration s uint8, language uint8 (24 bytes).
//	follows.bin   the initial follow graph as CSR: Users+1 uint64 offsets,
//	              then uint32 followee ids, ascending per follower.
//	reels.fvecs   content embeddings in reel id order, TEXMEX .fvecs (per
//	              vector an int32 dimension then float32 values), ready for
//	              `reelrank index --vectors`.
//	reels.tsv     id, author, upload_ms, duration_s, language, description.
//	events.jsonl  the event log, one eventlog line per event, ts ascending.
//
// The .bin files share a 40-byte header: magic "RRSIMBIN", the kind padded
// to 8 bytes, format version uint32, record size uint32, record count
// uint64 and two uint32 parameters; after the records comes a big-endian
// CRC-32C of header and records. All numbers are little-endian. A user
// record is activity, author quality and creator weight (float32),
// followers and reels (uint32), country, language, age bucket, device and
// two focus topics (uint8) and two bytes of padding, then (1+anchors)·Topics
// float32 of interest: the core, then the drift anchors.
//
// The log holds, per impression, an impression event (ts, user, reel,
// author, session, pos, prop, arm), then a skip (secs < 2) or a watch
// (secs, frac; frac above 1 when the reel looped), then possibly like,
// share, follow and comment a little later (follow also carries reel,
// session and pos); and an upload event (ts, reel, author) per reel
// uploaded during the days. Session ids are dense from 1. The same Config
// gives the same bytes, whatever GenerateOptions.Threads or GOMAXPROCS.
//
// Open(dir) loads a world back, checking versions, sizes, checksums and
// every record (errors wrap ErrCorrupt, ErrVersion or fs.ErrNotExist); the
// embeddings stay in the mapped file. Verify(dir) checks every checksum.
//
// # Scale
//
// A reel costs 28 bytes of memory (its embedding and description are
// derived from its id and the seed when written), a user 24 bytes plus
// its interest vectors, and Generate holds about one simulated day of
// events at a time, so a million users and ten million reels fit in a few
// gigabytes.
package sim
