package wal

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// readBuffer is the size of the buffered reader over a segment; longer
// records are gathered piece by piece.
const readBuffer = 256 << 10

// eachLine calls fn for every line of r that ends in '\n', with the line
// without it and its byte offset. whole is the offset after the last
// '\n'; total the bytes read (more than whole when r ends in a line
// without its '\n').
func eachLine(r io.Reader, fn func(line []byte, off int64) error) (whole, total int64, err error) {
	br := bufio.NewReaderSize(r, readBuffer)
	var long []byte
	for {
		s, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, s...)
			continue
		}
		if len(long) > 0 {
			long = append(long, s...)
			s = long
		}
		if err == io.EOF {
			return whole, whole + int64(len(s)), nil
		}
		if err != nil {
			return whole, whole + int64(len(s)), err
		}
		if err := fn(s[:len(s)-1], whole); err != nil {
			return whole, whole, err
		}
		whole += int64(len(s))
		long = long[:0]
	}
}

// validate checks one record (without its '\n'): not empty, no NUL byte,
// and check, when set.
func validate(line []byte, check func([]byte) error) error {
	if len(line) == 0 {
		return errors.New("an empty line")
	}
	if i := bytes.IndexByte(line, 0); i >= 0 {
		return fmt.Errorf("a NUL byte at column %d", i+1)
	}
	if check != nil {
		return check(line)
	}
	return nil
}

// damage describes a damaged line of a segment.
type damage struct {
	path   string
	line   int64 // from 1
	off    int64 // the line's first byte
	reason error
}

func (d *damage) err() error {
	return fmt.Errorf("%w: %s line %d (byte %d): %w", ErrCorrupt, d.path, d.line, d.off, d.reason)
}

// scan is what scanSegment found in one segment.
type scan struct {
	records uint64
	keep    int64   // bytes of the whole good records: the segment's length after recovery
	size    int64   // the file's length
	torn    *damage // the last whole line, when it failed validation and is to be cut with the tail
}

// scanSegment counts and checks the records of a segment of size bytes.
// In the last segment, bytes after the last '\n' and a last whole line
// that fails validation are a torn tail, to be cut (keep < size); in any
// other segment they are ErrCorrupt, as is a damaged line anywhere
// before the last.
func scanSegment(r io.ReaderAt, size int64, path string, last bool, check func([]byte) error) (scan, error) {
	sc := scan{size: size}
	var lineNo int64
	var pending *damage // a damaged line, which is torn only if it turns out to be the last
	whole, total, err := eachLine(io.NewSectionReader(r, 0, size), func(line []byte, off int64) error {
		lineNo++
		if pending != nil {
			return pending.err()
		}
		if verr := validate(line, check); verr != nil {
			d := &damage{path: path, line: lineNo, off: off, reason: verr}
			if !last {
				return d.err()
			}
			pending = d
			return nil
		}
		sc.records++
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return sc, err
		}
		return sc, fmt.Errorf("wal: read %s: %w", path, err)
	}
	if total != size {
		return sc, fmt.Errorf("wal: read %s: %d bytes where its size is %d", path, total, size)
	}
	if whole < size && !last {
		return sc, fmt.Errorf("%w: %s ends in %d bytes without a newline, and it is not the last segment",
			ErrCorrupt, path, size-whole)
	}
	sc.keep = whole
	if pending != nil {
		sc.keep = pending.off
		sc.torn = pending
	}
	return sc, nil
}

// Replay calls fn for every record with sequence number from or later,
// in order, with the record without its '\n'; line is only valid during
// the call. Records removed by RemoveBefore are gone: replay from below
// First starts at First.
//
// Replay reads the files, not memory, through handles of its own, and
// holds no lock while it reads or calls fn: Append, Sync and even
// RemoveBefore may go on meanwhile (and fn may call them). It stops at
// the end of the log as it was when Replay began. It returns fn's first
// error, wrapped with the record's sequence number.
func (l *Log) Replay(from uint64, fn func(seq uint64, line []byte) error) error {
	type part struct {
		seg segment
		f   File
	}
	var parts []part
	closeAll := func() {
		for _, p := range parts {
			p.f.Close()
		}
	}
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return fmt.Errorf("wal: replay %s: %w", l.dir, ErrClosed)
	}
	for _, s := range l.segs {
		if s.end() <= from || s.records == 0 {
			continue
		}
		f, err := l.fs.OpenFile(s.path, os.O_RDONLY, 0)
		if err != nil {
			l.mu.Unlock()
			closeAll()
			return fmt.Errorf("wal: replay: %w", err)
		}
		parts = append(parts, part{s, f})
	}
	l.mu.Unlock()
	defer closeAll()

	for _, p := range parts {
		seq := p.seg.base
		whole, _, err := eachLine(io.NewSectionReader(p.f, 0, p.seg.bytes), func(line []byte, _ int64) error {
			if seq >= p.seg.end() {
				return fmt.Errorf("%w: %s holds more than the %d records counted", ErrCorrupt, p.seg.path, p.seg.records)
			}
			s := seq
			seq++
			if s < from {
				return nil
			}
			if err := fn(s, line); err != nil {
				return &fnError{seq: s, err: err}
			}
			return nil
		})
		var fe *fnError
		switch {
		case errors.As(err, &fe):
			return fmt.Errorf("wal: replay record %d: %w", fe.seq, fe.err)
		case err != nil && errors.Is(err, ErrCorrupt):
			return err
		case err != nil:
			return fmt.Errorf("wal: replay %s: %w", p.seg.path, err)
		case whole != p.seg.bytes || seq != p.seg.end():
			return fmt.Errorf("%w: %s changed under the log: %d records in %d bytes where %d in %d were written",
				ErrCorrupt, p.seg.path, seq-p.seg.base, whole, p.seg.records, p.seg.bytes)
		}
	}
	return nil
}

// fnError carries the error of Replay's callback out of eachLine.
type fnError struct {
	seq uint64
	err error
}

func (e *fnError) Error() string { return e.err.Error() }
func (e *fnError) Unwrap() error { return e.err }
