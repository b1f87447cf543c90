// Package client is the Go client of a reelrank server: a pool of
// pipelined connections with deadlines, replicas and hedged requests, and
// a sharded front that fans requests out and merges the answers.
//
// # Calling one server
//
// Dial once and share the Client; it is safe for concurrent use:
//
//	c, err := client.Dial(ctx, "127.0.0.1:7070", client.Options{})
//	defer c.Close()
//
//	ctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
//	defer cancel()
//	resp, err := c.Recommend(ctx, &wire.RecommendRequest{
//		User: 42, N: 20,
//		Context: wire.Context{Time: time.Now().UnixMilli(), Session: 7, Position: 3, Recent: []int64{881, 17}},
//	})
//	for _, it := range resp.Items { // best first
//		show(it.Reel, it.Propensity) // log the propensity with the impression
//	}
//
// The methods mirror the protocol (see package wire): Recommend, Score,
// Search, Upsert, Delete, Event, Stats and Health, each taking and
// returning wire's message types, and Do for any request.
//
// # Deadlines
//
// A request's budget is its context's deadline, or Options.Timeout when
// the context has none (a second unless set). What is left of it when the
// frame is written travels in the envelope, so the server drops work its
// caller has given up on. A call returns when its context ends, whether
// or not the server answers; a late answer is dropped. The error then
// wraps the context's (errors.Is(err, context.DeadlineExceeded), and
// wire.Code(err) is wire.DeadlineExceeded).
//
// # Errors
//
// An error the server answers is a *wire.Error in the returned error's
// chain, wrapped with the server's address and the request kind:
//
//	var we *wire.Error
//	if errors.As(err, &we) && we.Code == wire.Overloaded { ... }
//
// ErrConnLost says the connection broke with the request in flight (it
// may or may not have been served); the next request dials a new
// connection. A read (Recommend, Score, Search, Stats, Health), or a
// write with an idempotency key (below), whose connection breaks is sent
// once more on another before ErrConnLost is returned. ErrBadResponse
// says the server's answer made no sense; ErrClosed that the Client was
// closed.
//
// # Writes
//
// Upsert, Delete and Event change the server, and a write whose
// connection breaks may or may not have been applied. So every write
// carries an idempotency key (package wire, Idempotent writes): the
// server applies a write with a given key at most once, and answers a
// repeat from its record, with Replayed set in the answer. A write whose
// Key is empty is sent with a random one (16 bytes from crypto/rand, in
// hex), and when its connection breaks it is sent again with the same key
// on a new connection to the same replica:
//
//	resp, err := c.Event(ctx, &wire.EventRequest{Events: batch})
//	// resp.Accepted counts the batch once, even if it was sent twice;
//	// resp.Replayed says the second sending found it applied.
//
// To send a write again yourself (after a timeout, or from another
// process), set Key, and use the same Key for every attempt:
//
//	req := &wire.UpsertRequest{Reel: reel, Key: uploadID}
//
// Options.NoIdempotencyKey sends writes without a key as they are, never
// twice.
//
// # Connections
//
// Each replica gets Options.PoolSize connections, used round-robin. A
// connection carries many requests at once, each with its own request id;
// the server may answer them in any order, and one reader goroutine per
// connection hands each answer to its caller. Options.MaxInFlight bounds
// the requests outstanding on one connection. With Options.Token the
// connection presents the token in an AuthRequest before anything else;
// with Options.TLS it is TLS.
//
// # Replicas and hedging
//
// DialReplicas takes several addresses of servers holding the same data.
// Requests spread over them, and a replica whose dial fails is left alone
// for a while (50 ms, doubling up to 2 s) while others are up. With
// Options.HedgeDelay or Options.HedgePercentile a read (Recommend, Score,
// Search, Stats, Health) that has not been answered in time is sent again
// to another replica (with one replica, another connection), and the
// first answer wins; the slower copy is abandoned. An Overloaded or
// Unavailable answer, or a broken connection, does not settle a hedged
// request while the other copy may still succeed. Options.HedgeBudget
// keeps hedges to a share of requests. Writes are never hedged: the two
// copies would reach two replicas, and each would apply it.
//
// # Shards
//
// A catalogue too large for one machine is split: each reel belongs to
// shard ShardOf(reel id, shards), the shard a server started with
// `reelrank serve --shard i/n` serves. Users are not split: every shard
// holds every user's features. A Sharded sends Recommend and Search to
// every shard and merges the answers by score; routes Upsert and Delete
// to the reel's shard, Score's reels each to its own shard, an event that
// names a user to every shard (so that each ranks with the same user
// features) and an upload to its reel's shard:
//
//	s, err := client.DialSharded(ctx, [][]string{
//		{"10.0.0.1:7070", "10.0.1.1:7070"}, // shard 0 and its replica
//		{"10.0.0.2:7070", "10.0.1.2:7070"}, // shard 1
//	}, client.Options{HedgePercentile: 0.95}, client.ShardedOptions{AllowPartial: true, ShardTimeout: 30 * time.Millisecond})
//	resp, err := s.Recommend(ctx, req) // the best N over the shards that answered in time
//	// err is a *PartialError when some did not; resp.MissingShards names them
//
// With AllowPartial a shard that is down, or has not answered within its
// budget (ShardTimeout from the call's start, and at most 1-MergeShare of
// the caller's remaining deadline), is left out of the merged answer
// rather than holding it to the caller's deadline. MissingShards is part
// of the wire schema, so a service that passes a merged answer on passes
// on that it is partial; a server's own answers leave it empty.
// ShardedOptions.Observe reports each fan-out's time and its slowest
// shard's round trip, for measuring what fanning out and merging add.
//
// # Testing
//
// Package clienttest runs an in-process fake server, for tests of code
// that uses this package.
package client
