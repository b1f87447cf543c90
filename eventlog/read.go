package eventlog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// Parser selects how lines are parsed.
type Parser uint8

const (
	Auto Parser = iota // Scan
	SIMD               // simdjson-go; Next fails with ErrSIMDUnsupported where it cannot run
	Std                // encoding/json and strconv, one line at a time
	// Scan reads the writer's flat lines in one strict pass and passes any
	// other line to Std. It is the fastest on every CPU: simdjson-go spends
	// most of its time on exact number parsing, and this log is mostly
	// numbers (see BENCHMARKS.md).
	Scan
)

func (p Parser) String() string {
	switch p {
	case Auto:
		return "auto"
	case SIMD:
		return "simd"
	case Std:
		return "std"
	case Scan:
		return "scan"
	}
	return fmt.Sprintf("parser(%d)", uint8(p))
}

// Defaults of Options.
const (
	DefaultTolerance = 60 * time.Second
	DefaultMaxLine   = 64 << 10
	DefaultKeepBad   = 1000
	DefaultChunkSize = 64 << 10
)

// ErrSIMDUnsupported is returned by Next when Options.Parser is SIMD and
// simdjson-go cannot run here.
var ErrSIMDUnsupported = errors.New("eventlog: simdjson-go is not supported on this CPU or build")

// ErrBadLines is wrapped by Report.Err.
var ErrBadLines = errors.New("eventlog: bad lines")

// Options configure a Reader. The zero value is ready to use.
type Options struct {
	// Tolerance is how far back in time a line may go: a line whose ts is
	// more than Tolerance older than the largest ts before it is bad ("out
	// of order"); lines within it are held back and delivered in ts order.
	// It is counted in whole milliseconds, rounded down, so a positive
	// value below a millisecond asks for a sorted log (equal ts allowed).
	// Zero means DefaultTolerance. Negative turns ordering off: events
	// come in log order and ts is not checked against its neighbours.
	Tolerance time.Duration
	// Parser picks the parser; Auto uses simdjson-go where it can.
	Parser Parser
	// MaxLine is the longest line accepted, in bytes without its newline;
	// longer lines are bad ("line too long"). Zero means DefaultMaxLine.
	MaxLine int
	// KeepBad is how many bad lines Report.First keeps with their details;
	// every bad line is counted regardless. Zero means DefaultKeepBad,
	// negative keeps none.
	KeepBad int
	// StartLine is the number of the first line of the input, for a read
	// that resumes in the middle of a log. Zero means 1.
	StartLine int64
	// Resume continues a read that stopped at a Checkpoint: the input must
	// start at the checkpoint's Offset. It sets the line numbers (StartLine
	// is ignored), the ts the order check starts from, and which events
	// were delivered already, so the resumed read delivers exactly the
	// events the first one had not. Offsets are then counted from the
	// start of the whole log.
	Resume *Checkpoint
	// Tail says the log may still be growing: a last line without its
	// newline is left for a later read (not parsed, not counted, not
	// consumed), since its writer may be in the middle of it.
	Tail bool
	// ChunkSize is how many bytes are read and parsed at a time (lines are
	// never split). Zero means DefaultChunkSize.
	ChunkSize int
}

// Checkpoint is where a read can resume; see Reader.Checkpoint.
type Checkpoint struct {
	Offset   int64 // bytes of the log before the first line not yet settled
	Line     int64 // the number of the line at Offset
	MaxTime  int64 // the largest ts of a good event before Offset; 0 if none
	LastTime int64 // ts of the last event delivered; 0 if none
	LastLine int64 // line of the last event delivered; 0 if none
	ReadTo   int64 // the number of the first line the read had not seen: only lines before it can have been delivered
}

// BadLine is one bad line of the log.
type BadLine struct {
	Line   int64
	Reason string // one of the Reason constants
	Detail string
}

// Report counts what a Reader has read so far.
type Report struct {
	Lines       int64            // lines read, of every kind
	Events      int64            // good events delivered by Next
	Blank       int64            // empty or whitespace-only lines
	Bad         int64            // bad lines, all of them
	BadByReason map[string]int64 // bad lines per reason
	First       []BadLine        // the first bad lines (Options.KeepBad), in line order
	Bytes       int64            // bytes of input in the lines read
}

