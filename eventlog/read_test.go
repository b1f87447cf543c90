package eventlog

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestMain(m *testing.M) {
	fmt.Printf("eventlog: simdjson-go supported: %v\n", SIMDSupported())
	os.Exit(m.Run())
}

func TestRoundTripEveryType(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	var evs []Event
	ts := int64(1767571200000)
	for i := 0; i < 3000; i++ {
		ts += rng.Int64N(1000)
		evs = append(evs, randEvent(rng, Type(1+i%int(numTypes-1)), ts))
	}
	for i := range evs {
		if err := evs[i].Validate(); err != nil {
			t.Fatalf("generator made an invalid event: %v", err)
		}
	}
	data := writeLog(t, evs)
	want := withLines(evs, 1)
	for _, p := range parsers() {
		for _, cs := range []int{0, 4096} {
			got, rep := readAll(t, data, Options{Parser: p, ChunkSize: cs})
			if rep.Bad != 0 || rep.Blank != 0 || rep.Lines != int64(len(evs)) || rep.Events != int64(len(evs)) {
				t.Fatalf("%v: report %+v", p, rep)
			}
			if rep.Bytes != int64(len(data)) {
				t.Fatalf("%v: Bytes %d, want %d", p, rep.Bytes, len(data))
			}
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("%v chunk %d: event %d\n got %+v\nwant %+v", p, cs, i, got[i], want[i])
				}
			}
		}
	}
}

// TestSIMDPath checks that the SIMD parser decides ordinary lines itself
// and hands only the others to the std parser.
func TestSIMDPath(t *testing.T) {
	if !SIMDSupported() {
		t.Skip("simdjson-go is not supported here")
	}
	count := func(data []byte) (onTape, onStd int64) {
		rd := NewReader(bytes.NewReader(data), Options{Parser: SIMD, ChunkSize: 4096})
		for {
			if _, err := rd.Next(); err != nil {
				break
			}
		}
		p := rd.parser.(*simdParser)
		return p.onTape, p.onStd
	}
	evs := realisticLog(1, 1000)
	if onTape, onStd := count(writeLog(t, evs)); onTape != int64(len(evs)) || onStd != 0 {
		t.Fatalf("realistic log: %d lines from the tape, %d by std, want %d and 0", onTape, onStd, len(evs))
	}
	// One bad line among many good ones costs only a few lines.
	data := writeLog(t, evs)
	mid := bytes.IndexByte(data[len(data)/2:], '\n') + len(data)/2 + 1
	data = append(append(append([]byte(nil), data[:mid]...), "not json\n"...), data[mid:]...)
	if onTape, onStd := count(data); onStd > simdRunLines || onTape+onStd != int64(len(evs))+1 {
		t.Fatalf("one bad line: %d lines from the tape, %d by std", onTape, onStd)
	}
}

func TestParserSelection(t *testing.T) {
	if got := NewReader(strings.NewReader(""), Options{Parser: Std}).Parser(); got != Std {
		t.Fatalf("Std: got %v", got)
	}
	if auto := NewReader(strings.NewReader(""), Options{}).Parser(); auto != Scan {
		t.Fatalf("Auto chose %v", auto)
	}
	if got := NewReader(strings.NewReader(""), Options{Parser: SIMD}).Parser(); got != SIMD {
		t.Fatalf("SIMD: got %v", got)
	}
	if !SIMDSupported() {
		_, err := NewReader(strings.NewReader(""), Options{Parser: SIMD}).Next()
		if !errors.Is(err, ErrSIMDUnsupported) {
			t.Fatalf("SIMD without support: %v", err)
		}
	}
}

const goodImp = `{"type":"impression","ts":1767571200123,"user":42,"reel":9001,"author":77,"session":123456,"pos":3,"prop":0.00012,"arm":"popularity"}`
const goodWatch = `{"type":"watch","ts":1767571212000,"user":42,"reel":9001,"author":77,"session":123456,"pos":3,"secs":11.877,"frac":0.65}`

