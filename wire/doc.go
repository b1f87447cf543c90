// Package wire is reelrank's wire protocol: the flatbuffers schema
// (reelrank.fbs), plain Go messages, the encoder, a decoder that verifies
// every byte it trusts, and the length-prefixed frames that carry them over
// TCP. The server and the client use only this package's API; the Go code
// flatc generates stays in internal/fb.
//
// # Using it
//
// A client encodes an envelope, writes it as a frame, and matches the
// answer by request id:
//
//	var enc wire.Encoder
//	frame, err := enc.EncodeFrame(&wire.Envelope{RequestID: 1, Timeout: 20 * time.Millisecond,
//		Body: &wire.RecommendRequest{User: 42, N: 20}})
//	conn.Write(frame)
//
//	payload, err := wire.ReadFrame(br, wire.DefaultMaxFrame, buf)
//	var env wire.Envelope
//	err = wire.Decode(payload, &env)
//	switch m := env.Body.(type) {
//	case *wire.RecommendResponse: // m.Items...
//	case *wire.Error:             // m.Code, m.Message
//	}
//
// A server does the reverse, and answers a frame it cannot decode with
// wire.AsError(err) as the body, under the request id Decode managed to
// read (see Decode).
//
// # Frames
//
// A connection carries frames in both directions, each:
//
//	+----------------------+----------------------------------+
//	| length: uint32, LE   | payload: length bytes            |
//	+----------------------+----------------------------------+
//
// The payload is one flatbuffer whose root table is an Envelope and whose
// file identifier (bytes 4..8 of the payload) is "RRW1". A length of 0 is
// malformed. A reader has a maximum payload size (DefaultMaxFrame, 4 MiB,
// unless configured; never above MaxFrameLimit, 1 GiB): a longer frame is
// skipped, its bytes read and dropped, and answered with an error, so the
// stream stays in step. Encoder.EncodeFrame produces a whole frame (a
// size-prefixed flatbuffer is exactly this layout); WriteFrame frames a
// payload; ReadFrame reads one.
//
// # The envelope
//
//	table Envelope { request_id:ulong; timeout_us:ulong; body:Body; }
//
// request_id is chosen by the client, unique among its requests in flight
// on the connection; clients number from 1. Every response carries the id
// of the request it answers. Requests may be pipelined (sent without
// waiting for answers) and the server may answer them in any order: the id,
// not the order, matches them. Id 0 in a response means the server could
// not read the id of the frame it answers (a broken envelope); a client
// cannot tell which of its requests that was and should treat the
// connection as broken, failing its pending requests.
//
// timeout_us is a relative budget, not a wall-clock deadline, so that the
// clocks of client and server need not agree: the server's deadline is the
// moment it read the frame plus timeout_us microseconds. 0 means the
// client sets none and leaves the budget to the server's default (package
// server: Config.DefaultTimeout, which a server may also cap with
// Config.MaxTimeout). It is at most MaxTimeout (one hour). A request whose deadline
// has passed before or while it is served is answered DeadlineExceeded.
// In Go it is Envelope.Timeout, rounded up to whole microseconds so that a
// positive timeout never becomes "none".
//
// body is a flatbuffers union of the messages below; the union's type is
// Kind. A body type this side does not know is ErrUnknownMessage; an
// envelope without a body is malformed.
//
// # Messages
//
// Each request kind k (odd) is answered by kind k+1, or by an Error.
// Times are milliseconds since the Unix epoch, as in the event log;
// durations are microseconds on the wire (time.Duration in Go); ids are
// non-negative int64.
//
//	kind  request            response            what
//	1/2   RecommendRequest   RecommendResponse   the N best reels for a user
//	3/4   ScoreRequest       ScoreResponse       the ranker's probabilities of given reels
//	5/6   SearchRequest      SearchResponse      the K nearest reels to a vector
//	7/8   UpsertRequest      UpsertResponse      add or replace a reel
//	9/10  DeleteRequest      DeleteResponse      remove a reel (NotFound if unknown)
//	11/12 EventRequest       EventResponse       a batch of events for the feature store and log
//	13/14 StatsRequest       StatsResponse       the server's counters
//	15/16 HealthRequest      HealthResponse      whether the server can serve
//	17    -                  Error               any request's failure
//	18    (unused, so that requests stay odd and responses even)
//	19/20 AuthRequest        AuthResponse        the connection's token (see Authentication)
//	21/22 AdminRequest       AdminResponse       model changes and status (see Administration)
//
// Context (in Recommend and Score): time_ms, session, position (the slot
// being filled, from 0), the profile codes country, language, age_bucket
// and device (numbered from 1 in the feature store's order, 0 unknown;
// used for users the engine does not know), and recent: the reels shown
// earlier in the session, most recent last.
//
// RecommendRequest: user, context, n (1..MaxN), exclude (reels never to
// return). RecommendResponse: items, each {reel, score (the final score the
// list is ordered by), probs (one per head), propensity (the probability
// that the policy placed this reel here, in (0, 1], to log with the
// impression), source (Ann, Fresh or Explore)}; heads (the names of the
// ranker's heads in the order of probs); model_version; arm (the A/B arm);
// timings, a struct of the microseconds spent in features, tower, ann, rank,
// postrank and in total, and the candidates from ann, the fresh pool and
// the exploration pool, and how many were ranked; missing_shards (at most
// MaxShards shard indexes): a server leaves it empty, and a client that
// merges the answers of several shards (client.Sharded) lists there the
// shards it went without, so that a merged answer passed on says it is
// partial.
//
// ScoreRequest: user, context, reels (at most MaxCandidates).
// ScoreResponse: heads, scores (one per reel, in request order), probs
// (len(scores) rows of len(heads) values), model_version.
//
// SearchRequest: vector (1..MaxDim values; its dimension is the engine's to
// check), k (1..MaxK), nprobe (0..MaxNprobe, 0 for the index's default),
// exclude. SearchResponse: ids and scores, best first (higher is nearer);
// missing_shards, as in RecommendResponse.
//
// UpsertRequest: reel {id, author, upload_ms, duration (seconds), category
// (-1, the default, derives it from the embedding), embedding (0..MaxDim
// values), description, language (a profile code from 1; 0 unknown)}, key.
// UpsertResponse: replaced, replayed. DeleteRequest: id, key.
// DeleteResponse: replayed.
//
// EventRequest: events (at most MaxEvents), each with the event log's
// fields: type (numbered as eventlog.Type), has (eventlog.Field bits: which
// fields the event carries), time_ms, user, reel, author, session,
// position, propensity, arm, seconds, fraction; and key. The engine
// validates each event as the event log does. EventResponse: accepted,
// rejected, the reason the first rejected event was refused, and replayed.
//
// The key of the three writes and the replayed flag of their answers are
// the next section's.
//
// StatsResponse: uptime_us, requests, errors (errors[c] counts the error
// responses of code c), index_size, model_version, connections, in_flight,
// events. HealthResponse: ok and a status line.
//
// # Idempotent writes
//
// A client that loses its connection with a write in flight cannot tell
// whether the server applied it. So that it may send it again, the writes
// (Upsert, Delete, Event) carry an idempotency key: a string of up to
// MaxKey (128) bytes chosen by the client, empty for none. A write carrying
// a key is applied at most once however often it is sent, on any
// connection to the same server, even when a retry arrives while the first
// attempt is still being applied (it waits for that answer). The first attempt is applied and its
// answer recorded under the key; a retry is not applied again but answered
// with the first attempt's result, with replayed set in the answer
// (UpsertResponse.Replayed, DeleteResponse.Replayed,
// EventResponse.Replayed):
//
//	req := &wire.EventRequest{Events: batch, Key: "9f86d081884c7d659a2feaa0c55ad015"}
//	// sent, the connection breaks before the answer; sent again:
//	// EventResponse{Accepted: 20, Replayed: true}, the events counted once
//
// Keys are the client's choice and the server treats them as opaque bytes;
// a random 128-bit value (32 hex digits) per write is recommended, since a
// key names one request: never reuse it for another write, whose answer
// would be the first one's. Only answers of writes that were applied are
// recorded: a write refused with an Error (BadRequest, Overloaded,
// DeadlineExceeded, ...) changed nothing, and sending it again applies it
// anew. The server remembers a bounded number of recent keys (the oldest
// are forgotten first), and its record is its own, not shared with other
// servers: a retry belongs soon after its first attempt, and on the same
// server. A key it has forgotten, or a write without one, is applied as
// new. Package client sets a random key on every write that has none and
// sends such writes again, to the same server, when their connection
// breaks.
//
// # Authentication
//
// A server may be configured with a shared token. Then the first frame of
// every connection must be an AuthRequest {token} carrying it: the server
// compares the token in constant time and answers AuthResponse under the
// request's id, after which the connection serves requests as usual. Any
// other first frame (another request, a wrong or empty token, a frame it
// cannot decode) is answered Error {Unauthenticated} and the server closes
// the connection; nothing else is served before the token. Further
// AuthRequests on an authenticated connection are answered AuthResponse if
// their token is right, and Unauthenticated (then a close) if not. A
// server without a token answers every AuthRequest AuthResponse, so that a
// client may always send one. The token travels in clear text unless the
// connection is TLS.
//
// # Administration
//
// AdminRequest {op, bundle, share, holdout, weights, reason, force}
// changes and reads the served models: "load" validates the model folder
// bundle (a path on the server's machine) and serves it as the canary to
// share of the users (negative: the server's default share), with the
// head weights of the JSON object weights; force skips the probe
// requests. "promote" makes the canary the control; "rollback" stops the
// canary, or with none reinstates the previous control; "shares" sets the
// canary's share and the holdout's (negative: unchanged); "status" reads
// the arms, their metrics with confidence intervals, the canary policy and
// the history of changes; "drift" adds the drift report. AdminResponse
// {json} holds the status as one JSON document (at most MaxAdminJSON
// bytes). A server with tokens serves AdminRequests only on a connection
// that presented its admin token; others get Error {Unauthenticated} and
// the connection stays open. A refused change is Error {BadRequest} naming
// the reason; the served models are then as they were.
//
// # Errors
//
// Error {code, message}. The codes:
//
//	1 BadRequest        malformed frame or message, a broken limit; do not retry
//	2 NotFound          the user, reel or id does not exist
//	3 DeadlineExceeded  the request's timeout passed
//	4 Overloaded        the server sheds load; retry later or elsewhere
//	5 Unavailable       the server cannot serve now (starting, draining, no model)
//	6 Unauthenticated   the caller is not allowed
//	7 Internal          a fault in the server
//	8 WrongShard        a sharded server was asked to write or score a reel another shard owns; do not retry it there
//
// 0 is "no code"; an unknown code keeps its number. In Go, *Error is both a
// message and an error, and Code and AsError turn any error into the code
// and body that answer it: ErrMalformed, ErrUnknownMessage and
// ErrFrameTooLarge are all BadRequest.
//
// # Rules and limits
//
// Encode and Decode enforce the same rules, so whatever Encode accepts the
// peer decodes: ids, positions and sessions non-negative; every float
// finite (no NaN or Inf in vectors, scores, probabilities, propensities or
// durations); the counts MaxN, MaxCandidates, MaxK, MaxNprobe, MaxDim,
// MaxExclude, MaxRecent, MaxHeads, MaxEvents, MaxErrorCodes; strings up to
// MaxString bytes and idempotency keys up to MaxKey; the timeout up to
// MaxTimeout; and the shape rules above
// (an item has one probability per head, a Score response len(scores) ×
// len(heads) probabilities, a Search response as many scores as ids). A
// message that breaks one is an *Error of code BadRequest. Enum values this
// side does not know (a Source, an ErrorCode, an event type) are kept as
// numbers, for peers built from a newer schema. Timings saturate at
// 2³²-1 µs (71 minutes).
//
// # Safety of Decode
//
// The flatbuffers Go runtime does not verify buffers: a bad offset indexes
// out of range and panics. Decode first walks the buffer as the schema
// describes it (with the project's flatbuffers verifier, internal/fbverify,
// and this package's description of each table), checking that the root offset, every table's vtable (its
// size, its table size, each field's offset and width), every uoffset,
// every vector (n elements need n×size bytes) and every string (with its
// NUL) lie inside the buffer, that the body type is known, that tables nest
// at most 8 deep, and that the tables, vectors and strings referenced add
// up to at most four times the buffer's size (shared strings pass; offsets
// that alias one big vector many times, which would make a small frame
// costly to decode, do not). Counts are checked against the limits before
// anything is allocated. Only then do the generated accessors read it.
// As a second line of defence Decode recovers a panic and reports it as
// ErrMalformed ("decoder fault"); the fuzz target FuzzDecode fails if that
// ever happens. Nothing decoded refers to the frame's bytes, which the
// caller may reuse at once.
//
// # Generated code
//
// internal/fb is generated from reelrank.fbs by Debian's flatc 2.0.8
// (package flatbuffers-compiler), matching the Go runtime
// github.com/google/flatbuffers v2.0.8+incompatible in go.mod:
//
//	cd wire && flatc --go --go-namespace fb -o internal reelrank.fbs
//
// which is what `go generate ./wire` and `make wire` run; the output is
// the same byte for byte.
package wire
