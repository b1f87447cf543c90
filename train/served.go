package train

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/internal/wal"
)

// A served model folder, as `reelrank serve --bundle DIR` reads and writes
// it (see engine/durable.go for the engine's folder):
//
//	DIR/features.snap                   the catalogue the model was trained with
//	DIR/served/events-<seq>.jsonl       the served events, segment by segment
//	DIR/served/catalogue-<seq>.jsonl    the journal of upserts and deletes
//	DIR/served/checkpoint.json          the last checkpoint, naming its snapshot
//	DIR/served/features-<e>-<c>.snap    the checkpoint's snapshot
//	DIR/served/archive/                 segments a checkpoint dropped (engine.Config.ArchiveDir)
const (
	servedSnapshot   = "features.snap"
	servedDir        = "served"
	servedArchive    = "archive"
	servedEvents     = "events"
	servedCatalogue  = "catalogue"
	servedCheckpoint = "checkpoint.json"
)

// servedCheckpointFile is what training reads of the engine's
// checkpoint.json.
type servedCheckpointFile struct {
	Snapshot  string  `json:"snapshot"`
	Catalogue uint64  `json:"catalogue"`
	Upserted  []int64 `json:"upserted"`
	Deleted   []int64 `json:"deleted"`
}

// servedEntry is one line of the engine's catalogue journal: an upsert
// carries the reel as the engine's Reel marshals it (no JSON tags).
type servedEntry struct {
	Op   string `json:"op"`
	ID   int64  `json:"id"`
	Reel *struct {
		ID, Author, Upload int64
		Duration           float32
		Category           int32
		Embedding          []float32
		Language           uint16
	} `json:"reel"`
}

// LoadServedCatalogue reads the catalogue of a served model folder dir:
// its features.snap's static catalogue, then the reels upserted and
// deleted while serving. When dir/served holds a checkpoint, the reels the
// checkpoint lists as upserted are read from its snapshot and those it
// lists as deleted leave; then the catalogue journal's records from the
// checkpoint on are applied in order. A torn, unterminated last line of
// the journal (a running server's) is skipped. Counters of either
// snapshot are not read.
func LoadServedCatalogue(dir string) (*Catalogue, error) {
	c, err := LoadSnapshotCatalogue(filepath.Join(dir, servedSnapshot))
	if err != nil {
		return nil, fmt.Errorf("train: served folder %s: %w", dir, err)
	}
	state := filepath.Join(dir, servedDir)
	at := c.reelIndex()
	deleted := map[int64]bool{}
	var ck servedCheckpointFile
	b, err := os.ReadFile(filepath.Join(state, servedCheckpoint))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("train: served folder: %w", err)
	default:
		if err := json.Unmarshal(b, &ck); err != nil {
			return nil, fmt.Errorf("train: served folder: %s: %w", filepath.Join(state, servedCheckpoint), err)
		}
	}
	if ck.Snapshot != "" {
		if filepath.Base(ck.Snapshot) != ck.Snapshot {
			return nil, fmt.Errorf("train: served folder: checkpoint names %q, not a file of %s", ck.Snapshot, state)
		}
		s, err := features.LoadSnapshot(filepath.Join(state, ck.Snapshot))
		if err != nil {
			return nil, fmt.Errorf("train: served folder: checkpoint: %w", err)
		}
		up := map[int64]bool{}
		for _, id := range ck.Upserted {
			up[id] = true
		}
		for _, r := range s.Reels() {
			if up[r.ID] {
				c.putReel(r, at)
			}
		}
		for _, id := range ck.Deleted {
			deleted[id] = true
		}
	}
	segs, err := wal.SegmentPaths(state, servedCatalogue)
	if err != nil {
		return nil, fmt.Errorf("train: served folder: %w", err)
	}
	for k, path := range segs {
		base, err := segmentBase(path, servedCatalogue)
		if err != nil {
			return nil, err
		}
		if err := readJournal(path, base, ck.Catalogue, k == len(segs)-1, func(e *servedEntry) {
			switch e.Op {
			case "upsert":
				r := e.Reel
				c.putReel(features.Reel{ID: r.ID, Author: r.Author, Upload: r.Upload, Duration: r.Duration,
					Embedding: r.Embedding, Category: int(r.Category), Language: int(r.Language)}, at)
				delete(deleted, r.ID)
			case "delete":
				deleted[e.ID] = true
			}
		}); err != nil {
			return nil, err
		}
	}
	c.deleteReels(deleted)
	return c, nil
}

// segmentBase returns the sequence number a segment's name gives.
func segmentBase(path, name string) (uint64, error) {
	digits := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), name+"-"), ".jsonl")
	base, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("train: served folder: segment %s: %w", path, err)
	}
	return base, nil
}

