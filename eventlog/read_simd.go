package eventlog

import (
	"bytes"
	"math"
	"unicode/utf8"

	"github.com/minio/simdjson-go"
)

// SIMDSupported reports whether this CPU and build can run simdjson-go
// (amd64 with AVX2 and CLMUL, built without the purego or noasm tag).
func SIMDSupported() bool { return simdBuild && simdjson.SupportedCPU() }

// simdRunLines is the size of a run below which a run that simdjson-go
// rejects is parsed line by line instead of split again.
const simdRunLines = 16

// simdParser parses runs of lines with simdjson-go's ParseND and reads the
// events straight off its tape.
//
// simdjson-go and encoding/json do not accept exactly the same texts, so
// the SIMD path only decides lines whose meaning cannot differ: a flat
// object whose strings have no escapes, in valid UTF-8, without a number
// that starts "-0" and another digit (which simdjson-go accepts and JSON
// does not). Every other line (arrays, nested values, escapes, anything
// simdjson-go rejects) goes to the standard-library parser, so both
// parsers give the same events and the same bad lines.
type simdParser struct {
	pj    simdjson.ParsedJson // kept with its internal buffers, see parse
	ready bool
	opt   simdjson.ParserOption

	onTape, onStd int64 // non-blank lines decided from the tape and by the std parser
}

func newSIMDParser() *simdParser {
	return &simdParser{opt: simdjson.WithCopyStrings(false)}
}

// parse runs ParseND on b, reusing the tape, the string buffer and the
// parser's internal state between calls. ParseND of v0.4.5 drops the link
// to its internal state from the ParsedJson it returns, so a plain
// "reuse the result" would allocate all of it again for every chunk;
// keeping our own copy of a ParsedJson that still holds the link (Parse
// sets it) avoids that.
func (p *simdParser) parse(b []byte) (*simdjson.ParsedJson, error) {
	if !p.ready {
		pj, err := simdjson.Parse([]byte(`{}`), nil, p.opt)
		if err != nil {
			return nil, err
		}
		p.pj = *pj
		p.ready = true
	}
	tmp := p.pj
	res, err := simdjson.ParseND(b, &tmp, p.opt)
	if err != nil {
		return nil, err
	}
	p.pj.Tape = res.Tape[:0]
	p.pj.Strings = res.Strings
	return res, nil
}

func (p *simdParser) parseRegion(r *Reader) {
	p.flagLines(r)
	lines := r.lines
	for k := 0; k < len(lines); {
		if lines[k].kind == lineTooLong {
			r.emitTooLong(k)
			k++
			continue
		}
		end := k
		for end < len(lines) && lines[end].kind != lineTooLong {
			end++
		}
		p.parseRun(r, k, end)
		k = end
	}
}

// flagLines marks the lines that must go to the standard-library parser
// whatever simdjson-go says: invalid UTF-8 (simdjson-go does not check it),
// and numbers with a leading zero after a minus sign.
func (p *simdParser) flagLines(r *Reader) {
	region := r.region
	if !utf8.Valid(region) {
		for k := range r.lines {
			ln := &r.lines[k]
			if !utf8.Valid(region[ln.start:ln.end]) {
				ln.std = true
			}
		}
	}
	for i := 0; ; {
		j := bytes.Index(region[i:], []byte("-0"))
		if j < 0 {
			break
		}
		i += j + 2
		if i < len(region) && region[i] >= '0' && region[i] <= '9' {
			r.lines[r.lineAt(i)].std = true
		}
	}
}

// parseRun parses lines [lo, hi) of the region, none of them too long.
func (p *simdParser) parseRun(r *Reader, lo, hi int) {
	lines := r.lines[lo:hi]
	nonBlank := 0
	for k := range lines {
		if lines[k].kind != lineBlank {
			nonBlank++
		}
	}
	if nonBlank == 0 {
		for k := lo; k < hi; k++ {
			r.emitBlank(k)
		}
		return
	}
	run := r.region[lines[0].start:lines[len(lines)-1].end]
	if pj, err := p.parse(run); err == nil && p.tapeMatches(pj, run, nonBlank) {
		p.walk(r, pj, lo, hi)
		return
	}
	if hi-lo <= simdRunLines {
		stdParser{}.parseLines(r, lo, hi)
		p.onStd += int64(nonBlank)
		return
	}
	// One bad line must not cost the good lines around it: split the run
	// and try the halves, down to a few lines parsed one by one.
	mid := lo + (hi-lo)/2
	p.parseRun(r, lo, mid)
	p.parseRun(r, mid, hi)
}

