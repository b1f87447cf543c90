package eventlog

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestExactFloat holds the scanner's short-float path to strconv, bit for
// bit, wherever it answers.
func TestExactFloat(t *testing.T) {
	check := func(s string) {
		f, ok := exactFloat([]byte(s))
		if !ok {
			return
		}
		want, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("%q: exactFloat answered %v, strconv fails: %v", s, f, err)
		}
		if math.Float64bits(f) != math.Float64bits(want) {
			t.Fatalf("%q: exactFloat %v (%x), strconv %v (%x)", s, f, math.Float64bits(f), want, math.Float64bits(want))
		}
	}
	for _, s := range []string{"0.5", "-0.0", "0.0", "1.25", "120.5", "0.0042", "1e5", "1E-5", "2.5e-06", "1.3761269",
		"14.951953", "0.42719868", "123456789012345.0", "1234567890123456.0", "1e22", "1e23", "1e-22", "1e-23",
		"9.999999999999999e22", "0.000000000000000000000001", "-1.5e+3", "100.000"} {
		check(s)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for range 200000 {
		x := math.Float64frombits(rng.Uint64())
		if math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		check(strconv.FormatFloat(x, 'g', -1, 64))
		check(strconv.FormatFloat(float64(float32(rng.Float64()*100)), 'g', -1, 32))
		check(strconv.FormatFloat(rng.Float64(), 'f', rng.IntN(14), 64))
		check(strconv.FormatFloat(rng.Float64()*1e6, 'e', rng.IntN(12), 64))
	}
	if _, ok := exactFloat([]byte("0.1234567890123456")); ok {
		t.Error("16 significant digits took the short path")
	}
}

// TestResumeGrowingLog: a log read to its end, then grown with lines out
// of order within the tolerance and a half-written line, then read again
// from the checkpoint, delivers every event exactly once.
func TestResumeGrowingLog(t *testing.T) {
	like := func(ts int64) string {
		return `{"type":"like","ts":` + strconv.FormatInt(ts, 10) + `,"user":1,"reel":2,"author":3,"session":4,"pos":0}` + "\n"
	}
	const t0 = 1767571200000
	first := like(t0+10000) + like(t0+20000)
	var got []int64
	read := func(data string, resume *Checkpoint) Checkpoint {
		t.Helper()
		off := int64(0)
		if resume != nil {
			off = resume.Offset
		}
		rd := NewReader(strings.NewReader(data[off:]), Options{Tail: true, Resume: resume})
		for {
			evs, err := rd.Next()
			for _, e := range evs {
				got = append(got, e.Time)
			}
			if err != nil {
				break
			}
		}
		if rd.Report().Bad != 0 {
			t.Fatalf("bad lines: %+v", rd.Report())
		}
		return rd.Checkpoint()
	}
	ck := read(first, nil)
	// Grown: an earlier ts within the tolerance, and a line cut short.
	full := like(t0 + 30000)
	grown := first + like(t0+15000) + full[:len(full)-10]
	ck = read(grown, &ck)
	ck = read(first+like(t0+15000)+full, &ck)
	want := []int64{t0 + 10000, t0 + 20000, t0 + 15000, t0 + 30000}
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if _, err := NewReader(strings.NewReader(""), Options{Parser: Parser(9)}).Next(); err == nil {
		t.Fatal("an unknown parser was accepted")
	}
}
