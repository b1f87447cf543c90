package wal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// DefaultSegmentBytes is the size after which the log rolls to a new
// segment when Options.SegmentBytes is 0.
const DefaultSegmentBytes = 64 << 20

// Options says where a log lives and how it behaves.
type Options struct {
	// Dir is the log's folder; Open creates it (mode 0700) when missing.
	// Name names the segment files (<Name>-<base>.jsonl) and the lock
	// file (<Name>.lock), so that several logs may share a folder.
	Dir, Name string
	// Legacy, when set, is the path of an older single-file log. When it
	// exists and the log has no segments yet, Open moves it in as the
	// segment with base 0. It must be on the same file system as Dir.
	Legacy string
	// SegmentBytes: an Append that finds the active segment holding this
	// many bytes or more first rolls to a new one (0: DefaultSegmentBytes).
	SegmentBytes int64
	// Check, when set, validates one record (without its '\n'). Open runs
	// it on every record it scans, and Append on every record before
	// writing, so that the log never acknowledges a record that a later
	// Open would refuse. It must be safe for concurrent use.
	Check func(line []byte) error
	// FS is the file system; nil is the operating system's (OS).
	FS FS
}

// Stats counts what a Log did since Open.
type Stats struct {
	Appends   uint64 // Append calls that wrote
	Records   uint64 // records appended
	Bytes     uint64 // bytes appended
	Syncs     uint64 // fsync calls on segment files (group commit makes fewer than SyncCalls)
	SyncCalls uint64 // Sync calls (Commit makes one) that had records to wait for
}

// OpenStats says what Open found and repaired.
type OpenStats struct {
	Segments  int    // segment files, after adoption
	Records   uint64 // records held (Next - First)
	Adopted   bool   // Options.Legacy was moved in as segment 0
	TornBytes int64  // bytes cut from the end of the last segment: a write a crash interrupted
	// Torn, when TornBytes > 0, says what was cut and why: bytes without
	// a newline, or a last record that failed validation.
	Torn error
}

// Log is a durable append-only log of records, each one line. It is safe
// for concurrent use; see the package documentation.
type Log struct {
	fs       FS
	dir      string
	name     string
	segBytes int64
	check    func([]byte) error
	unlock   func() error
	opened   OpenStats

	mu      sync.Mutex
	cond    sync.Cond // on mu: a sync finished, or the log closed
	segs    []segment // oldest first; the last is the active one
	f       File      // the active segment, open for appending
	next    uint64    // the sequence number of the next record
	size    int64     // bytes in all segments
	synced  uint64    // records before this are on disk
	syncing bool      // a leader is fsyncing f outside mu
	err     error     // the fail-stop error, once a write or fsync failed
	closing bool      // Close began: no more calls
	closed  bool      // Close finished
	stats   Stats

	// waitHook, when set, is called under mu each time a Sync starts
	// waiting for another's fsync; tests use it to know that a follower
	// is waiting without sleeping.
	waitHook func()
}

