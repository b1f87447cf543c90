package modeldir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/drift"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/internal/wal"
	"github.com/reelrank/reelrank/kernels"
	"github.com/reelrank/reelrank/ranker"
)

// Options tune Open.
type Options struct {
	// Logf, when set, receives notes: a folder without a manifest, the
	// index being built, logs adopted, the clock picked.
	Logf func(format string, args ...any)
	// Index shapes the index Open builds when the folder has none; its
	// Dim is the towers'. The zero value means DefaultIndexOptions().
	Index ann.Options
}

// DefaultIndexOptions are the options of the index Open builds: inner
// product, 4-bit fast-scan codes, float16 copies for exact re-ranking,
// seed 1, and ann.DefaultLists lists.
func DefaultIndexOptions() ann.Options {
	return ann.Options{Metric: kernels.InnerProduct, Bits: 4, Refine: ann.RefineF16, Seed: 1}
}

func (o *Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

// Version is one opened version folder.
type Version struct {
	dir      string
	opt      Options
	bundle   *ranker.Bundle
	index    *ann.Index
	ref      *drift.Reference
	created  time.Time
	manifest bool // whether the folder has one (false: an older build's)
}

// Open opens the version folder dir: it checks the manifest and the size
// and SHA-256 of every file it lists (errors wrap ErrCorrupt and name the
// file), loads the bundle and the drift reference, and opens the index,
// building it from the reel vectors and saving it when it is missing or
// unreadable. A folder without a manifest opens without the checks, with
// a note through Options.Logf. ctx stops the index's building between
// steps.
func Open(ctx context.Context, dir string, opt Options) (*Version, error) {
	fail := func(err error) (*Version, error) { return nil, fmt.Errorf("modeldir: open %s: %w", dir, err) }
	if _, err := os.Stat(dir); err != nil {
		return fail(err)
	}
	m, ok, err := readManifest(dir)
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return nil, err
		}
		return fail(err)
	}
	v := &Version{dir: dir, opt: opt, manifest: ok}
	if ok {
		if err := verify(dir, m); err != nil {
			return nil, err
		}
		v.created = m.Created
	} else {
		opt.logf("%s has no %s (an older build wrote it): opening it without checksums", dir, ManifestFile)
	}
	b, err := ranker.Load(filepath.Join(dir, BundleFolder))
	if err != nil {
		return fail(err)
	}
	if b.ReelTower == nil {
		return fail(fmt.Errorf("bundle %q has no reel tower", b.Version))
	}
	if ok {
		bad := func(format string, args ...any) (*Version, error) {
			return nil, fmt.Errorf("%w: %s: %s: %s", ErrCorrupt, dir, ManifestFile, fmt.Sprintf(format, args...))
		}
		switch {
		case m.ModelVersion != b.Version:
			return bad("model version %q, the bundle's is %q", m.ModelVersion, b.Version)
		case m.SpecFingerprint != fingerprint(b.Spec):
			return bad("spec fingerprint %s, the bundle's is %s", m.SpecFingerprint, fingerprint(b.Spec))
		case m.EmbedDim != b.Spec.EmbedDim:
			return bad("embedding dimension %d, the bundle's is %d", m.EmbedDim, b.Spec.EmbedDim)
		case m.Dim != b.ReelTower.Dim:
			return bad("dimension %d, the reel tower's is %d", m.Dim, b.ReelTower.Dim)
		}
	} else if b.Created.IsZero() {
		if st, err := os.Stat(filepath.Join(dir, BundleFolder)); err == nil {
			v.created = st.ModTime()
		}
	} else {
		v.created = b.Created
	}
	v.bundle = b
	if ok && !listed(m, ReferenceFile) {
		// Written without a reference: a file there now is not the version's.
	} else if v.ref, err = readReference(filepath.Join(dir, ReferenceFile)); err != nil {
		return fail(err)
	}
	reels := -1
	if ok {
		reels = m.Reels
	}
	if v.index, err = v.openIndex(ctx, reels); err != nil {
		return nil, err
	}
	return v, nil
}

func listed(m *manifest, name string) bool {
	for _, f := range m.Files {
		if f.Name == name {
			return true
		}
	}
	return false
}

