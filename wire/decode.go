package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/reelrank/reelrank/wire/internal/fb"
)

// Decode verifies the flatbuffer in buf (a frame's payload, without the
// length prefix) and copies the envelope it holds into env.
//
// The verification runs first and covers every offset, vtable, table,
// struct, vector and string the schema can reach; only then do the
// generated accessors read the buffer. It returns an error wrapping
// ErrMalformed for bytes that are not a valid envelope, ErrUnknownMessage
// for a body type this package does not know, and an *Error of code
// BadRequest for a message that breaks a rule of the protocol (a negative
// id, a NaN, a count over a limit). As a second line of defence, a panic
// inside decoding is recovered and also reported as ErrMalformed.
//
// When env.Body already holds a message of the incoming kind, Decode
// decodes into it, reusing its slices; nothing in env refers to buf
// afterwards. On error, env.RequestID holds the frame's request id when
// the envelope itself could be read (0 otherwise), so that the error can
// be answered, and env.Body is nil.
func Decode(buf []byte, env *Envelope) (err error) {
	defer func() {
		if r := recover(); r != nil {
			env.Body = nil
			err = fmt.Errorf("wire: decoder fault (%v): %w", r, ErrMalformed)
		}
	}()
	if err := verify(buf); err != nil {
		env.RequestID, env.Timeout, env.Body = peekRequestID(buf), 0, nil
		return err
	}
	root := fb.GetRootAsEnvelope(buf, 0)
	env.RequestID = root.RequestId()
	env.Timeout = 0
	us := root.TimeoutUs()
	if us > uint64(MaxTimeout/time.Microsecond) {
		env.Body = nil
		return badRequest("timeout of %d µs, over the limit of %v", us, MaxTimeout)
	}
	env.Timeout = time.Duration(us) * time.Microsecond
	var t flatbuffers.Table
	if !root.Body(&t) {
		env.Body = nil
		return malformed("envelope without a body")
	}
	m, err := decodeBody(Kind(root.BodyType()), &t, env.Body)
	if err != nil {
		env.Body = nil
		return err
	}
	env.Body = m
	return nil
}

// peekRequestID reads the request id of an envelope whose body failed
// verification, checking each byte it reads; 0 when it cannot.
func peekRequestID(buf []byte) uint64 {
	if !verifyHead(buf) {
		return 0
	}
	return fb.GetRootAsEnvelope(buf, 0).RequestId()
}

// vec returns the bytes of the vector of size-byte elements in the field at
// vtable offset slot of t, or nil when the field is absent.
func vec(t flatbuffers.Table, slot flatbuffers.VOffsetT, size int) []byte {
	o := flatbuffers.UOffsetT(t.Offset(slot))
	if o == 0 {
		return nil
	}
	start, n := t.Vector(o), t.VectorLen(o)
	return t.Bytes[start : int(start)+n*size]
}

// grow returns dst resized to n, reusing its array when it can; nil stays
// nil for n = 0.
func grow[T any](dst []T, n int) []T {
	if cap(dst) >= n {
		return dst[:n]
	}
	return make([]T, n)
}

