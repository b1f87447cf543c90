package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// records counts the records in lines and checks them: non-empty lines,
// each ending in '\n', without NUL bytes, passing check.
func records(lines []byte, check func([]byte) error) (uint64, error) {
	if len(lines) == 0 {
		return 0, fmt.Errorf("%w: nothing to append", ErrBadRecord)
	}
	if lines[len(lines)-1] != '\n' {
		return 0, fmt.Errorf("%w: the last record does not end in a newline", ErrBadRecord)
	}
	var n uint64
	for rest := lines; len(rest) > 0; n++ {
		i := bytes.IndexByte(rest, '\n')
		if err := validate(rest[:i], check); err != nil {
			return 0, fmt.Errorf("%w: record %d of the batch: %w", ErrBadRecord, n, err)
		}
		rest = rest[i+1:]
	}
	return n, nil
}

// Append writes whole records (lines, each ending in '\n') to the log in
// one write, without syncing, and returns their sequence numbers: first
// to next, next excluded. The records are durable once Sync(next)
// returns nil (Commit does both).
//
// Records are numbered in the order Appends take the log's lock; a
// caller that needs the log's order to match an order of its own (of
// applying the records, say) appends under its own lock.
//
// A batch that is not whole records is refused with ErrBadRecord, and
// nothing is written. A write that fails, or writes less than the batch,
// is cut back off the file, and the log fails stop: the error wraps
// ErrFailed, and ErrNoSpace when the device is full. If the cut fails too
// the error says so; the part of the batch left behind is then an
// unacknowledged write, which a later Open keeps if it is whole lines.
func (l *Log) Append(lines []byte) (first, next uint64, err error) {
	n, err := records(lines, l.check)
	if err != nil {
		return 0, 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return 0, 0, err
	}
	if s := &l.segs[len(l.segs)-1]; s.bytes >= l.segBytes && s.records > 0 {
		if err := l.rollLocked(); err != nil {
			return 0, 0, err
		}
	}
	s := &l.segs[len(l.segs)-1]
	w, err := l.f.Write(lines)
	if err == nil && w != len(lines) {
		err = io.ErrShortWrite
	}
	if err != nil {
		err = fmt.Errorf("wal: append %d bytes to %s: wrote %d: %w", len(lines), s.path, w, err)
		if terr := l.f.Truncate(s.bytes); terr != nil {
			err = fmt.Errorf("%w; and cutting it back to %d bytes failed, so part of it may stay: %v", err, s.bytes, terr)
		} else {
			l.stats.Syncs++
			if serr := l.f.Sync(); serr != nil {
				err = fmt.Errorf("%w; and syncing the cut failed: %v", err, serr)
			}
		}
		return 0, 0, l.failLocked(err)
	}
	first = l.next
	l.next += n
	s.records += n
	s.bytes += int64(len(lines))
	l.size += int64(len(lines))
	l.stats.Appends++
	l.stats.Records += n
	l.stats.Bytes += uint64(len(lines))
	return first, l.next, nil
}

// usableLocked returns the error for a call that writes to a closed or
// failed log.
func (l *Log) usableLocked() error {
	if l.closing {
		return fmt.Errorf("wal: %s: %w", l.dir, ErrClosed)
	}
	if l.err != nil {
		return &earlierError{first: l.err}
	}
	return nil
}

// failLocked stops the log on cause, unless it has stopped already, and
// returns the fail-stop error.
func (l *Log) failLocked(cause error) error {
	if l.err == nil {
		l.err = failure(cause)
		l.cond.Broadcast()
	}
	return l.err
}

