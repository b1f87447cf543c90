package eventlog

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzParsers feeds arbitrary bytes to both parsers, at a chunk size taken
// from the input, and requires the same events and the same report.
func FuzzParsers(f *testing.F) {
	for _, c := range badCases {
		f.Add([]byte(goodImp+"\n"+c.line+"\n"+goodWatch), uint16(0))
	}
	for _, c := range goodCases {
		f.Add([]byte(c.line+"\r\n"+goodImp), uint16(17))
	}
	for _, s := range []string{
		"", "\n", " \r\n\t", "{", "}", "[]", "{}\n{}", `{"a":-00.5}`, `{"a":-0}`, "\v{}", "{}\f",
		"\xef\xbb\xbf{}", "{\"type\":\"like\"}\x00", `{"type":"like","arm":"\ud800"}`,
		`{"type":"watch","ts":1,"secs":1e400}`, `{"ts":1,"ts":1}`, `{"":1,"":2}`,
		`{"type":"like","ts":1,"user":1,"reel":1,"author":1,"session":1,"pos":1,"x":[[[[[[]]]]]]}`,
		"{\"type\":\"like\",\n\"ts\":1}", `{"type":"like"} {"type":"like"}`, "{\"a\":\"\xc3\"}",
		`{"type":"like","ts":18446744073709551615}`, `{"type":"like","ts":1.0}`, `{"type":"like","ts":-9223372036854775808}`,
	} {
		f.Add([]byte(s), uint16(3))
	}
	f.Add(writeLog(f, realisticLog(1, 20)), uint16(100))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		opt := Options{Parser: Std, MaxLine: 1000}
		want, wantRep := readAll(t, data, opt)
		for _, p := range parsers() {
			opt := Options{Parser: p, MaxLine: 1000, ChunkSize: int(chunk%512) + 1}
			got, rep := readAll(t, data, opt)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%v chunk %d: events differ\n got %+v\nwant %+v", p, opt.ChunkSize, got, want)
			}
			if !reflect.DeepEqual(rep, wantRep) {
				t.Fatalf("%v chunk %d: reports differ\n got %+v\nwant %+v", p, opt.ChunkSize, rep, wantRep)
			}
		}
		// Every good event is valid and in order, and nothing is lost.
		for i := range want {
			if err := want[i].Validate(); err != nil {
				t.Fatalf("delivered an invalid event: %v", err)
			}
		}
		if wantRep.Events+wantRep.Bad+wantRep.Blank != wantRep.Lines {
			t.Fatalf("lines do not add up: %+v", wantRep)
		}
		if n := int64(bytes.Count(data, []byte("\n"))); wantRep.Lines != n && wantRep.Lines != n+1 {
			t.Fatalf("%d lines for %d newlines", wantRep.Lines, n)
		}
	})
}