// badCases are lines with the reason each must get; the ts are in order
// after goodImp so that only the named problem applies.
var badCases = []struct{ line, reason string }{
	{`not json`, ReasonNotJSON},
	{`{"type":"like","ts":1767571200200,`, ReasonNotJSON},
	{`{"type":"like" "ts":1}`, ReasonNotJSON},
	{"{\"type\":\"like\",\"arm\":\"\xff\"}", ReasonNotJSON},
	{`{"type":"like","ts":1767571200200,"user":-01.5}`, ReasonNotJSON},
	{`{"type":"like","ts":1767571200200}{"type":"like"}`, ReasonNotJSON},
	{"{\"type\":\"like\",\"arm\":\"a\tb\"}", ReasonNotJSON},
	{`[1,2,3]`, ReasonNotObject},
	{`"a string"`, ReasonNotObject},
	{`42`, ReasonNotObject},
	{`null`, ReasonNotObject},
	{`{}`, ReasonMissingField},
	{`{"ts":1767571200200,"user":1}`, ReasonMissingField},
	{`{"type":"watch","ts":1767571200200,"user":1,"reel":2,"author":3,"session":4,"pos":0,"secs":1}`, ReasonMissingField},
	{`{"type":"follow","ts":1767571200200,"user":1}`, ReasonMissingField},
	{`{"type":"like","ts":"1767571200200","user":1,"reel":2,"author":3,"session":4,"pos":0}`, ReasonBadValue},
	{`{"type":"like","ts":1767571200200,"user":1.5,"reel":2,"author":3,"session":4,"pos":0}`, ReasonBadValue},
	{`{"type":"like","ts":1767571200200,"user":1e3,"reel":2,"author":3,"session":4,"pos":0}`, ReasonBadValue},
	{`{"type":"like","ts":1767571200200,"user":99999999999999999999,"reel":2,"author":3,"session":4,"pos":0}`, ReasonBadValue},
	{`{"type":"like","ts":1767571200200,"user":123456789012345678901234567890,"reel":2,"author":3,"session":4,"pos":0}`, ReasonBadValue},
	{`{"type":"like","ts":1767571200200,"user":-1,"reel":2,"author":3,"session":4,"pos":0}`, ReasonBadValue},
	{`{"type":"like","ts":1767571200200,"user":1,"reel":2,"author":3,"session":4,"pos":2147483648}`, ReasonBadValue},
	{`{"type":"like","ts":1767571200200,"user":1,"reel":null,"author":3,"session":4,"pos":0}`, ReasonBadValue},
	{`{"type":"like","ts":1767571200200,"user":1,"reel":[2],"author":3,"session":4,"pos":0}`, ReasonBadValue},
	{`{"type":"like","ts":1767571200200,"user":1,"reel":{"id":2},"author":3,"session":4,"pos":0}`, ReasonBadValue},
	{`{"type":"like","ts":1767571200200,"user":1,"reel":true,"author":3,"session":4,"pos":0}`, ReasonBadValue},
	{`{"type":"impression","ts":1767571200200,"user":1,"reel":2,"author":3,"session":4,"pos":0,"prop":0,"arm":"a"}`, ReasonBadValue},
	{`{"type":"impression","ts":1767571200200,"user":1,"reel":2,"author":3,"session":4,"pos":0,"prop":1.5,"arm":"a"}`, ReasonBadValue},
	{`{"type":"impression","ts":1767571200200,"user":1,"reel":2,"author":3,"session":4,"pos":0,"prop":0.5,"arm":7}`, ReasonBadValue},
	{`{"type":"impression","ts":1767571200200,"user":1,"reel":2,"author":3,"session":4,"pos":0,"prop":1e999,"arm":"a"}`, ReasonBadValue},
	{`{"type":"watch","ts":1767571200200,"user":1,"reel":2,"author":3,"session":4,"pos":0,"secs":-1,"frac":0.5}`, ReasonBadValue},
	{`{"type":"watch","ts":1767571200200,"user":1,"reel":2,"author":3,"session":4,"pos":0,"secs":1e39,"frac":0.5}`, ReasonBadValue},
	{`{"type":"watch","ts":1767571200200,"user":1,"reel":2,"author":3,"session":4,"pos":0,"secs":1,"frac":101}`, ReasonBadValue},
	{`{"type":"like","ts":0,"user":1,"reel":2,"author":3,"session":4,"pos":0}`, ReasonBadValue},
	{`{"type":7,"ts":1767571200200}`, ReasonBadValue},
	{`{"type":"dislike","ts":1767571200200}`, ReasonUnknownType},
	{`{"type":"Like","ts":1767571200200}`, ReasonUnknownType},
	{`{"type":"like","type":"like","ts":1767571200200,"user":1,"reel":2,"author":3,"session":4,"pos":0}`, ReasonDuplicateKey},
	{`{"type":"like","ts":1767571200200,"user":1,"reel":2,"author":3,"session":4,"pos":0,"x":1,"x":2}`, ReasonDuplicateKey},
	{`{"type":"like","ts":1767571200200,"user":1,"reel":2,"author":3,"session":4,"pos":0,"ts":1767571200200}`, ReasonDuplicateKey},
	{`{"type":"like","t\u0073":1767571200200,"user":1,"reel":2,"author":3,"session":4,"pos":0,"ts":1767571200200}`, ReasonDuplicateKey},
	{`{"type":"like","ts":1767571100000,"user":1,"reel":2,"author":3,"session":4,"pos":0}`, ReasonOutOfOrder},
}

