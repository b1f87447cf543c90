package wire

import (
	"errors"
	"fmt"

	"github.com/reelrank/reelrank/internal/fbverify"
)

// The verifier. The flatbuffers Go runtime trusts its buffer: a bad offset
// indexes out of range and panics. verify walks every table, vtable,
// struct, string and vector the schema can reach from the root with
// package fbverify, checking that each lies inside the buffer, before any
// generated accessor reads it. The walk is bounded by maxDepth and by a
// byte budget (below).

func scalar(size uint16) fbverify.Field       { return fbverify.Scalar(size) }
func vecOf(size uint16) fbverify.Field        { return fbverify.Vector(size) }
func table(d *fbverify.Table) fbverify.Field  { return fbverify.TableOf(d) }
func tables(d *fbverify.Table) fbverify.Field { return fbverify.TablesOf(d) }

var (
	str     = fbverify.String()
	strs    = fbverify.Strings()
	timings = fbverify.Struct(40)
)

// The schema of reelrank.fbs, field by field (TestVerifierMatchesSchema
// holds them to it).
var (
	contextDesc = &fbverify.Table{Name: "Context", Fields: []fbverify.Field{
		scalar(8), scalar(8), scalar(4), scalar(2), scalar(2), scalar(1), scalar(1), vecOf(8)}}
	itemDesc = &fbverify.Table{Name: "Item", Fields: []fbverify.Field{scalar(8), scalar(4), vecOf(4), scalar(8), scalar(1)}}
	reelDesc = &fbverify.Table{Name: "Reel", Fields: []fbverify.Field{
		scalar(8), scalar(8), scalar(8), scalar(4), scalar(4), vecOf(4), str, scalar(2)}}
	eventDesc = &fbverify.Table{Name: "Event", Fields: []fbverify.Field{scalar(1), scalar(2), scalar(8), scalar(8), scalar(8),
		scalar(8), scalar(8), scalar(4), scalar(8), str, scalar(4), scalar(4)}}

	// bodyDescs[k] describes the table of a body of kind k (nil for a
	// number no message has).
	bodyDescs = [numKinds]*fbverify.Table{
		KindRecommendRequest:  {Name: "RecommendRequest", Fields: []fbverify.Field{scalar(8), table(contextDesc), scalar(4), vecOf(8)}},
		KindRecommendResponse: {Name: "RecommendResponse", Fields: []fbverify.Field{tables(itemDesc), strs, str, str, timings, vecOf(4)}},
		KindScoreRequest:      {Name: "ScoreRequest", Fields: []fbverify.Field{scalar(8), table(contextDesc), vecOf(8)}},
		KindScoreResponse:     {Name: "ScoreResponse", Fields: []fbverify.Field{strs, vecOf(4), vecOf(4), str}},
		KindSearchRequest:     {Name: "SearchRequest", Fields: []fbverify.Field{vecOf(4), scalar(4), scalar(4), vecOf(8)}},
		KindSearchResponse:    {Name: "SearchResponse", Fields: []fbverify.Field{vecOf(8), vecOf(4), vecOf(4)}},
		KindUpsertRequest:     {Name: "UpsertRequest", Fields: []fbverify.Field{table(reelDesc), str}},
		KindUpsertResponse:    {Name: "UpsertResponse", Fields: []fbverify.Field{scalar(1), scalar(1)}},
		KindDeleteRequest:     {Name: "DeleteRequest", Fields: []fbverify.Field{scalar(8), str}},
		KindDeleteResponse:    {Name: "DeleteResponse", Fields: []fbverify.Field{scalar(1)}},
		KindEventRequest:      {Name: "EventRequest", Fields: []fbverify.Field{tables(eventDesc), str}},
		KindEventResponse:     {Name: "EventResponse", Fields: []fbverify.Field{scalar(4), scalar(4), str, scalar(1)}},
		KindStatsRequest:      {Name: "StatsRequest"},
		KindStatsResponse: {Name: "StatsResponse", Fields: []fbverify.Field{scalar(8), scalar(8), vecOf(8), scalar(8), str,
			scalar(4), scalar(4), scalar(8)}},
		KindHealthRequest:  {Name: "HealthRequest"},
		KindHealthResponse: {Name: "HealthResponse", Fields: []fbverify.Field{scalar(1), str}},
		KindError:          {Name: "Error", Fields: []fbverify.Field{scalar(1), str}},
		KindAuthRequest:    {Name: "AuthRequest", Fields: []fbverify.Field{str}},
		KindAuthResponse:   {Name: "AuthResponse"},
		KindAdminRequest:   {Name: "AdminRequest", Fields: []fbverify.Field{str, str, scalar(8), scalar(8), str, str, scalar(1)}},
		KindAdminResponse:  {Name: "AdminResponse", Fields: []fbverify.Field{vecOf(1)}},
	}
	bodyUnion = &fbverify.Union{Name: "Body", Members: bodyDescs[:]}

	envelopeDesc = &fbverify.Table{Name: "Envelope", Fields: []fbverify.Field{
		scalar(8), scalar(8), fbverify.UnionType(), fbverify.UnionOf(bodyUnion)}}
	// envelopeHead is the envelope's request id alone, for peekRequestID.
	envelopeHead = &fbverify.Table{Name: "Envelope", Fields: []fbverify.Field{scalar(8)}}
)

// maxDepth bounds the nesting of tables; the schema needs 2 below the
// envelope (the body, then an item, context, reel or event).
const maxDepth = 8

// The verifier also counts the bytes of the tables, vectors and strings it
// visits. Our encoder writes each once; other builders may share strings
// (flatbuffers' CreateSharedString), so a reference may be counted more
// than once. Past aliasFactor times the buffer's size, though, the offsets
// alias on purpose (a vector of a thousand items all pointing at one item
// with a long vector), which would make decoding cost far more than the
// frame's size.
const aliasFactor = 4

func malformed(format string, args ...any) error {
	return fmt.Errorf("wire: "+format+": %w", append(args, ErrMalformed)...)
}

// verify checks the whole envelope in buf. A body type this package does
// not know is ErrUnknownMessage; anything else wrong, ErrMalformed.
func verify(buf []byte) error {
	if len(buf) > MaxFrameLimit {
		return malformed("%d bytes is over the limit of %d", len(buf), MaxFrameLimit)
	}
	err := fbverify.Verify(buf, envelopeDesc, fbverify.Options{Identifier: FileIdentifier, MaxDepth: maxDepth, AliasFactor: aliasFactor})
	if err == nil {
		return nil
	}
	var unknown *fbverify.UnknownTypeError
	if errors.As(err, &unknown) {
		return fmt.Errorf("wire: body type %d: %w", unknown.Type, ErrUnknownMessage)
	}
	return fmt.Errorf("wire: %w: %w", err, ErrMalformed)
}

// verifyHead checks the envelope in buf as far as its request id.
func verifyHead(buf []byte) bool {
	if len(buf) > MaxFrameLimit {
		return false
	}
	return fbverify.Verify(buf, envelopeHead, fbverify.Options{Identifier: FileIdentifier, MaxDepth: maxDepth, AliasFactor: aliasFactor}) == nil
}
