package engine

import (
	"bytes"
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
	"sync"
	"time"

	"log/slog"

	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/internal/fsutil"
	"github.com/reelrank/reelrank/internal/wal"
)

// The engine's folder (Config.Dir) holds its durable state:
//
//	events-<seq>.jsonl      the served events, segment by segment (package wal)
//	catalogue-<seq>.jsonl   the journal of upserts and deletes
//	checkpoint.json         the last checkpoint: which snapshot, where the logs resume
//	features-<e>-<c>.snap   the feature store's snapshot the checkpoint names
//
// Every write (an Event batch, an Upsert, a Delete) is appended to its log
// and applied under one lock, so that the order in memory is the order in
// the logs, then acknowledged once its log has fsynced it (group commit:
// concurrent writes share an fsync). A catalogue entry records how many
// events were logged before it, so that a replay interleaves the two logs
// as they were applied. A checkpoint snapshots the store, records the
// catalogue's effect beyond the store (reels upserted and deleted since
// the model) and the idempotency keys, and lets the logs drop the segments
// before it; a restart loads the snapshot and replays the tails.
const (
	eventsName     = "events"
	catalogueName  = "catalogue"
	checkpointFile = "checkpoint.json"
	snapPrefix     = "features-"
	snapSuffix     = ".snap"
)

// checkpoint is the content of checkpoint.json.
type checkpoint struct {
	Version  int    `json:"version"`
	Snapshot string `json:"snapshot"` // file name in the folder
	// Events and Catalogue are the sequences of the first records of the
	// two logs that the snapshot does not hold.
	Events    uint64 `json:"events"`
	Catalogue uint64 `json:"catalogue"`
	// Upserted and Deleted are the reels upserted and deleted since the
	// model's catalogue, as of the snapshot: the part of the catalogue
	// journal that lives outside the store (the index and the pools).
	Upserted []int64         `json:"upserted"`
	Deleted  []int64         `json:"deleted"`
	Keys     []checkpointKey `json:"keys"`
	Time     string          `json:"time"`
	// Newest is the store's newest event time then (ms).
	Newest int64 `json:"newest"`
}

// CheckpointNewest returns the newest event time the checkpoint of folder
// dir holds, without loading its snapshot; ok is false when dir holds
// none. (A server picks its clock from it before Open.)
func CheckpointNewest(dir string) (newest int64, ok bool, err error) {
	ck, err := readCheckpoint(dir)
	if err != nil || ck.Snapshot == "" {
		return 0, false, err
	}
	return ck.Newest, true, nil
}

