package engine

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// The catalogue journal: Upsert and Delete change what the engine serves
// from (the store's reels, the index, the pools), and none of that is in
// the event log or the snapshot a server starts from. With
// Config.CatalogueLog set, each change is written to the journal as one
// JSON line and fsynced before it is applied and acknowledged, and New
// applies the journal again, in order, so that a restart keeps every
// acknowledged upsert and delete.

// catalogueEntry is one line of the journal.
type catalogueEntry struct {
	Op   string `json:"op"` // "upsert" or "delete"
	Reel *Reel  `json:"reel,omitempty"`
	ID   int64  `json:"id,omitempty"`
}

// journal writes one entry and fsyncs it; nil when there is no journal.
func (e *Engine) journal(ent catalogueEntry) error {
	if e.catLog == nil {
		return nil
	}
	line, err := json.Marshal(ent)
	if err != nil {
		return fmt.Errorf("%w: catalogue journal: %w", ErrUnavailable, err)
	}
	e.catLog.mu.Lock()
	defer e.catLog.mu.Unlock()
	if err := e.catLog.writeLocked(append(line, '\n')); err != nil {
		return fmt.Errorf("%w: catalogue journal: %w", ErrUnavailable, err)
	}
	return nil
}

// replayCatalogue applies the journal at path, if any, and opens it for
// appending. A last line cut short by a crash was never acknowledged and
// is dropped; a line that does not parse is an error naming it, because
// skipping it would silently undo an acknowledged change.
func (e *Engine) replayCatalogue(path string) (int, error) {
	n := 0
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return 0, fmt.Errorf("engine: catalogue journal: %w", err)
	default:
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		line := 0
		for sc.Scan() {
			line++
			var ent catalogueEntry
			if err := json.Unmarshal(sc.Bytes(), &ent); err != nil {
				if !hasMoreLines(sc) {
					break // the torn last line of a crash
				}
				f.Close()
				return n, fmt.Errorf("engine: catalogue journal %s line %d: %w", path, line, err)
			}
			switch {
			case ent.Op == "upsert" && ent.Reel != nil:
				if _, err := e.upsert(*ent.Reel); err != nil && !errors.Is(err, ErrBadRequest) {
					f.Close()
					return n, fmt.Errorf("engine: catalogue journal %s line %d: %w", path, line, err)
				}
			case ent.Op == "delete":
				// A reel the catalogue no longer has stays deleted: nothing to do.
				if err := e.del(ent.ID); err != nil && !errors.Is(err, ErrNotFound) {
					f.Close()
					return n, fmt.Errorf("engine: catalogue journal %s line %d: %w", path, line, err)
				}
			default:
				f.Close()
				return n, fmt.Errorf("engine: catalogue journal %s line %d: unknown entry %q", path, line, sc.Text())
			}
			n++
		}
		err := sc.Err()
		f.Close()
		if err != nil {
			return n, fmt.Errorf("engine: catalogue journal %s: %w", path, err)
		}
	}
	if e.catLog, err = openLog(path); err != nil {
		return n, err
	}
	return n, nil
}

// hasMoreLines reports whether the scanner has a line after the current
// one (it consumes it; only used to tell a torn last line from a bad one).
func hasMoreLines(sc *bufio.Scanner) bool { return sc.Scan() }
