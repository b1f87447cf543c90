package eventlog

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
)

// The reasons a line is bad: short, stable categories, the keys of
// Report.BadByReason.
const (
	ReasonNotJSON      = "not json"      // not valid JSON, or not valid UTF-8
	ReasonNotObject    = "not an object" // valid JSON, but not an object
	ReasonMissingField = "missing field" // a key the type requires is absent
	ReasonBadValue     = "bad value"     // wrong JSON type, non-integer id, value out of range
	ReasonUnknownType  = "unknown type"  // "type" names no event type
	ReasonDuplicateKey = "duplicate key" // a key appears twice
	ReasonOutOfOrder   = "out of order"  // ts more than Tolerance older than the newest ts before it
	ReasonLineTooLong  = "line too long" // longer than Options.MaxLine
)

// valKind is the JSON kind of a member's value, as both parsers report it.
type valKind uint8

const (
	vInt    valKind = iota // integer syntax that fits an int64: i
	vBigInt                // integer syntax outside int64: f holds its value
	vFloat                 // a number with a fraction or an exponent: f
	vString                // s, unescaped
	vBool
	vNull
	vObject
	vArray
)

var kindNames = [...]string{
	vInt:    "an integer",
	vBigInt: "an integer",
	vFloat:  "a number with a fraction or exponent",
	vString: "a string",
	vBool:   "a boolean",
	vNull:   "null",
	vObject: "an object",
	vArray:  "an array",
}

// value is one member's value. The parsers fill it from their own
// representation; decoder.member turns it into an Event field, so the two
// parsers agree on everything after tokenizing.
type value struct {
	kind valKind
	i    int64
	f    float64
	s    []byte
}

// maxInterned bounds the arm intern table; past it, arms that are not in
// the table yet are allocated per event.
const maxInterned = 4096

// decoder accumulates the members of one line into an Event and decides
// whether the line is good. It is shared by both parsers.
type decoder struct {
	e          Event
	unknown    [][]byte            // unknown keys seen on this line, to find duplicates
	unknownSet map[string]struct{} // the same, once there are many
	bad        bool
	reason     string
	detail     string
	arms       map[string]string
	canon      [len(canonicalKeys)]value // parseCanonical's members
}

func (d *decoder) reset() {
	d.e = Event{}
	d.unknown = d.unknown[:0]
	d.bad = false
	d.reason, d.detail = "", ""
}

func (d *decoder) fail(reason, detail string) {
	d.bad = true
	d.reason = reason
	d.detail = detail
}

// keyField returns the field of a known key, or 0.
func keyField(k []byte) Field {
	switch string(k) {
	case "type":
		return FType
	case "ts":
		return FTime
	case "user":
		return FUser
	case "reel":
		return FReel
	case "author":
		return FAuthor
	case "session":
		return FSession
	case "pos":
		return FPosition
	case "prop":
		return FProp
	case "arm":
		return FArm
	case "secs":
		return FSeconds
	case "frac":
		return FFraction
	}
	return 0
}

// typeOf returns the type named b, without allocating.
func typeOf(b []byte) Type {
	switch string(b) {
	case "impression":
		return Impression
	case "watch":
		return Watch
	case "skip":
		return Skip
	case "like":
		return Like
	case "comment":
		return Comment
	case "share":
		return Share
	case "follow":
		return Follow
	case "upload":
		return Upload
	}
	return Invalid
}

// member applies one key and its value. It returns false once the line is
// bad; the caller stops there, so the first problem in key order decides.
func (d *decoder) member(key []byte, v *value) bool {
	f := keyField(key)
	if f == 0 {
		if d.seenUnknown(key) {
			d.fail(ReasonDuplicateKey, "duplicate key "+quoteShort(key))
			return false
		}
		return true
	}
	if d.e.Has&f != 0 {
		d.fail(ReasonDuplicateKey, "duplicate key "+strconv.Quote(f.Key()))
		return false
	}
	return d.field(f, v)
}

