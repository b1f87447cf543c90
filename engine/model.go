package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/drift"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/ranker"
)

// Model is one servable model version: a bundle (ranker, user tower, reel
// tower) and the index of the reel tower's embeddings, with the name of
// the A/B arm it serves. The engine holds the current Model behind an
// atomic pointer and replaces it with Engine.Swap; a request keeps the
// Model it started with to its end.
//
// A Model's fields never change. Its index does, being the catalogue:
// once a Model is handed to an engine, the engine adds upserted reels to
// the index and deletes deleted ones, so one index must not serve two
// engines.
type Model struct {
	bundle  *ranker.Bundle
	index   *ann.Index
	version string
	arm     string
	heads   []string

	// monitor, when set (SetReference), bins what the model serves
	// against its training reference; cols maps rows onto its series.
	monitor *drift.Monitor
	cols    driftCols
}

// NewModel checks that the bundle holds the three models, that they are
// valid, and that the index's dimension is the towers'; it prepares (packs)
// the models so that the first request does not pay for it. The model
// version is the bundle's.
func NewModel(b *ranker.Bundle, ix *ann.Index, arm string) (*Model, error) {
	switch {
	case b == nil:
		return nil, errors.New("engine: new model: nil bundle")
	case b.Ranker == nil || b.UserTower == nil || b.ReelTower == nil:
		return nil, fmt.Errorf("engine: new model %q: the bundle needs a ranker, a user tower and a reel tower", b.Version)
	case b.Version == "":
		return nil, errors.New("engine: new model: the bundle has no version")
	case ix == nil:
		return nil, fmt.Errorf("engine: new model %q: nil index", b.Version)
	}
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("engine: new model %q: %w", b.Version, err)
	}
	if d := ix.Options().Dim; d != b.ReelTower.Dim {
		return nil, fmt.Errorf("engine: new model %q: the index has dimension %d, the towers %d", b.Version, d, b.ReelTower.Dim)
	}
	// Yields between the steps: a model made while another serves lets
	// the requests waiting for the processor in.
	runtime.Gosched()
	if err := b.Ranker.Prepare(); err != nil {
		return nil, fmt.Errorf("engine: new model %q: ranker: %w", b.Version, err)
	}
	runtime.Gosched()
	if err := b.UserTower.Prepare(); err != nil {
		return nil, fmt.Errorf("engine: new model %q: %w", b.Version, err)
	}
	runtime.Gosched()
	if err := b.ReelTower.Prepare(); err != nil {
		return nil, fmt.Errorf("engine: new model %q: %w", b.Version, err)
	}
	return &Model{bundle: b, index: ix, version: b.Version, arm: arm, heads: slices.Clone(b.Ranker.Tasks)}, nil
}

// Version is the bundle's model version.
func (m *Model) Version() string { return m.version }

// Arm is the A/B arm the model serves.
func (m *Model) Arm() string { return m.arm }

// Heads names the ranker's heads, in the order of Item.Probs.
func (m *Model) Heads() []string { return slices.Clone(m.heads) }

// Bundle returns the model's bundle; it must not be changed.
func (m *Model) Bundle() *ranker.Bundle { return m.bundle }

// Index returns the model's index.
func (m *Model) Index() *ann.Index { return m.index }

// embedChunk is how many reels BuildIndex embeds between checks of its
// context.
const embedChunk = 4096

// EmbedReels returns the reel tower's embeddings of reels (len(ids) rows
// of tower.Dim), from the store's reel features as of time at (ms) and the
// content embeddings. A reel the tower has no id vector for gets the
// content part alone, as a new reel does.
func EmbedReels(store *features.Store, tower *ranker.ReelTower, ids []int64, at int64) ([]float32, error) {
	out := make([]float32, len(ids)*tower.Dim)
	if err := tower.EmbedStore(out, store, ids, at); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	return out, nil
}

// BuildIndex embeds every reel of the store that has an upload time or a
// content embedding with the reel tower, as of time at (ms; 0 means the
// later of now and the store's newest event), trains an index on the
// embeddings and adds them. Options.Dim defaults to the tower's dimension
// and Lists to about 4·√n (at most n/16, at most 4096); the metric is
// Options.Metric (inner product unless told). ctx stops it between steps.
func BuildIndex(ctx context.Context, store *features.Store, tower *ranker.ReelTower, opt ann.Options, at int64) (*ann.Index, error) {
	if tower == nil {
		return nil, errors.New("engine: build index: nil reel tower")
	}
	if err := tower.Prepare(); err != nil {
		return nil, fmt.Errorf("engine: build index: %w", err)
	}
	if at == 0 {
		at = max(time.Now().UnixMilli(), store.Stats().Newest)
	}
	reels := store.ListReels(nil, func(r *features.ReelInfo) bool { return r.Upload > 0 || r.HasEmbedding })
	ids := make([]int64, len(reels))
	for i := range reels {
		ids[i] = reels[i].ID
	}
	if opt.Dim == 0 {
		opt.Dim = tower.Dim
	}
	if opt.Dim != tower.Dim {
		return nil, fmt.Errorf("engine: build index: dimension %d, the tower gives %d", opt.Dim, tower.Dim)
	}
	if opt.Lists == 0 {
		opt.Lists = ann.DefaultLists(len(ids))
	}
	ix, err := ann.New(opt)
	if err != nil {
		return nil, fmt.Errorf("engine: build index: %w", err)
	}
	vecs := make([]float32, len(ids)*tower.Dim)
	for lo := 0; lo < len(ids); lo += embedChunk {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("engine: build index: %w", err)
		}
		hi := min(len(ids), lo+embedChunk)
		if err := tower.EmbedStore(vecs[lo*tower.Dim:hi*tower.Dim], store, ids[lo:hi], at); err != nil {
			return nil, fmt.Errorf("engine: build index: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("engine: build index: %w", err)
	}
	if err := ix.Train(vecs); err != nil {
		return nil, fmt.Errorf("engine: build index of %d reels: %w", len(ids), err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("engine: build index: %w", err)
	}
	if err := ix.Add(ids, vecs); err != nil {
		return nil, fmt.Errorf("engine: build index: %w", err)
	}
	return ix, nil
}
