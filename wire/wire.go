package wire

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

//go:generate flatc --go --go-namespace fb -o internal reelrank.fbs

// FileIdentifier is the flatbuffers file identifier of every payload, at
// bytes 4..8. A change to the protocol that old peers cannot read changes it.
const FileIdentifier = "RRW1"

// Frame limits.
const (
	// HeaderSize is the size of a frame's length prefix.
	HeaderSize = 4
	// DefaultMaxFrame is the largest payload ReadFrame accepts when given
	// no maximum.
	DefaultMaxFrame = 4 << 20
	// MaxFrameLimit bounds any configured maximum: flatbuffers address at
	// most 2 GiB.
	MaxFrameLimit = 1 << 30
)

// Limits on the contents of messages. Decode and Encode refuse a message
// past one of them with an *Error of code BadRequest. They bound the memory
// a decoded frame can take, whatever the frame size.
const (
	MaxN          = 1000      // RecommendRequest.N (1..MaxN) and RecommendResponse.Items
	MaxCandidates = 10000     // ScoreRequest.Reels and ScoreResponse.Scores
	MaxK          = 10000     // SearchRequest.K (1..MaxK) and SearchResponse.IDs
	MaxNprobe     = 1 << 16   // SearchRequest.Nprobe (0 is the index's default)
	MaxDim        = 4096      // SearchRequest.Vector (1..MaxDim) and Reel.Embedding (0..MaxDim)
	MaxExclude    = 100000    // RecommendRequest.Exclude and SearchRequest.Exclude
	MaxRecent     = 1000      // Context.Recent
	MaxHeads      = 64        // heads of a response
	MaxEvents     = 10000     // EventRequest.Events
	MaxString     = 64 << 10  // bytes of any string
	MaxErrorCodes = 256       // StatsResponse.Errors
	MaxKey        = 128       // bytes of the idempotency key of an Upsert, Delete or Event request
	MaxAdminJSON  = 2 << 20   // bytes of an AdminResponse's JSON document
	MaxTimeout    = time.Hour // Envelope.Timeout
	MaxShards     = 1 << 16   // RecommendResponse.MissingShards and SearchResponse.MissingShards, and each shard index
)

// Sentinel errors. Decode, ReadFrame and Encode wrap them with details;
// test with errors.Is.
var (
	// ErrMalformed: the bytes are not a valid envelope of this protocol (an
	// offset or length outside the buffer, a missing body, a zero-length
	// frame, a decoder fault caught by recover).
	ErrMalformed = errors.New("wire: malformed frame")
	// ErrUnknownMessage: the envelope's body type is not one this package
	// knows.
	ErrUnknownMessage = errors.New("wire: unknown message type")
	// ErrFrameTooLarge: a frame's length is over the reader's maximum. The
	// frame's bytes have been discarded; the stream is still in step.
	ErrFrameTooLarge = errors.New("wire: frame too large")
)

// ErrorCode classifies an Error.
type ErrorCode uint8

// The error codes. A peer may send a code this package does not know; it
// keeps its number.
const (
	UnknownCode      ErrorCode = iota // no code set
	BadRequest                        // the request is malformed or breaks a limit; do not retry it
	NotFound                          // the user, reel or id does not exist
	DeadlineExceeded                  // the request's timeout passed before it was answered
	Overloaded                        // the server sheds load; retry later, elsewhere
	Unavailable                       // the server cannot serve now (starting, draining, no model)
	Unauthenticated                   // the caller is not allowed
	Internal                          // a bug or fault in the server
	WrongShard                        // the request names a reel another shard owns: a misrouted write or Score; do not retry it here
	numCodes
)

var codeNames = [numCodes]string{"unknown", "bad request", "not found", "deadline exceeded",
	"overloaded", "unavailable", "unauthenticated", "internal", "wrong shard"}

// String returns the code's name, such as "bad request", or "code(n)".
func (c ErrorCode) String() string {
	if c < numCodes {
		return codeNames[c]
	}
	return "code(" + strconv.Itoa(int(c)) + ")"
}