// Sync returns nil once every record before upto is on disk: it fsyncs,
// or waits for an fsync that covers them (group commit). Of the callers
// that wait at one time, one leads: it fsyncs everything written so far,
// without holding the lock, so that Appends go on meanwhile; the others
// wait for it and return if it covered them, or elect the next leader.
//
// A failed fsync fails the log stop (after a failed fsync nothing is
// known of what reached the disk): this call and every later Append and
// Sync return an error wrapping ErrFailed. upto beyond Next is an error.
func (l *Log) Sync(upto uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return err
	}
	if upto > l.next {
		return fmt.Errorf("wal: sync up to %d, beyond the next record %d", upto, l.next)
	}
	if upto <= l.synced {
		return nil
	}
	l.stats.SyncCalls++
	for l.syncing || l.closing {
		// Another caller leads, or Close is about to sync: wait for it.
		if l.waitHook != nil {
			l.waitHook()
		}
		l.cond.Wait()
		switch {
		case upto <= l.synced:
			return nil
		case l.err != nil:
			return l.err
		case l.closed:
			return fmt.Errorf("wal: %s: %w", l.dir, ErrClosed)
		}
	}
	// Lead: fsync everything written so far. Roll and Close wait while
	// syncing is set, so f stays the active segment and stays open.
	l.syncing = true
	f, target := l.f, l.next
	l.mu.Unlock()
	err := f.Sync()
	l.mu.Lock()
	l.syncing = false
	l.stats.Syncs++
	l.cond.Broadcast()
	if err != nil {
		return l.failLocked(fmt.Errorf("wal: fsync %s: %w", l.segs[len(l.segs)-1].path, err))
	}
	l.synced = max(l.synced, target)
	return nil
}

// Commit appends lines and syncs them: Append then Sync(next).
func (l *Log) Commit(lines []byte) (first, next uint64, err error) {
	first, next, err = l.Append(lines)
	if err != nil {
		return first, next, err
	}
	return first, next, l.Sync(next)
}

// Roll starts a new segment now, whose base is Next. It does nothing when
// the active segment holds no records.
func (l *Log) Roll() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return err
	}
	return l.rollLocked()
}

// rollLocked syncs the active segment and starts a new one. Every segment
// but the active one is thus fully synced. A failure fails the log stop.
func (l *Log) rollLocked() error {
	for l.syncing {
		l.cond.Wait()
	}
	if err := l.usableLocked(); err != nil {
		return err
	}
	if l.segs[len(l.segs)-1].records == 0 {
		return nil
	}
	if l.synced < l.next {
		l.stats.Syncs++
		if err := l.f.Sync(); err != nil {
			return l.failLocked(fmt.Errorf("wal: roll: fsync %s: %w", l.segs[len(l.segs)-1].path, err))
		}
		l.synced = l.next
		l.cond.Broadcast()
	}
	s, f, err := l.create(l.next)
	if err != nil {
		return l.failLocked(fmt.Errorf("wal: roll: %w", err))
	}
	old := l.f
	l.f = f
	l.segs = append(l.segs, s)
	// The old segment's records are fsynced and it takes no more writes,
	// so an error closing it cannot mean a lost record; the Append that
	// rolled must not fail for it.
	_ = old.Close()
	return nil
}

// RemoveBefore deletes the oldest segments whose records all lie before
// seq, never the active one, and returns how many it deleted. It syncs
// the folder after each, so that a crash never leaves a gap between
// segments. First is then the base of the oldest segment left.
func (l *Log) RemoveBefore(seq uint64) (removed int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return 0, fmt.Errorf("wal: %s: %w", l.dir, ErrClosed)
	}
	for len(l.segs) > 1 && l.segs[0].end() <= seq {
		s := l.segs[0]
		if err := l.fs.Remove(s.path); err != nil {
			return removed, fmt.Errorf("wal: remove a segment: %w", err)
		}
		l.segs = l.segs[1:]
		l.size -= s.bytes
		removed++
		if err := l.fs.SyncDir(l.dir); err != nil {
			return removed, fmt.Errorf("wal: remove %s: sync %s: %w", s.path, l.dir, err)
		}
	}
	return removed, nil
}

// Close syncs the log, closes it and releases its lock. Syncs waiting for
// an fsync return once the final one covers them. Later calls return
// errors wrapping ErrClosed. Closing a failed log syncs nothing and
// returns nil (Err still returns the failure).
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return fmt.Errorf("wal: %s: %w", l.dir, ErrClosed)
	}
	l.closing = true
	for l.syncing {
		l.cond.Wait()
	}
	var errs []error
	if l.err == nil && l.synced < l.next {
		l.stats.Syncs++
		if err := l.f.Sync(); err != nil {
			errs = append(errs, l.failLocked(fmt.Errorf("wal: close: fsync %s: %w", l.segs[len(l.segs)-1].path, err)))
		} else {
			l.synced = l.next
		}
	}
	if err := l.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("wal: close: %w", err))
	}
	if err := l.unlock(); err != nil {
		errs = append(errs, fmt.Errorf("wal: close: release the lock: %w", err))
	}
	l.closed = true
	l.cond.Broadcast()
	return errors.Join(errs...)
}
