package engine

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/kernels"
)

// isDeleted reports whether reel id was deleted.
func (e *Engine) isDeleted(id int64) bool {
	e.delMu.RLock()
	_, ok := e.deleted[id]
	e.delMu.RUnlock()
	return ok
}

// Score returns the ranker's probabilities and final scores of the given
// reels for a user, in their order, for services that retrieve candidates
// on their own. A reel the store does not know, or a deleted one, is an
// error wrapping ErrNotFound that names it.
func (e *Engine) Score(ctx context.Context, user int64, c Context, reels []int64) (*ScoreResponse, error) {
	e.ctr.scores.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("engine: score: %w", err)
	}
	if err := checkContext("score", user, &c); err != nil {
		return nil, err
	}
	if len(reels) > maxBatch {
		return nil, badRequest("score", "%d reels, over the limit of %d", len(reels), maxBatch)
	}
	for i, id := range reels {
		if id < 0 {
			return nil, badRequest("score", "reel %d is %d", i, id)
		}
	}
	e.delMu.RLock()
	if len(e.deleted) > 0 {
		for _, id := range reels {
			if _, gone := e.deleted[id]; gone {
				e.delMu.RUnlock()
				return nil, fmt.Errorf("%w: score: reel %d", ErrNotFound, id)
			}
		}
	}
	e.delMu.RUnlock()
	lv := e.live.Load()
	if lv == nil {
		return nil, fmt.Errorf("%w: score: no model", ErrUnavailable)
	}
	m := lv.m
	s := e.getScratch()
	defer e.putScratch(s)
	fr := &s.freq
	fr.User = user
	fr.Context, _ = e.featureContext(user, &c, &s.profile)
	fr.Reels = reels
	fr.Embeddings = true
	if err := e.store.Features(fr); err != nil {
		return nil, featuresErr("score: features", err)
	}
	if fr.Known < len(reels) {
		for _, id := range reels {
			if _, ok := e.store.ReelInfo(id); !ok {
				return nil, fmt.Errorf("%w: score: reel %d", ErrNotFound, id)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("engine: score: before rank: %w", err)
	}
	sc, err := s.scorerFor(m.bundle.Ranker)
	if err != nil {
		return nil, fmt.Errorf("engine: score: ranker: %w", err)
	}
	if err := sc.Score(fr, &s.scores); err != nil {
		return nil, fmt.Errorf("engine: score: ranker: %w", err)
	}
	T := s.scores.Tasks
	out := &ScoreResponse{Heads: m.heads, ModelVersion: m.version, Arm: m.arm,
		Scores: make([]float32, len(reels)), Probs: make([]float32, len(reels)*T)}
	copy(out.Probs, s.scores.Probs)
	for i := range reels {
		var v float32
		for t, p := range out.Probs[i*T : (i+1)*T] {
			v += lv.weights[t] * p
		}
		out.Scores[i] = v
	}
	return out, nil
}

// Search returns the k reels of the index nearest to vector, best first,
// leaving out exclude. nprobe 0 means the engine's default; a larger
// nprobe than the index has lists scans them all. A vector of the wrong
// dimension or with NaN or an infinity, or k outside 1..4096, is an error
// wrapping ErrBadRequest. An index with no reels answers no ids.
func (e *Engine) Search(ctx context.Context, vector []float32, k, nprobe int, exclude []int64) (*SearchResponse, error) {
	e.ctr.searches.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("engine: search: %w", err)
	}
	lv := e.live.Load()
	if lv == nil {
		return nil, fmt.Errorf("%w: search: no model", ErrUnavailable)
	}
	ix := lv.m.index
	o := ix.Options()
	switch {
	case len(vector) != o.Dim:
		return nil, badRequest("search", "vector of dimension %d, the index has %d", len(vector), o.Dim)
	case k < 1 || k > maxK:
		return nil, badRequest("search", "k = %d outside 1..%d", k, maxK)
	case nprobe < 0:
		return nil, badRequest("search", "negative nprobe %d", nprobe)
	}
	for j, v := range vector {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, badRequest("search", "vector value %d is %v", j, v)
		}
	}
	if nprobe == 0 {
		nprobe = lv.nprobe
	}
	nprobe = min(nprobe, o.Lists)
	out := &SearchResponse{}
	if !ix.Trained() || ix.Len() == 0 {
		return out, nil
	}
	res, err := ix.Search(vector, ann.SearchOptions{K: k, NProbe: nprobe, Exclude: exclude})
	if errors.Is(err, ann.ErrEmpty) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("engine: search: %w", err)
	}
	out.IDs = make([]int64, len(res))
	out.Scores = make([]float32, len(res))
	for i, r := range res {
		out.IDs[i], out.Scores[i] = r.ID, r.Score
		if o.Metric == kernels.L2 {
			out.Scores[i] = -r.Score
		}
	}
	return out, nil
}

