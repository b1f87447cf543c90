package eventlog

import "strconv"

// scanParser reads the lines the log's writer makes — a flat object of
// plain strings and numbers — with one strict pass per line, and hands
// every other line, valid or not, to the standard-library parser. A line
// it accepts is valid JSON by construction (the grammar below is a subset
// of JSON's), and its values are converted by the same strconv calls the
// standard path uses, so both give the same events and the same bad
// lines; FuzzParsers holds all three parsers to that.
type scanParser struct{}

func (scanParser) parseRegion(r *Reader) {
	d := &r.dec
	var ms members
	for k := range r.lines {
		ln := &r.lines[k]
		switch ln.kind {
		case lineBlank:
			r.emitBlank(k)
		case lineTooLong:
			r.emitTooLong(k)
		default:
			line := r.region[ln.start:ln.end]
			if !ms.scan(line) {
				d.parseStd(line)
			} else {
				d.reset()
				for i := range ms.n {
					if !d.member(ms.key[i], &ms.val[i]) {
						break
					}
				}
				if !d.bad {
					d.finish()
				}
			}
			r.emitDecoded(k)
		}
	}
}

// maxScanMembers bounds the members a line may have on the fast path;
// the writer's lines have at most 8.
const maxScanMembers = 16

// members are one line's keys and values, in order.
type members struct {
	n   int
	key [maxScanMembers][]byte
	val [maxScanMembers]value
}

// scan tokenizes line if it is a flat JSON object whose keys and string
// values are printable ASCII without escapes, and whose values are such
// strings, numbers, true, false or null. It reports false for anything
// else (which the standard parser then decides).
func (ms *members) scan(b []byte) bool {
	ms.n = 0
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		if ms.n == maxScanMembers {
			return false
		}
		key, j, ok := scanPlainString(b, i)
		if !ok {
			return false
		}
		i = skipSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return false
		}
		v := &ms.val[ms.n]
		*v = value{}
		switch c := b[i]; {
		case c == '"':
			s, j, ok := scanPlainString(b, i)
			if !ok {
				return false
			}
			v.kind, v.s, i = vString, s, j
		case c == '-' || c >= '0' && c <= '9':
			j, ok := scanNumber(b, i, v)
			if !ok {
				return false
			}
			i = j
		case hasWord(b, i, "true"):
			v.kind, i = vBool, i+4
		case hasWord(b, i, "false"):
			v.kind, i = vBool, i+5
		case hasWord(b, i, "null"):
			v.kind, i = vNull, i+4
		default:
			return false // objects, arrays and anything invalid
		}
		ms.key[ms.n] = key
		ms.n++
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

func hasWord(b []byte, i int, w string) bool {
	return len(b)-i >= len(w) && string(b[i:i+len(w)]) == w
}

// scanPlainString returns the contents of the string at b[i] == '"' and
// the index after it, if every byte up to the closing quote is printable
// ASCII other than a backslash.
func scanPlainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		c := b[j]
		if c == '"' {
			return b[i+1 : j], j + 1, true
		}
		if c < 0x20 || c > 0x7e || c == '\\' {
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// scanNumber reads the JSON number at b[i] into v, by JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?. Integers of at most 18
// digits are summed here; the rest goes through strconv as on the
// standard path.
func scanNumber(b []byte, i int, v *value) (int, bool) {
	start := i
	if b[i] == '-' {
		i++
	}
	digits := i
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return 0, false
	}
	intEnd := i
	isInt := true
	if i < len(b) && b[i] == '.' {
		isInt = false
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		isInt = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, false
		}
	}
	num := b[start:i]
	if isInt && intEnd-digits <= 18 {
		var n int64
		for _, c := range b[digits:intEnd] {
			n = n*10 + int64(c-'0')
		}
		if digits > start {
			n = -n
		}
		v.kind, v.i = vInt, n
		return i, true
	}
	if isInt {
		n, err := strconv.ParseInt(string(num), 10, 64)
		if err == nil {
			v.kind, v.i = vInt, n
			return i, true
		}
		v.kind = vBigInt
	} else {
		v.kind = vFloat
	}
	v.f, _ = strconv.ParseFloat(string(num), 64)
	return i, true
}
