package features

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
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

// ApplyLog applies the event log at path (plain or gzip-compressed),
// resuming after the last event a previous ApplyLog (or the snapshot the
// store was loaded from) applied, and records where it stopped. The log
// may have grown since: only the tail is read. Bad lines are counted in
// the returned stats (see LogStats.Report.Err), and every good line is
// applied; the error is for what stops the read.
func (s *Store) ApplyLog(path string, opt eventlog.Options) (LogStats, error) {
	start := time.Now()
	s.mu.RLock()
	ck := s.logCk
	s.mu.RUnlock()
	f, err := os.Open(path)
	if err != nil {
		return LogStats{}, fmt.Errorf("features: apply log: %w", err)
	}
	defer f.Close()
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
	var st LogStats
	for {
		evs, rerr := rd.Next()
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			st.Report, st.Elapsed = rd.Report(), time.Since(start)
			return st, fmt.Errorf("features: apply log %s: %w", path, rerr)
		}
		s.mu.Lock()
		aerr := s.applyLocked(evs)
		s.logCk = rd.Checkpoint()
		s.mu.Unlock()
		st.Applied += int64(len(evs))
		var ae *ApplyError
		if errors.As(aerr, &ae) {
			st.Applied -= int64(ae.Bad)
			st.Refused += int64(ae.Bad)
		}
		if rerr != nil {
			break
		}
	}
	st.Report = rd.Report()
	st.Bytes = st.Report.Bytes
	st.Elapsed = time.Since(start)
	return st, nil
}
