package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/internal/fsutil"
)

// Event validates a batch of events, appends the valid ones to the event
// log (written and fsynced before anything else happens), applies them to
// the feature store, and puts uploaded reels in the fresh and exploration
// pools. Invalid events are counted as rejected, with the first one's
// reason; they are neither logged nor applied. The error is only for a log
// that cannot be written (wrapping ErrUnavailable): then nothing of the
// batch was applied, and the log holds none of it.
//
// Batches are logged and applied one at a time, in the same order, so
// that a store rebuilt from the log (features.Store.ApplyLog) holds what
// this one does. An event stamped 0 (a client leaving the time to the
// server) is stamped with the engine's clock, as a request is.
func (e *Engine) Event(events []eventlog.Event) (EventResult, error) {
	var res EventResult
	cfg := e.store.Config()
	lead := int64(0)
	if cfg.MaxLead > 0 {
		now := time.Now
		if cfg.Now != nil {
			now = cfg.Now
		}
		lead = now().Add(cfg.MaxLead).UnixMilli()
	}
	good := events
	var now int64
	for i := range events {
		ev := &events[i]
		if ev.Time == 0 {
			if now == 0 {
				now = e.cfg.Clock().UnixMilli()
			}
			ev.Time = now
			ev.Has |= eventlog.FTime
		}
		err := ev.Validate()
		if err == nil && lead > 0 && ev.Time > lead {
			err = fmt.Errorf("%s: ts %d is more than %v after the clock", ev.Type, ev.Time, cfg.MaxLead)
		}
		if err != nil {
			if res.Rejected == 0 {
				res.Reason = fmt.Sprintf("event %d: %v", i, err)
				good = append([]eventlog.Event(nil), events[:i]...)
			}
			res.Rejected++
			continue
		}
		if res.Rejected > 0 {
			good = append(good, *ev)
		}
	}
	if len(good) > 0 {
		if err := e.applyEvents(good); err != nil {
			e.ctr.rejected.Add(uint64(len(events)))
			return EventResult{Rejected: uint32(len(events)), Reason: err.Error()}, err
		}
	}
	res.Accepted = uint32(len(good))
	e.ctr.accepted.Add(uint64(res.Accepted))
	e.ctr.rejected.Add(uint64(res.Rejected))
	return res, nil
}

// applyEvents logs and applies a batch of valid events.
func (e *Engine) applyEvents(good []eventlog.Event) error {
	if e.log != nil {
		e.log.mu.Lock()
		defer e.log.mu.Unlock()
		if err := e.log.appendLocked(good); err != nil {
			return fmt.Errorf("%w: events: %w", ErrUnavailable, err)
		}
	} else {
		e.eventMu.Lock()
		defer e.eventMu.Unlock()
	}
	// The events passed the store's own checks above, so Apply refuses
	// none of them.
	if err := e.store.Apply(good); err != nil && !features.IsApplyError(err) {
		return fmt.Errorf("engine: events: %w", err)
	}
	now := e.cfg.Clock().UnixMilli()
	oldest := now - e.cfg.FreshWindow.Milliseconds()
	for i := range good {
		ev := &good[i]
		if ev.Type != eventlog.Upload || e.isDeleted(ev.Reel) {
			continue
		}
		e.fresh.add(ev.Reel, ev.Time, oldest, false)
		e.explore.add(ev.Reel)
	}
	return nil
}

// eventLog appends batches of events to a newline-delimited JSON log.
type eventLog struct {
	mu   sync.Mutex
	f    *os.File
	path string
	size int64 // bytes of whole lines in the file
	buf  []byte
}

// openLog opens the log at path for appending, creating it (and syncing
// its folder) when missing. A last line without its newline, left by a
// crash in the middle of a write that was never acknowledged, is cut off
// so that the next batch starts on a line of its own.
func openLog(path string) (*eventLog, error) {
	_, err := os.Stat(path)
	created := errors.Is(err, fs.ErrNotExist)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("engine: event log: %w", err)
	}
	l := &eventLog{f: f, path: path}
	if err := l.repair(); err != nil {
		f.Close()
		return nil, err
	}
	if created {
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("engine: event log %s: %w", path, err)
		}
		if err := fsutil.SyncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, fmt.Errorf("engine: event log %s: %w", path, err)
		}
	}
	return l, nil
}

// repair finds the end of the last whole line and truncates after it.
func (l *eventLog) repair() error {
	fi, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("engine: event log %s: %w", l.path, err)
	}
	size := fi.Size()
	var head [2]byte
	if n, _ := l.f.ReadAt(head[:], 0); n == 2 && head[0] == 0x1f && head[1] == 0x8b {
		return fmt.Errorf("engine: event log %s is gzip-compressed; the engine appends to a plain log", l.path)
	}
	end := size
	buf := make([]byte, 64<<10)
	for end > 0 {
		lo := max(0, end-int64(len(buf)))
		chunk := buf[:end-lo]
		if _, err := l.f.ReadAt(chunk, lo); err != nil && err != io.EOF {
			return fmt.Errorf("engine: event log %s: %w", l.path, err)
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			end = lo + int64(i) + 1
			break
		}
		end = lo
	}
	if end < size {
		if err := l.f.Truncate(end); err != nil {
			return fmt.Errorf("engine: event log %s: cut the incomplete last line: %w", l.path, err)
		}
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("engine: event log %s: %w", l.path, err)
		}
	}
	l.size = end
	return nil
}

// appendLocked writes the events as one write and fsyncs; on failure it
// cuts the file back to where it was, so that no part of the batch stays.
func (l *eventLog) appendLocked(events []eventlog.Event) error {
	l.buf = l.buf[:0]
	for i := range events {
		l.buf = eventlog.AppendJSON(l.buf, &events[i])
		l.buf = append(l.buf, '\n')
	}
	err := l.writeLocked(l.buf)
	if cap(l.buf) > 4<<20 {
		l.buf = nil
	}
	return err
}

// writeLocked appends whole lines as one write and fsyncs; on failure it
// cuts the file back to where it was.
func (l *eventLog) writeLocked(lines []byte) error {
	_, err := l.f.Write(lines)
	if err == nil {
		err = l.f.Sync()
	}
	if err != nil {
		if terr := l.f.Truncate(l.size); terr != nil {
			err = fmt.Errorf("%w (and cutting the partial batch off: %v)", err, terr)
		}
		return fmt.Errorf("log %s: %w", l.path, err)
	}
	l.size += int64(len(lines))
	return nil
}

func (l *eventLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("engine: event log %s: %w", l.path, err)
	}
	return nil
}