// Err returns nil if no line was bad, else an error wrapping ErrBadLines
// that gives the counts and the first few line numbers.
func (rep Report) Err() error {
	if rep.Bad == 0 {
		return nil
	}
	reasons := make([]string, 0, len(rep.BadByReason))
	for k := range rep.BadByReason {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d lines (", rep.Bad, rep.Lines)
	for i, k := range reasons {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d", k, rep.BadByReason[k])
	}
	b.WriteString(")")
	for i, bl := range rep.First {
		if i == 5 {
			b.WriteString(", ...")
			break
		}
		if i == 0 {
			b.WriteString("; first at line ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d (%s)", bl.Line, bl.Reason)
	}
	return fmt.Errorf("%w: %s", ErrBadLines, b.String())
}

// Line kinds of the line scanner.
const (
	lineEvent uint8 = iota
	lineBlank
	lineTooLong
)

// lineRec is one line of the region being parsed.
type lineRec struct {
	start, end int // the line without its newline is region[start:end]
	kind       uint8
	std        bool // must be decided by the standard-library parser
}

type regionParser interface {
	parseRegion(r *Reader)
}

// Reader reads events from a log. It is not safe for concurrent use.
type Reader struct {
	src     io.Reader
	opt     Options
	parser  regionParser
	which   Parser
	chunk   int
	maxLine int
	keepBad int

	buf        []byte
	head, tail int
	nlFree     int // buf[head:head+nlFree] has no newline
	eof, done  bool
	err        error
	noProgress int

	consumed int64 // absolute offset of the first byte not yet settled by the line scanner
	line     int64 // number of the next line
	skipping bool  // dropping the rest of a too-long line
	skipped  int64 // bytes of it dropped so far

	region     []byte
	regionOff  int64
	regionLine int64
	lines      []lineRec

	dec decoder
	ord orderer
	out []Event
	rep Report
}

// NewReader returns a Reader of the log in r.
func NewReader(r io.Reader, opt Options) *Reader {
	rd := &Reader{src: r, opt: opt}
	rd.chunk = opt.ChunkSize
	if rd.chunk <= 0 {
		rd.chunk = DefaultChunkSize
	}
	rd.maxLine = opt.MaxLine
	if rd.maxLine <= 0 {
		rd.maxLine = DefaultMaxLine
	}
	rd.keepBad = opt.KeepBad
	if rd.keepBad == 0 {
		rd.keepBad = DefaultKeepBad
	}
	rd.line = opt.StartLine
	if rd.line <= 0 {
		rd.line = 1
	}
	tol := opt.Tolerance
	if tol == 0 {
		tol = DefaultTolerance
	}
	rd.ord.init(tol)
	if c := opt.Resume; c != nil {
		rd.line = c.Line
		if rd.line <= 0 {
			rd.line = 1
		}
		rd.consumed = c.Offset
		rd.ord.resume(c)
	}
	rd.rep.BadByReason = make(map[string]int64)
	switch {
	case opt.Parser == Std:
		rd.parser, rd.which = stdParser{}, Std
	case opt.Parser == Auto || opt.Parser == Scan:
		rd.parser, rd.which = scanParser{}, Scan
	case opt.Parser != SIMD:
		rd.which = opt.Parser
		rd.err = fmt.Errorf("eventlog: unknown parser %d", uint8(opt.Parser))
	case SIMDSupported():
		rd.parser, rd.which = newSIMDParser(), SIMD
	default:
		rd.which = SIMD
		rd.err = ErrSIMDUnsupported
	}
	return rd
}

// Parser returns the parser in use: Scan, SIMD or Std.
func (r *Reader) Parser() Parser { return r.which }

// Next returns the next batch of good events, in non-decreasing ts order
// (equal ts in log order), each with its Line set. At the end of the log
// it returns io.EOF; a read error of the input is returned wrapped, and
// again on every later call. Bad lines are not returned: they are counted
// in Report.
//
// The returned slice is reused by the next call: copy the events you keep
// beyond it. Their strings (Arm) are never reused and may be kept.
func (r *Reader) Next() ([]Event, error) {
	r.out = r.out[:0]
	for {
		if r.err != nil {
			return nil, r.err
		}
		if r.done {
			return nil, io.EOF
		}
		if err := r.step(); err != nil {
			r.err = err
			return nil, err
		}
		if len(r.out) > 0 {
			r.rep.Events += int64(len(r.out))
			return r.out, nil
		}
	}
}

// step reads until it can parse a region (or the end of the input), parses
// it and releases the events that can no longer be overtaken.
func (r *Reader) step() error {
	for {
		if r.skipping {
			if i := bytes.IndexByte(r.buf[r.head:r.tail], '\n'); i >= 0 {
				r.finishSkip(int64(i) + 1)
				r.head += i + 1
			} else {
				r.skipped += int64(r.tail - r.head)
				r.head = r.tail
				if r.eof {
					r.finishSkip(0)
				}
			}
			if r.skipping {
				if err := r.fill(); err != nil {
					return err
				}
				continue
			}
		}
		data := r.buf[r.head:r.tail]
		if r.eof && r.opt.Tail && len(data) > 0 && data[len(data)-1] != '\n' {
			// A growing log's last line may be half written: settle only
			// what ends in a newline, and leave the rest for a later read.
			nl := bytes.LastIndexByte(data, '\n')
			if nl >= 0 {
				r.processRegion(data[:nl+1])
			}
			r.head = r.tail
			r.ord.releaseAll(&r.out)
			r.done = true
			return nil
		}
		if r.eof {
			if len(data) > 0 {
				r.processRegion(data)
				r.head = r.tail
			}
			r.ord.releaseAll(&r.out)
			r.done = true
			return nil
		}
		// Only the bytes past nlFree can hold a newline: a long line read
		// in small pieces is not scanned over and over.
		nl := bytes.LastIndexByte(data[r.nlFree:], '\n')
		if nl >= 0 {
			nl += r.nlFree
		} else {
			r.nlFree = len(data)
		}
		if nl >= 0 && len(data) >= r.chunk {
			r.processRegion(data[:nl+1])
			r.head += nl + 1
			r.nlFree = r.tail - r.head
			r.ord.release(&r.out)
			return nil
		}
		if nl < 0 && len(data) > r.maxLine {
			// The line at head is too long and not over yet: report it now
			// and drop it as it streams past.
			r.rep.Lines++
			r.addBad(r.line, ReasonLineTooLong, r.tooLongDetail())
			r.line++
			r.skipping = true
			r.skipped = int64(len(data))
			r.head = r.tail
			r.nlFree = 0
			continue
		}
		if err := r.fill(); err != nil {
			return err
		}
	}
}

// finishSkip ends a too-long line whose last n bytes (with the newline)
// were just found.
func (r *Reader) finishSkip(n int64) {
	r.skipped += n
	r.consumed += r.skipped
	r.rep.Bytes += r.skipped
	r.skipped = 0
	r.skipping = false
}

// fill reads at most one chunk more into the buffer.
func (r *Reader) fill() error {
	if r.head == r.tail {
		r.head, r.tail = 0, 0
	}
	if r.buf == nil {
		r.buf = make([]byte, 2*r.chunk)
	}
	if r.tail == len(r.buf) {
		if r.head > 0 {
			r.tail = copy(r.buf, r.buf[r.head:r.tail])
			r.head = 0
		} else {
			nb := make([]byte, 2*len(r.buf))
			copy(nb, r.buf[:r.tail])
			r.buf = nb
		}
	}
	end := min(len(r.buf), r.tail+r.chunk)
	n, err := r.src.Read(r.buf[r.tail:end])
	r.tail += n
	switch {
	case err == io.EOF:
		r.eof = true
	case err != nil:
		return fmt.Errorf("eventlog: read: %w", err)
	case n == 0:
		if r.noProgress++; r.noProgress >= 100 {
			return fmt.Errorf("eventlog: read: %w", io.ErrNoProgress)
		}
	default:
		r.noProgress = 0
	}
	return nil
}

// processRegion scans the complete lines of data and parses them.
func (r *Reader) processRegion(data []byte) {
	r.region, r.regionOff, r.regionLine = data, r.consumed, r.line
	r.lines = r.lines[:0]
	for pos := 0; pos < len(data); {
		end := len(data)
		if i := bytes.IndexByte(data[pos:], '\n'); i >= 0 {
			end = pos + i
		}
		ln := lineRec{start: pos, end: end}
		switch {
		case end-pos > r.maxLine:
			ln.kind = lineTooLong
		case end > pos && data[pos] == '{':
		case isBlank(data[pos:end]):
			ln.kind = lineBlank
		}
		r.lines = append(r.lines, ln)
		pos = end + 1
	}
	r.parser.parseRegion(r)
	n := int64(len(r.lines))
	r.line += n
	r.rep.Lines += n
	r.consumed += int64(len(data))
	r.rep.Bytes += int64(len(data))
	r.region = nil
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

// lineAt returns the index of the region's line that holds byte i.
func (r *Reader) lineAt(i int) int {
	return sort.Search(len(r.lines), func(k int) bool { return r.lines[k].end >= i }) // the newline belongs to its line
}

func (r *Reader) emitBlank(int) { r.rep.Blank++ }

func (r *Reader) emitTooLong(k int) {
	r.addBad(r.regionLine+int64(k), ReasonLineTooLong, r.tooLongDetail())
}

func (r *Reader) tooLongDetail() string {
	return fmt.Sprintf("longer than %d bytes", r.maxLine)
}

// emitDecoded hands the decoder's verdict on line k to the order stage.
func (r *Reader) emitDecoded(k int) {
	d := &r.dec
	line := r.regionLine + int64(k)
	if d.bad {
		r.addBad(line, d.reason, d.detail)
		return
	}
	d.e.Line = line
	if reason, detail, ok := r.ord.push(&d.e, r.regionOff+int64(r.lines[k].start), &r.out); !ok {
		r.addBad(line, reason, detail)
	}
}

func (r *Reader) addBad(line int64, reason, detail string) {
	r.rep.Bad++
	r.rep.BadByReason[reason]++
	if len(r.rep.First) < r.keepBad {
		r.rep.First = append(r.rep.First, BadLine{Line: line, Reason: reason, Detail: detail})
	}
}

// Report returns the counts so far. Its map and slice are copies.
func (r *Reader) Report() Report {
	rep := r.rep
	rep.BadByReason = make(map[string]int64, len(r.rep.BadByReason))
	for k, v := range r.rep.BadByReason {
		rep.BadByReason[k] = v
	}
	rep.First = append([]BadLine(nil), r.rep.First...)
	return rep
}

// Offset returns how many bytes of the input are settled: every line
// before it has had its event returned by Next, or was bad or blank. It is
// the start of the earliest line whose event is still held in the reorder
// buffer, or, with nothing held, the end of the lines read so far. Lines
// after it may have been delivered already when the log is out of order
// within the tolerance (an event that sorts before a held one is released
// first); Checkpoint records what a resumed read needs to skip them. With
// Options.Resume, offsets count from the start of the whole log.
func (r *Reader) Offset() int64 { return r.Checkpoint().Offset }

// Checkpoint returns the state a later read needs to resume exactly after
// the events delivered so far: open the log at Offset and pass the
// checkpoint as Options.Resume. For a log in ts order nothing after Offset
// has been delivered, and Offset with StartLine = Line is enough.
func (r *Reader) Checkpoint() Checkpoint {
	c := Checkpoint{Offset: r.consumed, Line: r.line, MaxTime: r.ord.maxTs}
	if r.skipping {
		c.Line-- // the too-long line being dropped starts at consumed
	}
	if h, ok := r.ord.earliestHeld(); ok {
		c.Offset, c.Line, c.MaxTime = h.start, h.ev.Line, h.maxBefore
	}
	c.LastTime, c.LastLine = r.ord.lastTime, r.ord.lastLine
	c.ReadTo = r.line
	return c
}

// ReadFile reads the log at path, plain or gzip-compressed (told by its
// first bytes), and calls fn with each batch of events; fn must not keep
// the slice. A nil fn only counts. It returns the report at the end, and the first error of
// reading or of fn. Bad lines are not an error: see Report.Err. With
// opt.Resume, it starts at the checkpoint's offset (of the uncompressed
// log).
func ReadFile(path string, opt Options, fn func([]Event) error) (Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return Report{}, fmt.Errorf("eventlog: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	var src io.Reader = br
	magic, _ := br.Peek(2)
	gz := len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b
	if gz {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return Report{}, fmt.Errorf("eventlog: %s: %w", path, err)
		}
		defer zr.Close()
		src = zr
	}
	if c := opt.Resume; c != nil && c.Offset > 0 {
		if !gz {
			if _, err := f.Seek(c.Offset, io.SeekStart); err != nil {
				return Report{}, fmt.Errorf("eventlog: %s: %w", path, err)
			}
			br.Reset(f)
		} else if _, err := io.CopyN(io.Discard, src, c.Offset); err != nil {
			return Report{}, fmt.Errorf("eventlog: %s: skip to offset %d: %w", path, c.Offset, err)
		}
	}
	rd := NewReader(src, opt)
	for {
		evs, err := rd.Next()
		if err == io.EOF {
			return rd.Report(), nil
		}
		if err != nil {
			return rd.Report(), fmt.Errorf("eventlog: %s: %w", path, err)
		}
		if fn == nil {
			continue
		}
		if err := fn(evs); err != nil {
			return rd.Report(), err
		}
	}
}