func int64sInto(dst []int64, raw []byte, what string, limit int) ([]int64, error) {
	n := len(raw) / 8
	if n > limit {
		return dst[:0], badRequest("%d %s, over the limit of %d", n, what, limit)
	}
	dst = grow(dst, n)
	for i := range dst {
		dst[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
	}
	return dst, nil
}

func uint64sInto(dst []uint64, raw []byte, what string, limit int) ([]uint64, error) {
	n := len(raw) / 8
	if n > limit {
		return dst[:0], badRequest("%d %s, over the limit of %d", n, what, limit)
	}
	dst = grow(dst, n)
	for i := range dst {
		dst[i] = binary.LittleEndian.Uint64(raw[8*i:])
	}
	return dst, nil
}

// shardsInto decodes a vector of shard indexes; nil when it is empty.
func shardsInto(dst []int, raw []byte) ([]int, error) {
	n := len(raw) / 4
	if n > MaxShards {
		return dst[:0], badRequest("%d missing shards, over the limit of %d", n, MaxShards)
	}
	if n == 0 {
		return nil, nil
	}
	dst = grow(dst, n)
	for i := range dst {
		v := binary.LittleEndian.Uint32(raw[4*i:])
		if v >= MaxShards {
			return dst[:0], badRequest("missing shard %d is %d, outside 0..%d", i, v, MaxShards-1)
		}
		dst[i] = int(v)
	}
	return dst, nil
}

func float32sInto(dst []float32, raw []byte, what string, limit int) ([]float32, error) {
	n := len(raw) / 4
	if n > limit {
		return dst[:0], badRequest("%d %s, over the limit of %d", n, what, limit)
	}
	dst = grow(dst, n)
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return dst, nil
}

// setString sets *dst to b, keeping the old string (and its memory) when
// it already holds these bytes.
func setString(dst *string, b []byte) {
	if *dst != string(b) {
		*dst = string(b)
	}
}

// keyInto sets *dst to the idempotency key b, refusing one over MaxKey
// before copying it.
func keyInto(dst *string, b []byte) error {
	if len(b) > MaxKey {
		return badRequest("idempotency key of %d bytes, over the limit of %d", len(b), MaxKey)
	}
	setString(dst, b)
	return nil
}

// stringsInto decodes the vector of strings in the field at slot.
func stringsInto(dst []string, t flatbuffers.Table, slot flatbuffers.VOffsetT, what string, limit int) ([]string, error) {
	o := flatbuffers.UOffsetT(t.Offset(slot))
	if o == 0 {
		return dst[:0], nil
	}
	n := t.VectorLen(o)
	if n > limit {
		return dst[:0], badRequest("%d %s, over the limit of %d", n, what, limit)
	}
	start := t.Vector(o)
	dst = grow(dst, n)
	for i := range dst {
		setString(&dst[i], t.ByteVector(start+flatbuffers.UOffsetT(4*i)))
	}
	return dst, nil
}

func decodeContext(c *Context, r *fb.Context) error {
	if r == nil {
		*c = Context{Recent: c.Recent[:0]}
		return nil
	}
	c.Time, c.Session, c.Position = r.TimeMs(), r.Session(), r.Position()
	c.Country, c.Language, c.AgeBucket, c.Device = r.Country(), r.Language(), r.AgeBucket(), r.Device()
	var err error
	c.Recent, err = int64sInto(c.Recent, vec(r.Table(), 18, 8), "recent reels", MaxRecent)
	return err
}

// reuse returns old when it is a *T, else a new T.
func reuse[T any, PT interface {
	*T
	Message
}](old Message) PT {
	if m, ok := old.(PT); ok {
		return m
	}
	return PT(new(T))
}

func micros(us uint32) time.Duration { return time.Duration(us) * time.Microsecond }

// decodeBody copies the verified body table t of kind k into a message,
// old when it is of that kind.
func decodeBody(k Kind, t *flatbuffers.Table, old Message) (Message, error) {
	var (
		m   Message
		err error
	)
	switch k {
	case KindRecommendRequest:
		msg := reuse[RecommendRequest](old)
		var r fb.RecommendRequest
		r.Init(t.Bytes, t.Pos)
		msg.User, msg.N = r.User(), int(r.N())
		var fc fb.Context // on the stack: Context(nil) allocates a table a message
		err = decodeContext(&msg.Context, r.Context(&fc))
		if err == nil {
			msg.Exclude, err = int64sInto(msg.Exclude, vec(r.Table(), 10, 8), "excluded reels", MaxExclude)
		}
		m = msg
	case KindRecommendResponse:
		msg := reuse[RecommendResponse](old)
		var r fb.RecommendResponse
		r.Init(t.Bytes, t.Pos)
		n := r.ItemsLength()
		if n > MaxN {
			return nil, badRequest("recommend: %d items, over the limit of %d", n, MaxN)
		}
		msg.Items = grow(msg.Items, n)
		var it fb.Item
		for i := range msg.Items {
			r.Items(&it, i)
			dst := &msg.Items[i]
			dst.Reel, dst.Score, dst.Propensity, dst.Source = it.Reel(), it.Score(), it.Propensity(), Source(it.Source())
			if dst.Probs, err = float32sInto(dst.Probs, vec(it.Table(), 8, 4), "probabilities", MaxHeads); err != nil {
				return nil, err
			}
		}
		if msg.Heads, err = stringsInto(msg.Heads, r.Table(), 6, "heads", MaxHeads); err != nil {
			return nil, err
		}
		setString(&msg.ModelVersion, r.ModelVersion())
		setString(&msg.Arm, r.Arm())
		if msg.MissingShards, err = shardsInto(msg.MissingShards, vec(r.Table(), 14, 4)); err != nil {
			return nil, err
		}
		msg.Timings = Timings{}
		var tm fb.Timings
		if r.Timings(&tm) != nil {
			msg.Timings = Timings{
				Features: micros(tm.FeaturesUs()), Tower: micros(tm.TowerUs()), ANN: micros(tm.AnnUs()),
				Rank: micros(tm.RankUs()), Postrank: micros(tm.PostrankUs()), Total: micros(tm.TotalUs()),
				ANNCandidates: tm.AnnCandidates(), FreshCandidates: tm.FreshCandidates(),
				ExploreCandidates: tm.ExploreCandidates(), Ranked: tm.Ranked(),
			}
		}
		m = msg
	case KindScoreRequest:
		msg := reuse[ScoreRequest](old)
		var r fb.ScoreRequest
		r.Init(t.Bytes, t.Pos)
		msg.User = r.User()
		var fc fb.Context // on the stack: Context(nil) allocates a table a message
		err = decodeContext(&msg.Context, r.Context(&fc))
		if err == nil {
			msg.Reels, err = int64sInto(msg.Reels, vec(r.Table(), 8, 8), "reels", MaxCandidates)
		}
		m = msg
	case KindScoreResponse:
		msg := reuse[ScoreResponse](old)
		var r fb.ScoreResponse
		r.Init(t.Bytes, t.Pos)
		tab := r.Table()
		if msg.Heads, err = stringsInto(msg.Heads, tab, 4, "heads", MaxHeads); err != nil {
			return nil, err
		}
		if msg.Scores, err = float32sInto(msg.Scores, vec(tab, 6, 4), "scores", MaxCandidates); err != nil {
			return nil, err
		}
		if msg.Probs, err = float32sInto(msg.Probs, vec(tab, 8, 4), "probabilities", MaxCandidates*MaxHeads); err != nil {
			return nil, err
		}
		setString(&msg.ModelVersion, r.ModelVersion())
		m = msg
	case KindSearchRequest:
		msg := reuse[SearchRequest](old)
		var r fb.SearchRequest
		r.Init(t.Bytes, t.Pos)
		msg.K, msg.Nprobe = int(r.K()), int(r.Nprobe())
		if msg.Vector, err = float32sInto(msg.Vector, vec(r.Table(), 4, 4), "vector values", MaxDim); err != nil {
			return nil, err
		}
		msg.Exclude, err = int64sInto(msg.Exclude, vec(r.Table(), 10, 8), "excluded reels", MaxExclude)
		m = msg
	case KindSearchResponse:
		msg := reuse[SearchResponse](old)
		var r fb.SearchResponse
		r.Init(t.Bytes, t.Pos)
		if msg.IDs, err = int64sInto(msg.IDs, vec(r.Table(), 4, 8), "ids", MaxK); err != nil {
			return nil, err
		}
		if msg.Scores, err = float32sInto(msg.Scores, vec(r.Table(), 6, 4), "scores", MaxK); err != nil {
			return nil, err
		}
		msg.MissingShards, err = shardsInto(msg.MissingShards, vec(r.Table(), 8, 4))
		m = msg
	case KindUpsertRequest:
		msg := reuse[UpsertRequest](old)
		var r fb.UpsertRequest
		r.Init(t.Bytes, t.Pos)
		reel := r.Reel(nil)
		if reel == nil {
			return nil, badRequest("upsert without a reel")
		}
		if err := keyInto(&msg.Key, r.Key()); err != nil {
			return nil, err
		}
		d := &msg.Reel
		d.ID, d.Author, d.Upload, d.Duration, d.Category = reel.Id(), reel.Author(), reel.UploadMs(), reel.Duration(), reel.Category()
		d.Language = reel.Language()
		setString(&d.Description, reel.Description())
		d.Embedding, err = float32sInto(d.Embedding, vec(reel.Table(), 14, 4), "embedding values", MaxDim)
		m = msg
	case KindUpsertResponse:
		var r fb.UpsertResponse
		r.Init(t.Bytes, t.Pos)
		msg := reuse[UpsertResponse](old)
		msg.Replaced, msg.Replayed = r.Replaced(), r.Replayed()
		m = msg
	case KindDeleteRequest:
		var r fb.DeleteRequest
		r.Init(t.Bytes, t.Pos)
		msg := reuse[DeleteRequest](old)
		msg.ID = r.Id()
		err = keyInto(&msg.Key, r.Key())
		m = msg
	case KindDeleteResponse:
		var r fb.DeleteResponse
		r.Init(t.Bytes, t.Pos)
		msg := reuse[DeleteResponse](old)
		msg.Replayed = r.Replayed()
		m = msg
	case KindEventRequest:
		msg := reuse[EventRequest](old)
		var r fb.EventRequest
		r.Init(t.Bytes, t.Pos)
		if err := keyInto(&msg.Key, r.Key()); err != nil {
			return nil, err
		}
		n := r.EventsLength()
		if n > MaxEvents {
			return nil, badRequest("events: %d, over the limit of %d", n, MaxEvents)
		}
		msg.Events = grow(msg.Events, n)
		var ev fb.Event
		for i := range msg.Events {
			r.Events(&ev, i)
			d := &msg.Events[i]
			d.Type, d.Has, d.Time = EventType(ev.Type()), ev.Has(), ev.TimeMs()
			d.User, d.Reel, d.Author, d.Session, d.Position = ev.User(), ev.Reel(), ev.Author(), ev.Session(), ev.Position()
			d.Propensity, d.Seconds, d.Fraction = ev.Propensity(), ev.Seconds(), ev.Fraction()
			setString(&d.Arm, ev.Arm())
		}
		m = msg
	case KindEventResponse:
		msg := reuse[EventResponse](old)
		var r fb.EventResponse
		r.Init(t.Bytes, t.Pos)
		msg.Accepted, msg.Rejected, msg.Replayed = r.Accepted(), r.Rejected(), r.Replayed()
		setString(&msg.Reason, r.Reason())
		m = msg
	case KindStatsRequest:
		m = reuse[StatsRequest](old)
	case KindStatsResponse:
		msg := reuse[StatsResponse](old)
		var r fb.StatsResponse
		r.Init(t.Bytes, t.Pos)
		up := r.UptimeUs()
		if up > math.MaxInt64/uint64(time.Microsecond) {
			return nil, badRequest("stats: uptime of %d µs", up)
		}
		msg.Uptime, msg.Requests, msg.IndexSize = time.Duration(up)*time.Microsecond, r.Requests(), r.IndexSize()
		msg.Connections, msg.InFlight, msg.Events = r.Connections(), r.InFlight(), r.Events()
		setString(&msg.ModelVersion, r.ModelVersion())
		msg.Errors, err = uint64sInto(msg.Errors, vec(r.Table(), 8, 8), "error codes", MaxErrorCodes)
		m = msg
	case KindHealthRequest:
		m = reuse[HealthRequest](old)
	case KindHealthResponse:
		msg := reuse[HealthResponse](old)
		var r fb.HealthResponse
		r.Init(t.Bytes, t.Pos)
		msg.OK = r.Ok()
		setString(&msg.Status, r.Status())
		m = msg
	case KindAuthRequest:
		msg := reuse[AuthRequest](old)
		var r fb.AuthRequest
		r.Init(t.Bytes, t.Pos)
		setString(&msg.Token, r.Token())
		m = msg
	case KindAuthResponse:
		m = reuse[AuthResponse](old)
	case KindAdminRequest:
		msg := reuse[AdminRequest](old)
		var r fb.AdminRequest
		r.Init(t.Bytes, t.Pos)
		setString(&msg.Op, r.Op())
		setString(&msg.Bundle, r.Bundle())
		setString(&msg.Weights, r.Weights())
		setString(&msg.Reason, r.Reason())
		msg.Share, msg.Holdout, msg.Force = r.Share(), r.Holdout(), r.Force()
		m = msg
	case KindAdminResponse:
		msg := reuse[AdminResponse](old)
		var r fb.AdminResponse
		r.Init(t.Bytes, t.Pos)
		raw := r.JsonBytes()
		if len(raw) > MaxAdminJSON {
			err = badRequest("admin: a JSON document of %d bytes, over the limit of %d", len(raw), MaxAdminJSON)
		}
		msg.JSON = append(msg.JSON[:0], raw...)
		m = msg
	case KindError:
		msg := reuse[Error](old)
		var r fb.Error
		r.Init(t.Bytes, t.Pos)
		msg.Code = ErrorCode(r.Code())
		setString(&msg.Message, r.Message())
		m = msg
	default:
		return nil, fmt.Errorf("wire: body type %d: %w", k, ErrUnknownMessage)
	}
	if err != nil {
		return nil, err
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return m, nil
}
