// Package server is reelrank's thin TCP server: it reads wire frames,
// hands each request to a Handler (the engine) and writes the answers back,
// with pipelining, deadlines, admission control, optional token
// authentication and TLS, graceful shutdown and Prometheus metrics. The
// protocol itself is package wire's.
//
// # Serving
//
// Implement Handler (one method per request kind, wire messages in and
// out) and serve it:
//
//	srv, err := server.New(server.Config{
//		Addr:        "127.0.0.1:7070",
//		MetricsAddr: "127.0.0.1:9090",  // GET /metrics, /healthz, /readyz
//		MaxInFlight: 32,                // requests served at once; the rest wait in the queue or are shed
//		Token:       os.Getenv("REELRANK_TOKEN"),
//		Logger:      logger,
//	}, server.EngineHandler(engine))
//	if err != nil { ... }
//	go func() {
//		<-ctx.Done() // SIGTERM
//		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
//		defer cancel()
//		srv.Shutdown(shutdownCtx)
//	}()
//	if err := srv.ListenAndServe(); !errors.Is(err, server.ErrServerClosed) { ... }
//
// Serve(ln) serves a listener of your own and ServeMetrics(ln) the
// metrics and probes; Metrics(), Probes() and Registry() give them to
// embed elsewhere.
//
// # One connection
//
// Each connection has a reader goroutine and a writer goroutine. The
// reader reads a frame, decodes it, and either answers at once (errors,
// Stats, AuthRequest, Overloaded), starts a goroutine for a Health
// request, or hands the request to admission, whose workers call the
// Handler. Answers go, encoded, through a channel to the writer, which
// writes whatever is ready in one write; they may leave in any order and
// carry their request's id.
//
// Two bounds push back on a client that sends faster than it reads: a
// connection may have at most MaxPipeline requests read and not yet
// answered, and at most MaxUnsent bytes (8 MiB) of answers encoded and
// not yet written. Past either the reader stops reading it, and TCP
// pushes back on the client; so the server holds for one connection at
// most MaxUnsent bytes and the answers to MaxPipeline requests. A client
// that does not read its answers within WriteTimeout is cut off.
//
// An idle connection costs two parked goroutines, its socket, and about
// two kilobytes of state (the pipeline's channel and a 256-byte array the
// next frame's first bytes are read into): it takes its read buffer and
// frame buffers from pools only while a frame is in transit.
// BenchmarkIdleConnections measures about 10 kB a connection in all.
//
// # Deadlines
//
// A request's budget is its envelope's Timeout (DefaultTimeout when it has
// none, capped at MaxTimeout), counted from the moment the server has read
// the frame. The Handler's context carries that deadline. A request whose
// budget is spent before its handler starts is answered DeadlineExceeded
// without calling the handler. A read (Recommend, Score, Search) whose
// budget is spent while its handler runs is answered DeadlineExceeded too;
// a write (Upsert, Delete, Event) whose handler returned is answered with
// its result whatever the time, since the write happened and a
// DeadlineExceeded would make the client retry it.
//
// # Admission
//
// At most MaxInFlight requests are in the Handler at once, over all
// connections. A request beyond that waits in a queue, if it is likely to
// be served in time, and is answered Overloaded at once (tens of
// microseconds, see BenchmarkOverloadAnswer) if not, so that under a
// flood the admitted requests keep their latency and the clients learn at
// once to back off or go elsewhere:
//
//   - the queue holds at most MaxQueue requests (16 per slot), and at most
//     MaxConnQueue of one connection (half the queue), so that one client
//     cannot fill it;
//   - a request joins it only while its predicted wait, plus its own
//     service time, fits the budget it has left. The server keeps a moving
//     average of the time each request kind spends in the handler (seeded
//     on the high side: 5ms for Recommend, 2ms for Score, Search and
//     Event, 1ms for Upsert and Delete; see
//     reelrank_service_time_estimate_seconds), and predicts the wait as the
//     work queued ahead, plus half of the work running, over MaxInFlight.
//     The Overloaded answer says the predicted wait and the budget.
//
// The queue is fair between connections: each connection's requests wait
// in its own FIFO, and a freed slot goes to the connections in turn (round
// robin), so that a client pipelining a hundred requests delays another
// client's single request by about one request, not a hundred. The
// prediction knows it: a connection's k-th queued request waits for at
// most k of each other connection's. A queued request that reaches a slot
// after its deadline is answered DeadlineExceeded without calling the
// handler, and a broken connection's queued requests are dropped.
//
// Set MaxQueue negative for no queue: every request beyond MaxInFlight is
// answered Overloaded at once. Stats and AuthRequest are answered by the
// server itself, and Health goes to the Handler at once, with a budget of
// at most a second: neither waits behind ranking work or counts against
// MaxInFlight.
//
// # Errors
//
// A Handler's error is answered with wire.AsError(err): a *wire.Error in
// its chain keeps its code, a context deadline becomes DeadlineExceeded,
// a cancellation (connection or server closing) Unavailable, anything
// else Internal. A panic in a Handler is recovered, logged with its stack
// and answered Internal, and the server goes on. A response that the
// protocol refuses (a NaN score, too many items) is answered Internal.
//
// Bad input never takes the server down:
//
//	frame over MaxFrame          skipped, BadRequest under id 0, the connection goes on
//	empty frame                  BadRequest under id 0, the connection goes on
//	bytes that are no envelope   BadRequest (under the id when it can be read), goes on
//	unknown message kind         BadRequest under the request's id, goes on
//	a rule broken (NaN, limits)  BadRequest under the request's id, goes on
//	a response sent as request   BadRequest under the request's id, goes on
//	frame cut short by EOF       the answers owed are written, then the connection closes
//	frame stalled past ReadTimeout, or idle past IdleTimeout: closed
//	client gone mid-response     the writer stops, its requests are cancelled, nothing leaks
//	header claiming 64 MiB       the frame's buffer grows as its bytes arrive, not before
//	answers never read           reading stops at MaxUnsent bytes, cut off at WriteTimeout
//
// # Connections
//
// At most MaxConns connections are open (10,000), and at most
// MaxConnsPerAddr from one IP address, whatever their ports (1,024; set it
// negative behind a proxy through which every client comes from one
// address). A connection beyond either is answered Overloaded under id 0
// and closed; refusals are logged at most once a second.
//
// # Authentication and TLS
//
// With Config.Token set, the first frame of a connection must be an
// AuthRequest with that token (compared in constant time); anything else
// is answered Unauthenticated and the connection closed. The token is due
// within AuthTimeout of opening (2 s): a connection that has not
// authenticated by then, silent or trickling its frame, is closed. With
// Config.TLS set, every connection is TLS; a token without TLS travels in
// clear.
//
// # Shutdown
//
// Shutdown stops accepting, closes idle connections, stops reading busy
// ones, lets the requests in flight finish and their answers be written,
// then closes them, returning when all are gone (or closing everything
// when its context ends first). Close closes everything at once and
// cancels the requests' contexts.
//
// # Metrics and probes
//
// Each Server has its own Prometheus registry (see metrics.go for the
// list): requests by kind and code, latency histograms by kind and by
// Recommend stage (features, tower, ann, rank, postrank, from the
// response's Timings), errors by code, events, requests in flight and
// queued, requests shed by reason, the service-time estimates, open
// connections, the index size and the model version as an info gauge, and
// Go's runtime and process collectors. Latencies are histograms, so that
// the figures of many replicas can be summed.
//
// The metrics listener also serves two probes, for an orchestrator:
//
//	GET /healthz   liveness: 200 "ok" while the process serves
//	GET /readyz    readiness: 200 and the Handler's Health status when it
//	               says OK (the engine: a model loaded, its logs
//	               writable), else 503 and the status; 503 "shutting
//	               down" once Shutdown or Close began
//
// The listener has read, write and idle timeouts, so that a client cannot
// hold its connections open.
package server