// field applies the value of known field f, seen for the first time on
// the line.
func (d *decoder) field(f Field, v *value) bool {
	d.e.Has |= f
	switch f {
	case FType:
		if v.kind != vString {
			d.wantKind(f, "a string", v)
			return false
		}
		t := typeOf(v.s)
		if t == Invalid {
			d.fail(ReasonUnknownType, "unknown type "+quoteShort(v.s))
			return false
		}
		d.e.Type = t
	case FTime:
		return d.intField(f, v, &d.e.Time)
	case FUser:
		return d.intField(f, v, &d.e.User)
	case FReel:
		return d.intField(f, v, &d.e.Reel)
	case FAuthor:
		return d.intField(f, v, &d.e.Author)
	case FSession:
		return d.intField(f, v, &d.e.Session)
	case FPosition:
		var p int64
		if !d.intField(f, v, &p) {
			return false
		}
		if p < math.MinInt32 || p > math.MaxInt32 {
			d.fail(ReasonBadValue, fmt.Sprintf("pos: %d out of range", p))
			return false
		}
		d.e.Position = int32(p)
	case FProp:
		return d.floatField(f, v, &d.e.Propensity)
	case FArm:
		if v.kind != vString {
			d.wantKind(f, "a string", v)
			return false
		}
		d.e.Arm = d.intern(v.s)
	case FSeconds:
		var x float64
		if !d.floatField(f, v, &x) {
			return false
		}
		d.e.Seconds = float32(x)
	case FFraction:
		var x float64
		if !d.floatField(f, v, &x) {
			return false
		}
		d.e.Fraction = float32(x)
	}
	return true
}

// intDst returns where an integer for field f goes, and marks f as seen;
// it returns nil for anything but a first ts or id (member handles those).
func (d *decoder) intDst(f Field) *int64 {
	if f&(FTime|FUser|FReel|FAuthor|FSession) == 0 || d.e.Has&f != 0 {
		return nil
	}
	d.e.Has |= f
	switch f {
	case FTime:
		return &d.e.Time
	case FUser:
		return &d.e.User
	case FReel:
		return &d.e.Reel
	case FAuthor:
		return &d.e.Author
	}
	return &d.e.Session
}

// seenUnknown records an unknown key and reports whether the line had it
// already. A few keys are compared one by one; a line with many (a hostile
// one, most likely) gets a set, so the check stays linear.
func (d *decoder) seenUnknown(key []byte) bool {
	const few = 16
	if len(d.unknown) < few {
		for _, u := range d.unknown {
			if bytes.Equal(u, key) {
				return true
			}
		}
		d.unknown = append(d.unknown, key)
		return false
	}
	if len(d.unknown) == few {
		if d.unknownSet == nil {
			d.unknownSet = make(map[string]struct{})
		}
		clear(d.unknownSet)
		for _, u := range d.unknown {
			d.unknownSet[string(u)] = struct{}{}
		}
		d.unknown = append(d.unknown, nil) // past few: the set holds them
	}
	if _, ok := d.unknownSet[string(key)]; ok {
		return true
	}
	d.unknownSet[string(key)] = struct{}{}
	return false
}

func (d *decoder) wantKind(f Field, want string, v *value) {
	d.fail(ReasonBadValue, fmt.Sprintf("%s: want %s, got %s", f.Key(), want, kindNames[v.kind]))
}

func (d *decoder) intField(f Field, v *value, dst *int64) bool {
	switch v.kind {
	case vInt:
		*dst = v.i
		return true
	case vBigInt:
		d.fail(ReasonBadValue, f.Key()+": integer out of range")
		return false
	}
	d.wantKind(f, "an integer", v)
	return false
}

func (d *decoder) floatField(f Field, v *value, dst *float64) bool {
	var x float64
	switch v.kind {
	case vInt:
		x = float64(v.i)
	case vBigInt, vFloat:
		x = v.f
	default:
		d.wantKind(f, "a number", v)
		return false
	}
	if math.IsInf(x, 0) || math.IsNaN(x) {
		d.fail(ReasonBadValue, f.Key()+": number out of range")
		return false
	}
	if x == 0 {
		x = 0 // -0 and 0 are the same value; keep one bit pattern
	}
	*dst = x
	return true
}

// finish checks the whole line once its members are in.
func (d *decoder) finish() {
	if d.bad {
		return
	}
	e := &d.e
	if e.Has&FType == 0 {
		d.fail(ReasonMissingField, "missing type")
		return
	}
	if miss := Required(e.Type) &^ e.Has; miss != 0 {
		d.fail(ReasonMissingField, fmt.Sprintf("%s: missing %s", e.Type, fieldNames(miss)))
		return
	}
	if err := e.Validate(); err != nil {
		d.fail(ReasonBadValue, err.Error())
	}
}

// intern returns b as a string, allocating once per distinct value.
func (d *decoder) intern(b []byte) string {
	if s, ok := d.arms[string(b)]; ok {
		return s
	}
	s := string(b)
	if d.arms == nil {
		d.arms = make(map[string]string)
	}
	if len(d.arms) < maxInterned {
		d.arms[s] = s
	}
	return s
}

// quoteShort quotes b for a detail message, cut to a readable length.
func quoteShort(b []byte) string {
	const max = 40
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}
