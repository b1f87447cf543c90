package wire

import (
	"fmt"
	"math"
	"time"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/reelrank/reelrank/wire/internal/fb"
)

// maxRetainedBuilder is the largest builder an Encoder keeps between calls.
const maxRetainedBuilder = 1 << 20

// An Encoder builds envelopes into a reusable flatbuffers builder. The
// bytes it returns are valid until its next call. It is not safe for
// concurrent use; the zero value is ready.
type Encoder struct {
	b    *flatbuffers.Builder
	offs []flatbuffers.UOffsetT
}

// Encode returns env as a flatbuffer, without a length prefix. It checks
// the message against the same rules as Decode and returns an *Error of
// code BadRequest (or ErrUnknownMessage for a nil body) when one is broken.
func (e *Encoder) Encode(env *Envelope) ([]byte, error) {
	if err := e.build(env, false); err != nil {
		return nil, err
	}
	return e.b.FinishedBytes(), nil
}

// EncodeFrame returns env as a whole frame: the 4-byte little-endian length,
// then the flatbuffer, ready for one Write.
func (e *Encoder) EncodeFrame(env *Envelope) ([]byte, error) {
	if err := e.build(env, true); err != nil {
		return nil, err
	}
	return e.b.FinishedBytes(), nil
}

// Encode returns env as a new flatbuffer, without a length prefix (see
// Encoder.Encode).
func Encode(env *Envelope) ([]byte, error) {
	var e Encoder
	buf, err := e.Encode(env)
	if err != nil {
		return nil, err
	}
	return buf, nil
}

// timeoutMicros converts a timeout to whole microseconds, rounded up.
func timeoutMicros(d time.Duration) (uint64, error) {
	if d < 0 || d > MaxTimeout {
		return 0, badRequest("timeout %v outside 0..%v", d, MaxTimeout)
	}
	return uint64((d + time.Microsecond - 1) / time.Microsecond), nil
}

func micros32(d time.Duration) uint32 {
	us := d / time.Microsecond
	if us > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(us)
}

func (e *Encoder) build(env *Envelope, sizePrefixed bool) error {
	if env.Body == nil {
		return fmt.Errorf("wire: encode: envelope without a body: %w", ErrUnknownMessage)
	}
	timeout, err := timeoutMicros(env.Timeout)
	if err != nil {
		return err
	}
	if err := env.Body.check(); err != nil {
		return err
	}
	if e.b == nil || cap(e.b.Bytes) > maxRetainedBuilder {
		e.b = flatbuffers.NewBuilder(1024)
	}
	b := e.b
	b.Reset()
	body := e.body(env.Body)
	fb.EnvelopeStart(b)
	fb.EnvelopeAddRequestId(b, env.RequestID)
	fb.EnvelopeAddTimeoutUs(b, timeout)
	fb.EnvelopeAddBodyType(b, fb.Body(env.Body.Kind()))
	fb.EnvelopeAddBody(b, body)
	root := fb.EnvelopeEnd(b)
	if sizePrefixed {
		b.FinishSizePrefixedWithFileIdentifier(root, []byte(FileIdentifier))
	} else {
		b.FinishWithFileIdentifier(root, []byte(FileIdentifier))
	}
	return nil
}

func (e *Encoder) int64s(v []int64) flatbuffers.UOffsetT {
	if len(v) == 0 {
		return 0
	}
	e.b.StartVector(8, len(v), 8)
	for i := len(v) - 1; i >= 0; i-- {
		e.b.PlaceInt64(v[i])
	}
	return e.b.EndVector(len(v))
}

func (e *Encoder) uint64s(v []uint64) flatbuffers.UOffsetT {
	if len(v) == 0 {
		return 0
	}
	e.b.StartVector(8, len(v), 8)
	for i := len(v) - 1; i >= 0; i-- {
		e.b.PlaceUint64(v[i])
	}
	return e.b.EndVector(len(v))
}

// shards encodes shard indexes (checked: 0..MaxShards-1) as uints.
func (e *Encoder) shards(v []int) flatbuffers.UOffsetT {
	if len(v) == 0 {
		return 0
	}
	e.b.StartVector(4, len(v), 4)
	for i := len(v) - 1; i >= 0; i-- {
		e.b.PlaceUint32(uint32(v[i]))
	}
	return e.b.EndVector(len(v))
}