// goodCases are lines that must parse, with the event each must give.
var goodCases = []struct {
	line string
	want Event
}{
	{goodImp, Event{Type: Impression, Has: Required(Impression), Time: 1767571200123, User: 42, Reel: 9001, Author: 77, Session: 123456, Position: 3, Propensity: 0.00012, Arm: "popularity"}},
	{goodWatch, Event{Type: Watch, Has: Required(Watch), Time: 1767571212000, User: 42, Reel: 9001, Author: 77, Session: 123456, Position: 3, Seconds: 11.877, Fraction: 0.65}},
	// Unknown keys of any kind are ignored; key order does not matter.
	{`{"future":{"a":[1,{"b":null}]},"ts":1767571212001,"type":"follow","user":5,"author":6,"note":"x\"y","n":-0.5e-3,"ok":true}`,
		Event{Type: Follow, Has: FType | FTime | FUser | FAuthor, Time: 1767571212001, User: 5, Author: 6}},
	// Escapes in keys and values, whitespace between tokens, CRLF.
	{" {\"type\" : \"upl\\u006fad\" ,\t\"ts\":1767571212002, \"re\\u0065l\":7,\"author\":8}\r",
		Event{Type: Upload, Has: FType | FTime | FReel | FAuthor, Time: 1767571212002, Reel: 7, Author: 8}},
	{`{"type":"impression","ts":1767571212003,"user":0,"reel":0,"author":0,"session":0,"pos":0,"prop":1,"arm":"\u00e9\ud83d\ude00 \"q\""}`,
		Event{Type: Impression, Has: Required(Impression), Time: 1767571212003, Propensity: 1, Arm: "é😀 \"q\""}},
	// -0 is 0; integers are numbers for float fields.
	{`{"type":"skip","ts":1767571212004,"user":-0,"reel":1,"author":1,"session":1,"pos":0,"secs":-0.0}`,
		Event{Type: Skip, Has: Required(Skip), Time: 1767571212004, Reel: 1, Author: 1, Session: 1}},
	{`{"type":"watch","ts":1767571212005,"user":9223372036854775807,"reel":1,"author":1,"session":1,"pos":2147483647,"secs":3,"frac":100}`,
		Event{Type: Watch, Has: Required(Watch), Time: 1767571212005, User: 9223372036854775807, Reel: 1, Author: 1, Session: 1, Position: 2147483647, Seconds: 3, Fraction: 100}},
}

