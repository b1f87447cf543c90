package wal

import (
	"fmt"
	"path/filepath"
)

// MoveBefore is RemoveBefore that keeps what it drops: it renames the old
// segments whose records all lie before seq into the folder dir (created
// when missing), under their own names, oldest first, syncing dir and the
// log's folder after each. dir must be on the log's file system (a rename
// does not cross them). First moves up as for RemoveBefore.
func (l *Log) MoveBefore(seq uint64, dir string) (moved int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return 0, fmt.Errorf("wal: %s: %w", l.dir, ErrClosed)
	}
	if len(l.segs) > 1 && l.segs[0].end() <= seq {
		if err := l.fs.MkdirAll(dir, 0o700); err != nil {
			return 0, fmt.Errorf("wal: archive folder: %w", err)
		}
	}
	for len(l.segs) > 1 && l.segs[0].end() <= seq {
		s := l.segs[0]
		to := filepath.Join(dir, filepath.Base(s.path))
		if err := l.fs.Rename(s.path, to); err != nil {
			return moved, fmt.Errorf("wal: archive a segment: %w", err)
		}
		l.segs = l.segs[1:]
		l.size -= s.bytes
		moved++
		if err := l.fs.SyncDir(dir); err != nil {
			return moved, fmt.Errorf("wal: archive %s: sync %s: %w", s.path, dir, err)
		}
		if err := l.fs.SyncDir(l.dir); err != nil {
			return moved, fmt.Errorf("wal: archive %s: sync %s: %w", s.path, l.dir, err)
		}
	}
	return moved, nil
}

// SegmentPaths returns the paths of the segments of the log name in the
// folder dir (files <name>-<20-digit base>.jsonl), ordered by base; a
// missing folder has none. It reads the folder only, and takes no lock:
// a reader beside a running writer may find the last segment growing,
// and ending in a torn, unterminated line.
func SegmentPaths(dir, name string) ([]string, error) {
	segs, err := listSegments(OS(), dir, name)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = s.path
	}
	return out, nil
}