// readReference reads the drift reference at p; a missing one is nil.
func readReference(p string) (*drift.Reference, error) {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := drift.Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ReferenceFile, err)
	}
	return r, nil
}

// openIndex opens the folder's index, or builds it from the vectors and
// saves it when it is missing, unreadable, or not of this version (another
// dimension, or another count than the manifest's reels; reels < 0: not
// known).
func (v *Version) openIndex(ctx context.Context, reels int) (*ann.Index, error) {
	fail := func(err error) (*ann.Index, error) { return nil, fmt.Errorf("modeldir: open %s: %w", v.dir, err) }
	dim := v.bundle.ReelTower.Dim
	p := filepath.Join(v.dir, IndexFile)
	ix, err := ann.Open(p)
	switch {
	case err == nil:
		if d := ix.Options().Dim; d != dim {
			v.opt.logf("%s has dimension %d, the reel tower %d: building it again", p, d, dim)
		} else if reels >= 0 && ix.Len() != reels {
			v.opt.logf("%s holds %d reels, the version %d: building it again", p, ix.Len(), reels)
		} else {
			return ix, nil
		}
		ix.Close()
	case errors.Is(err, ann.ErrBadFile):
		v.opt.logf("%v: building it again", err)
	case errors.Is(err, fs.ErrNotExist):
	default:
		return fail(err)
	}
	vecs, err := ann.ReadFvecs(filepath.Join(v.dir, VectorsFile), 0)
	if err != nil {
		return fail(err)
	}
	if vecs.Dim != dim {
		return fail(fmt.Errorf("%s has dimension %d, the reel tower %d", VectorsFile, vecs.Dim, dim))
	}
	ids, err := ReadIDs(filepath.Join(v.dir, IDsFile), vecs.Len())
	if err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	opt := v.opt.Index
	if opt == (ann.Options{}) {
		opt = DefaultIndexOptions()
	}
	opt.Dim = dim
	if opt.Lists == 0 {
		opt.Lists = ann.DefaultLists(vecs.Len())
	}
	v.opt.logf("building the index of %d reel vectors (%d lists)...", vecs.Len(), opt.Lists)
	start := time.Now()
	ix, err = ann.Build(vecs, ids, opt)
	if err != nil {
		return fail(fmt.Errorf("index: %w", err))
	}
	v.opt.logf("index built in %.1f s", time.Since(start).Seconds())
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := ix.Save(p); err != nil {
		return fail(err)
	}
	return ix, nil
}

// Dir returns the version folder.
func (v *Version) Dir() string { return v.dir }

// Version returns the model version (the bundle's).
func (v *Version) Version() string { return v.bundle.Version }

// Created returns when the version was written (for a folder without a
// manifest: the bundle's creation time, or its folder's modification
// time).
func (v *Version) Created() time.Time { return v.created }

// Verified reports whether the folder had a manifest, and so its files
// were checked against it.
func (v *Version) Verified() bool { return v.manifest }

// Bundle returns the models.
func (v *Version) Bundle() *ranker.Bundle { return v.bundle }

// Index returns the index of the reel vectors. An engine serving it
// changes it (upserts and deletes): it serves one engine at a time.
func (v *Version) Index() *ann.Index { return v.index }

// Reference returns the drift reference, or nil when the version has none.
func (v *Version) Reference() *drift.Reference { return v.ref }

// SnapshotPath returns the path of the feature store's snapshot, the
// state serving starts from when served/ holds no checkpoint.
func (v *Version) SnapshotPath() string { return filepath.Join(v.dir, SnapshotFile) }

// LoadSnapshot loads the feature store's snapshot and checks it against
// the version (see Check).
func (v *Version) LoadSnapshot() (*features.Store, error) {
	s, err := features.LoadSnapshot(v.SnapshotPath())
	if err != nil {
		return nil, fmt.Errorf("modeldir: %w", err)
	}
	if err := v.Check(s.Spec()); err != nil {
		return nil, err
	}
	return s, nil
}

