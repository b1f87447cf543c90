package wire

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/wire/internal/fb"
)

func allKinds() []Kind {
	var ks []Kind
	for k := KindRecommendRequest; k < numKinds; k++ {
		if k.known() {
			ks = append(ks, k)
		}
	}
	return ks
}

// TestRoundTrip sends random messages of every kind through Encode,
// WriteFrame, ReadFrame and Decode, into a fresh and into a reused
// Envelope.
func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	rounds := 40
	if testing.Short() {
		rounds = 8
	}
	var (
		enc    Encoder
		stream bytes.Buffer
		sent   []*Envelope
	)
	for range rounds {
		for _, k := range allKinds() {
			env := randEnvelope(r, k)
			var frame []byte
			var err error
			if r.IntN(2) == 0 {
				frame, err = enc.EncodeFrame(env)
				if err == nil {
					stream.Write(frame)
				}
			} else {
				frame, err = enc.Encode(env)
				if err == nil {
					err = WriteFrame(&stream, frame)
				}
			}
			if err != nil {
				t.Fatalf("%v: %v", k, err)
			}
			sent = append(sent, env)
		}
	}
	br := bufio.NewReader(&stream)
	var buf []byte
	var reused Envelope
	for i, want := range sent {
		payload, err := ReadFrame(br, 0, buf)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		buf = payload
		var fresh Envelope
		if err := Decode(payload, &fresh); err != nil {
			t.Fatalf("frame %d (%v): %v", i, want.Body.Kind(), err)
		}
		if !equalEnvelopes(&fresh, want) {
			t.Fatalf("frame %d (%v): got\n%+v\nwant\n%+v", i, want.Body.Kind(), fresh.Body, want.Body)
		}
		if err := Decode(payload, &reused); err != nil {
			t.Fatalf("frame %d reused: %v", i, err)
		}
		if !equalEnvelopes(&reused, want) {
			t.Fatalf("frame %d (%v) into a reused envelope: got\n%+v\nwant\n%+v", i, want.Body.Kind(), reused.Body, want.Body)
		}
	}
	if _, err := ReadFrame(br, 0, buf); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

// TestReuseSameKind decodes messages of one kind in turn into one
// Envelope: each must replace the previous one completely.
func TestReuseSameKind(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, k := range allKinds() {
		var env Envelope
		for range 20 {
			want := randEnvelope(r, k)
			buf, err := Encode(want)
			if err != nil {
				t.Fatal(err)
			}
			prev := env.Body
			if err := Decode(buf, &env); err != nil {
				t.Fatalf("%v: %v", k, err)
			}
			if prev != nil && env.Body != prev {
				t.Fatalf("%v: a message of the same kind was not reused", k)
			}
			if !equalEnvelopes(&env, want) {
				t.Fatalf("%v: got %+v want %+v", k, env.Body, want.Body)
			}
		}
	}
}

func TestTimeoutRoundsUp(t *testing.T) {
	for _, c := range []struct{ in, out time.Duration }{
		{0, 0}, {1, time.Microsecond}, {time.Microsecond, time.Microsecond},
		{1500 * time.Nanosecond, 2 * time.Microsecond}, {MaxTimeout, MaxTimeout},
	} {
		buf, err := Encode(&Envelope{RequestID: 1, Timeout: c.in, Body: &HealthRequest{}})
		if err != nil {
			t.Fatal(err)
		}
		var env Envelope
		if err := Decode(buf, &env); err != nil {
			t.Fatal(err)
		}
		if env.Timeout != c.out {
			t.Errorf("timeout %v came back as %v, want %v", c.in, env.Timeout, c.out)
		}
	}
	for _, d := range []time.Duration{-1, MaxTimeout + 1} {
		if _, err := Encode(&Envelope{Timeout: d, Body: &HealthRequest{}}); Code(err) != BadRequest {
			t.Errorf("timeout %v: %v, want a bad request", d, err)
		}
	}
}