func (e *Encoder) float32s(v []float32) flatbuffers.UOffsetT {
	if len(v) == 0 {
		return 0
	}
	e.b.StartVector(4, len(v), 4)
	for i := len(v) - 1; i >= 0; i-- {
		e.b.PlaceFloat32(v[i])
	}
	return e.b.EndVector(len(v))
}

func (e *Encoder) str(s string) flatbuffers.UOffsetT {
	if s == "" {
		return 0
	}
	return e.b.CreateString(s)
}

// offsets writes a vector of the offsets e.offs[from:] and truncates e.offs.
func (e *Encoder) offsets(from int) flatbuffers.UOffsetT {
	offs := e.offs[from:]
	e.b.StartVector(4, len(offs), 4)
	for i := len(offs) - 1; i >= 0; i-- {
		e.b.PrependUOffsetT(offs[i])
	}
	e.offs = e.offs[:from]
	return e.b.EndVector(len(offs))
}

func (e *Encoder) strs(ss []string) flatbuffers.UOffsetT {
	if len(ss) == 0 {
		return 0
	}
	from := len(e.offs)
	for _, s := range ss {
		e.offs = append(e.offs, e.b.CreateString(s))
	}
	return e.offsets(from)
}

func (e *Encoder) context(c *Context) flatbuffers.UOffsetT {
	b := e.b
	recent := e.int64s(c.Recent)
	fb.ContextStart(b)
	fb.ContextAddTimeMs(b, c.Time)
	fb.ContextAddSession(b, c.Session)
	fb.ContextAddPosition(b, c.Position)
	fb.ContextAddCountry(b, c.Country)
	fb.ContextAddLanguage(b, c.Language)
	fb.ContextAddAgeBucket(b, c.AgeBucket)
	fb.ContextAddDevice(b, c.Device)
	if recent != 0 {
		fb.ContextAddRecent(b, recent)
	}
	return fb.ContextEnd(b)
}