func TestBadLines(t *testing.T) {
	var log strings.Builder
	type want struct {
		line   int64
		reason string
	}
	var wants []want
	line := int64(0)
	add := func(s string) int64 {
		log.WriteString(s)
		log.WriteByte('\n')
		line++
		return line
	}
	add(goodImp)
	for _, c := range badCases {
		wants = append(wants, want{add(c.line), c.reason})
		add("")
		add(goodImp[:len(goodImp)-1] + `,"ts2":1}`) // a good line after each bad one
	}
	// A line over MaxLine, at the end without a newline.
	long := `{"type":"like","pad":"` + strings.Repeat("x", 300) + `"}`
	wants = append(wants, want{add(long), ReasonLineTooLong})
	data := []byte(strings.TrimSuffix(log.String(), "\n"))
	for _, p := range parsers() {
		for _, cs := range []int{0, 64, 1000} {
			evs, rep := readAll(t, data, Options{Parser: p, MaxLine: 200, ChunkSize: cs})
			if rep.Bad != int64(len(wants)) || len(rep.First) != len(wants) {
				t.Fatalf("%v: %d bad lines, want %d: %+v", p, rep.Bad, len(wants), rep.First)
			}
			for i, w := range wants {
				got := rep.First[i]
				if got.Line != w.line || got.Reason != w.reason {
					t.Errorf("%v chunk %d: bad line %d = %d %q (%s), want line %d %q: %s", p, cs, i, got.Line, got.Reason, got.Detail, w.line, w.reason, badCases[min(i, len(badCases)-1)].line)
				}
				if got.Detail == "" {
					t.Errorf("%v: line %d has no detail", p, got.Line)
				}
			}
			if len(evs) != len(badCases)+1 {
				t.Fatalf("%v: %d events, want %d", p, len(evs), len(badCases)+1)
			}
			if rep.Blank != int64(len(badCases)) || rep.Lines != line || rep.Events != int64(len(evs)) {
				t.Fatalf("%v: report %+v", p, rep)
			}
			sum := int64(0)
			for _, n := range rep.BadByReason {
				sum += n
			}
			if sum != rep.Bad {
				t.Fatalf("%v: BadByReason sums to %d, Bad is %d", p, sum, rep.Bad)
			}
		}
	}
}

func TestGoodLines(t *testing.T) {
	var log strings.Builder
	for _, c := range goodCases {
		log.WriteString(c.line + "\n")
	}
	for _, p := range parsers() {
		evs, rep := readAll(t, []byte(log.String()), Options{Parser: p})
		if rep.Bad != 0 {
			t.Fatalf("%v: %+v", p, rep.First)
		}
		for i, c := range goodCases {
			want := c.want
			want.Line = int64(i + 1)
			if !reflect.DeepEqual(evs[i], want) {
				t.Errorf("%v: line %d\n got %+v\nwant %+v", p, i+1, evs[i], want)
			}
		}
	}
}

// TestParsersAgree compares the parsers on a log with every kind of line,
// at chunk sizes that cut it everywhere.
func TestParsersAgree(t *testing.T) {
	if !SIMDSupported() {
		t.Skip("simdjson-go is not supported here")
	}
	rng := rand.New(rand.NewPCG(3, 3))
	var lines []string
	for _, c := range badCases {
		lines = append(lines, c.line)
	}
	for _, c := range goodCases {
		lines = append(lines, c.line)
	}
	lines = append(lines, "", " \t", "\r", `{"a":[-01]}`, "\v"+goodImp, goodImp+"\f", "\xef\xbb\xbf"+goodImp)
	good := string(writeLog(t, realisticLog(5, 300)))
	goodLines := strings.Split(strings.TrimSuffix(good, "\n"), "\n")
	var log strings.Builder
	for i, gl := range goodLines {
		log.WriteString(gl)
		if rng.IntN(10) == 0 {
			log.WriteString("\r")
		}
		log.WriteString("\n")
		if i%3 == 0 {
			log.WriteString(lines[rng.IntN(len(lines))] + "\n")
		}
	}
	data := []byte(log.String())
	ref, refRep := readAll(t, data, Options{Parser: Std})
	if refRep.Bad == 0 || len(ref) == 0 {
		t.Fatal("the test log should have good and bad lines")
	}
	for _, cs := range []int{1, 7, 100, 1000, 5000, 0} {
		if testing.Short() && cs == 1 {
			continue
		}
		for _, p := range parsers() {
			got, rep := readAll(t, data, Options{Parser: p, ChunkSize: cs})
			if !reflect.DeepEqual(got, ref) {
				t.Fatalf("%v chunk %d: events differ from Std's", p, cs)
			}
			if !reflect.DeepEqual(rep, refRep) {
				t.Fatalf("%v chunk %d: report differs\n got %+v\nwant %+v", p, cs, rep, refRep)
			}
		}
	}
}