// Upsert adds a reel, or replaces the one with its id: it puts it in the
// feature store, embeds it with the served model's reel tower (the content
// part alone for a reel the tower has no id vector for, as for any new
// reel) and adds it to the index; when there is no index that can take
// it, the reel waits in the fresh pool, served from there, until a model's
// index takes it at Swap. A reel uploaded within the fresh window joins
// the fresh pool, and a reel with little evidence the exploration pool.
// Upserting a deleted reel brings it back. replaced reports whether the
// store knew the reel.
//
// With Config.CatalogueLog set, the upsert is journaled (written and
// fsynced) before it is applied, and New applies the journal again.
func (e *Engine) Upsert(r Reel) (replaced bool, err error) {
	e.ctr.upserts.Add(1)
	return e.upsertJournaled(r, true)
}

// upsert applies r without journaling it: the journal's replay.
func (e *Engine) upsert(r Reel) (bool, error) { return e.upsertJournaled(r, false) }

func (e *Engine) upsertJournaled(r Reel, journaled bool) (replaced bool, err error) {
	switch {
	case r.ID < 0 || r.Author < 0:
		return false, badRequest("upsert", "reel %d, author %d: negative id", r.ID, r.Author)
	case r.Category < -1:
		return false, badRequest("upsert", "reel %d: category %d", r.ID, r.Category)
	case r.Upload < 0:
		return false, badRequest("upsert", "reel %d: negative upload time %d", r.ID, r.Upload)
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	now := e.cfg.Clock().UnixMilli()
	if r.Upload == 0 {
		r.Upload = now
	}
	if journaled {
		// A change the store then refuses stays in the journal; its replay
		// is refused the same way, as it was when it was made.
		if err := e.journal(catalogueEntry{Op: "upsert", Reel: &r}); err != nil {
			return false, err
		}
	}
	info, known := e.store.ReelInfo(r.ID)
	var emb []float32
	if len(r.Embedding) > 0 {
		emb = r.Embedding
	}
	err = e.store.PutReel(features.Reel{ID: r.ID, Author: r.Author, Upload: r.Upload, Duration: r.Duration,
		Embedding: emb, Category: int(r.Category), Language: int(r.Language)})
	if err != nil {
		return false, fmt.Errorf("%w: upsert: %w", ErrBadRequest, err)
	}
	indexed := false
	if lv := e.live.Load(); lv != nil && lv.m.index.Trained() {
		ix := lv.m.index
		if ix.Contains(r.ID) {
			ix.Delete(r.ID) // known to be there: no error
		}
		// A reel the index cannot take (its embedding failed, or Add did)
		// is served from the fresh pool instead.
		vec, err := EmbedReels(e.store, lv.m.bundle.ReelTower, []int64{r.ID}, e.embedTime())
		indexed = err == nil && ix.Add([]int64{r.ID}, vec) == nil
	}
	e.delMu.Lock()
	delete(e.deleted, r.ID)
	e.delMu.Unlock()
	e.upserted[r.ID] = struct{}{}
	e.fresh.add(r.ID, r.Upload, now-e.cfg.FreshWindow.Milliseconds(), !indexed)
	if !known || info.Impressions < e.cfg.ExploreImpressions {
		e.explore.add(r.ID)
	}
	return known, nil
}

// Delete removes a reel from everything the engine serves from (the index,
// the pools) and from Score; it stays in the feature store, whose events
// may still name it. An unknown or already deleted reel is an error
// wrapping ErrNotFound.
//
// With Config.CatalogueLog set, the delete is journaled before it is
// applied, as Upsert is.
func (e *Engine) Delete(id int64) error {
	e.ctr.deletes.Add(1)
	return e.deleteJournaled(id, true)
}

// del applies a delete without journaling it: the journal's replay.
func (e *Engine) del(id int64) error { return e.deleteJournaled(id, false) }

func (e *Engine) deleteJournaled(id int64, journaled bool) error {
	if id < 0 {
		return badRequest("delete", "reel %d is negative", id)
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	_, inStore := e.store.ReelInfo(id)
	var ix *ann.Index
	if lv := e.live.Load(); lv != nil {
		ix = lv.m.index
	}
	inIndex := ix != nil && ix.Contains(id)
	if e.isDeleted(id) || (!inStore && !inIndex) {
		return fmt.Errorf("%w: delete: reel %d", ErrNotFound, id)
	}
	if journaled {
		if err := e.journal(catalogueEntry{Op: "delete", ID: id}); err != nil {
			return err
		}
	}
	e.delMu.Lock()
	e.deleted[id] = struct{}{}
	e.delMu.Unlock()
	if inIndex {
		ix.Delete(id) // known to be there: no error
	}
	delete(e.upserted, id)
	e.fresh.remove(id)
	e.explore.remove(id)
	return nil
}
