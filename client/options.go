package client

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/reelrank/reelrank/wire"
)

// Defaults of Options.
const (
	DefaultPoolSize     = 2
	DefaultDialTimeout  = 5 * time.Second
	DefaultTimeout      = time.Second
	DefaultMaxInFlight  = 1024
	DefaultWriteTimeout = 10 * time.Second
	DefaultHedgeBudget  = 0.1
)

// Options configures a Client. The zero value dials plain TCP without a
// token, with the defaults above.
type Options struct {
	// PoolSize is the number of connections kept to each replica
	// (0: DefaultPoolSize). Requests go round-robin over them.
	PoolSize int
	// DialTimeout bounds the dial, the TLS handshake and the token
	// exchange of one connection (0: DefaultDialTimeout).
	DialTimeout time.Duration
	// TLS, when set, wraps every connection in TLS with this
	// configuration. An empty ServerName is taken from the address.
	TLS *tls.Config
	// Token, when set, is sent in an AuthRequest as the first frame of
	// every connection, for servers started with a shared token.
	Token string
	// Timeout is the budget of a request whose context has no deadline
	// (0: DefaultTimeout; negative: none). A context deadline always
	// wins. The budget left when the request is written travels in the
	// envelope, so the server gives up when the caller does.
	Timeout time.Duration
	// MaxFrame is the largest response payload accepted
	// (0: wire.DefaultMaxFrame). A larger response breaks its connection.
	MaxFrame int
	// WriteTimeout is how long a write may block, the server reading
	// nothing, before its connection counts as broken (0:
	// DefaultWriteTimeout). Callers do not wait for it: each waits for
	// its answer only as long as its own deadline.
	WriteTimeout time.Duration
	// MaxInFlight bounds the requests outstanding on one connection
	// (0: DefaultMaxInFlight); a caller past it waits for a slot, or for
	// its context to end.
	MaxInFlight int

	// NoIdempotencyKey sends writes (Upsert, Delete, Event) whose Key is
	// empty without one. By default such a write is sent with a random key
	// (16 bytes from crypto/rand, in hex; set in a copy, the caller's
	// request is left as it is), so that it can be sent again when its
	// connection breaks and still be applied once (see package wire,
	// Idempotent writes). A write without a key is never sent twice: a
	// broken connection fails it with ErrConnLost. A Key the caller sets
	// is always sent.
	NoIdempotencyKey bool

	// HedgeDelay, when positive, hedges reads (Recommend, Score, Search,
	// Stats, Health): a request still unanswered after this long is sent
	// again to another replica (or, with one replica, another
	// connection), and the first answer wins. Writes (Upsert, Delete,
	// Event) are never hedged.
	HedgeDelay time.Duration
	// HedgePercentile, in (0, 1), hedges reads after this percentile of
	// the latencies of the last answers of the same kind (at least
	// HedgeDelay). Until hedgeMinSamples answers have been seen only
	// HedgeDelay applies, and with HedgeDelay 0 nothing is hedged yet.
	HedgePercentile float64
	// HedgeBudget bounds hedging: at most this fraction of requests (plus
	// a burst of 10) are hedged, so that a slow fleet is not sent twice
	// its load (0: DefaultHedgeBudget; 1 or more: no bound).
	HedgeBudget float64
}

// withDefaults returns o with zero fields set to their defaults, or an
// error for a value out of range.
func (o Options) withDefaults() (Options, error) {
	switch {
	case o.PoolSize < 0:
		return o, fmt.Errorf("client: pool size %d is negative", o.PoolSize)
	case o.MaxInFlight < 0:
		return o, fmt.Errorf("client: max in-flight %d is negative", o.MaxInFlight)
	case o.MaxFrame < 0 || o.MaxFrame > wire.MaxFrameLimit:
		return o, fmt.Errorf("client: max frame %d outside 0..%d", o.MaxFrame, wire.MaxFrameLimit)
	case o.DialTimeout < 0 || o.WriteTimeout < 0 || o.HedgeDelay < 0:
		return o, fmt.Errorf("client: negative dial timeout %v, write timeout %v or hedge delay %v",
			o.DialTimeout, o.WriteTimeout, o.HedgeDelay)
	case o.HedgePercentile < 0 || o.HedgePercentile >= 1:
		return o, fmt.Errorf("client: hedge percentile %v outside [0, 1)", o.HedgePercentile)
	case o.HedgeBudget < 0:
		return o, fmt.Errorf("client: hedge budget %v is negative", o.HedgeBudget)
	}
	if o.PoolSize == 0 {
		o.PoolSize = DefaultPoolSize
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxFrame == 0 {
		o.MaxFrame = wire.DefaultMaxFrame
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.HedgeBudget == 0 {
		o.HedgeBudget = DefaultHedgeBudget
	}
	return o, nil
}

func (o *Options) hedging() bool { return o.HedgeDelay > 0 || o.HedgePercentile > 0 }