func TestChunkBoundaries(t *testing.T) {
	evs := realisticLog(9, 40)
	data := writeLog(t, evs)
	want := withLines(evs, 1)
	max := 200
	if testing.Short() {
		max = 40
	}
	for _, p := range parsers() {
		for cs := 1; cs <= max; cs++ {
			got, rep := readAll(t, data, Options{Parser: p, ChunkSize: cs})
			if rep.Bad != 0 || !reflect.DeepEqual(got, want) {
				t.Fatalf("%v chunk %d: %d events, report %+v", p, cs, len(got), rep)
			}
		}
		// A reader that returns one byte at a time.
		got, _, err := readAllErr(iotest.OneByteReader(bytes.NewReader(data)), Options{Parser: p, ChunkSize: 300})
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%v one byte at a time: %v", p, err)
		}
	}
}

func TestCRLF(t *testing.T) {
	evs := realisticLog(2, 50)
	data := bytes.ReplaceAll(writeLog(t, evs), []byte("\n"), []byte("\r\n"))
	for _, p := range parsers() {
		got, rep := readAll(t, data, Options{Parser: p})
		if rep.Bad != 0 || rep.Blank != 0 || !reflect.DeepEqual(got, withLines(evs, 1)) {
			t.Fatalf("%v: %+v", p, rep)
		}
	}
}

func TestEmptyAndBlank(t *testing.T) {
	for _, p := range parsers() {
		for _, in := range []string{"", "\n", "\n\n  \r\n\t"} {
			evs, rep := readAll(t, []byte(in), Options{Parser: p})
			lines := int64(strings.Count(in, "\n"))
			if in != "" && !strings.HasSuffix(in, "\n") {
				lines++
			}
			if len(evs) != 0 || rep.Lines != lines || rep.Blank != lines || rep.Bad != 0 || rep.Err() != nil {
				t.Fatalf("%v %q: %+v", p, in, rep)
			}
		}
	}
}

func TestTruncatedLastLine(t *testing.T) {
	for _, p := range parsers() {
		// A complete last line without a newline is an event.
		evs, rep := readAll(t, []byte(goodImp+"\n"+goodWatch), Options{Parser: p})
		if len(evs) != 2 || evs[1].Line != 2 || rep.Bad != 0 || rep.Bytes != int64(len(goodImp)+1+len(goodWatch)) {
			t.Fatalf("%v: %d events, %+v", p, len(evs), rep)
		}
		// A cut one is a bad line.
		evs, rep = readAll(t, []byte(goodImp+"\n"+goodWatch[:50]), Options{Parser: p})
		if len(evs) != 1 || rep.Bad != 1 || rep.First[0].Line != 2 || rep.First[0].Reason != ReasonNotJSON {
			t.Fatalf("%v: %d events, %+v", p, len(evs), rep)
		}
	}
}

