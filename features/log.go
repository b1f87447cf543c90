package features

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/reelrank/reelrank/eventlog"
)

// LogStats sums up an ApplyLog call.
type LogStats struct {
	Report  eventlog.Report // the reader's counts: lines, bad lines by reason
	Applied int64           // events applied
	Refused int64           // events the store refused (counted in Report too when the reader caught them)
	Bytes   int64           // bytes of log read
	Elapsed time.Duration
}

// MBPerSec is the parse-and-apply throughput.
func (st LogStats) MBPerSec() float64 {
	if st.Elapsed <= 0 {
		return 0
	}
	return float64(st.Bytes) / 1e6 / st.Elapsed.Seconds()
}

// ErrLogShrunk is returned by ApplyLog for a log shorter than what the
// store has applied of it: truncated, or rotated under the same name.
var ErrLogShrunk = errors.New("features: the log is shorter than what was applied of it")

// ApplyLog applies the event log at path (plain or gzip-compressed),
// resuming after the last event a previous ApplyLog (or the snapshot the
// store was loaded from) applied, and records where it stopped. The log
// may have grown since: only the tail is read, and a last line without
// its newline (a writer in the middle of it) is left for the next call.
// Calls run one at a time. Bad lines are counted in
// the returned stats (see LogStats.Report.Err), and every good line is
// applied; the error is for what stops the read.
func (s *Store) ApplyLog(path string, opt eventlog.Options) (LogStats, error) {
	// One log read at a time: two would both start from the checkpoint
	// and apply the same events twice.
	s.logMu.Lock()
	defer s.logMu.Unlock()
	opt.Tail = true
	start := time.Now()
	s.mu.RLock()
	ck := s.logCk
	s.mu.RUnlock()
	f, err := os.Open(path)
	if err != nil {
		return LogStats{}, fmt.Errorf("features: apply log: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() < ck.Offset {
		return LogStats{}, fmt.Errorf("features: apply log %s: %w: %d bytes, the store has applied up to byte %d", path, ErrLogShrunk, fi.Size(), ck.Offset)
	}
	br := bufio.NewReaderSize(f, 1<<20)
	var src io.Reader = br
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return LogStats{}, fmt.Errorf("features: apply log %s: %w", path, err)
		}
		defer zr.Close()
		src = zr
		if ck.Offset > 0 {
			if _, err := io.CopyN(io.Discard, zr, ck.Offset); err != nil {
				return LogStats{}, fmt.Errorf("features: apply log %s: skip to offset %d: %w", path, ck.Offset, err)
			}
		}
	} else if ck.Offset > 0 {
		if _, err := f.Seek(ck.Offset, io.SeekStart); err != nil {
			return LogStats{}, fmt.Errorf("features: apply log %s: %w", path, err)
		}
		br.Reset(f)
	}
	if ck.Offset > 0 || ck.Line > 0 {
		opt.Resume = &ck
	}
	rd := eventlog.NewReader(src, opt)
	if runtime.GOMAXPROCS(0) == 1 {
		return s.applyReader(rd, path, start)
	}
	// The reader parses the next batches on its own goroutine while this
	// one applies: on two cores parsing and applying overlap; on one the
	// cost is a copy of each batch.
	batches := make(chan logBatch, 2)
	free := make(chan []eventlog.Event, 3)
	for range 3 {
		free <- nil
	}
	stop := make(chan struct{})
	defer close(stop)
	var rep eventlog.Report
	go func() {
		defer close(batches)
		for {
			evs, err := rd.Next()
			var buf []eventlog.Event
			select {
			case buf = <-free:
			case <-stop:
				return
			}
			b := logBatch{events: append(buf[:0], evs...), ck: rd.Checkpoint(), err: err}
			if err != nil {
				rep = rd.Report()
			}
			select {
			case batches <- b:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var st LogStats
	for b := range batches {
		if b.err != nil && !errors.Is(b.err, io.EOF) {
			st.Report, st.Elapsed = rep, time.Since(start)
			return st, fmt.Errorf("features: apply log %s: %w", path, b.err)
		}
		s.applyLogBatch(b.events, b.ck, &st)
		free <- b.events
		if b.err != nil {
			break
		}
	}
	st.Report = rep
	st.Bytes = st.Report.Bytes
	st.Elapsed = time.Since(start)
	return st, nil
}

// applyReader applies the reader's batches one after the other, for a
// process with one core, where reading ahead would only add a copy.
func (s *Store) applyReader(rd *eventlog.Reader, path string, start time.Time) (LogStats, error) {
	var st LogStats
	for {
		evs, rerr := rd.Next()
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			st.Report, st.Elapsed = rd.Report(), time.Since(start)
			return st, fmt.Errorf("features: apply log %s: %w", path, rerr)
		}
		s.applyLogBatch(evs, rd.Checkpoint(), &st)
		if rerr != nil {
			break
		}
	}
	st.Report = rd.Report()
	st.Bytes = st.Report.Bytes
	st.Elapsed = time.Since(start)
	return st, nil
}

// applyLogBatch applies one batch from a reader and records the
// checkpoint after it, under one lock so that a snapshot never sees the
// one without the other, and counts it in st.
func (s *Store) applyLogBatch(evs []eventlog.Event, ck eventlog.Checkpoint, st *LogStats) {
	s.mu.Lock()
	err := s.applyLocked(evs, true)
	s.logCk = ck
	s.mu.Unlock()
	st.Applied += int64(len(evs))
	var ae *ApplyError
	if errors.As(err, &ae) {
		st.Applied -= int64(ae.Bad)
		st.Refused += int64(ae.Bad)
	}
}

// logBatch is one batch of events parsed ahead, with the reader's
// checkpoint after it and its error (io.EOF on the last).
type logBatch struct {
	events []eventlog.Event
	ck     eventlog.Checkpoint
	err    error
}