// Check refuses a version whose bundle was trained on another feature
// spec than spec (a store's; the error wraps ranker.ErrSpecMismatch), or
// whose index's dimension is not the reel tower's.
func (v *Version) Check(spec features.Spec) error {
	if err := v.bundle.Check(spec); err != nil {
		return fmt.Errorf("modeldir: %s: %w", v.dir, err)
	}
	if d, t := v.index.Options().Dim, v.bundle.ReelTower.Dim; d != t {
		return fmt.Errorf("modeldir: %s: the index has dimension %d, the reel tower %d", v.dir, d, t)
	}
	return nil
}

// StatePath returns the engine's state folder (engine.Config.Dir) as it
// is, without adopting anything: see StateDir.
func (v *Version) StatePath() string { return filepath.Join(v.dir, StateFolder) }

// StateDir returns the engine's state folder (engine.Config.Dir), having
// moved the single-file logs of the older layout (LegacyEventLog,
// LegacyCatalogue, beside served/) into it, once: they become the first
// segments of the engine's event and catalogue logs. (Catalogue entries of
// that layout carry no event count: they replay before the adopted
// events.)
func (v *Version) StateDir() (string, error) {
	state := v.StatePath()
	for _, l := range []struct{ file, name string }{{LegacyEventLog, "events"}, {LegacyCatalogue, "catalogue"}} {
		p := filepath.Join(v.dir, l.file)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		lg, err := wal.Open(wal.Options{Dir: state, Name: l.name, Legacy: p})
		if err != nil {
			return "", fmt.Errorf("modeldir: adopt %s: %w", p, err)
		}
		if err := lg.Close(); err != nil {
			return "", fmt.Errorf("modeldir: adopt %s: %w", p, err)
		}
		v.opt.logf("moved %s into %s", p, state)
	}
	return state, nil
}

// Close releases the index's file mapping. Call it only once no engine
// serves the index.
func (v *Version) Close() error {
	if v.index == nil {
		return nil
	}
	return v.index.Close()
}

// The clock modes of Version.Clock.
const (
	ClockWall = "wall" // the wall clock
	ClockData = "data" // the data's clock: the newest event served, moving on with the wall clock
	ClockAuto = "auto" // data when the state's newest event is over a day old, else wall
)

// Clock is the present of an engine serving a version: the wall clock,
// or, on a simulated world whose log ended long ago, the data's clock,
// from the newest event of the state serving starts from. It reads the
// wall clock until Observe picks it.
type Clock struct {
	mode string
	logf func(string, ...any)
	now  atomic.Pointer[func() time.Time]
}

// Clock returns the engine's clock for mode (ClockWall, ClockData or
// ClockAuto), not yet picked: the caller observes the newest event of the
// state the engine starts from, the checkpoint's in served/ when there is
// one (engine.CheckpointNewest, before the engine opens), else the
// snapshot's once loaded.
func (v *Version) Clock(mode string) (*Clock, error) {
	switch mode {
	case ClockWall, ClockData, ClockAuto:
	default:
		return nil, fmt.Errorf("modeldir: clock %q: want %s, %s or %s", mode, ClockWall, ClockData, ClockAuto)
	}
	return &Clock{mode: mode, logf: v.opt.logf}, nil
}

// Observe picks the clock from the newest event time (ms) of the state
// serving starts from, unless it is already picked.
func (c *Clock) Observe(newest int64) {
	if c.now.Load() != nil {
		return
	}
	fn := time.Now
	if c.mode == ClockData || (c.mode == ClockAuto && time.Since(time.UnixMilli(newest)) > 24*time.Hour) {
		began := time.Now()
		at := time.UnixMilli(newest)
		fn = func() time.Time { return at.Add(time.Since(began)) }
		c.logf("the log ends at %s: serving on the data's clock from there", at.UTC().Format(time.RFC3339))
	}
	c.now.CompareAndSwap(nil, &fn)
}

// Now returns the clock's present.
func (c *Clock) Now() time.Time {
	if fn := c.now.Load(); fn != nil {
		return (*fn)()
	}
	return time.Now()
}

// String names the clock's mode.
func (c *Clock) String() string { return strconv.Quote(c.mode) }
