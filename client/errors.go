package client

import "errors"

// Sentinel errors; test with errors.Is. Errors the server sends are
// *wire.Error values in the returned error's chain (errors.As), and a
// request whose context ends returns an error wrapping the context's
// (context.DeadlineExceeded or context.Canceled).
var (
	// ErrClosed: the Client (or Sharded) was closed.
	ErrClosed = errors.New("client: closed")
	// ErrConnLost: the connection a request was on broke (the server
	// closed it, a read or write failed, or the server could not read one
	// of our frames) before the answer came. The request may or may not
	// have been served. The next request dials a new connection.
	ErrConnLost = errors.New("client: connection lost")
	// ErrBadResponse: the server's answer could not be decoded, or is not
	// of the kind that answers the request.
	ErrBadResponse = errors.New("client: bad response")
)