func TestHugeLine(t *testing.T) {
	huge := `{"type":"like","pad":"` + strings.Repeat("y", 1<<20) + `"}`
	for _, p := range parsers() {
		for _, tail := range []string{"\n" + goodWatch + "\n", ""} {
			data := []byte(goodImp + "\n" + huge + tail)
			for _, cs := range []int{0, 4096} {
				rd := NewReader(bytes.NewReader(data), Options{Parser: p, ChunkSize: cs})
				var evs []Event
				for {
					b, err := rd.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					evs = append(evs, b...)
				}
				rep := rd.Report()
				wantEvents := 1
				if tail != "" {
					wantEvents = 2
				}
				if len(evs) != wantEvents || rep.Bad != 1 || rep.First[0].Line != 2 || rep.First[0].Reason != ReasonLineTooLong {
					t.Fatalf("%v chunk %d tail %q: %d events, %+v", p, cs, tail, len(evs), rep)
				}
				if wantEvents == 2 && evs[1].Line != 3 {
					t.Fatalf("line after the huge one numbered %d", evs[1].Line)
				}
				if rep.Bytes != int64(len(data)) || rd.Offset() != int64(len(data)) {
					t.Fatalf("%v: Bytes %d Offset %d, want %d", p, rep.Bytes, rd.Offset(), len(data))
				}
				if len(rd.buf) > 4<<20 {
					t.Fatalf("buffer grew to %d bytes for a line it drops", len(rd.buf))
				}
			}
		}
	}
}

// TestReorder checks the tolerance: lines within it are delivered in ts
// order (equal ts in log order), lines beyond it are bad.
func TestReorder(t *testing.T) {
	ev := func(ts int64, user int64) Event {
		return Event{Type: Follow, Has: FType | FTime | FUser | FAuthor, Time: ts, User: user, Author: 1}
	}
	const s = 1000
	in := []Event{
		ev(100*s, 1), ev(101*s, 2), ev(90*s, 3), ev(101*s, 4), ev(95*s, 5),
		ev(30*s, 6),                                            // 71 s behind the newest: out of order
		ev(160*s, 7), ev(101*s, 8), ev(100*s, 9), ev(99*s, 10), // 61 s behind: out of order
		ev(200*s, 11), ev(200*s, 12), ev(150*s, 13), ev(200*s, 14), ev(140*s, 15),
	}
	data := writeLog(t, in)
	for _, p := range parsers() {
		for _, cs := range []int{0, 1, 150} {
			got, rep := readAll(t, data, Options{Parser: p, ChunkSize: cs})
			var users []int64
			for _, e := range got {
				users = append(users, e.User)
			}
			want := []int64{3, 5, 1, 9, 2, 4, 8, 15, 13, 7, 11, 12, 14}
			if !reflect.DeepEqual(users, want) {
				t.Fatalf("%v chunk %d: order %v, want %v", p, cs, users, want)
			}
			if rep.Bad != 2 || rep.First[0].Line != 6 || rep.First[1].Line != 10 || rep.BadByReason[ReasonOutOfOrder] != 2 {
				t.Fatalf("%v: %+v", p, rep)
			}
			for i := 1; i < len(got); i++ {
				if got[i].Time < got[i-1].Time {
					t.Fatalf("not in ts order at %d", i)
				}
			}
		}
		// No ordering: log order, nothing out of order.
		got, rep := readAll(t, data, Options{Parser: p, Tolerance: -1})
		if len(got) != len(in) || rep.Bad != 0 || !reflect.DeepEqual(got, withLines(in, 1)) {
			t.Fatalf("%v Tolerance -1: %d events, %+v", p, len(got), rep)
		}
		// A sorted log required: every step back is out of order.
		got, rep = readAll(t, data, Options{Parser: p, Tolerance: time.Nanosecond})
		if rep.Bad != 8 || len(got) != len(in)-8 {
			t.Fatalf("%v strict: %d events, %+v", p, len(got), rep.First)
		}
	}
}