// TestEventNumbering pins the wire's event types and field bits to the
// event log's.
func TestEventNumbering(t *testing.T) {
	pairs := []struct {
		w EventType
		e eventlog.Type
	}{{EventImpression, eventlog.Impression}, {EventWatch, eventlog.Watch}, {EventSkip, eventlog.Skip},
		{EventLike, eventlog.Like}, {EventComment, eventlog.Comment}, {EventShare, eventlog.Share},
		{EventFollow, eventlog.Follow}, {EventUpload, eventlog.Upload}}
	for _, p := range pairs {
		if uint8(p.w) != uint8(p.e) || uint8(fb.EventType(p.w)) != uint8(p.e) {
			t.Errorf("event type %v: wire %d, event log %d", p.e, p.w, p.e)
		}
		if fb.EnumNamesEventType[fb.EventType(p.w)] != strings.ToUpper(p.e.String()[:1])+p.e.String()[1:] {
			t.Errorf("schema name of %v: %s", p.e, fb.EnumNamesEventType[fb.EventType(p.w)])
		}
	}
	if eventlog.FType != 1 || eventlog.FFraction != 1<<10 {
		t.Errorf("event log field bits moved: type %#x, frac %#x", eventlog.FType, eventlog.FFraction)
	}
}

func TestKinds(t *testing.T) {
	for _, k := range allKinds() {
		if got := randMessage(rand.New(rand.NewPCG(1, 1)), k).Kind(); got != k {
			t.Errorf("message of kind %v says %v", k, got)
		}
		if fb.EnumNamesBody[fb.Body(k)] != k.String() {
			t.Errorf("kind %d: schema %q, Go %q", k, fb.EnumNamesBody[fb.Body(k)], k)
		}
		if k.IsRequest() != (k%2 == 1 && k != KindError) || (k.IsRequest() && k.Response() != k+1) {
			t.Errorf("kind %v: IsRequest %v, Response %v", k, k.IsRequest(), k.Response())
		}
	}
	if len(allKinds()) != 21 || KindError != 17 || KindAuthRequest != 19 || KindAuthResponse != 20 || KindAdminRequest != 21 || KindAdminResponse != 22 {
		t.Errorf("kinds renumbered: %d kinds, Error %d, AuthRequest %d, AuthResponse %d, AdminRequest %d",
			len(allKinds()), KindError, KindAuthRequest, KindAuthResponse, KindAdminRequest)
	}
	if gap := Kind(18); gap.known() || gap.IsRequest() || gap.String() != "kind(18)" || fb.EnumNamesBody[fb.Body(gap)] != "" {
		t.Errorf("kind 18 should be unused: known %v, request %v, %q", gap.known(), gap.IsRequest(), gap)
	}
	for c := UnknownCode; c < numCodes; c++ {
		if fb.EnumNamesErrorCode[fb.ErrorCode(c)] == "" {
			t.Errorf("error code %v not in the schema", c)
		}
	}
}

// frameOf returns the length prefix of payload.
func frameOf(payload []byte) []byte {
	return binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))
}

func TestReadFrameErrors(t *testing.T) {
	good, err := Encode(&Envelope{RequestID: 7, Body: &HealthRequest{}})
	if err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	// An oversized frame, then a good one: the good one must still be read.
	big := bytes.Repeat([]byte{0xAB}, 5000)
	stream.Write(frameOf(big))
	stream.Write(big)
	stream.Write(frameOf(good))
	stream.Write(good)
	// A zero-length frame, then a good one.
	stream.Write([]byte{0, 0, 0, 0})
	stream.Write(frameOf(good))
	stream.Write(good)
	br := bufio.NewReaderSize(&stream, 16)
	if _, err := ReadFrame(br, 1000, nil); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized frame: %v", err)
	}
	for i := range 2 {
		p, err := ReadFrame(br, 1000, nil)
		if err != nil || !bytes.Equal(p, good) {
			t.Fatalf("good frame %d after a bad one: %v", i, err)
		}
		if i == 0 {
			if _, err := ReadFrame(br, 1000, nil); !errors.Is(err, ErrMalformed) {
				t.Fatalf("zero-length frame: %v", err)
			}
		}
	}
	if _, err := ReadFrame(br, 1000, nil); err != io.EOF {
		t.Fatalf("clean end: %v, want io.EOF", err)
	}

	// Truncations: inside the header, inside the payload, inside the
	// discarded bytes of an oversized frame.
	whole := append(frameOf(good), good...)
	for cut := 1; cut < len(whole); cut++ {
		_, err := ReadFrame(bufio.NewReader(bytes.NewReader(whole[:cut])), 0, nil)
		if !errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
			t.Fatalf("frame cut at %d of %d: %v", cut, len(whole), err)
		}
	}
	over := append(frameOf(big), big[:100]...)
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(over)), 1000, nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("oversized frame cut short: %v", err)
	}
	// A buffer with room is reused.
	buf := make([]byte, 0, 4096)
	p, err := ReadFrame(bufio.NewReader(bytes.NewReader(whole)), 0, buf)
	if err != nil || &p[0] != &buf[:1][0] {
		t.Fatalf("buffer with room not reused: %v", err)
	}
}

