package wire

import (
	"math/rand/v2"
	"reflect"
	"time"
)

// randMessage returns a random valid message of kind k. Slices are nil or
// non-empty, so that a round trip through a fresh Envelope is DeepEqual.
func randMessage(r *rand.Rand, k Kind) Message {
	ids := func(max int) []int64 {
		n := r.IntN(max + 1)
		if n == 0 {
			return nil
		}
		v := make([]int64, n)
		for i := range v {
			v[i] = r.Int64N(1 << 40)
		}
		return v
	}
	floats := func(n int) []float32 {
		if n == 0 {
			return nil
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	str := func(max int) string {
		b := make([]byte, r.IntN(max+1))
		for i := range b {
			b[i] = byte('a' + r.IntN(26))
		}
		return string(b)
	}
	strs := func(n int) []string {
		if n == 0 {
			return nil
		}
		v := make([]string, n)
		for i := range v {
			v[i] = str(12)
		}
		return v
	}
	key := func() string { // empty half the time, up to MaxKey bytes otherwise
		if r.IntN(2) == 0 {
			return ""
		}
		return str(MaxKey)
	}
	us := func() time.Duration { return time.Duration(r.IntN(1e6)) * time.Microsecond }
	ctx := func() Context {
		return Context{Time: r.Int64N(2e12), Session: r.Int64N(1e9), Position: r.Int32N(100),
			Country: uint16(r.IntN(20)), Language: uint16(r.IntN(20)), AgeBucket: uint8(r.IntN(7)),
			Device: uint8(r.IntN(5)), Recent: ids(10)}
	}
	switch k {
	case KindRecommendRequest:
		return &RecommendRequest{User: r.Int64N(1e9), Context: ctx(), N: 1 + r.IntN(MaxN), Exclude: ids(30)}
	case KindRecommendResponse:
		heads := strs(r.IntN(6))
		m := &RecommendResponse{Heads: heads, ModelVersion: str(20), Arm: str(8),
			Timings: Timings{Features: us(), Tower: us(), ANN: us(), Rank: us(), Postrank: us(), Total: us(),
				ANNCandidates: r.Uint32(), FreshCandidates: r.Uint32(), ExploreCandidates: r.Uint32(), Ranked: r.Uint32()}}
		if n := r.IntN(25); n > 0 {
			m.Items = make([]Item, n)
			for i := range m.Items {
				m.Items[i] = Item{Reel: r.Int64N(1 << 40), Score: float32(r.NormFloat64()), Probs: floats(len(heads)),
					Propensity: r.Float64(), Source: Source(r.IntN(3))}
			}
		}
		if r.IntN(4) == 0 {
			m.MissingShards = []int{r.IntN(8), 8 + r.IntN(MaxShards-8)}
		}
		return m
	case KindScoreRequest:
		return &ScoreRequest{User: r.Int64N(1e9), Context: ctx(), Reels: ids(100)}
	case KindScoreResponse:
		n, h := r.IntN(50), r.IntN(6)
		return &ScoreResponse{Heads: strs(h), Scores: floats(n), Probs: floats(n * h), ModelVersion: str(10)}
	case KindSearchRequest:
		return &SearchRequest{Vector: floats(1 + r.IntN(256)), K: 1 + r.IntN(MaxK), Nprobe: r.IntN(MaxNprobe + 1), Exclude: ids(20)}
	case KindSearchResponse:
		n := r.IntN(100)
		m := &SearchResponse{Scores: floats(n)}
		if r.IntN(4) == 0 {
			m.MissingShards = []int{r.IntN(MaxShards)}
		}
		if n > 0 {
			m.IDs = make([]int64, n)
			for i := range m.IDs {
				m.IDs[i] = r.Int64N(1 << 50)
			}
		}
		return m
	case KindUpsertRequest:
		return &UpsertRequest{Reel: Reel{ID: r.Int64N(1 << 40), Author: r.Int64N(1e6), Upload: r.Int64N(2e12),
			Duration: r.Float32() * 60, Category: r.Int32N(40) - 1, Embedding: floats(r.IntN(129)), Description: str(100), Language: uint16(r.IntN(13))}, Key: key()}
	case KindUpsertResponse:
		return &UpsertResponse{Replaced: r.IntN(2) == 1, Replayed: r.IntN(2) == 1}
	case KindDeleteRequest:
		return &DeleteRequest{ID: r.Int64N(1 << 40), Key: key()}
	case KindDeleteResponse:
		return &DeleteResponse{Replayed: r.IntN(2) == 1}
	case KindEventRequest:
		m := &EventRequest{Key: key()}
		if n := r.IntN(20); n > 0 {
			m.Events = make([]Event, n)
			for i := range m.Events {
				m.Events[i] = Event{Type: EventType(1 + r.IntN(8)), Has: uint16(r.IntN(1 << 11)), Time: r.Int64N(2e12),
					User: r.Int64N(1e6), Reel: r.Int64N(1e6), Author: r.Int64N(1e6), Session: r.Int64N(1e6),
					Position: r.Int32N(50), Propensity: r.Float64(), Arm: str(5), Seconds: r.Float32() * 30, Fraction: r.Float32()}
			}
		}
		return m
	case KindEventResponse:
		return &EventResponse{Accepted: r.Uint32(), Rejected: r.Uint32(), Reason: str(30), Replayed: r.IntN(2) == 1}
	case KindStatsRequest:
		return &StatsRequest{}
	case KindStatsResponse:
		m := &StatsResponse{Uptime: us() * 1000, Requests: r.Uint64(), IndexSize: r.Uint64(), ModelVersion: str(10),
			Connections: r.Uint32(), InFlight: r.Uint32(), Events: r.Uint64()}
		if r.IntN(2) == 1 {
			m.Errors = make([]uint64, numCodes)
			for i := range m.Errors {
				m.Errors[i] = r.Uint64()
			}
		}
		return m
	case KindHealthRequest:
		return &HealthRequest{}
	case KindHealthResponse:
		return &HealthResponse{OK: r.IntN(2) == 1, Status: str(20)}
	case KindAuthRequest:
		return &AuthRequest{Token: str(40)}
	case KindAuthResponse:
		return &AuthResponse{}
	case KindAdminRequest:
		ops := []string{AdminLoad, AdminPromote, AdminRollback, AdminShares, AdminStatus, AdminDrift}
		return &AdminRequest{Op: ops[r.IntN(len(ops))], Bundle: str(30), Share: r.Float64()*2 - 1, Holdout: r.Float64()*2 - 1,
			Weights: str(10), Reason: str(20), Force: r.IntN(2) == 1}
	case KindAdminResponse:
		doc := []byte(str(200))
		if len(doc) == 0 {
			doc = nil
		}
		return &AdminResponse{JSON: doc}
	case KindError:
		return &Error{Code: ErrorCode(1 + r.IntN(int(numCodes)-1)), Message: str(40)}
	}
	panic("randMessage: kind " + k.String())
}

func randEnvelope(r *rand.Rand, k Kind) *Envelope {
	return &Envelope{RequestID: r.Uint64(), Timeout: time.Duration(r.IntN(5e6)) * time.Microsecond, Body: randMessage(r, k)}
}

// equalMessages compares two messages, taking nil and empty slices as equal.
func equalEnvelopes(a, b *Envelope) bool {
	return a.RequestID == b.RequestID && a.Timeout == b.Timeout && equalValues(reflect.ValueOf(a.Body), reflect.ValueOf(b.Body))
}

func equalValues(a, b reflect.Value) bool {
	if a.Kind() != b.Kind() || a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return equalValues(a.Elem(), b.Elem())
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !equalValues(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := range a.NumField() {
			if !equalValues(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Float32, reflect.Float64:
		// Bit equality: the wire carries floats exactly.
		x, y := a.Float(), b.Float()
		return x == y || (x != x && y != y)
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}