// TestReorderRandom checks against a plain sort on a shuffled log.
func TestReorderRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	var in []Event
	for i := 0; i < 5000; i++ {
		ts := int64(1_000_000 + i*100 + rng.IntN(30_000)) // up to 30 s jitter, 60 s tolerance
		ts -= ts % 50                                     // many equal ts
		in = append(in, Event{Type: Follow, Has: FType | FTime | FUser | FAuthor, Time: ts, User: int64(i), Author: 1})
	}
	data := writeLog(t, in)
	want := withLines(in, 1)
	sortStable(want)
	for _, p := range parsers() {
		got, rep := readAll(t, data, Options{Parser: p, ChunkSize: 3000})
		if rep.Bad != 0 || !reflect.DeepEqual(got, want) {
			t.Fatalf("%v: %d events, %d bad", p, len(got), rep.Bad)
		}
	}
}

func sortStable(evs []Event) {
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0 && keyLess(&evs[j], &evs[j-1]); j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
}

// TestResume stops a read in the middle and resumes it at Offset.
func TestResume(t *testing.T) {
	n, stops := 2000, []int{1, 5, 17}
	if testing.Short() {
		n, stops = 300, []int{1, 5}
	}
	sorted := realisticLog(6, n)
	for i := range sorted { // spread over minutes, so that most events come out before the end
		sorted[i].Time = sorted[0].Time + (sorted[i].Time-sorted[0].Time)*20
	}
	rng := rand.New(rand.NewPCG(6, 6))
	shuffled := append([]Event(nil), sorted...)
	for i := range shuffled {
		shuffled[i].Time += rng.Int64N(20_000)
	}
	for _, tc := range []struct {
		name       string
		evs        []Event
		checkpoint bool
	}{{"sorted/startline", sorted, false}, {"sorted/checkpoint", sorted, true}, {"shuffled/checkpoint", shuffled, true}} {
		data := writeLog(t, tc.evs)
		// Some bad and blank lines in the middle.
		data = bytes.Replace(data, []byte("\n"), []byte("\n\nnot json\n"), 300)
		for _, p := range parsers() {
			all, allRep := readAll(t, data, Options{Parser: p})
			for _, stop := range stops {
				rd := NewReader(bytes.NewReader(data), Options{Parser: p, ChunkSize: 4096})
				var first []Event
				for i := 0; i < stop; i++ {
					b, err := rd.Next()
					if err != nil {
						t.Fatal(err)
					}
					first = append(first, b...)
				}
				c := rd.Checkpoint()
				if c.Offset != rd.Offset() || c.Offset < 0 || c.Offset > int64(len(data)) || (c.Offset > 0 && data[c.Offset-1] != '\n') {
					t.Fatalf("%s %v: checkpoint %+v", tc.name, p, c)
				}
				opt := Options{Parser: p, StartLine: c.Line}
				if tc.checkpoint {
					opt = Options{Parser: p, Resume: &c}
				}
				rest, rep := readAll(t, data[c.Offset:], opt)
				got := append(first, rest...)
				if !reflect.DeepEqual(got, all) {
					t.Fatalf("%s %v stop %d: %d+%d events, want %d", tc.name, p, stop, len(first), len(rest), len(all))
				}
				// Bad lines after the offset are found again, with the same numbers.
				for _, b := range rep.First {
					if b.Line < c.Line {
						t.Fatalf("resumed read numbered a bad line %d before %d", b.Line, c.Line)
					}
				}
				if rep.Bad > allRep.Bad {
					t.Fatalf("resumed read found %d bad lines, the whole read %d", rep.Bad, allRep.Bad)
				}
			}
		}
	}
}