// readJournal calls fn for each record of a journal segment numbered from
// at on. In the last segment, an unterminated last line is a write in
// progress and is skipped.
func readJournal(path string, base, from uint64, last bool, fn func(*servedEntry)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("train: served folder: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	seq := base
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if len(b) == 0 && err != nil {
			break
		}
		if b[len(b)-1] != '\n' && last {
			break // torn
		}
		if seq >= from {
			var e servedEntry
			if err := json.Unmarshal(b, &e); err != nil {
				return fmt.Errorf("train: served folder: %s line %d: %w", path, line, err)
			}
			switch {
			case e.Op == "upsert" && e.Reel == nil:
				return fmt.Errorf("train: served folder: %s line %d: an upsert without a reel", path, line)
			case e.Op != "upsert" && e.Op != "delete":
				return fmt.Errorf("train: served folder: %s line %d: unknown op %q", path, line, e.Op)
			}
			fn(&e)
		}
		seq++
		if err != nil {
			break
		}
	}
	return nil
}

// EventParts resolves what `reelrank train --events` accepts into the
// files to read, in order: a comma-separated list of items, each of them
//
//   - a file: read as it is (a last line without a newline is read too);
//   - a folder of event log segments (events-<20-digit sequence>.jsonl,
//     as `reelrank serve` writes them), read in sequence order; when the
//     folder holds archive/ (engine.Config.ArchiveDir's segments), its
//     segments come first;
//   - a served model folder (one holding served/): its served/archive/
//     then served/ segments, as above.
//
// A segment that a folder's archive and the folder both hold is read
// once. The newest segment of each folder may end in a torn,
// unterminated line (a server still writing it): that line is left out.
func EventParts(spec string) ([]eventlog.Part, error) {
	var parts []eventlog.Part
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		st, err := os.Stat(item)
		if err != nil {
			return nil, fmt.Errorf("train: events: %w", err)
		}
		if !st.IsDir() {
			parts = append(parts, eventlog.Part{Path: item})
			continue
		}
		dir := item
		if st, err := os.Stat(filepath.Join(dir, servedDir)); err == nil && st.IsDir() {
			dir = filepath.Join(dir, servedDir)
		}
		var paths []string
		seen := map[string]bool{}
		for _, d := range []string{filepath.Join(dir, servedArchive), dir} {
			segs, err := wal.SegmentPaths(d, servedEvents)
			if err != nil {
				return nil, fmt.Errorf("train: events: %w", err)
			}
			for _, p := range segs {
				if !seen[filepath.Base(p)] {
					seen[filepath.Base(p)] = true
					paths = append(paths, p)
				}
			}
		}
		if len(paths) == 0 {
			return nil, fmt.Errorf("train: events: %s holds no event log segment (events-<sequence>.jsonl)", item)
		}
		// Archive and folder each in order; together, by sequence.
		bases := make(map[string]uint64, len(paths))
		for _, p := range paths {
			b, err := segmentBase(p, servedEvents)
			if err != nil {
				return nil, err
			}
			bases[p] = b
		}
		sortByBase(paths, bases)
		for k, p := range paths {
			parts = append(parts, eventlog.Part{Path: p, CutTorn: k == len(paths)-1})
		}
	}
	if len(parts) == 0 {
		return nil, errors.New("train: events: no file named")
	}
	return parts, nil
}

func sortByBase(paths []string, bases map[string]uint64) {
	slices.SortStableFunc(paths, func(a, b string) int { return cmp.Compare(bases[a], bases[b]) })
}

// logSpan returns the times of the log's first event and of its last (the
// largest time among the last lines of its last file that holds events),
// reading only the start and the end of the log.
func logSpan(parts []eventlog.Part) (first, last int64, err error) {
	f := eventlog.OpenParts(parts)
	rd := eventlog.NewReader(f, eventlog.Options{Tolerance: -1})
	for first == 0 {
		evs, err := rd.Next()
		if len(evs) > 0 {
			first = evs[0].Time
			for i := range evs {
				first = min(first, evs[i].Time)
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			f.Close()
			return 0, 0, fmt.Errorf("train: events: %w", err)
		}
	}
	f.Close()
	if first == 0 {
		return 0, 0, fmt.Errorf("train: events %s: no event: %w", parts[0].Path, ErrNoData)
	}
	const tail = 1 << 20
	for k := len(parts) - 1; k >= 0 && last == 0; k-- {
		p := parts[k]
		fh, err := os.Open(p.Path)
		if err != nil {
			return 0, 0, fmt.Errorf("train: events: %w", err)
		}
		st, err := fh.Stat()
		if err != nil {
			fh.Close()
			return 0, 0, fmt.Errorf("train: events: %w", err)
		}
		lo := max(st.Size()-tail, 0)
		b := make([]byte, st.Size()-lo)
		_, err = fh.ReadAt(b, lo)
		fh.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, fmt.Errorf("train: events: %s: %w", p.Path, err)
		}
		if lo > 0 { // the first line is partial
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				b = b[i+1:]
			}
		}
		if p.CutTorn {
			b = b[:bytes.LastIndexByte(b, '\n')+1]
		}
		rd := eventlog.NewReader(bytes.NewReader(b), eventlog.Options{Tolerance: -1})
		for {
			evs, err := rd.Next()
			for i := range evs {
				last = max(last, evs[i].Time)
			}
			if err != nil {
				break
			}
		}
	}
	return first, max(first, last), nil
}
