package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/reelrank/reelrank/engine"
	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/wire"
)

// EngineHandler serves an engine.Engine: it turns the wire's messages into
// the engine's calls and the engine's errors into typed wire errors
// (ErrBadRequest → BadRequest, ErrNotFound → NotFound, ErrUnavailable →
// Unavailable, ErrWrongShard → WrongShard; the server maps deadlines
// itself).
func EngineHandler(e *engine.Engine) Handler { return &engineHandler{e: e} }

type engineHandler struct {
	e     *engine.Engine
	pool  sync.Pool // of *engine.Response
	resps sync.Pool // of *wire.RecommendResponse, back from Recycle
	load  func(ctx context.Context, dir string) (*engine.Model, error)
}

func engineErr(err error) error {
	if err == nil {
		return nil
	}
	var code wire.ErrorCode
	switch {
	case errors.Is(err, engine.ErrBadRequest):
		code = wire.BadRequest
	case errors.Is(err, engine.ErrNotFound):
		code = wire.NotFound
	case errors.Is(err, engine.ErrUnavailable):
		code = wire.Unavailable
	case errors.Is(err, engine.ErrWrongShard):
		code = wire.WrongShard
	default:
		return err // context errors and the unexpected: the server maps them
	}
	return &wire.Error{Code: code, Message: err.Error()}
}

func engineContext(c *wire.Context) engine.Context {
	return engine.Context{Time: c.Time, Session: c.Session, Position: c.Position, Country: c.Country, Language: c.Language,
		AgeBucket: c.AgeBucket, Device: c.Device, Recent: c.Recent}
}

func (h *engineHandler) Recommend(ctx context.Context, req *wire.RecommendRequest) (*wire.RecommendResponse, error) {
	er := engine.RecommendRequest{User: req.User, Context: engineContext(&req.Context), N: req.N, Exclude: req.Exclude}
	resp, _ := h.pool.Get().(*engine.Response)
	if resp == nil {
		resp = new(engine.Response)
	}
	defer h.pool.Put(resp)
	if err := h.e.RecommendInto(ctx, &er, resp); err != nil {
		return nil, engineErr(err)
	}
	// The answer and its items' probabilities reuse a response the server
	// gave back once encoded (Recycle): no allocation a request once warm.
	out, _ := h.resps.Get().(*wire.RecommendResponse)
	if out == nil {
		out = new(wire.RecommendResponse)
	}
	// Grow keeps the items past len, and with them their Probs' backing.
	items := slices.Grow(out.Items[:0], len(resp.Items))[:len(resp.Items)]
	*out = wire.RecommendResponse{Heads: resp.Heads, ModelVersion: resp.ModelVersion, Arm: resp.Arm, Items: items}
	for i, it := range resp.Items {
		items[i] = wire.Item{Reel: it.Reel, Score: it.Score, Probs: append(items[i].Probs[:0], it.Probs...), Propensity: it.Propensity, Source: wire.Source(it.Source)}
	}
	t := &resp.Timings
	out.Timings = wire.Timings{Features: t.Features, Tower: t.Tower, ANN: t.ANN, Rank: t.Rank, Postrank: t.Postrank, Total: t.Total,
		ANNCandidates: t.ANNCandidates, FreshCandidates: t.FreshCandidates, ExploreCandidates: t.ExploreCandidates, Ranked: t.Ranked}
	return out, nil
}

// Recycle takes back a RecommendResponse the server has encoded and will
// not touch again (Recycler), for a later Recommend to reuse.
func (h *engineHandler) Recycle(m wire.Message) {
	if r, ok := m.(*wire.RecommendResponse); ok {
		h.resps.Put(r)
	}
}

func (h *engineHandler) Score(ctx context.Context, req *wire.ScoreRequest) (*wire.ScoreResponse, error) {
	r, err := h.e.Score(ctx, req.User, engineContext(&req.Context), req.Reels)
	if err != nil {
		return nil, engineErr(err)
	}
	return &wire.ScoreResponse{Heads: r.Heads, Scores: r.Scores, Probs: r.Probs, ModelVersion: r.ModelVersion}, nil
}

func (h *engineHandler) Search(ctx context.Context, req *wire.SearchRequest) (*wire.SearchResponse, error) {
	r, err := h.e.Search(ctx, req.Vector, req.K, req.Nprobe, req.Exclude)
	if err != nil {
		return nil, engineErr(err)
	}
	return &wire.SearchResponse{IDs: r.IDs, Scores: r.Scores}, nil
}

func (h *engineHandler) Upsert(_ context.Context, req *wire.UpsertRequest) (*wire.UpsertResponse, error) {
	r := &req.Reel
	res, err := h.e.UpsertKeyed(req.Key, engine.Reel{ID: r.ID, Author: r.Author, Upload: r.Upload, Duration: r.Duration, Category: r.Category,
		Embedding: r.Embedding, Description: r.Description, Language: r.Language})
	if err != nil {
		return nil, engineErr(err)
	}
	return &wire.UpsertResponse{Replaced: res.Replaced, Replayed: res.Replayed}, nil
}

func (h *engineHandler) Delete(_ context.Context, req *wire.DeleteRequest) (*wire.DeleteResponse, error) {
	res, err := h.e.DeleteKeyed(req.Key, req.ID)
	if err != nil {
		return nil, engineErr(err)
	}
	return &wire.DeleteResponse{Replayed: res.Replayed}, nil
}

func (h *engineHandler) Event(_ context.Context, req *wire.EventRequest) (*wire.EventResponse, error) {
	evs := make([]eventlog.Event, len(req.Events))
	for i, we := range req.Events {
		evs[i] = eventlog.Event{Type: eventlog.Type(we.Type), Has: eventlog.Field(we.Has), Time: we.Time, User: we.User, Reel: we.Reel,
			Author: we.Author, Session: we.Session, Position: we.Position, Propensity: we.Propensity, Arm: we.Arm,
			Seconds: we.Seconds, Fraction: we.Fraction}
	}
	r, err := h.e.EventKeyed(req.Key, evs)
	if err != nil {
		return nil, engineErr(err)
	}
	return &wire.EventResponse{Accepted: r.Accepted, Rejected: r.Rejected, Reason: r.Reason, Replayed: r.Replayed}, nil
}

func (h *engineHandler) Health(context.Context, *wire.HealthRequest) (*wire.HealthResponse, error) {
	hh := h.e.Health()
	return &wire.HealthResponse{OK: hh.OK, Status: hh.Status}, nil
}

func (h *engineHandler) Info(context.Context) Info {
	m := h.e.Model()
	if m == nil {
		return Info{}
	}
	return Info{IndexSize: uint64(m.Index().Len()), ModelVersion: m.Version()}
}

// String names the handler in logs.
func (h *engineHandler) String() string { return fmt.Sprintf("engine %p", h.e) }
