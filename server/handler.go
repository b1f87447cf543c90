package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/reelrank/reelrank/wire"
)

// Handler serves the requests of the protocol: one method per request kind,
// wire messages in and out. The server calls its methods from many
// goroutines at once, each with a context that carries the request's
// deadline and is cancelled when the connection breaks or the server
// closes.
//
// A method returns either a response or an error, never both nil. An error
// is answered by wire.AsError(err): an *wire.Error in its chain passes
// through with its code (NotFound for an unknown reel, BadRequest for an
// input the engine refuses), context.DeadlineExceeded becomes
// DeadlineExceeded, and anything else Internal. A panic is recovered,
// logged and answered Internal.
//
// Stats and authentication are answered by the server itself; Info gives
// the two figures of a Stats response that only the handler knows.
type Handler interface {
	Recommend(ctx context.Context, req *wire.RecommendRequest) (*wire.RecommendResponse, error)
	Score(ctx context.Context, req *wire.ScoreRequest) (*wire.ScoreResponse, error)
	Search(ctx context.Context, req *wire.SearchRequest) (*wire.SearchResponse, error)
	Upsert(ctx context.Context, req *wire.UpsertRequest) (*wire.UpsertResponse, error)
	Delete(ctx context.Context, req *wire.DeleteRequest) (*wire.DeleteResponse, error)
	Event(ctx context.Context, req *wire.EventRequest) (*wire.EventResponse, error)
	Health(ctx context.Context, req *wire.HealthRequest) (*wire.HealthResponse, error)
	// Info returns the index size and the model version, for Stats
	// responses and the metrics. It is called on the connection's reader
	// and on every metrics scrape, so it must be cheap and not block.
	Info(ctx context.Context) Info
}

// AdminHandler is a Handler that takes AdminRequests: model changes and
// status. The server passes them only from connections allowed to send
// them (see Config.AdminToken), outside admission control.
type AdminHandler interface {
	Admin(ctx context.Context, req *wire.AdminRequest) (*wire.AdminResponse, error)
}

// Recycler is a Handler that takes back the responses it returned: the
// server calls Recycle with each one once it has encoded it and counted
// it, and holds no reference after, so that the handler can reuse its
// memory (the engine's handler reuses a Recommend's answer and its items).
// A response the server dropped (its deadline passed while it was made)
// is left to the collector.
type Recycler interface {
	Recycle(m wire.Message)
}

// Info is what the server asks its Handler for a Stats response.
type Info struct {
	IndexSize    uint64 // reels in the index
	ModelVersion string // the version of the model serving now
}

// errNilResponse is the error of a handler that returned neither a
// response nor an error.
var errNilResponse = errors.New("server: handler returned no response and no error")

// answer turns a handler's typed result into a message, refusing a nil
// response (a typed nil pointer would otherwise pass as a message).
func answer[T any, PT interface {
	*T
	wire.Message
}](r PT, err error) (wire.Message, error) {
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, errNilResponse
	}
	return r, nil
}

// dispatch calls the handler's method for the request m.
func dispatch(ctx context.Context, h Handler, m wire.Message) (wire.Message, error) {
	switch m := m.(type) {
	case *wire.RecommendRequest:
		return answer(h.Recommend(ctx, m))
	case *wire.ScoreRequest:
		return answer(h.Score(ctx, m))
	case *wire.SearchRequest:
		return answer(h.Search(ctx, m))
	case *wire.UpsertRequest:
		return answer(h.Upsert(ctx, m))
	case *wire.DeleteRequest:
		return answer(h.Delete(ctx, m))
	case *wire.EventRequest:
		return answer(h.Event(ctx, m))
	case *wire.HealthRequest:
		return answer(h.Health(ctx, m))
	case *wire.AdminRequest:
		if a, ok := h.(AdminHandler); ok {
			return answer(a.Admin(ctx, m))
		}
		return nil, &wire.Error{Code: wire.BadRequest, Message: "server: this server takes no admin requests"}
	}
	// The reader only passes the kinds above; anything else is a bug here.
	panic(fmt.Sprintf("server: dispatch of %T", m))
}

// handled reports whether requests of kind k go to the Handler (and so
// through admission control).
func handled(k wire.Kind) bool {
	switch k {
	case wire.KindRecommendRequest, wire.KindScoreRequest, wire.KindSearchRequest, wire.KindUpsertRequest,
		wire.KindDeleteRequest, wire.KindEventRequest, wire.KindHealthRequest, wire.KindAdminRequest:
		return true
	}
	return false
}