func TestWriteFrame(t *testing.T) {
	for _, n := range []int{1, 100, smallFrame, smallFrame + 1} {
		payload := bytes.Repeat([]byte{byte(n)}, n)
		var plain bytes.Buffer
		var w countingWriter
		if err := WriteFrame(&w, payload); err != nil {
			t.Fatal(err)
		}
		if n <= smallFrame && w.writes != 1 {
			t.Errorf("payload of %d bytes took %d writes", n, w.writes)
		}
		bw := bufio.NewWriter(&plain)
		if err := WriteFrame(bw, payload); err != nil || bw.Flush() != nil {
			t.Fatal(err)
		}
		for _, got := range [][]byte{w.buf.Bytes(), plain.Bytes()} {
			p, err := ReadFrame(bufio.NewReader(bytes.NewReader(got)), MaxFrameLimit, nil)
			if err != nil || !bytes.Equal(p, payload) {
				t.Fatalf("payload of %d bytes: %v", n, err)
			}
		}
	}
	if err := WriteFrame(io.Discard, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty payload: %v", err)
	}
}

type countingWriter struct {
	buf    bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.buf.Write(p)
}

// decodeErr decodes buf into a fresh envelope.
func decodeErr(buf []byte) (*Envelope, error) {
	var env Envelope
	err := Decode(buf, &env)
	return &env, err
}

func TestDecodeGarbage(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		b := make([]byte, r.IntN(200))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if r.IntN(2) == 0 && len(b) >= 8 {
			copy(b[4:], FileIdentifier)
		}
		env, err := decodeErr(b)
		if err == nil {
			continue // random bytes can be a valid envelope; FuzzDecode checks those
		}
		if env.Body != nil {
			t.Fatalf("failed decode left a body")
		}
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownMessage) && Code(err) != BadRequest {
			t.Fatalf("garbage gave an unclassified error: %v", err)
		}
	}
	for _, b := range [][]byte{nil, {1, 2, 3}, []byte("RRW1RRW1"), []byte("\x08\x00\x00\x00XXXX\x00\x00\x00\x00")} {
		if _, err := decodeErr(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v", b, err)
		}
	}
}

// TestDecodeBitFlips changes every byte of valid envelopes of every kind:
// each change decodes to a valid message or gives a classified error, and
// never panics (the recover would turn a panic into ErrMalformed with
// "decoder fault", which this test refuses).
func TestDecodeBitFlips(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, k := range allKinds() {
		buf, err := Encode(randEnvelope(r, k))
		if err != nil {
			t.Fatal(err)
		}
		step := 1
		if testing.Short() {
			step = 1 + len(buf)/64
		}
		mut := make([]byte, len(buf))
		for i := 0; i < len(buf); i += step {
			for _, v := range []byte{0, 0xFF, buf[i] ^ 0x80, buf[i] + 1} {
				copy(mut, buf)
				mut[i] = v
				_, err := decodeErr(mut)
				if err != nil && strings.Contains(err.Error(), "decoder fault") {
					t.Fatalf("%v: byte %d = %#x: %v", k, i, v, err)
				}
			}
		}
	}
}

// buildRaw finishes a hand-built envelope.
func buildRaw(b *flatbuffers.Builder, bodyType fb.Body, body flatbuffers.UOffsetT) []byte {
	fb.EnvelopeStart(b)
	fb.EnvelopeAddRequestId(b, 42)
	fb.EnvelopeAddBodyType(b, bodyType)
	if body != 0 {
		fb.EnvelopeAddBody(b, body)
	}
	b.FinishWithFileIdentifier(fb.EnvelopeEnd(b), []byte(FileIdentifier))
	return b.FinishedBytes()
}

