package eventlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// stdParser parses every line on its own with the standard library:
// encoding/json decides whether the line is JSON and unescapes strings,
// strconv reads the numbers. It is the fallback where simdjson-go cannot
// run, and the reference the SIMD path must agree with.
type stdParser struct{}

func (p stdParser) parseRegion(r *Reader) { p.parseLines(r, 0, len(r.lines)) }

// parseLines parses lines [lo, hi) of the region.
func (stdParser) parseLines(r *Reader, lo, hi int) {
	d := &r.dec
	for k := lo; k < hi; k++ {
		ln := &r.lines[k]
		switch ln.kind {
		case lineBlank:
			r.emitBlank(k)
		case lineTooLong:
			r.emitTooLong(k)
		default:
			d.parseStd(r.region[ln.start:ln.end])
			r.emitDecoded(k)
		}
	}
}

// parseStd decodes one non-blank line into d.
func (d *decoder) parseStd(line []byte) {
	d.reset()
	if !utf8.Valid(line) {
		d.fail(ReasonNotJSON, "invalid UTF-8")
		return
	}
	if !json.Valid(line) {
		d.fail(ReasonNotJSON, syntaxDetail(line))
		return
	}
	// From here on the line is valid JSON, so the scanning below cannot
	// run off its end.
	i := skipSpace(line, 0)
	if line[i] != '{' {
		d.fail(ReasonNotObject, "the line is "+jsonKindName(line[i])+", not an object")
		return
	}
	i = skipSpace(line, i+1)
	if line[i] == '}' {
		d.finish()
		return
	}
	var v value
	for {
		kEnd := endString(line, i)
		key := unquote(line[i:kEnd])
		i = skipSpace(line, kEnd)
		i = skipSpace(line, i+1) // the ':'
		i = v.scanStd(line, i)
		if !d.member(key, &v) {
			return
		}
		i = skipSpace(line, i)
		if line[i] == '}' {
			break
		}
		i = skipSpace(line, i+1) // the ','
	}
	d.finish()
}

// scanStd reads the value at line[i] into v and returns the index after it.
func (v *value) scanStd(line []byte, i int) int {
	*v = value{}
	switch c := line[i]; c {
	case '"':
		end := endString(line, i)
		v.kind, v.s = vString, unquote(line[i:end])
		return end
	case '{', '[':
		v.kind = vObject
		if c == '[' {
			v.kind = vArray
		}
		return endContainer(line, i)
	case 't':
		v.kind = vBool
		return i + len("true")
	case 'f':
		v.kind = vBool
		return i + len("false")
	case 'n':
		v.kind = vNull
		return i + len("null")
	}
	end := i
	isInt := true
	for end < len(line) {
		c := line[end]
		if c == '.' || c == 'e' || c == 'E' {
			isInt = false
		} else if !(c >= '0' && c <= '9' || c == '-' || c == '+') {
			break
		}
		end++
	}
	num := line[i:end]
	if isInt {
		n, err := strconv.ParseInt(string(num), 10, 64)
		if err == nil {
			v.kind, v.i = vInt, n
			return end
		}
		v.kind = vBigInt
	} else {
		v.kind = vFloat
	}
	// A syntactically valid JSON number only fails here by overflow,
	// which leaves f infinite; the decoder calls that out of range.
	v.f, _ = strconv.ParseFloat(string(num), 64)
	return end
}

// syntaxDetail describes why encoding/json rejects line.
func syntaxDetail(line []byte) string {
	var raw json.RawMessage
	err := json.Unmarshal(line, &raw)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	}
	if err != nil {
		return err.Error()
	}
	return "invalid JSON"
}

func jsonKindName(c byte) string {
	switch c {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// endString returns the index after the string that starts at b[i] == '"'.
func endString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// endContainer returns the index after the object or array at b[i].
func endContainer(b []byte, i int) int {
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			j = endString(b, j) - 1
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1
			}
		}
	}
	return len(b)
}

// unquote returns the contents of the quoted JSON string q. Strings without
// escapes are returned in place; the rest are decoded by encoding/json.
func unquote(q []byte) []byte {
	s := q[1 : len(q)-1]
	if bytes.IndexByte(s, '\\') < 0 {
		return s
	}
	var out string
	if err := json.Unmarshal(q, &out); err != nil {
		// Unreachable for a string json.Valid accepted; keep the raw bytes.
		return s
	}
	return []byte(out)
}
