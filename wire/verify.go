package wire

import (
	"encoding/binary"
	"fmt"
)

// The verifier. The flatbuffers Go runtime trusts its buffer: a bad offset
// indexes out of range and panics. verify walks every table, vtable,
// struct, string and vector the schema can reach from the root, checking
// that each lies inside the buffer, before any generated accessor reads it.
// Uoffsets are unsigned and point forward, so the walk cannot loop; it is
// also bounded by maxDepth and by a byte budget (below).

type fieldKind uint8

const (
	fScalar    fieldKind = iota // size bytes inline
	fStruct                     // size bytes inline
	fString                     // uoffset to a string
	fTable                      // uoffset to a table of sub
	fVecScalar                  // uoffset to a vector of size-byte scalars
	fVecString                  // uoffset to a vector of uoffsets to strings
	fVecTable                   // uoffset to a vector of uoffsets to tables of sub
	fUnionType                  // the union's type byte; the next field is its value
	fUnion                      // uoffset to a table of the type's descriptor
)

type fieldDesc struct {
	kind fieldKind
	size uint8
	sub  *tableDesc
}

type tableDesc struct {
	name   string
	fields []fieldDesc // in schema order: field i is vtable entry 4+2i
}

func scalar(size uint8) fieldDesc   { return fieldDesc{kind: fScalar, size: size} }
func vecOf(size uint8) fieldDesc    { return fieldDesc{kind: fVecScalar, size: size} }
func table(d *tableDesc) fieldDesc  { return fieldDesc{kind: fTable, sub: d} }
func tables(d *tableDesc) fieldDesc { return fieldDesc{kind: fVecTable, sub: d} }

var (
	str     = fieldDesc{kind: fString}
	strs    = fieldDesc{kind: fVecString}
	timings = fieldDesc{kind: fStruct, size: 40}
)

// The schema of reelrank.fbs, field by field.
var (
	contextDesc = &tableDesc{"Context", []fieldDesc{
		scalar(8), scalar(8), scalar(4), scalar(2), scalar(2), scalar(1), scalar(1), vecOf(8)}}
	itemDesc  = &tableDesc{"Item", []fieldDesc{scalar(8), scalar(4), vecOf(4), scalar(8), scalar(1)}}
	reelDesc  = &tableDesc{"Reel", []fieldDesc{scalar(8), scalar(8), scalar(8), scalar(4), scalar(4), vecOf(4), str, scalar(2)}}
	eventDesc = &tableDesc{"Event", []fieldDesc{scalar(1), scalar(2), scalar(8), scalar(8), scalar(8), scalar(8),
		scalar(8), scalar(4), scalar(8), str, scalar(4), scalar(4)}}

	// bodyDescs[k] describes the table of a body of kind k (nil for a
	// number no message has).
	bodyDescs = [numKinds]*tableDesc{
		KindRecommendRequest:  {"RecommendRequest", []fieldDesc{scalar(8), table(contextDesc), scalar(4), vecOf(8)}},
		KindRecommendResponse: {"RecommendResponse", []fieldDesc{tables(itemDesc), strs, str, str, timings}},
		KindScoreRequest:      {"ScoreRequest", []fieldDesc{scalar(8), table(contextDesc), vecOf(8)}},
		KindScoreResponse:     {"ScoreResponse", []fieldDesc{strs, vecOf(4), vecOf(4), str}},
		KindSearchRequest:     {"SearchRequest", []fieldDesc{vecOf(4), scalar(4), scalar(4), vecOf(8)}},
		KindSearchResponse:    {"SearchResponse", []fieldDesc{vecOf(8), vecOf(4)}},
		KindUpsertRequest:     {"UpsertRequest", []fieldDesc{table(reelDesc), str}},
		KindUpsertResponse:    {"UpsertResponse", []fieldDesc{scalar(1), scalar(1)}},
		KindDeleteRequest:     {"DeleteRequest", []fieldDesc{scalar(8), str}},
		KindDeleteResponse:    {"DeleteResponse", []fieldDesc{scalar(1)}},
		KindEventRequest:      {"EventRequest", []fieldDesc{tables(eventDesc), str}},
		KindEventResponse:     {"EventResponse", []fieldDesc{scalar(4), scalar(4), str, scalar(1)}},
		KindStatsRequest:      {"StatsRequest", nil},
		KindStatsResponse: {"StatsResponse", []fieldDesc{scalar(8), scalar(8), vecOf(8), scalar(8), str,
			scalar(4), scalar(4), scalar(8)}},
		KindHealthRequest:  {"HealthRequest", nil},
		KindHealthResponse: {"HealthResponse", []fieldDesc{scalar(1), str}},
		KindError:          {"Error", []fieldDesc{scalar(1), str}},
		KindAuthRequest:    {"AuthRequest", []fieldDesc{str}},
		KindAuthResponse:   {"AuthResponse", nil},
	}

	envelopeDesc = &tableDesc{"Envelope", []fieldDesc{scalar(8), scalar(8), {kind: fUnionType, size: 1}, {kind: fUnion}}}
)

// maxDepth bounds the nesting of tables; the schema needs 4 (envelope,
// body, item or context, nothing deeper).
const maxDepth = 8

// A verifier also counts the bytes of the tables, vectors and strings it
// visits. Our encoder writes each once; other builders may share strings
// (flatbuffers' CreateSharedString), so a reference may be counted more
// than once. Past aliasFactor times the buffer's size, though, the offsets
// alias on purpose (a vector of a thousand items all pointing at one item
// with a long vector), which would make decoding cost far more than the
// frame's size.
const aliasFactor = 4