func TestDecodeErrors(t *testing.T) {
	b := flatbuffers.NewBuilder(0)
	fb.HealthRequestStart(b)
	unknown := buildRaw(b, 200, fb.HealthRequestEnd(b))
	env, err := decodeErr(unknown)
	if !errors.Is(err, ErrUnknownMessage) || Code(err) != BadRequest {
		t.Errorf("unknown body type: %v", err)
	}
	if env.RequestID != 42 {
		t.Errorf("unknown body type: request id %d, want 42 so that the error can be answered", env.RequestID)
	}
	b.Reset()
	fb.HealthRequestStart(b)
	if _, err := decodeErr(buildRaw(b, 18, fb.HealthRequestEnd(b))); !errors.Is(err, ErrUnknownMessage) {
		t.Errorf("body type 18, the unused number: %v", err)
	}

	b = flatbuffers.NewBuilder(0)
	if _, err := decodeErr(buildRaw(b, fb.BodyHealthRequest, 0)); !errors.Is(err, ErrMalformed) {
		t.Errorf("body type without a body: %v", err)
	}
	b = flatbuffers.NewBuilder(0)
	fb.HealthRequestStart(b)
	if _, err := decodeErr(buildRaw(b, fb.BodyNONE, fb.HealthRequestEnd(b))); !errors.Is(err, ErrMalformed) {
		t.Errorf("body without a type: %v", err)
	}

	// Bad offsets: the root, a vtable, a vector length, a string's NUL.
	good, err := Encode(&Envelope{RequestID: 9, Body: &SearchRequest{Vector: []float32{1, 2, 3}, K: 5}})
	if err != nil {
		t.Fatal(err)
	}
	bad := func(name string, edit func(b []byte)) {
		t.Helper()
		b := bytes.Clone(good)
		edit(b)
		if _, err := decodeErr(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	bad("root past the end", func(b []byte) { binary.LittleEndian.PutUint32(b, uint32(len(b))) })
	bad("vtable before the start", func(b []byte) {
		root := binary.LittleEndian.Uint32(b)
		binary.LittleEndian.PutUint32(b[root:], 1<<30)
	})
	bad("file identifier", func(b []byte) { b[5] = 'X' })
	vecAt := bytes.Index(good, binary.LittleEndian.AppendUint32(nil, 3)) // the vector's length 3
	bad("vector length", func(b []byte) { binary.LittleEndian.PutUint32(b[vecAt:], 1<<20) })

	str, err := Encode(&Envelope{RequestID: 9, Body: &HealthResponse{Status: "fine"}})
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(str, []byte("fine"))
	str[i+4] = 'x'
	if env, err := decodeErr(str); !errors.Is(err, ErrMalformed) || env.RequestID != 9 {
		t.Errorf("string without its NUL: %v, request id %d", err, env.RequestID)
	}
	// Items aliasing one item: more bytes referenced than the frame holds.
	b = flatbuffers.NewBuilder(0)
	probs := make([]float32, 64)
	fb.ItemStartProbsVector(b, len(probs))
	for range probs {
		b.PrependFloat32(0.5)
	}
	pv := b.EndVector(len(probs))
	fb.ItemStart(b)
	fb.ItemAddProbs(b, pv)
	item := fb.ItemEnd(b)
	fb.RecommendResponseStartItemsVector(b, 500)
	for range 500 {
		b.PrependUOffsetT(item)
	}
	items := b.EndVector(500)
	fb.RecommendResponseStart(b)
	fb.RecommendResponseAddItems(b, items)
	if _, err := decodeErr(buildRaw(b, fb.BodyRecommendResponse, fb.RecommendResponseEnd(b))); !errors.Is(err, ErrMalformed) {
		t.Errorf("aliased items: %v", err)
	}
}

func TestRejectsBadValues(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	bad := []Message{
		&SearchRequest{Vector: []float32{1, nan}, K: 1},
		&SearchRequest{Vector: []float32{inf}, K: 1},
		&SearchRequest{K: 1},
		&SearchRequest{Vector: []float32{1}, K: 0},
		&SearchRequest{Vector: []float32{1}, K: MaxK + 1},
		&SearchRequest{Vector: []float32{1}, K: 1, Nprobe: -1},
		&SearchRequest{Vector: make([]float32, MaxDim+1), K: 1},
		&SearchResponse{IDs: []int64{1}, Scores: []float32{nan}},
		&SearchResponse{IDs: []int64{1, 2}, Scores: []float32{1}},
		&RecommendRequest{User: -1, N: 1},
		&RecommendRequest{User: 1, N: 0},
		&RecommendRequest{User: 1, N: MaxN + 1},
		&RecommendRequest{User: 1, N: 1, Exclude: []int64{3, -3}},
		&RecommendRequest{User: 1, N: 1, Context: Context{Recent: []int64{-1}}},
		&RecommendResponse{Items: []Item{{Reel: 1, Score: nan}}},
		&RecommendResponse{Heads: []string{"like"}, Items: []Item{{Reel: 1, Probs: []float32{inf}}}},
		&RecommendResponse{Heads: []string{"like"}, Items: []Item{{Reel: 1}}},
		&ScoreRequest{User: 1, Reels: []int64{-5}},
		&ScoreResponse{Heads: []string{"a", "b"}, Scores: []float32{1}, Probs: []float32{1}},
		&UpsertRequest{Reel: Reel{ID: 1, Embedding: []float32{nan}}},
		&UpsertRequest{Reel: Reel{ID: -1}},
		&UpsertRequest{Reel: Reel{ID: 1, Category: -2}},
		&DeleteRequest{ID: -1},
		&EventRequest{Events: []Event{{Type: EventWatch, Seconds: inf}}},
		&EventRequest{Events: []Event{{Type: EventLike, User: -1}}},
		&HealthResponse{Status: strings.Repeat("x", MaxString+1)},
		&AuthRequest{Token: strings.Repeat("t", MaxString+1)},
	}
	for _, m := range bad {
		_, err := Encode(&Envelope{RequestID: 1, Body: m})
		var e *Error
		if !errors.As(err, &e) || e.Code != BadRequest {
			t.Errorf("%T %+v: Encode gave %v, want a bad request", m, m, err)
		}
	}
	// Decode applies the same rules to frames from a peer that does not
	// check: build one with the generated code directly.
	b := flatbuffers.NewBuilder(0)
	fb.SearchRequestStartVectorVector(b, 2)
	b.PrependFloat32(nan)
	b.PrependFloat32(1)
	v := b.EndVector(2)
	fb.SearchRequestStart(b)
	fb.SearchRequestAddVector(b, v)
	fb.SearchRequestAddK(b, 10)
	env, err := decodeErr(buildRaw(b, fb.BodySearchRequest, fb.SearchRequestEnd(b)))
	if Code(err) != BadRequest || errors.Is(err, ErrMalformed) || env.RequestID != 42 {
		t.Errorf("NaN in a decoded vector: %v (request id %d)", err, env.RequestID)
	}
	if _, err := Encode(&Envelope{}); !errors.Is(err, ErrUnknownMessage) {
		t.Errorf("nil body: %v", err)
	}
}

func TestCodes(t *testing.T) {
	cases := []struct {
		err  error
		code ErrorCode
	}{
		{nil, UnknownCode},
		{&Error{Code: Overloaded}, Overloaded},
		{ErrMalformed, BadRequest},
		{ErrFrameTooLarge, BadRequest},
		{ErrUnknownMessage, BadRequest},
		{io.ErrUnexpectedEOF, Internal},
		{fmt.Errorf("engine: %w", context.DeadlineExceeded), DeadlineExceeded},
	}
	for _, c := range cases {
		if got := Code(c.err); got != c.code {
			t.Errorf("Code(%v) = %v, want %v", c.err, got, c.code)
		}
	}
	if e := AsError(errors.New("boom")); e.Code != Internal || e.Message != "boom" {
		t.Errorf("AsError: %+v", e)
	}
	if s := ErrorCode(99).String(); s != "code(99)" {
		t.Errorf("unknown code: %s", s)
	}
	if s := (&Error{Code: NotFound, Message: "reel 3"}).Error(); s != "not found: reel 3" {
		t.Errorf("Error(): %s", s)
	}
}

func TestBufferPool(t *testing.T) {
	p := BufferPool{MaxRetained: 1024}
	b := p.Get(100)
	if len(*b) != 0 || cap(*b) < 100 {
		t.Fatalf("Get(100): len %d cap %d", len(*b), cap(*b))
	}
	p.Put(b)
	big := p.Get(4096)
	if cap(*big) < 4096 {
		t.Fatalf("Get(4096): cap %d", cap(*big))
	}
	p.Put(big) // dropped: over MaxRetained
	p.Put(nil)
}

// TestDecodeAllocs measures steady-state decoding into a reused Envelope.
func TestDecodeAllocs(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector or coverage")
	}
	buf, err := Encode(recommendResponse20())
	if err != nil {
		t.Fatal(err)
	}
	var env Envelope
	if err := Decode(buf, &env); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := Decode(buf, &env); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Decode of a 20-item Recommend response into a reused envelope: %v allocations, want 0", allocs)
	}
	t.Logf("Decode into a reused envelope: %v allocations", allocs)
	env20 := recommendResponse20()
	var enc Encoder
	allocs = testing.AllocsPerRun(100, func() {
		if _, err := enc.EncodeFrame(env20); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("EncodeFrame with a warm Encoder: %v allocations, want 0", allocs)
	}
}

// TestEqualEnvelopes checks the comparison the round-trip tests rely on.
func TestEqualEnvelopes(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	a := recommendResponse20()
	b := recommendResponse20()
	if !equalEnvelopes(a, b) {
		t.Fatal("equal envelopes compare unequal")
	}
	b.Body.(*RecommendResponse).Items[7].Probs[2] = 0.5
	if equalEnvelopes(a, b) {
		t.Fatal("a changed probability went unnoticed")
	}
	c, d := randEnvelope(r, KindEventRequest), randEnvelope(r, KindEventRequest)
	if equalEnvelopes(c, d) {
		t.Fatal("two random envelopes compare equal")
	}
}

func TestFinite(t *testing.T) {
	for _, v := range []float64{0, math.Copysign(0, -1), 1, -1, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32,
		math.MaxFloat64, math.NaN(), math.Inf(1), math.Inf(-1)} {
		want := !math.IsNaN(v) && !math.IsInf(v, 0)
		if got := finite64(v); got != want {
			t.Errorf("finite64(%v) = %v", v, got)
		}
		v32 := float32(v)
		want = !math.IsNaN(float64(v32)) && !math.IsInf(float64(v32), 0)
		if got := finite32(v32); got != want {
			t.Errorf("finite32(%v) = %v", v32, got)
		}
	}
}

// TestSharedStrings accepts a frame from a builder that shares one string
// among many events, as other languages' builders may.
func TestSharedStrings(t *testing.T) {
	b := flatbuffers.NewBuilder(0)
	arm := b.CreateSharedString("control-arm")
	const n = 200
	offs := make([]flatbuffers.UOffsetT, n)
	for i := range offs {
		fb.EventStart(b)
		fb.EventAddType(b, fb.EventTypeImpression)
		fb.EventAddArm(b, arm)
		offs[i] = fb.EventEnd(b)
	}
	fb.EventRequestStartEventsVector(b, n)
	for i := n - 1; i >= 0; i-- {
		b.PrependUOffsetT(offs[i])
	}
	events := b.EndVector(n)
	fb.EventRequestStart(b)
	fb.EventRequestAddEvents(b, events)
	env, err := decodeErr(buildRaw(b, fb.BodyEventRequest, fb.EventRequestEnd(b)))
	if err != nil {
		t.Fatal(err)
	}
	m := env.Body.(*EventRequest)
	if len(m.Events) != n || m.Events[n-1].Arm != "control-arm" || m.Events[0].Type != EventImpression {
		t.Fatalf("got %d events, last %+v", len(m.Events), m.Events[n-1])
	}
}

// TestIdempotencyKey: the three writes carry a key of up to MaxKey bytes
// and their answers a Replayed flag; a longer key is a bad request both
// when encoded and when a peer that does not check sends one; and a frame
// without the fields (an older peer's) decodes with no key, not replayed.
func TestIdempotencyKey(t *testing.T) {
	key := strings.Repeat("k", MaxKey)
	for _, m := range []Message{
		&UpsertRequest{Reel: Reel{ID: 1, Category: -1}, Key: key},
		&DeleteRequest{ID: 1, Key: key},
		&EventRequest{Events: []Event{{Type: EventLike}}, Key: key},
		&UpsertResponse{Replaced: true, Replayed: true},
		&DeleteResponse{Replayed: true},
		&EventResponse{Accepted: 1, Replayed: true},
	} {
		buf, err := Encode(&Envelope{RequestID: 3, Body: m})
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		env, err := decodeErr(buf)
		if err != nil || !equalEnvelopes(env, &Envelope{RequestID: 3, Body: m}) {
			t.Fatalf("%T: got %+v, %v; want %+v", m, env.Body, err, m)
		}
	}

	long := key + "x"
	for _, m := range []Message{
		&UpsertRequest{Reel: Reel{ID: 1, Category: -1}, Key: long},
		&DeleteRequest{ID: 1, Key: long},
		&EventRequest{Key: long},
	} {
		_, err := Encode(&Envelope{RequestID: 1, Body: m})
		if Code(err) != BadRequest || !strings.Contains(err.Error(), "idempotency key of 129 bytes") {
			t.Errorf("%T with a key of %d bytes: Encode gave %v, want a bad request", m, len(long), err)
		}
	}

	// A peer that does not check: the generated code directly.
	raw := func(body func(b *flatbuffers.Builder, key flatbuffers.UOffsetT) (fb.Body, flatbuffers.UOffsetT), key string) []byte {
		b := flatbuffers.NewBuilder(0)
		var k flatbuffers.UOffsetT
		if key != "" {
			k = b.CreateString(key)
		}
		typ, off := body(b, k)
		return buildRaw(b, typ, off)
	}
	bodies := map[string]func(b *flatbuffers.Builder, key flatbuffers.UOffsetT) (fb.Body, flatbuffers.UOffsetT){
		"upsert": func(b *flatbuffers.Builder, key flatbuffers.UOffsetT) (fb.Body, flatbuffers.UOffsetT) {
			fb.ReelStart(b)
			fb.ReelAddId(b, 5)
			reel := fb.ReelEnd(b)
			fb.UpsertRequestStart(b)
			fb.UpsertRequestAddReel(b, reel)
			if key != 0 {
				fb.UpsertRequestAddKey(b, key)
			}
			return fb.BodyUpsertRequest, fb.UpsertRequestEnd(b)
		},
		"delete": func(b *flatbuffers.Builder, key flatbuffers.UOffsetT) (fb.Body, flatbuffers.UOffsetT) {
			fb.DeleteRequestStart(b)
			fb.DeleteRequestAddId(b, 5)
			if key != 0 {
				fb.DeleteRequestAddKey(b, key)
			}
			return fb.BodyDeleteRequest, fb.DeleteRequestEnd(b)
		},
		"event": func(b *flatbuffers.Builder, key flatbuffers.UOffsetT) (fb.Body, flatbuffers.UOffsetT) {
			fb.EventRequestStart(b)
			if key != 0 {
				fb.EventRequestAddKey(b, key)
			}
			return fb.BodyEventRequest, fb.EventRequestEnd(b)
		},
	}
	for name, body := range bodies {
		env, err := decodeErr(raw(body, long))
		if Code(err) != BadRequest || errors.Is(err, ErrMalformed) || env.RequestID != 42 || env.Body != nil {
			t.Errorf("%s with a key of %d bytes: %v (request id %d), want a bad request under id 42", name, len(long), err, env.RequestID)
		}
		env, err = decodeErr(raw(body, ""))
		if err != nil {
			t.Fatalf("%s without a key: %v", name, err)
		}
		var got string
		switch m := env.Body.(type) {
		case *UpsertRequest:
			got = m.Key
		case *DeleteRequest:
			got = m.Key
		case *EventRequest:
			got = m.Key
		}
		if got != "" {
			t.Errorf("%s without a key decoded with key %q", name, got)
		}
	}

	// Answers of a server that predates the flag: not replayed.
	b := flatbuffers.NewBuilder(0)
	fb.DeleteResponseStart(b)
	env, err := decodeErr(buildRaw(b, fb.BodyDeleteResponse, fb.DeleteResponseEnd(b)))
	if err != nil || env.Body.(*DeleteResponse).Replayed {
		t.Errorf("an empty DeleteResponse: %+v, %v", env.Body, err)
	}
	// Decoding into a reused message clears a key the new frame lacks.
	env = &Envelope{Body: &DeleteRequest{ID: 9, Key: "old"}}
	if err := Decode(raw(bodies["delete"], ""), env); err != nil || env.Body.(*DeleteRequest).Key != "" {
		t.Errorf("reused DeleteRequest: %+v, %v", env.Body, err)
	}
}
