package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/reelrank/reelrank/internal/fsutil"
	"github.com/reelrank/reelrank/internal/hashx"
)

// Shard is the part of the catalogue an engine serves: the reels whose
// id hashes to Index of Count by the jump hash client.ShardOf uses
// (internal/hashx.Jump). The zero Shard, or a Count of 1, is the whole
// catalogue.
type Shard struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// maxShards bounds Shard.Count.
const maxShards = 1 << 16

// Sharded reports whether s is a part of the catalogue, not all of it.
func (s Shard) Sharded() bool { return s.Count > 1 }

// Owns reports whether reel id is in the shard.
func (s Shard) Owns(id int64) bool { return s.Count <= 1 || hashx.Jump(id, s.Count) == s.Index }

// String returns "i/n", or "all" for the whole catalogue.
func (s Shard) String() string {
	if !s.Sharded() {
		return "all"
	}
	return strconv.Itoa(s.Index) + "/" + strconv.Itoa(s.Count)
}

// ParseShard parses "i/n" (0 <= i < n), or "" and "all" for the whole
// catalogue.
func ParseShard(s string) (Shard, error) {
	if s == "" || s == "all" {
		return Shard{}, nil
	}
	i, n, ok := strings.Cut(s, "/")
	var sh Shard
	var err1, err2 error
	sh.Index, err1 = strconv.Atoi(i)
	sh.Count, err2 = strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil || sh.Count < 1 {
		return Shard{}, fmt.Errorf("engine: shard %q: want i/n, such as 2/4", s)
	}
	if err := sh.validate(); err != nil {
		return Shard{}, err
	}
	return sh.norm(), nil
}

func (s Shard) validate() error {
	if s.Count < 0 || s.Count > maxShards || s.Index < 0 || (s.Count > 1 && s.Index >= s.Count) || (s.Count <= 1 && s.Index != 0) {
		return fmt.Errorf("engine: shard %d/%d: want 0 <= index < count <= %d", s.Index, s.Count, maxShards)
	}
	return nil
}

// norm maps the whole catalogue to the zero Shard.
func (s Shard) norm() Shard {
	if !s.Sharded() {
		return Shard{}
	}
	return s
}

// ErrWrongShard: the request names a reel this engine's shard does not
// own (an Upsert, Delete or Score sent to the wrong shard). Nothing was
// written; the client's placement and the server's shard disagree.
var ErrWrongShard = errors.New("engine: wrong shard")

// owns reports whether the engine serves reel id.
func (e *Engine) owns(id int64) bool { return e.cfg.Shard.Owns(id) }

// wrongShard is the error of a request about reel id the shard does not
// own.
func (e *Engine) wrongShard(op string, id int64) error {
	return fmt.Errorf("%w: %s: reel %d belongs to shard %d/%d, this is shard %s", ErrWrongShard, op, id,
		hashx.Jump(id, e.cfg.Shard.Count), e.cfg.Shard.Count, e.cfg.Shard)
}

// ownIndex takes the reels the shard does not own out of m's index and
// compacts it; it returns how many it took out. The index then holds the
// shard's reels alone, however it was built.
func (e *Engine) ownIndex(m *Model) int {
	if !e.cfg.Shard.Sharded() || m == nil {
		return 0
	}
	var drop []int64
	for _, id := range m.index.IDs(nil) {
		if !e.owns(id) {
			drop = append(drop, id)
		}
	}
	if len(drop) > 0 {
		m.index.Delete(drop...) // listed by the index: no error
		m.index.Compact()
	}
	return len(drop)
}

// shardFile records, in the engine's folder, the shard the folder was
// last served as.
const shardFile = "shard.json"

// checkShard compares the shard cfg asks for with the one the folder was
// last served as, and records cfg's. A folder holds the catalogue changes
// (upserts, deletes) of the shard it served alone: served as another
// shard it would lack the reels that shard owns, so a change is refused
// unless cfg.Reshard says to go on. A folder with state from before
// shards were recorded counts as having served the whole catalogue; a new
// folder takes any shard.
func checkShard(cfg *Config, hasState bool) error {
	p := filepath.Join(cfg.Dir, shardFile)
	want := cfg.Shard.norm()
	b, err := os.ReadFile(p)
	var was Shard
	recorded := false
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &was); err != nil {
			return fmt.Errorf("engine: %s: %w", p, err)
		}
		if err := was.validate(); err != nil {
			return fmt.Errorf("engine: %s: %w", p, err)
		}
		was, recorded = was.norm(), true
	case errors.Is(err, fs.ErrNotExist):
		recorded = hasState
	default:
		return fmt.Errorf("engine: %w", err)
	}
	if recorded && was != want && !cfg.Reshard {
		return fmt.Errorf("engine: the folder %s was served as shard %s and is opened as shard %s: it holds the catalogue changes of shard %s alone (set Config.Reshard, `serve --reshard`, to serve it as %s anyway)",
			cfg.Dir, was, want, was, want)
	}
	if err == nil && was == want {
		return nil
	}
	if recorded && was != want {
		cfg.Logger.Warn("serving the folder as another shard", "dir", cfg.Dir, "was", was.String(), "now", want.String())
	}
	c := want
	if !c.Sharded() {
		c.Count = 1
	}
	err = fsutil.WriteFile(p, 0o600, func(w io.Writer) error { return json.NewEncoder(w).Encode(c) })
	if err != nil {
		return fmt.Errorf("engine: record the shard: %w", err)
	}
	return nil
}

// hasLogs reports whether folder dir holds a logged write: a non-empty
// segment of the event log or of the catalogue journal.
func hasLogs(dir string) bool {
	for _, name := range []string{eventsName, catalogueName} {
		segs, _ := filepath.Glob(filepath.Join(dir, name+"-*.jsonl")) // a fixed pattern: no error
		for _, p := range segs {
			if fi, err := os.Stat(p); err == nil && fi.Size() > 0 {
				return true
			}
		}
	}
	return false
}