// Open opens the log in opt.Dir, creating it when missing, and recovers
// it (see the package documentation): it counts and checks every record,
// cuts a torn tail off the last segment, and fsyncs it. It takes the
// log's lock for the life of the Log, and fails with an error wrapping
// ErrLocked when another handle holds it, or ErrCorrupt when a record is
// damaged (then it changes nothing).
func Open(opt Options) (*Log, error) {
	if opt.Dir == "" {
		return nil, errors.New("wal: open: no folder")
	}
	if opt.Name == "" || opt.Name == "." || opt.Name == ".." || strings.ContainsAny(opt.Name, `/\`) {
		return nil, fmt.Errorf("wal: open: bad log name %q", opt.Name)
	}
	if opt.SegmentBytes < 0 {
		return nil, fmt.Errorf("wal: open: SegmentBytes %d < 0", opt.SegmentBytes)
	}
	l := &Log{
		fs:       opt.FS,
		dir:      opt.Dir,
		name:     opt.Name,
		segBytes: opt.SegmentBytes,
		check:    opt.Check,
	}
	l.cond.L = &l.mu
	if l.fs == nil {
		l.fs = OS()
	}
	if l.segBytes == 0 {
		l.segBytes = DefaultSegmentBytes
	}
	if _, err := l.fs.ReadDir(l.dir); errors.Is(err, fs.ErrNotExist) {
		if err := l.fs.MkdirAll(l.dir, 0o700); err != nil {
			return nil, fmt.Errorf("wal: open: %w", err)
		}
		if err := l.fs.SyncDir(filepath.Dir(filepath.Clean(l.dir))); err != nil {
			return nil, fmt.Errorf("wal: open %s: sync its parent folder: %w", l.dir, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("wal: open: %w", err)
	}
	unlock, err := l.fs.Lock(filepath.Join(l.dir, l.name+".lock"))
	if err != nil {
		return nil, fmt.Errorf("wal: open %s: %w", l.dir, err)
	}
	l.unlock = unlock
	if err := l.recover(opt.Legacy); err != nil {
		if l.f != nil {
			l.f.Close()
		}
		unlock()
		return nil, err
	}
	return l, nil
}

// recover finds and scans the segments, adopts the legacy file, cuts a
// torn tail, and opens the active segment. Everything is read and checked
// before anything is changed.
func (l *Log) recover(legacy string) error {
	segs, err := listSegments(l.fs, l.dir, l.name)
	if err != nil {
		return err
	}
	adopt := false
	if len(segs) == 0 && legacy != "" {
		f, err := l.fs.OpenFile(legacy, os.O_RDONLY, 0)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("wal: open the legacy log: %w", err)
		default:
			f.Close()
			adopt = true
			segs = []segment{{path: legacy, base: 0}}
		}
	}

	// Read and check everything; change nothing yet.
	var torn *scan
	for i := range segs {
		s := &segs[i]
		last := i == len(segs)-1
		flag := os.O_RDONLY
		if last {
			flag = os.O_RDWR | os.O_APPEND
		}
		f, err := l.fs.OpenFile(s.path, flag, 0)
		if err != nil {
			return fmt.Errorf("wal: open: %w", err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return fmt.Errorf("wal: open: %w", err)
		}
		if !st.Mode().IsRegular() {
			f.Close()
			return fmt.Errorf("wal: open: %s is not a regular file", s.path)
		}
		sc, err := scanSegment(f, st.Size(), s.path, last, l.check)
		if err != nil {
			f.Close()
			return err
		}
		s.records, s.bytes = sc.records, sc.keep
		if last {
			l.f = f
			if sc.keep < sc.size {
				torn = &sc
			}
		} else {
			f.Close()
		}
		if i > 0 && segs[i-1].end() != s.base {
			p := &segs[i-1]
			return fmt.Errorf("%w: %s holds records %d to %d, but the next segment %s begins at %d",
				ErrCorrupt, filepath.Base(p.path), p.base, p.end(), filepath.Base(s.path), s.base)
		}
	}

	// Repair.
	if adopt {
		to := filepath.Join(l.dir, segmentName(l.name, 0))
		if err := l.fs.Rename(legacy, to); err != nil {
			return fmt.Errorf("wal: adopt the legacy log: %w", err)
		}
		segs[0].path = to
		if err := l.fs.SyncDir(l.dir); err != nil {
			return fmt.Errorf("wal: adopt the legacy log: sync %s: %w", l.dir, err)
		}
		if err := l.fs.SyncDir(filepath.Dir(legacy)); err != nil {
			return fmt.Errorf("wal: adopt the legacy log: sync %s: %w", filepath.Dir(legacy), err)
		}
		l.opened.Adopted = true
	}
	if torn != nil {
		s := &segs[len(segs)-1]
		cut := torn.size - torn.keep
		why := fmt.Errorf("wal: %s: cut %d bytes at byte %d without a newline (a write a crash interrupted)", s.path, cut, torn.keep)
		if torn.torn != nil {
			why = fmt.Errorf("wal: %s: cut %d bytes from line %d (byte %d), whose record is damaged (%w), the last in the log",
				s.path, cut, torn.torn.line, torn.torn.off, torn.torn.reason)
		}
		if err := l.f.Truncate(torn.keep); err != nil {
			return fmt.Errorf("wal: open: cut the torn tail of %s: %w", s.path, err)
		}
		l.opened.TornBytes, l.opened.Torn = cut, why
	}
	if len(segs) == 0 {
		s, f, err := l.create(0)
		if err != nil {
			return err
		}
		segs, l.f = []segment{s}, f
	} else {
		// The last segment may hold records a crashed process wrote but
		// never synced, and now a cut: make them durable before counting
		// them synced.
		l.stats.Syncs++
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("wal: open: sync %s: %w", segs[len(segs)-1].path, err)
		}
	}

	l.segs = segs
	last := &segs[len(segs)-1]
	l.next = last.end()
	l.synced = l.next
	for _, s := range segs {
		l.size += s.bytes
	}
	l.opened.Segments = len(segs)
	l.opened.Records = l.next - segs[0].base
	return nil
}

// create makes the empty segment whose first record is base, and syncs
// it and the folder.
func (l *Log) create(base uint64) (segment, File, error) {
	path := filepath.Join(l.dir, segmentName(l.name, base))
	f, err := l.fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return segment{}, nil, fmt.Errorf("wal: create a segment: %w", err)
	}
	l.stats.Syncs++
	if err := f.Sync(); err != nil {
		f.Close()
		return segment{}, nil, fmt.Errorf("wal: create a segment: sync %s: %w", path, err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		f.Close()
		return segment{}, nil, fmt.Errorf("wal: create a segment: sync %s: %w", l.dir, err)
	}
	return segment{path: path, base: base}, f, nil
}

// Recovered says what Open found and repaired.
func (l *Log) Recovered() OpenStats { return l.opened }

// Next returns the sequence number the next record will get.
func (l *Log) Next() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next
}

// First returns the sequence number of the first record still held: 0
// until RemoveBefore removes segments.
func (l *Log) First() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.segs[0].base
}

// Size returns the bytes in all segments.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}

// Err returns nil while the log is healthy, and after a failed write or
// fsync the error that stopped it (wrapping ErrFailed).
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Stats returns what the log did since Open.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// Segments returns the paths of the segment files, oldest first.
func (l *Log) Segments() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	paths := make([]string, len(l.segs))
	for i, s := range l.segs {
		paths[i] = s.path
	}
	return paths
}
