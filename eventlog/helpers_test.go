package eventlog

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// parsers returns the parsers this machine can run.
func parsers() []Parser {
	if SIMDSupported() {
		return []Parser{Std, Scan, SIMD}
	}
	return []Parser{Std, Scan}
}

// readAll reads data to the end and returns every event in order.
func readAll(t testing.TB, data []byte, opt Options) ([]Event, Report) {
	t.Helper()
	evs, rep, err := readAllErr(bytes.NewReader(data), opt)
	if err != nil {
		t.Fatalf("parser %v: %v", opt.Parser, err)
	}
	return evs, rep
}

func readAllErr(src io.Reader, opt Options) ([]Event, Report, error) {
	rd := NewReader(src, opt)
	var evs []Event
	for {
		batch, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return evs, rd.Report(), nil
		}
		if err != nil {
			return evs, rd.Report(), err
		}
		if len(batch) == 0 {
			return evs, rd.Report(), errors.New("Next returned an empty batch")
		}
		evs = append(evs, batch...)
	}
}

// writeLog writes evs with the Writer.
func writeLog(t testing.TB, evs []Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for i := range evs {
		if err := w.Write(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var testArms = []string{
	"popularity", "ranker-v3", "explore", "holdout", "", `quo"te`, `back\slash`,
	"tab\there", "new\nline", "ünïcødé", "ctl\x01", "emoji 😀", "-01", "a/b",
}

// randEvent returns a valid event of type t at ts, with the fields its type
// requires and sometimes a few more.
func randEvent(rng *rand.Rand, t Type, ts int64) Event {
	e := Event{Type: t, Time: ts, Has: Required(t)}
	if rng.IntN(4) == 0 {
		e.Has |= Field(rng.IntN(1 << 11))
	}
	if e.Has&FUser != 0 {
		e.User = rng.Int64N(1 << 50)
	}
	if e.Has&FReel != 0 {
		e.Reel = rng.Int64N(1 << 40)
	}
	if e.Has&FAuthor != 0 {
		e.Author = rng.Int64N(10_000_000)
	}
	if e.Has&FSession != 0 {
		e.Session = rng.Int64N(1 << 62)
	}
	if e.Has&FPosition != 0 {
		e.Position = int32(rng.IntN(1000))
		if rng.IntN(20) == 0 {
			e.Position = 1<<31 - 1
		}
	}
	if e.Has&FProp != 0 {
		e.Propensity = 1 - rng.Float64() // (0, 1]
		if rng.IntN(10) == 0 {
			e.Propensity = 1
		}
	}
	if e.Has&FArm != 0 {
		e.Arm = testArms[rng.IntN(len(testArms))]
	}
	if e.Has&FSeconds != 0 {
		e.Seconds = float32(rng.ExpFloat64() * 10)
		if rng.IntN(10) == 0 {
			e.Seconds = 0
		}
	}
	if e.Has&FFraction != 0 {
		e.Fraction = float32(rng.Float64() * 3)
	}
	return e
}

// realisticLog returns the events of n impressions: per impression an
// impression, a watch or a skip, and sometimes a like, comment, share or
// follow; now and then an upload. Ids are in the millions, ts increases.
func realisticLog(seed uint64, n int) []Event {
	rng := rand.New(rand.NewPCG(seed, 7))
	arms := []string{"popularity", "ranker-v3", "ranker-v4", "explore"}
	evs := make([]Event, 0, n*23/10)
	ts := int64(1767571200000)
	const inSession = FType | FTime | FUser | FReel | FAuthor | FSession | FPosition
	for i := 0; i < n; i++ {
		ts += rng.Int64N(40)
		user := 1_000_000 + rng.Int64N(9_000_000)
		reel := 10_000_000 + rng.Int64N(90_000_000)
		author := 1_000_000 + rng.Int64N(4_000_000)
		sess := 1_000_000_000 + rng.Int64N(9_000_000_000)
		pos := int32(rng.IntN(60))
		base := Event{Time: ts, User: user, Reel: reel, Author: author, Session: sess, Position: pos}
		imp := base
		imp.Type, imp.Has = Impression, inSession|FProp|FArm
		imp.Propensity = float64(float32(0.0001 + rng.Float64()*0.05))
		imp.Arm = arms[rng.IntN(len(arms))]
		evs = append(evs, imp)
		ts += rng.Int64N(40)
		w := base
		w.Time = ts
		if rng.IntN(3) > 0 {
			w.Type, w.Has = Watch, inSession|FSeconds|FFraction
			w.Seconds = float32(int(rng.Float64()*60000)) / 1000
			w.Fraction = float32(int(rng.Float64()*150)) / 100
		} else {
			w.Type, w.Has = Skip, inSession|FSeconds
			w.Seconds = float32(int(rng.Float64()*3000)) / 1000
		}
		evs = append(evs, w)
		if rng.IntN(8) == 0 {
			x := base
			x.Time = ts
			x.Type, x.Has = []Type{Like, Like, Like, Comment, Share}[rng.IntN(5)], inSession
			evs = append(evs, x)
		}
		if rng.IntN(40) == 0 {
			evs = append(evs, Event{Type: Follow, Has: FType | FTime | FUser | FAuthor, Time: ts, User: user, Author: author})
		}
		if rng.IntN(50) == 0 {
			evs = append(evs, Event{Type: Upload, Has: FType | FTime | FReel | FAuthor, Time: ts, Reel: reel + 1, Author: author})
		}
	}
	return evs
}

// withLines returns a copy of evs with Line numbered from first.
func withLines(evs []Event, first int64) []Event {
	out := append([]Event(nil), evs...)
	for i := range out {
		out[i].Line = first + int64(i)
	}
	return out
}