func TestReadFile(t *testing.T) {
	evs := realisticLog(8, 500)
	data := writeLog(t, evs)
	dir := t.TempDir()
	plain := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(plain, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var zbuf bytes.Buffer
	zw := gzip.NewWriter(&zbuf)
	zw.Write(data)
	zw.Close()
	gz := filepath.Join(dir, "events.jsonl.gz")
	if err := os.WriteFile(gz, zbuf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	want := withLines(evs, 1)
	for _, path := range []string{plain, gz} {
		for _, p := range parsers() {
			var got []Event
			rep, err := ReadFile(path, Options{Parser: p, ChunkSize: 8192}, func(b []Event) error {
				got = append(got, b...)
				return nil
			})
			if err != nil || rep.Bad != 0 || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s %v: %v %+v", path, p, err, rep)
			}
			// Resume from a checkpoint taken in the middle.
			rd := NewReader(bytes.NewReader(data), Options{Parser: p, ChunkSize: 8192})
			first, _ := rd.Next()
			first = append([]Event(nil), first...)
			c := rd.Checkpoint()
			var rest []Event
			if _, err := ReadFile(path, Options{Parser: p, Resume: &c}, func(b []Event) error {
				rest = append(rest, b...)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(append(first, rest...), want) {
				t.Fatalf("%s %v: resumed ReadFile gave %d+%d events", path, p, len(first), len(rest))
			}
		}
	}
	stop := errors.New("stop")
	if _, err := ReadFile(plain, Options{}, func([]Event) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("fn's error: %v", err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing"), Options{}, nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	data := writeLog(t, realisticLog(3, 100))
	for _, p := range parsers() {
		rd := NewReader(&failingReader{data: data, err: boom}, Options{Parser: p, ChunkSize: 1000})
		var err error
		for err == nil {
			_, err = rd.Next()
		}
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "eventlog: read") {
			t.Fatalf("%v: %v", p, err)
		}
		if _, err2 := rd.Next(); !errors.Is(err2, boom) {
			t.Fatalf("the error is not sticky: %v", err2)
		}
	}
}

func TestReportErr(t *testing.T) {
	data := []byte(goodImp + "\nx\n[1]\ny\n{}\nz\n" + goodWatch + "\n")
	_, rep := readAll(t, data, Options{Parser: Std, KeepBad: 2})
	if rep.Bad != 5 || len(rep.First) != 2 || rep.BadByReason[ReasonNotJSON] != 3 {
		t.Fatalf("%+v", rep)
	}
	err := rep.Err()
	if !errors.Is(err, ErrBadLines) {
		t.Fatalf("Err: %v", err)
	}
	want := "eventlog: bad lines: 5 of 7 lines (missing field: 1, not an object: 1, not json: 3); first at line 2 (not json), 3 (not an object)"
	if err.Error() != want {
		t.Fatalf("Err:\n got %s\nwant %s", err, want)
	}
	_, rep = readAll(t, data, Options{Parser: Std, KeepBad: -1})
	if rep.Bad != 5 || len(rep.First) != 0 {
		t.Fatalf("KeepBad -1: %+v", rep)
	}
}

// TestNextAllocs checks that a steady read does not allocate per event.
func TestNextAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	data := writeLog(t, realisticLog(1, 20_000))
	for _, p := range parsers() {
		rd := NewReader(bytes.NewReader(data), Options{Parser: p, ChunkSize: 64 << 10})
		for i := 0; i < 5; i++ { // grow the buffers
			if _, err := rd.Next(); err != nil {
				t.Fatal(err)
			}
		}
		var n int
		allocs := testing.AllocsPerRun(20, func() {
			b, err := rd.Next()
			if err != nil {
				t.Fatal(err)
			}
			n += len(b)
		})
		if n < 20*100 || allocs > 5 {
			t.Fatalf("%v: %.1f allocations per batch of %d events", p, allocs, n/21)
		}
	}
}

func TestManyUnknownKeys(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"type":"follow","ts":1767571200000,"user":1,"author":2`)
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&b, `,"k%d":%d`, i, i)
	}
	good := b.String() + "}"
	dup := b.String() + `,"k33":0}`
	dupEscaped := b.String() + `,"k\u0033":0}`
	data := []byte(good + "\n" + dup + "\n" + dupEscaped + "\n")
	for _, p := range parsers() {
		evs, rep := readAll(t, data, Options{Parser: p})
		if len(evs) != 1 || rep.Bad != 2 || rep.First[0].Reason != ReasonDuplicateKey || rep.First[1].Reason != ReasonDuplicateKey {
			t.Fatalf("%v: %d events, %+v", p, len(evs), rep.First)
		}
	}
}
