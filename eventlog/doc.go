// Package eventlog reads and writes reelrank's event log: what users did
// with the reels they were shown, one JSON object per line.
//
// # Writing
//
// A Writer appends events; AppendJSON formats one line:
//
//	w := eventlog.NewWriter(f)
//	w.Write(&eventlog.Event{Type: eventlog.Like, Has: eventlog.Required(eventlog.Like), ...})
//	w.Flush()
//
// # Reading
//
// A Reader returns batches of good events in time order and counts the
// bad lines; ReadFile does the same for a file, plain or gzip-compressed:
//
//	rep, err := eventlog.ReadFile("events.jsonl.gz", eventlog.Options{}, func(evs []eventlog.Event) error {
//		for i := range evs {
//			store.Apply(&evs[i])
//		}
//		return nil
//	})
//	if err != nil { ... }            // the file could not be read, or the callback failed
//	if err := rep.Err(); err != nil { // some lines were bad; rep.First says which and why
//		log.Print(err)
//	}
//
// Three parsers read the lines (Options.Parser picks one): Scan, a strict
// one-pass reader of the flat lines the Writer makes (the default); SIMD,
// github.com/minio/simdjson-go where the CPU supports it
// (SIMDSupported); and Std, encoding/json with strconv. Each hands the
// lines it does not decide itself to Std. All three give the same events
// and the same bad lines, with the same reasons; the tests and
// FuzzParsers hold them to it.
//
// # The format
//
// The log is UTF-8 text, one JSON object per line, lines ended by "\n"
// ("\r\n" is accepted; a last line without a newline is read too). An
// example of each of the common types, as the Writer writes them:
//
//	{"type":"impression","ts":1767571200123,"user":42,"reel":9001,"author":77,"session":123456,"pos":3,"prop":0.00012,"arm":"popularity"}
//	{"type":"watch","ts":1767571212000,"user":42,"reel":9001,"author":77,"session":123456,"pos":3,"secs":11.877,"frac":0.65}
//
// The keys, their JSON types and meanings:
//
//	type     string   the event type: impression, watch, skip, like, comment, share, follow, upload
//	ts       integer  milliseconds since the Unix epoch, > 0
//	user     integer  the viewer, >= 0 (an author is a user too)
//	reel     integer  the reel, >= 0
//	author   integer  the reel's author, >= 0
//	session  integer  the viewer's session, >= 0
//	pos      integer  position of the reel in the session, from 0, at most 2^31-1
//	prop     number   impression: the probability that the policy chose this reel here, in (0, 1]
//	arm      string   impression: the policy or A/B arm that served it
//	secs     number   watch, skip: seconds watched, >= 0
//	frac     number   watch: fraction of the reel watched, in [0, 100] (above 1 when it looped)
//
// Integer keys take JSON integers only: 42 is an id, 42.0 and 4.2e1 are
// not. Which keys each type requires (see Required):
//
//	impression                   type ts user reel author session pos prop arm
//	watch                        type ts user reel author session pos secs frac
//	skip                         type ts user reel author session pos secs
//	like, comment, share         type ts user reel author session pos
//	follow                       type ts user author
//	upload                       type ts reel author
//
// A line may carry more of these keys than its type requires (they are
// read and checked), and any other keys, with any values: unknown keys are
// ignored, so that newer writers can add fields. Key order does not
// matter.
//
// # Bad lines
//
// A line that is not a good event is a bad line. Every bad line is
// counted in the Report under one reason, and the first Options.KeepBad
// are kept with their line numbers and details; the good lines around
// them are read as usual. Nothing is dropped silently. The reasons:
//
//	not json       not JSON (RFC 8259), or not valid UTF-8
//	not an object  JSON, but an array, string, number, boolean or null
//	missing field  no "type", or a key the type requires is absent
//	bad value      a value of the wrong JSON type (a string ts, a fractional or too large id,
//	               null for a number), or out of range (Event.Validate)
//	unknown type   "type" names no event type (names are lower case)
//	duplicate key  a key appears twice in the line (after unescaping)
//	out of order   ts more than Options.Tolerance older than the newest ts before it
//	line too long  longer than Options.MaxLine bytes
//
// When a line has several problems, the first found decides: JSON syntax,
// then each key in line order (its value's JSON type, a duplicate, an
// unknown type name, pos beyond 32 bits), then missing keys, then the
// ranges Event.Validate checks. Empty
// lines and lines of only spaces, tabs and carriage returns are blank:
// counted in Report.Blank, neither events nor bad lines.
//
// # Time order
//
// Events come out of the Reader in non-decreasing ts order. A line whose
// ts is more than Tolerance (default 60 s) older than the largest ts of
// the good lines before it is bad ("out of order"). Lines within the
// tolerance wait in a reorder buffer until no later line can go before
// them, and come out sorted by ts; equal ts keep their log order. An
// event is released once the largest ts seen is at least Tolerance past
// it, so the last Tolerance worth of events comes out at the end of the
// input. A log already in order (the common case) costs no sorting. A
// negative Tolerance turns this off: events come in log order, unchecked.
//
// # Resuming
//
// Reader.Offset is the number of input bytes settled: every line before it
// was delivered, bad or blank, and no event before it is still held.
// Reader.Checkpoint adds what a resumed read needs (the line number there,
// the newest ts before it, and the last event delivered); pass it as
// Options.Resume to a Reader of the log from that offset, or to ReadFile,
// and the two reads together deliver every event exactly once. For a log
// in order, Options.StartLine set to the checkpoint's Line is enough.
//
// # Speed
//
// Scan is the default because it is the fastest here: on the simulated
// world's log (about 140 bytes and 9 numbers a line, most impressions
// with a propensity like 2.5e-06) it reads about 440 MB/s on one core,
// against about 125 MB/s for SIMD and 165 MB/s for Std. simdjson-go spends
// most of its time on exact number parsing, and it accepts some text that
// encoding/json rejects, so exponents and other doubtful numbers send its
// lines to Std. BENCHMARKS.md has the figures and commands.
//
// The SIMD path parses chunks of many lines with one simdjson-go ParseND
// call, reuses its buffers from chunk to chunk, and reads the fields off
// its tape without allocating (arm strings are interned). Lines that
// simdjson-go and encoding/json could read differently (escapes, nested
// values, invalid UTF-8, numbers like -01) and chunks that simdjson-go
// rejects (split in halves until the bad lines are found) go through the
// standard-library parser. BenchmarkRead measures the three paths.
package eventlog
