package eventlog

import (
	"math"
	"strconv"
)

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
			switch {
			case d.parseCanonical(line, &ms.val[0]):
			case !ms.scan(line):
				d.parseStd(line)
			default:
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
	var n int64 // the integer part, while it has at most 18 digits
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			n = n*10 + int64(b[i]-'0') // wraps past 18 digits, unused then
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
		if digits > start {
			n = -n
		}
		v.kind, v.i = vInt, n
		return i, true
	}
	if !isInt {
		if f, ok := exactFloat(num); ok {
			v.kind, v.f = vFloat, f
			return i, true
		}
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

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// exactFloat converts a JSON number of at most 15 significant digits and a
// decimal exponent within ±22 with one exact multiplication or division,
// which IEEE rounds correctly: the same float64 strconv.ParseFloat gives
// (it takes this path itself first). It reports false for anything else.
func exactFloat(num []byte) (float64, bool) {
	i, neg := 0, false
	if num[0] == '-' {
		neg, i = true, 1
	}
	var mant uint64
	sig, exp := 0, 0 // significant digits in mant; decimal exponent of its last digit
	afterPoint := false
scan:
	for ; i < len(num); i++ {
		switch c := num[i]; c {
		case '.':
			afterPoint = true
		case 'e', 'E':
			e, ok := smallExp(num[i+1:])
			if !ok {
				return 0, false
			}
			exp += e
			break scan
		default:
			if afterPoint {
				exp--
			}
			if mant == 0 && c == '0' {
				continue // a leading zero is not significant
			}
			if sig == 15 {
				return 0, false
			}
			mant = mant*10 + uint64(c-'0')
			sig++
		}
	}
	f := float64(mant)
	switch {
	case mant == 0 || exp == 0:
	case exp > 0 && exp <= 22:
		f *= pow10[exp]
	case exp < 0 && exp >= -22:
		f /= pow10[-exp]
	default:
		return 0, false
	}
	if neg {
		f = -f
	}
	return f, !math.IsInf(f, 0)
}

// smallExp reads an exponent, [+-]?[0-9]+, of at most three digits.
func smallExp(b []byte) (int, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg, b = b[0] == '-', b[1:]
	}
	if len(b) == 0 || len(b) > 3 {
		return 0, false
	}
	e := 0
	for _, c := range b {
		e = e*10 + int(c-'0')
	}
	if neg {
		e = -e
	}
	return e, true
}

// canonicalKeys are the writer's keys after "type", in its order, each
// with the separator before it and the colon after it.
var canonicalKeys = [...]struct {
	lit string // `,"ts":`
	f   Field
	str bool // the value is a string
}{
	{`,"ts":`, FTime, false},
	{`,"user":`, FUser, false},
	{`,"reel":`, FReel, false},
	{`,"author":`, FAuthor, false},
	{`,"session":`, FSession, false},
	{`,"pos":`, FPosition, false},
	{`,"prop":`, FProp, false},
	{`,"arm":`, FArm, true},
	{`,"secs":`, FSeconds, false},
	{`,"frac":`, FFraction, false},
}

// parseCanonical decodes a line exactly as the Writer writes it: no
// spaces, "type" first, the other keys in the writer's order, each at most
// once, plain strings. It feeds the members to the decoder as the other
// paths do, so the verdict is theirs; it reports false, having decided
// nothing, for any other line.
func (d *decoder) parseCanonical(b []byte, v *value) bool {
	const head = `{"type":"`
	if len(b) < len(head)+2 || string(b[:len(head)]) != head || b[len(b)-1] != '}' {
		return false
	}
	// Tokenize the whole line first: a line that turns out not to be
	// canonical must leave nothing decided.
	vals := &d.canon // reused: only the members in have are read
	var have uint16
	tname, i, ok := scanPlainString(b, len(head)-1)
	if !ok {
		return false
	}
	end := len(b) - 1
	k := 0
	for i < end {
		for k < len(canonicalKeys) && !hasWord(b, i, canonicalKeys[k].lit) {
			k++
		}
		if k == len(canonicalKeys) {
			return false
		}
		i += len(canonicalKeys[k].lit)
		val := &vals[k]
		if canonicalKeys[k].str {
			s, j, ok := scanPlainString(b, i)
			if !ok {
				return false
			}
			*val = value{kind: vString, s: s}
			i = j
		} else {
			if i >= end || !(b[i] == '-' || b[i] >= '0' && b[i] <= '9') {
				return false
			}
			// Ids and times: a plain integer of at most 18 digits is
			// summed here; anything else goes through scanNumber.
			j, n := i, int64(0)
			for j < end && j-i < 19 && b[j] >= '0' && b[j] <= '9' {
				n = n*10 + int64(b[j]-'0')
				j++
			}
			if j > i && j-i <= 18 && (b[i] != '0' || j == i+1) && (b[j] == ',' || b[j] == '}') {
				*val = value{kind: vInt, i: n}
				i = j
			} else {
				*val = value{}
				j, ok := scanNumber(b, i, val)
				if !ok {
					return false
				}
				i = j
			}
		}
		have |= 1 << k
		k++
	}
	if i != end {
		return false
	}
	// Each key at most once, all known: what member does after its
	// lookup and duplicate check.
	d.reset()
	*v = value{kind: vString, s: tname}
	if !d.field(FType, v) {
		return true
	}
	for k := range canonicalKeys {
		if have&(1<<k) != 0 && !d.field(canonicalKeys[k].f, &vals[k]) {
			return true
		}
	}
	d.finish()
	return true
}