// tapeMatches checks that simdjson-go saw run the way the line scanner
// did: it trimmed only JSON whitespace from the ends, and produced one root
// per non-blank line. simdjson-go fails on two values on one line or a
// value across lines, so with as many roots as non-blank lines, the i-th
// root is the i-th non-blank line.
func (p *simdParser) tapeMatches(pj *simdjson.ParsedJson, run []byte, nonBlank int) bool {
	base := cap(run) - cap(pj.Message)
	if base < 0 || base+len(pj.Message) > len(run) {
		return false
	}
	for _, c := range run[:base] {
		if !isSpace(c) {
			return false
		}
	}
	for _, c := range run[base+len(pj.Message):] {
		if !isSpace(c) {
			return false
		}
	}
	tape := pj.Tape
	roots := 0
	for i := 0; i < len(tape); roots++ {
		v := tape[i]
		next := int(v & simdjson.JSONVALUEMASK)
		if simdjson.Tag(v>>simdjson.JSONTAGOFFSET) != simdjson.TagRoot || next <= i+1 || next > len(tape) {
			return false
		}
		i = next
	}
	return roots == nonBlank
}

// walk decodes lines [lo, hi) from the tape, root by root.
func (p *simdParser) walk(r *Reader, pj *simdjson.ParsedJson, lo, hi int) {
	tape, msg := pj.Tape, pj.Message
	d := &r.dec
	ti := 0
	for k := lo; k < hi; k++ {
		ln := &r.lines[k]
		if ln.kind == lineBlank {
			r.emitBlank(k)
			continue
		}
		next := int(tape[ti] & simdjson.JSONVALUEMASK)
		if !ln.std && d.decodeTape(tape[ti+1:next-1], ti+1, msg) {
			p.onTape++
		} else {
			d.parseStd(r.region[ln.start:ln.end])
			p.onStd++
		}
		r.emitDecoded(k)
		ti = next
	}
}

// decodeTape decodes one root into d: tape is the root's object, from its
// start entry to its end entry, and base is the index of tape[0] in the
// whole tape. It returns false if the line must be decided by the
// standard-library parser instead.
func (d *decoder) decodeTape(tape []uint64, base int, msg []byte) bool {
	d.reset()
	const (
		mask  = simdjson.JSONVALUEMASK
		shift = simdjson.JSONTAGOFFSET
	)
	if len(tape) < 2 || simdjson.Tag(tape[0]>>shift) != simdjson.TagObjectStart || int(tape[0]&mask) != base+len(tape) {
		return false // an array, or a tape we do not understand
	}
	var v value
	end := len(tape) - 1 // the object's end entry
	decided := false     // a member made the line bad; only look for std-only content
	for j := 1; j < end; {
		if j+3 > end || simdjson.Tag(tape[j]>>shift) != simdjson.TagString {
			return false
		}
		key, ok := tapeString(tape[j], tape[j+1], msg)
		if !ok {
			return false
		}
		j += 2
		w := tape[j]
		tag := simdjson.Tag(w >> shift)
		if tag == simdjson.TagInteger && !decided {
			// The common case, an integer for a known integer key the
			// line has not had yet, without going through member.
			if dst := d.intDst(keyField(key)); dst != nil {
				*dst = int64(tape[j+1])
				j += 2
				continue
			}
		}
		v = value{}
		switch tag {
		case simdjson.TagInteger:
			v.kind, v.i = vInt, int64(tape[j+1])
			j += 2
		case simdjson.TagUint:
			v.kind, v.f = vBigInt, float64(tape[j+1])
			j += 2
		case simdjson.TagFloat:
			v.kind, v.f = vFloat, math.Float64frombits(tape[j+1])
			if simdjson.FloatFlags(w & mask).Contains(simdjson.FloatOverflowedInteger) {
				v.kind = vBigInt
			}
			j += 2
		case simdjson.TagString:
			s, ok := tapeString(w, tape[j+1], msg)
			if !ok {
				return false
			}
			v.kind, v.s = vString, s
			j += 2
		case simdjson.TagBoolTrue, simdjson.TagBoolFalse:
			v.kind = vBool
			j++
		case simdjson.TagNull:
			v.kind = vNull
			j++
		default:
			// A nested object or array: whether it is JSON is for
			// encoding/json to say (it limits depth, simdjson-go does not).
			return false
		}
		if j > end {
			return false
		}
		if !decided && !d.member(key, &v) {
			decided = true
		}
	}
	d.finish()
	return true
}

// tapeString returns a string of the tape that points into the message.
// simdjson-go copies a string to its own buffer exactly when it has
// escapes (unescaping shortens it); those are left to the standard-library
// parser, which decodes them the way encoding/json does.
func tapeString(w, n uint64, msg []byte) ([]byte, bool) {
	off := w & simdjson.JSONVALUEMASK
	if off&simdjson.STRINGBUFBIT != 0 || off > uint64(len(msg)) || n > uint64(len(msg))-off {
		return nil, false
	}
	return msg[off : off+n], true
}
