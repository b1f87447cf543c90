package eventlog

import (
	"fmt"
	"math"
)

// Type is the kind of an event.
type Type uint8

// The event types. Their names are the "type" values of the log.
const (
	Invalid    Type = iota
	Impression      // a policy showed a reel to a user
	Watch           // the user watched the reel (seconds, fraction)
	Skip            // the user swiped away (seconds watched before the swipe)
	Like
	Comment
	Share
	Follow // the user followed the reel's author
	Upload // an author uploaded a reel
	numTypes
)

var typeNames = [numTypes]string{"", "impression", "watch", "skip", "like", "comment", "share", "follow", "upload"}

// String returns the type's name in the log, or "type(n)".
func (t Type) String() string {
	if t > Invalid && t < numTypes {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// ParseType returns the type named s.
func ParseType(s string) (Type, bool) {
	for t := Impression; t < numTypes; t++ {
		if typeNames[t] == s {
			return t, true
		}
	}
	return Invalid, false
}

// Field is one key of an event line, as a bit in a field set.
type Field uint16

// The keys of an event line, in the order the writer emits them.
const (
	FType     Field = 1 << iota // "type"
	FTime                       // "ts": milliseconds since the Unix epoch
	FUser                       // "user"
	FReel                       // "reel"
	FAuthor                     // "author"
	FSession                    // "session"
	FPosition                   // "pos": position in the session, from 0
	FProp                       // "prop": the policy's probability of this impression
	FArm                        // "arm": the policy or A/B arm that served it
	FSeconds                    // "secs": seconds watched
	FFraction                   // "frac": fraction of the reel watched
)

// Required returns the fields an event of type t must carry.
func Required(t Type) Field {
	base := FType | FTime
	inSession := FUser | FReel | FAuthor | FSession | FPosition
	switch t {
	case Impression:
		return base | inSession | FProp | FArm
	case Watch:
		return base | inSession | FSeconds | FFraction
	case Skip:
		return base | inSession | FSeconds
	case Like, Comment, Share:
		return base | inSession
	case Follow:
		return base | FUser | FAuthor
	case Upload:
		return base | FReel | FAuthor
	}
	return base
}

// Event is one line of the event log. Ids are non-negative; a field the
// type does not carry is zero (see Has).
type Event struct {
	Type       Type
	Has        Field   // the fields the line carried
	Time       int64   // milliseconds since the Unix epoch
	User       int64   // the viewer (for Upload: unset)
	Reel       int64   // the reel
	Author     int64   // the reel's author; authors are users too
	Session    int64   // the viewer's session
	Position   int32   // position in the session, from 0
	Propensity float64 // Impression: probability that the policy chose this reel here, in (0, 1]
	Arm        string  // Impression: the policy or A/B arm
	Seconds    float32 // Watch, Skip: seconds watched
	Fraction   float32 // Watch: fraction of the reel watched (above 1 when it looped)
	Line       int64   // line number in the log it came from, from 1; 0 when not read from a log
}

// MaxFraction bounds Fraction: a reel looped more than this many times is
// a corrupt line, not a viewer.
const MaxFraction = 100

// Validate checks that e carries the fields its type requires and that
// every value is in range. It returns nil or an error naming the problem.
func (e *Event) Validate() error {
	if e.Type <= Invalid || e.Type >= numTypes {
		return fmt.Errorf("unknown type %d", e.Type)
	}
	if miss := Required(e.Type) &^ e.Has; miss != 0 {
		return fmt.Errorf("%s: missing %s", e.Type, fieldNames(miss))
	}
	switch {
	case e.Time <= 0:
		return fmt.Errorf("%s: ts %d is not positive", e.Type, e.Time)
	case e.User < 0 || e.Reel < 0 || e.Author < 0 || e.Session < 0:
		return fmt.Errorf("%s: negative id", e.Type)
	case e.Position < 0:
		return fmt.Errorf("%s: negative pos %d", e.Type, e.Position)
	case e.Has&FProp != 0 && !(e.Propensity > 0 && e.Propensity <= 1):
		return fmt.Errorf("%s: prop %v outside (0, 1]", e.Type, e.Propensity)
	case e.Has&FSeconds != 0 && !(e.Seconds >= 0 && e.Seconds <= math.MaxFloat32):
		return fmt.Errorf("%s: secs %v is not a finite non-negative number", e.Type, e.Seconds)
	case e.Has&FFraction != 0 && !(e.Fraction >= 0 && e.Fraction <= MaxFraction):
		return fmt.Errorf("%s: frac %v outside [0, %d]", e.Type, e.Fraction, MaxFraction)
	}
	return nil
}

var fieldKeys = [...]string{"type", "ts", "user", "reel", "author", "session", "pos", "prop", "arm", "secs", "frac"}

// Key returns the JSON key of a single field.
func (f Field) Key() string {
	for i, k := range fieldKeys {
		if f == 1<<i {
			return k
		}
	}
	return fmt.Sprintf("field(%#x)", uint16(f))
}

func fieldNames(set Field) string {
	s := ""
	for i, k := range fieldKeys {
		if set&(1<<i) != 0 {
			if s != "" {
				s += ", "
			}
			s += k
		}
	}
	return s
}
