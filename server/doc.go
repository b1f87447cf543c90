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
//		MetricsAddr: "127.0.0.1:9090",  // GET /metrics
//		MaxInFlight: 32,                // requests served at once; the rest are answered Overloaded
//		Token:       os.Getenv("REELRANK_TOKEN"),
//		Logger:      logger,
//	}, engine)
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
// metrics; Metrics() and Registry() give the metrics to embed elsewhere.
//
// # One connection
//
// Each connection has a reader goroutine and a writer goroutine. The
// reader reads a frame, decodes it, and either answers at once (errors,
// Stats, AuthRequest, Overloaded) or starts a goroutine that calls the
// Handler. Answers go, encoded, through a channel to the writer, which
// writes whatever is ready in one write; they may leave in any order and
// carry their request's id. A connection may have at most MaxPipeline
// requests read and not yet answered: past that the reader stops reading
// it, and TCP pushes back on the client. A client that does not read its
// answers within WriteTimeout is cut off.
//
// An idle connection costs two parked goroutines, its socket, and about
// two kilobytes of state (the pipeline's channel and a 256-byte array the
// next frame's first bytes are read into): it takes its read buffer and
// frame buffers from pools only while a frame is in transit.
// BenchmarkIdleConnections measures about 10 kB a connection in all.
//
// # Deadlines and admission
//
// A request's budget is its envelope's Timeout (DefaultTimeout when it has
// none, capped at MaxTimeout), counted from the moment the server has read
// the frame. The Handler's context carries that deadline; a request whose
// budget is spent before its handler starts, or while it runs, is
// answered DeadlineExceeded.
//
// At most MaxInFlight requests are in the Handler at once, over all
// connections. A request beyond that is answered Overloaded by the reader
// straight away (tens of microseconds, see BenchmarkOverloadAnswer), never
// queued, so that under a flood the admitted requests keep their latency
// and the clients learn at once to back off or go elsewhere. Stats and
// AuthRequest are answered by the server itself and are not counted.
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
//
// # Authentication and TLS
//
// With Config.Token set, the first frame of a connection must be an
// AuthRequest with that token (compared in constant time); anything else
// is answered Unauthenticated and the connection closed. With Config.TLS
// set, every connection is TLS; a token without TLS travels in clear.
//
// # Shutdown
//
// Shutdown stops accepting, closes idle connections, stops reading busy
// ones, lets the requests in flight finish and their answers be written,
// then closes them, returning when all are gone (or closing everything
// when its context ends first). Close closes everything at once and
// cancels the requests' contexts.
//
// # Metrics
//
// Each Server has its own Prometheus registry (see metrics.go for the
// list): requests by kind and code, latency histograms by kind and by
// Recommend stage (features, tower, ann, rank, postrank, from the
// response's Timings), errors by code, events, requests in flight, open
// connections, the index size and the model version as an info gauge, and
// Go's runtime and process collectors. Latencies are histograms, so that
// the figures of many replicas can be summed.
package server