// body builds the message's table. Vectors and strings come first: a
// flatbuffers table cannot be open while they are written.
func (e *Encoder) body(m Message) flatbuffers.UOffsetT {
	b := e.b
	switch m := m.(type) {
	case *RecommendRequest:
		ctx := e.context(&m.Context)
		excl := e.int64s(m.Exclude)
		fb.RecommendRequestStart(b)
		fb.RecommendRequestAddUser(b, m.User)
		fb.RecommendRequestAddContext(b, ctx)
		fb.RecommendRequestAddN(b, uint32(m.N))
		if excl != 0 {
			fb.RecommendRequestAddExclude(b, excl)
		}
		return fb.RecommendRequestEnd(b)
	case *RecommendResponse:
		from := len(e.offs)
		for i := range m.Items {
			it := &m.Items[i]
			probs := e.float32s(it.Probs)
			fb.ItemStart(b)
			fb.ItemAddReel(b, it.Reel)
			fb.ItemAddScore(b, it.Score)
			if probs != 0 {
				fb.ItemAddProbs(b, probs)
			}
			fb.ItemAddPropensity(b, it.Propensity)
			fb.ItemAddSource(b, fb.Source(it.Source))
			e.offs = append(e.offs, fb.ItemEnd(b))
		}
		var items flatbuffers.UOffsetT
		if len(m.Items) != 0 {
			items = e.offsets(from)
		}
		heads, version, arm := e.strs(m.Heads), e.str(m.ModelVersion), e.str(m.Arm)
		missing := e.shards(m.MissingShards)
		fb.RecommendResponseStart(b)
		if missing != 0 {
			fb.RecommendResponseAddMissingShards(b, missing)
		}
		if items != 0 {
			fb.RecommendResponseAddItems(b, items)
		}
		if heads != 0 {
			fb.RecommendResponseAddHeads(b, heads)
		}
		if version != 0 {
			fb.RecommendResponseAddModelVersion(b, version)
		}
		if arm != 0 {
			fb.RecommendResponseAddArm(b, arm)
		}
		t := &m.Timings
		fb.RecommendResponseAddTimings(b, fb.CreateTimings(b, micros32(t.Features), micros32(t.Tower),
			micros32(t.ANN), micros32(t.Rank), micros32(t.Postrank), micros32(t.Total),
			t.ANNCandidates, t.FreshCandidates, t.ExploreCandidates, t.Ranked))
		return fb.RecommendResponseEnd(b)
	case *ScoreRequest:
		ctx := e.context(&m.Context)
		reels := e.int64s(m.Reels)
		fb.ScoreRequestStart(b)
		fb.ScoreRequestAddUser(b, m.User)
		fb.ScoreRequestAddContext(b, ctx)
		if reels != 0 {
			fb.ScoreRequestAddReels(b, reels)
		}
		return fb.ScoreRequestEnd(b)
	case *ScoreResponse:
		heads, scores, probs, version := e.strs(m.Heads), e.float32s(m.Scores), e.float32s(m.Probs), e.str(m.ModelVersion)
		fb.ScoreResponseStart(b)
		if heads != 0 {
			fb.ScoreResponseAddHeads(b, heads)
		}
		if scores != 0 {
			fb.ScoreResponseAddScores(b, scores)
		}
		if probs != 0 {
			fb.ScoreResponseAddProbs(b, probs)
		}
		if version != 0 {
			fb.ScoreResponseAddModelVersion(b, version)
		}
		return fb.ScoreResponseEnd(b)
	case *SearchRequest:
		vec, excl := e.float32s(m.Vector), e.int64s(m.Exclude)
		fb.SearchRequestStart(b)
		fb.SearchRequestAddVector(b, vec)
		fb.SearchRequestAddK(b, uint32(m.K))
		fb.SearchRequestAddNprobe(b, uint32(m.Nprobe))
		if excl != 0 {
			fb.SearchRequestAddExclude(b, excl)
		}
		return fb.SearchRequestEnd(b)
	case *SearchResponse:
		ids, scores := e.int64s(m.IDs), e.float32s(m.Scores)
		missing := e.shards(m.MissingShards)
		fb.SearchResponseStart(b)
		if missing != 0 {
			fb.SearchResponseAddMissingShards(b, missing)
		}
		if ids != 0 {
			fb.SearchResponseAddIds(b, ids)
		}
		if scores != 0 {
			fb.SearchResponseAddScores(b, scores)
		}
		return fb.SearchResponseEnd(b)
	case *UpsertRequest:
		r := &m.Reel
		emb, desc, key := e.float32s(r.Embedding), e.str(r.Description), e.str(m.Key)
		fb.ReelStart(b)
		fb.ReelAddId(b, r.ID)
		fb.ReelAddAuthor(b, r.Author)
		fb.ReelAddUploadMs(b, r.Upload)
		fb.ReelAddDuration(b, r.Duration)
		fb.ReelAddCategory(b, r.Category)
		fb.ReelAddLanguage(b, r.Language)
		if emb != 0 {
			fb.ReelAddEmbedding(b, emb)
		}
		if desc != 0 {
			fb.ReelAddDescription(b, desc)
		}
		reel := fb.ReelEnd(b)
		fb.UpsertRequestStart(b)
		fb.UpsertRequestAddReel(b, reel)
		if key != 0 {
			fb.UpsertRequestAddKey(b, key)
		}
		return fb.UpsertRequestEnd(b)
	case *UpsertResponse:
		fb.UpsertResponseStart(b)
		fb.UpsertResponseAddReplaced(b, m.Replaced)
		fb.UpsertResponseAddReplayed(b, m.Replayed)
		return fb.UpsertResponseEnd(b)
	case *DeleteRequest:
		key := e.str(m.Key)
		fb.DeleteRequestStart(b)
		fb.DeleteRequestAddId(b, m.ID)
		if key != 0 {
			fb.DeleteRequestAddKey(b, key)
		}
		return fb.DeleteRequestEnd(b)
	case *DeleteResponse:
		fb.DeleteResponseStart(b)
		fb.DeleteResponseAddReplayed(b, m.Replayed)
		return fb.DeleteResponseEnd(b)
	case *EventRequest:
		from := len(e.offs)
		for i := range m.Events {
			ev := &m.Events[i]
			arm := e.str(ev.Arm)
			fb.EventStart(b)
			fb.EventAddType(b, fb.EventType(ev.Type))
			fb.EventAddHas(b, ev.Has)
			fb.EventAddTimeMs(b, ev.Time)
			fb.EventAddUser(b, ev.User)
			fb.EventAddReel(b, ev.Reel)
			fb.EventAddAuthor(b, ev.Author)
			fb.EventAddSession(b, ev.Session)
			fb.EventAddPosition(b, ev.Position)
			fb.EventAddPropensity(b, ev.Propensity)
			if arm != 0 {
				fb.EventAddArm(b, arm)
			}
			fb.EventAddSeconds(b, ev.Seconds)
			fb.EventAddFraction(b, ev.Fraction)
			e.offs = append(e.offs, fb.EventEnd(b))
		}
		var events flatbuffers.UOffsetT
		if len(m.Events) != 0 {
			events = e.offsets(from)
		}
		key := e.str(m.Key)
		fb.EventRequestStart(b)
		if events != 0 {
			fb.EventRequestAddEvents(b, events)
		}
		if key != 0 {
			fb.EventRequestAddKey(b, key)
		}
		return fb.EventRequestEnd(b)
	case *EventResponse:
		reason := e.str(m.Reason)
		fb.EventResponseStart(b)
		fb.EventResponseAddAccepted(b, m.Accepted)
		fb.EventResponseAddRejected(b, m.Rejected)
		if reason != 0 {
			fb.EventResponseAddReason(b, reason)
		}
		fb.EventResponseAddReplayed(b, m.Replayed)
		return fb.EventResponseEnd(b)
	case *StatsRequest:
		fb.StatsRequestStart(b)
		return fb.StatsRequestEnd(b)
	case *StatsResponse:
		errs, version := e.uint64s(m.Errors), e.str(m.ModelVersion)
		fb.StatsResponseStart(b)
		fb.StatsResponseAddUptimeUs(b, uint64(m.Uptime/time.Microsecond))
		fb.StatsResponseAddRequests(b, m.Requests)
		if errs != 0 {
			fb.StatsResponseAddErrors(b, errs)
		}
		fb.StatsResponseAddIndexSize(b, m.IndexSize)
		if version != 0 {
			fb.StatsResponseAddModelVersion(b, version)
		}
		fb.StatsResponseAddConnections(b, m.Connections)
		fb.StatsResponseAddInFlight(b, m.InFlight)
		fb.StatsResponseAddEvents(b, m.Events)
		return fb.StatsResponseEnd(b)
	case *HealthRequest:
		fb.HealthRequestStart(b)
		return fb.HealthRequestEnd(b)
	case *HealthResponse:
		status := e.str(m.Status)
		fb.HealthResponseStart(b)
		fb.HealthResponseAddOk(b, m.OK)
		if status != 0 {
			fb.HealthResponseAddStatus(b, status)
		}
		return fb.HealthResponseEnd(b)
	case *AuthRequest:
		token := e.str(m.Token)
		fb.AuthRequestStart(b)
		if token != 0 {
			fb.AuthRequestAddToken(b, token)
		}
		return fb.AuthRequestEnd(b)
	case *AuthResponse:
		fb.AuthResponseStart(b)
		return fb.AuthResponseEnd(b)
	case *AdminRequest:
		op, bundle, weights, reason := e.str(m.Op), e.str(m.Bundle), e.str(m.Weights), e.str(m.Reason)
		fb.AdminRequestStart(b)
		if op != 0 {
			fb.AdminRequestAddOp(b, op)
		}
		if bundle != 0 {
			fb.AdminRequestAddBundle(b, bundle)
		}
		fb.AdminRequestAddShare(b, m.Share)
		fb.AdminRequestAddHoldout(b, m.Holdout)
		if weights != 0 {
			fb.AdminRequestAddWeights(b, weights)
		}
		if reason != 0 {
			fb.AdminRequestAddReason(b, reason)
		}
		fb.AdminRequestAddForce(b, m.Force)
		return fb.AdminRequestEnd(b)
	case *AdminResponse:
		doc := b.CreateByteVector(m.JSON)
		fb.AdminResponseStart(b)
		fb.AdminResponseAddJson(b, doc)
		return fb.AdminResponseEnd(b)
	case *Error:
		msg := e.str(m.Message)
		fb.ErrorStart(b)
		fb.ErrorAddCode(b, fb.ErrorCode(m.Code))
		if msg != 0 {
			fb.ErrorAddMessage(b, msg)
		}
		return fb.ErrorEnd(b)
	}
	panic(fmt.Sprintf("wire: encode: message type %T", m))
}