// checkpointKey is one idempotency key of the ledger, oldest first.
type checkpointKey struct {
	Key      string `json:"key"`
	Kind     uint8  `json:"kind"`
	Accepted uint32 `json:"accepted,omitempty"`
	Rejected uint32 `json:"rejected,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Replaced bool   `json:"replaced,omitempty"`
}

const checkpointVersion = 1

// durable is the engine's folder, open.
type durable struct {
	dir       string
	events    *wal.Log
	cat       *wal.Log
	ckMu      sync.Mutex // one checkpoint at a time
	ck        checkpoint // the last one written or loaded
	ckBytes   int64      // CheckpointBytes
	trigger   chan struct{}
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	failOnce  [2]sync.Once // the first failure of each log is logged once
}

// catalogueEntry is one line of the catalogue journal.
type catalogueEntry struct {
	Op   string `json:"op"` // "upsert" or "delete"
	Reel *Reel  `json:"reel,omitempty"`
	ID   int64  `json:"id,omitempty"`
	// Ev counts the events logged before this entry: a replay applies it
	// after them.
	Ev  uint64 `json:"ev"`
	Key string `json:"key,omitempty"`
}

// Open returns an engine whose writes are durable in cfg.Dir (see the
// package doc): it loads the folder's checkpoint snapshot, or calls base
// for the store to start from when the folder holds none (a new folder),
// then replays the logs' tails in the order they were applied, restores
// the reels upserted and deleted and the idempotency keys, and starts the
// checkpoints on Config.CheckpointInterval and CheckpointBytes. With no
// cfg.Dir it is New over base's store.
//
// A folder is open in one engine at a time: a second Open fails (the logs
// hold a lock). A damaged record in the middle of a log is an error naming
// it: skipping it would lose an acknowledged write.
func Open(cfg Config, model *Model, base func() (*features.Store, error)) (*Engine, error) {
	if cfg.Dir == "" {
		store, err := base()
		if err != nil {
			return nil, err
		}
		return New(cfg, store, model)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("engine: state folder: %w", err)
	}
	d := &durable{dir: cfg.Dir}
	ck, err := readCheckpoint(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if err := cfg.Shard.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := checkShard(&cfg, ck.Snapshot != "" || hasLogs(cfg.Dir)); err != nil {
		return nil, err
	}
	d.ck = ck
	var store *features.Store
	if ck.Snapshot != "" {
		store, err = features.LoadSnapshot(filepath.Join(cfg.Dir, ck.Snapshot))
		if err != nil {
			return nil, fmt.Errorf("engine: checkpoint: %w", err)
		}
	} else if store, err = base(); err != nil {
		return nil, err
	}
	e, err := newEngine(cfg, store, model)
	if err != nil {
		return nil, err
	}
	if d.events, err = wal.Open(wal.Options{Dir: cfg.Dir, Name: eventsName, Check: checkEventLine, FS: cfg.fs}); err != nil {
		return nil, fmt.Errorf("engine: event log: %w", err)
	}
	if d.cat, err = wal.Open(wal.Options{Dir: cfg.Dir, Name: catalogueName, Check: checkCatalogueLine, FS: cfg.fs}); err != nil {
		d.events.Close()
		return nil, fmt.Errorf("engine: catalogue journal: %w", err)
	}
	e.dur = d
	fail := func(err error) (*Engine, error) {
		d.events.Close()
		d.cat.Close()
		return nil, err
	}
	for _, c := range []struct {
		name string
		log  *wal.Log
		at   uint64
	}{{"event log", d.events, ck.Events}, {"catalogue journal", d.cat, ck.Catalogue}} {
		if c.at < c.log.First() || c.at > c.log.Next() {
			return fail(fmt.Errorf("engine: %s holds records %d..%d, the checkpoint resumes at %d: %w",
				c.name, c.log.First(), c.log.Next(), c.at, wal.ErrCorrupt))
		}
	}
	for _, id := range ck.Upserted {
		e.upserted[id] = struct{}{}
	}
	for _, id := range ck.Deleted {
		e.deleted[id] = struct{}{}
	}
	for _, k := range ck.Keys {
		e.keys.put(k.Key, ledgerEntry{kind: k.Kind, accepted: k.Accepted, rejected: k.Rejected, reason: k.Reason, replaced: k.Replaced})
	}
	e.restoreCatalogue()
	if err := e.replay(ck.Events, ck.Catalogue); err != nil {
		return fail(err)
	}
	d.ckBytes = cfg.CheckpointBytes
	d.trigger = make(chan struct{}, 1)
	d.stop = make(chan struct{})
	d.done = make(chan struct{})
	go e.checkpointLoop(cfg.CheckpointInterval)
	return e, nil
}

// readCheckpoint reads the folder's checkpoint; a folder without one gives
// the zero checkpoint.
func readCheckpoint(dir string) (checkpoint, error) {
	var ck checkpoint
	b, err := os.ReadFile(filepath.Join(dir, checkpointFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ck, nil
	case err != nil:
		return ck, fmt.Errorf("engine: checkpoint: %w", err)
	}
	if err := json.Unmarshal(b, &ck); err != nil {
		return ck, fmt.Errorf("engine: checkpoint %s: %w", filepath.Join(dir, checkpointFile), err)
	}
	if ck.Version != checkpointVersion {
		return ck, fmt.Errorf("engine: checkpoint %s: version %d, want %d", filepath.Join(dir, checkpointFile), ck.Version, checkpointVersion)
	}
	if ck.Snapshot != "" && (filepath.Base(ck.Snapshot) != ck.Snapshot || !strings.HasPrefix(ck.Snapshot, snapPrefix)) {
		return ck, fmt.Errorf("engine: checkpoint %s: snapshot %q is not a file of the folder", filepath.Join(dir, checkpointFile), ck.Snapshot)
	}
	return ck, nil
}

// restoreCatalogue brings the index and the pools in line with the reels
// upserted and deleted before the checkpoint: an upserted reel the index
// lacks is embedded and added, a deleted reel leaves the index and the
// pools. (The store already holds them: they are in its snapshot.)
func (e *Engine) restoreCatalogue() {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	lv := e.live.Load()
	now := e.cfg.Clock().UnixMilli()
	oldest := now - e.cfg.FreshWindow.Milliseconds()
	ids := make([]int64, 0, len(e.upserted))
	for id := range e.upserted {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		info, ok := e.store.ReelInfo(id)
		if !e.owns(id) {
			delete(e.upserted, id) // a folder served as another shard before (Config.Reshard)
			continue
		}
		if !ok {
			continue
		}
		indexed := lv != nil && lv.m.index.Contains(id)
		if lv != nil && !indexed && lv.m.index.Trained() {
			vec, err := EmbedReels(e.store, lv.m.bundle.ReelTower, []int64{id}, e.embedTime())
			indexed = err == nil && lv.m.index.Add([]int64{id}, vec) == nil
		}
		e.fresh.add(id, info.Upload, oldest, !indexed)
	}
	for id := range e.deleted {
		if lv != nil && lv.m.index.Contains(id) {
			lv.m.index.Delete(id) // known to be there: no error
		}
		e.fresh.remove(id)
		e.explore.remove(id)
	}
}

// replay applies the logs from the given sequences on, interleaved as they
// were applied: a catalogue entry after the events logged before it.
func (e *Engine) replay(evFrom, catFrom uint64) error {
	d := e.dur
	var cat []catalogueEntry
	err := d.cat.Replay(catFrom, func(seq uint64, line []byte) error {
		var ent catalogueEntry
		if err := json.Unmarshal(line, &ent); err != nil {
			return fmt.Errorf("record %d: %w", seq, err)
		}
		cat = append(cat, ent)
		return nil
	})
	if err != nil {
		return fmt.Errorf("engine: catalogue journal: %w", err)
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	applyCat := func(ent *catalogueEntry) error {
		switch ent.Op {
		case "upsert":
			if ent.Reel == nil {
				return errors.New("upsert without a reel")
			}
			r := *ent.Reel
			replaced, err := e.applyUpsert(r)
			if err != nil {
				return err
			}
			e.keys.put(ent.Key, ledgerEntry{kind: keyUpsert, replaced: replaced})
		case "delete":
			// Deleting a reel the catalogue no longer has leaves it deleted.
			if err := e.applyDelete(ent.ID); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			e.keys.put(ent.Key, ledgerEntry{kind: keyDelete})
		default:
			return fmt.Errorf("unknown entry %q", ent.Op)
		}
		return nil
	}
	ci := 0
	var pending []byte // event lines not yet applied
	var first uint64   // the sequence of pending's first line
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		evs, err := parseEvents(pending)
		if err != nil {
			return fmt.Errorf("engine: event log records %d..: %w", first, err)
		}
		e.applyEvents(evs)
		pending = pending[:0]
		return nil
	}
	catUpTo := func(seq uint64) error {
		for ci < len(cat) && cat[ci].Ev <= seq {
			if err := flush(); err != nil {
				return err
			}
			if err := applyCat(&cat[ci]); err != nil {
				return fmt.Errorf("engine: catalogue journal record %d: %w", catFrom+uint64(ci), err)
			}
			ci++
		}
		return nil
	}
	err = d.events.Replay(evFrom, func(seq uint64, line []byte) error {
		if err := catUpTo(seq); err != nil {
			return err
		}
		if len(pending) == 0 {
			first = seq
		}
		if m, ok := batchMeta(line); ok {
			// The key's batch ends m.N records on; a retry needs no sync.
			e.keys.put(m.Req, ledgerEntry{kind: keyEvent, accepted: m.N, rejected: m.Rej, reason: m.Why})
		}
		pending = append(append(pending, line...), '\n')
		if len(pending) >= 1<<20 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err == nil {
		err = catUpTo(^uint64(0))
	}
	if err != nil {
		return fmt.Errorf("engine: replay: %w", err)
	}
	return nil
}

// parseEvents parses whole event lines, in their order.
func parseEvents(lines []byte) ([]eventlog.Event, error) {
	rd := eventlog.NewReader(bytes.NewReader(lines), eventlog.Options{Tolerance: -1, KeepBad: 1})
	var out []eventlog.Event
	for {
		evs, err := rd.Next()
		out = append(out, evs...)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if err := rd.Report().Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", wal.ErrCorrupt, err)
	}
	return out, nil
}

// checkEventLine is the event log's check of a record at open: a JSON
// object. (A last line that fails it is a torn write and is cut.)
func checkEventLine(line []byte) error {
	if len(line) < 2 || line[0] != '{' || line[len(line)-1] != '}' {
		return errors.New("not a JSON object")
	}
	return nil
}

func checkCatalogueLine(line []byte) error {
	if !json.Valid(line) {
		return errors.New("not JSON")
	}
	return nil
}

// batchKey holds the keys a keyed batch's first event line carries beside
// the event's own (readers of the log ignore keys they do not know).
type batchKey struct {
	Req string `json:"req"`
	N   uint32 `json:"req_n"`
	Rej uint32 `json:"req_rej"`
	Why string `json:"req_why"`
}

var reqKey = []byte(`,"req":`)

// batchMeta returns the key of a batch's first line, if it has one. (A
// string value cannot hold reqKey's bytes: its quotes would be escaped.)
func batchMeta(line []byte) (batchKey, bool) {
	var m batchKey
	if !bytes.Contains(line, reqKey) || json.Unmarshal(line, &m) != nil || m.Req == "" {
		return m, false
	}
	return m, true
}

// appendBatch appends a batch's log lines to buf; with a key, the first
// line carries it and the batch's result.
func appendBatch(buf []byte, evs []eventlog.Event, key string, res *EventResult) []byte {
	for i := range evs {
		buf = eventlog.AppendJSON(buf, &evs[i])
		if i == 0 && key != "" {
			buf = buf[:len(buf)-1]
			buf = append(buf, reqKey...)
			buf = appendJSONString(buf, key)
			buf = append(buf, `,"req_n":`...)
			buf = strconv.AppendUint(buf, uint64(res.Accepted), 10)
			buf = append(buf, `,"req_rej":`...)
			buf = strconv.AppendUint(buf, uint64(res.Rejected), 10)
			if res.Reason != "" {
				buf = append(buf, `,"req_why":`...)
				buf = appendJSONString(buf, res.Reason)
			}
			buf = append(buf, '}')
		}
		buf = append(buf, '\n')
	}
	return buf
}

func appendJSONString(buf []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(buf, b...)
}

// Checkpoint snapshots the feature store and records where the logs
// resume, then drops the log segments the snapshot holds and compacts the
// index's deleted slots. Writes wait while the snapshot is taken. It runs
// on its own on Config.CheckpointInterval and after CheckpointBytes of
// events; it does nothing without Config.Dir or when nothing was written
// since the last one.
func (e *Engine) Checkpoint() error {
	d := e.dur
	if d == nil {
		return nil
	}
	d.ckMu.Lock()
	defer d.ckMu.Unlock()
	e.writeMu.Lock()
	evAt, catAt := d.events.Next(), d.cat.Next()
	if d.ck.Snapshot != "" && evAt == d.ck.Events && catAt == d.ck.Catalogue {
		e.writeMu.Unlock()
		return nil
	}
	// What the snapshot holds must be on disk before a checkpoint names it.
	if err := d.events.Sync(evAt); err != nil {
		e.writeMu.Unlock()
		return e.logFailure(0, err)
	}
	if err := d.cat.Sync(catAt); err != nil {
		e.writeMu.Unlock()
		return e.logFailure(1, err)
	}
	name := fmt.Sprintf("%s%020d-%020d%s", snapPrefix, evAt, catAt, snapSuffix)
	err := e.store.SaveSnapshot(filepath.Join(d.dir, name))
	ck := checkpoint{Version: checkpointVersion, Snapshot: name, Events: evAt, Catalogue: catAt,
		Upserted: sortedIDs(e.upserted), Keys: e.keys.keys(), Time: time.Now().UTC().Format(time.RFC3339),
		Newest: e.store.Stats().Newest}
	e.delMu.RLock()
	ck.Deleted = sortedIDs(e.deleted)
	e.delMu.RUnlock()
	e.writeMu.Unlock()
	if err != nil {
		return fmt.Errorf("engine: checkpoint: %w", err)
	}
	data, err := json.Marshal(&ck)
	if err != nil {
		return fmt.Errorf("engine: checkpoint: %w", err)
	}
	if err := fsutil.WriteFile(filepath.Join(d.dir, checkpointFile), 0o600, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}); err != nil {
		return fmt.Errorf("engine: checkpoint: %w", err)
	}
	d.ck = ck
	// The checkpoint is durable: what it covers can go.
	if ents, err := os.ReadDir(d.dir); err == nil {
		for _, ent := range ents {
			n := ent.Name()
			if strings.HasPrefix(n, snapPrefix) && n != name && (strings.HasSuffix(n, snapSuffix) || strings.Contains(n, snapSuffix+".tmp")) {
				os.Remove(filepath.Join(d.dir, n))
			}
		}
	}
	for _, l := range []struct {
		log *wal.Log
		at  uint64
	}{{d.events, evAt}, {d.cat, catAt}} {
		if err := l.log.Roll(); err != nil {
			return fmt.Errorf("engine: checkpoint: %w", err)
		}
		var err error
		if e.cfg.ArchiveDir != "" {
			_, err = l.log.MoveBefore(l.at, d.archiveDir(e.cfg.ArchiveDir))
		} else {
			_, err = l.log.RemoveBefore(l.at)
		}
		if err != nil {
			return fmt.Errorf("engine: checkpoint: %w", err)
		}
	}
	if lv := e.live.Load(); lv != nil {
		lv.m.index.Compact()
	}
	return nil
}

// archiveDir is the folder Config.ArchiveDir names: relative to the
// engine's folder unless absolute.
func (d *durable) archiveDir(dir string) string {
	if filepath.IsAbs(dir) {
		return dir
	}
	return filepath.Join(d.dir, dir)
}

func sortedIDs(m map[int64]struct{}) []int64 {
	ids := make([]int64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// checkpointLoop takes checkpoints every interval and when triggered, until
// Close.
func (e *Engine) checkpointLoop(interval time.Duration) {
	d := e.dur
	defer close(d.done)
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-d.stop:
			return
		case <-tick:
		case <-d.trigger:
		}
		if err := e.Checkpoint(); err != nil {
			e.cfg.Logger.Error("checkpoint failed", "err", err)
		}
	}
}

// afterWrite asks for a checkpoint when the event log has grown past
// CheckpointBytes.
func (d *durable) afterWrite() {
	if d.ckBytes > 0 && d.events.Size() > d.ckBytes {
		select {
		case d.trigger <- struct{}{}:
		default:
		}
	}
}

// ErrNoSpace is wrapped (with ErrUnavailable) by the error of a write
// refused because the disk of the engine's folder is full: nothing of it
// was acknowledged.
var ErrNoSpace = errors.New("engine: no space left on the device")

// logFailure returns the error a write answers when log i (0 the events,
// 1 the catalogue) failed: it wraps ErrUnavailable (and ErrNoSpace for a
// full disk) and names no path, since it goes to clients; the full error
// goes to the log once.
func (e *Engine) logFailure(i int, err error) error {
	name := [2]string{"event log", "catalogue journal"}[i]
	e.dur.failOnce[i].Do(func() {
		e.cfg.Logger.Error(name+" failed: writes are refused until a restart", "err", err)
	})
	if errors.Is(err, wal.ErrNoSpace) {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, name, ErrNoSpace)
	}
	return fmt.Errorf("%w: %s: %s", ErrUnavailable, name, wal.Cause(err))
}

// logHealth returns why the folder takes no writes, or "".
func (d *durable) logHealth() string {
	for i, l := range []*wal.Log{d.events, d.cat} {
		if err := l.Err(); err != nil {
			return fmt.Sprintf("%s failed (%s): writes are refused until a restart", [2]string{"event log", "catalogue journal"}[i], wal.Cause(err))
		}
	}
	return ""
}

// close stops the checkpoints and closes the logs.
func (d *durable) close() error {
	var err error
	d.closeOnce.Do(func() {
		close(d.stop)
		<-d.done
		err = errors.Join(d.events.Close(), d.cat.Close())
	})
	return err
}