// Error is a typed error: both the body of an error response and a Go error
// (Decode returns one for a message that breaks a rule of the protocol).
type Error struct {
	Code    ErrorCode
	Message string
}

// Error returns "code: message".
func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code.String()
	}
	return e.Code.String() + ": " + e.Message
}

// Kind returns KindError.
func (*Error) Kind() Kind { return KindError }

func badRequest(format string, args ...any) *Error {
	return &Error{Code: BadRequest, Message: fmt.Sprintf(format, args...)}
}

// Code returns the error code that answers err: the code of an *Error in
// its chain, BadRequest for ErrMalformed, ErrUnknownMessage and
// ErrFrameTooLarge, DeadlineExceeded for context.DeadlineExceeded and
// os.ErrDeadlineExceeded, and Internal for anything else (nil gives
// UnknownCode).
func Code(err error) ErrorCode {
	if err == nil {
		return UnknownCode
	}
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrUnknownMessage), errors.Is(err, ErrFrameTooLarge):
		return BadRequest
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return DeadlineExceeded
	}
	return Internal
}

// AsError returns the *Error in err's chain, or a new one with Code(err)
// and err's text: the body of the response that answers err.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: Code(err), Message: err.Error()}
}

// Kind is the type of an envelope's body: the flatbuffers union's type.
type Kind uint8

// The kinds. Requests are odd, and the response to kind k is k+1.
const (
	KindNone Kind = iota
	KindRecommendRequest
	KindRecommendResponse
	KindScoreRequest
	KindScoreResponse
	KindSearchRequest
	KindSearchResponse
	KindUpsertRequest
	KindUpsertResponse
	KindDeleteRequest
	KindDeleteResponse
	KindEventRequest
	KindEventResponse
	KindStatsRequest
	KindStatsResponse
	KindHealthRequest
	KindHealthResponse
	KindError
	_ // 18 is unused: requests keep odd numbers and their responses even
	KindAuthRequest
	KindAuthResponse
	KindAdminRequest
	KindAdminResponse
	numKinds
)

var kindNames = [numKinds]string{"none", "RecommendRequest", "RecommendResponse", "ScoreRequest",
	"ScoreResponse", "SearchRequest", "SearchResponse", "UpsertRequest", "UpsertResponse",
	"DeleteRequest", "DeleteResponse", "EventRequest", "EventResponse", "StatsRequest",
	"StatsResponse", "HealthRequest", "HealthResponse", "Error", "", "AuthRequest", "AuthResponse",
	"AdminRequest", "AdminResponse"}

// String returns the message's name, such as "RecommendRequest".
func (k Kind) String() string {
	if k < numKinds && kindNames[k] != "" {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// IsRequest reports whether k is a request a client sends.
func (k Kind) IsRequest() bool { return k%2 == 1 && k != KindError && k < numKinds }

// known reports whether k is the kind of a message of this package.
func (k Kind) known() bool { return k > KindNone && k < numKinds && kindNames[k] != "" }

// Response returns the kind of a successful response to request k, or
// KindNone when k is not a request. Any request may also be answered by
// KindError.
func (k Kind) Response() Kind {
	if k.IsRequest() {
		return k + 1
	}
	return KindNone
}

// Message is the body of an envelope: one of the request, response and
// *Error types of this package.
type Message interface {
	Kind() Kind
	check() error
}

// Envelope is the root of every frame.
type Envelope struct {
	// RequestID matches a response to its request on one connection.
	// Clients number requests from 1; 0 marks the server's answer to a
	// frame whose id it could not read.
	RequestID uint64
	// Timeout is the request's budget from the moment the server reads the
	// frame; 0 leaves it to the server's default. It travels in whole
	// microseconds, rounded up, and may not be negative or over MaxTimeout.
	Timeout time.Duration
	// Body is the message.
	Body Message
}