type verifier struct {
	buf    []byte
	budget int64
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("wire: "+format+": %w", append(args, ErrMalformed)...)
}

func (v *verifier) spend(n uint64) error {
	v.budget -= int64(n)
	if v.budget < 0 {
		return malformed("tables and vectors alias: the frame references over %d times the bytes it holds", aliasFactor)
	}
	return nil
}

func (v *verifier) u32(pos uint64) (uint64, error) {
	if pos+4 > uint64(len(v.buf)) {
		return 0, malformed("offset %d beyond the end (%d bytes)", pos, len(v.buf))
	}
	return uint64(binary.LittleEndian.Uint32(v.buf[pos:])), nil
}

// indirect follows the uoffset stored at pos.
func (v *verifier) indirect(pos uint64) (uint64, error) {
	off, err := v.u32(pos)
	if err != nil {
		return 0, err
	}
	if pos+off >= uint64(len(v.buf)) {
		return 0, malformed("uoffset at %d points past the end", pos)
	}
	return pos + off, nil
}

// vector checks the vector at pos of elements of size bytes (plus a NUL
// for a string) and returns its length and the position of its first
// element.
func (v *verifier) vector(pos uint64, size uint64, nul bool) (n, start uint64, err error) {
	n, err = v.u32(pos)
	if err != nil {
		return 0, 0, err
	}
	start = pos + 4
	end := start + n*size
	if nul {
		end++
	}
	if end > uint64(len(v.buf)) {
		return 0, 0, malformed("vector of %d×%d bytes at %d runs past the end (%d bytes)", n, size, pos, len(v.buf))
	}
	if nul && v.buf[end-1] != 0 {
		return 0, 0, malformed("string at %d is not NUL-terminated", pos)
	}
	if err := v.spend(end - pos); err != nil {
		return 0, 0, err
	}
	return n, start, nil
}

// table checks the table at pos and its fields, recursively.
func (v *verifier) table(pos uint64, d *tableDesc, depth int) error {
	if depth > maxDepth {
		return malformed("tables nested deeper than %d", maxDepth)
	}
	soff, err := v.u32(pos)
	if err != nil {
		return err
	}
	vt := int64(pos) - int64(int32(uint32(soff)))
	if vt < 0 || uint64(vt)+4 > uint64(len(v.buf)) {
		return malformed("%s at %d: vtable at %d", d.name, pos, vt)
	}
	vlen := uint64(binary.LittleEndian.Uint16(v.buf[vt:]))
	tlen := uint64(binary.LittleEndian.Uint16(v.buf[vt+2:]))
	if vlen < 4 || vlen%2 != 0 || uint64(vt)+vlen > uint64(len(v.buf)) {
		return malformed("%s at %d: vtable of %d bytes at %d", d.name, pos, vlen, vt)
	}
	if tlen < 4 || pos+tlen > uint64(len(v.buf)) {
		return malformed("%s at %d: table of %d bytes runs past the end", d.name, pos, tlen)
	}
	if err := v.spend(tlen); err != nil {
		return err
	}
	var union Kind
	for i, f := range d.fields {
		slot := uint64(4 + 2*i)
		if slot >= vlen {
			break
		}
		off := uint64(binary.LittleEndian.Uint16(v.buf[uint64(vt)+slot:]))
		if off == 0 {
			continue
		}
		size := uint64(4)
		if f.kind == fScalar || f.kind == fStruct || f.kind == fUnionType {
			size = uint64(f.size)
		}
		if off < 4 || off+size > tlen {
			return malformed("%s field %d: offset %d outside the table's %d bytes", d.name, i, off, tlen)
		}
		switch f.kind {
		case fScalar, fStruct:
			continue
		case fUnionType:
			union = Kind(v.buf[pos+off])
			continue
		}
		target, err := v.indirect(pos + off)
		if err != nil {
			return err
		}
		switch f.kind {
		case fString:
			_, _, err = v.vector(target, 1, true)
		case fTable:
			err = v.table(target, f.sub, depth+1)
		case fVecScalar:
			_, _, err = v.vector(target, uint64(f.size), false)
		case fVecString, fVecTable:
			err = v.offsetVector(target, f, depth)
		case fUnion:
			if union == KindNone {
				return malformed("%s: a body without a type", d.name)
			}
			if !union.known() {
				return fmt.Errorf("wire: body type %d: %w", union, ErrUnknownMessage)
			}
			err = v.table(target, bodyDescs[union], depth+1)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (v *verifier) offsetVector(pos uint64, f fieldDesc, depth int) error {
	n, start, err := v.vector(pos, 4, false)
	if err != nil {
		return err
	}
	for j := range n {
		elem, err := v.indirect(start + 4*j)
		if err != nil {
			return err
		}
		if f.kind == fVecString {
			_, _, err = v.vector(elem, 1, true)
		} else {
			err = v.table(elem, f.sub, depth+1)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// verify checks the whole envelope in buf.
func verify(buf []byte) error {
	if len(buf) < 8 {
		return malformed("%d bytes is too short for an envelope", len(buf))
	}
	if len(buf) > MaxFrameLimit {
		return malformed("%d bytes is over the limit of %d", len(buf), MaxFrameLimit)
	}
	if string(buf[4:8]) != FileIdentifier {
		return malformed("file identifier %q, want %q", buf[4:8], FileIdentifier)
	}
	v := verifier{buf: buf, budget: aliasFactor * int64(len(buf))}
	root, err := v.indirect(0)
	if err != nil {
		return err
	}
	return v.table(root, envelopeDesc, 0)
}
