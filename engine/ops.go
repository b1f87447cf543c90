package engine

import (
	"context"
	"encoding/json"
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
	if e.cfg.Shard.Sharded() {
		for _, id := range reels {
			if !e.owns(id) {
				return nil, e.wrongShard("score", id)
			}
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
	lv, _ := e.armFor(user)
	if lv != nil && lv.holdout {
		lv = e.live.Load() // the holdout bypasses the ranker in Recommend alone
	}
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
	out := &ScoreResponse{Heads: m.heads, ModelVersion: m.version, Arm: lv.arm,
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

// Upsert is UpsertKeyed without a key; replaced reports whether the store
// knew the reel.
func (e *Engine) Upsert(r Reel) (replaced bool, err error) {
	res, err := e.UpsertKeyed("", r)
	return res.Replaced, err
}

// UpsertKeyed adds a reel, or replaces the one with its id: it puts it in
// the feature store, embeds it with the served model's reel tower (the
// content part alone for a reel the tower has no id vector for, as for any
// new reel) and adds it to the index; when there is no index that can
// take it, the reel waits in the fresh pool, served from there, until a
// model's index takes it at Swap. A reel uploaded within the fresh window
// joins the fresh pool, and a reel with little evidence the exploration
// pool. Upserting a deleted reel brings it back. An upload time of 0 is
// the engine's clock.
//
// A reel the store would refuse is refused before anything is written.
// With Config.Dir the upsert is appended to the catalogue journal and
// applied in one step, and acknowledged once fsynced; a restart applies it
// again. A non-empty key makes it idempotent, as for EventKeyed.
func (e *Engine) UpsertKeyed(key string, r Reel) (WriteResult, error) {
	e.ctr.upserts.Add(1)
	switch {
	case len(key) > MaxKey:
		return WriteResult{}, badRequest("upsert", "key of %d bytes, over %d", len(key), MaxKey)
	case r.ID < 0 || r.Author < 0:
		return WriteResult{}, badRequest("upsert", "reel %d, author %d: negative id", r.ID, r.Author)
	case r.Category < -1:
		return WriteResult{}, badRequest("upsert", "reel %d: category %d", r.ID, r.Category)
	case r.Upload < 0:
		return WriteResult{}, badRequest("upsert", "reel %d: negative upload time %d", r.ID, r.Upload)
	}
	if !e.owns(r.ID) {
		return WriteResult{}, e.wrongShard("upsert", r.ID)
	}
	if len(r.Embedding) == 0 {
		r.Embedding = nil
	}
	if err := e.store.CheckReel(storeReel(&r)); err != nil {
		return WriteResult{}, fmt.Errorf("%w: upsert: %w", ErrBadRequest, err)
	}
	e.writeMu.Lock()
	if ent, ok := e.keys.get(key); ok {
		e.writeMu.Unlock()
		return e.replayedWrite("upsert", keyUpsert, key, ent)
	}
	if r.Upload == 0 {
		r.Upload = e.cfg.Clock().UnixMilli()
	}
	var next uint64
	if d := e.dur; d != nil {
		line, err := json.Marshal(catalogueEntry{Op: "upsert", Reel: &r, Ev: d.events.Next(), Key: key})
		if err != nil {
			e.writeMu.Unlock()
			return WriteResult{}, fmt.Errorf("%w: upsert: %w", ErrBadRequest, err)
		}
		if _, next, err = d.cat.Append(append(line, '\n')); err != nil {
			e.writeMu.Unlock()
			return WriteResult{}, e.logFailure(1, err)
		}
	}
	replaced, err := e.applyUpsert(r)
	if err != nil {
		// CheckReel passed it: the store and the check disagree.
		e.writeMu.Unlock()
		return WriteResult{}, fmt.Errorf("engine: upsert: %w", err)
	}
	e.keys.put(key, ledgerEntry{kind: keyUpsert, durable: next, replaced: replaced})
	e.writeMu.Unlock()
	if d := e.dur; d != nil {
		if err := d.cat.Sync(next); err != nil {
			return WriteResult{}, e.logFailure(1, err)
		}
	}
	return WriteResult{Replaced: replaced}, nil
}

// replayedWrite answers an Upsert or Delete whose key the ledger holds.
func (e *Engine) replayedWrite(op string, kind uint8, key string, ent ledgerEntry) (WriteResult, error) {
	if ent.kind != kind {
		return WriteResult{}, badRequest(op, "key %q named another kind of write", key)
	}
	if d := e.dur; d != nil && ent.durable > 0 {
		if err := d.cat.Sync(ent.durable); err != nil {
			return WriteResult{}, e.logFailure(1, err)
		}
	}
	return WriteResult{Replaced: ent.replaced, Replayed: true}, nil
}

func storeReel(r *Reel) features.Reel {
	return features.Reel{ID: r.ID, Author: r.Author, Upload: r.Upload, Duration: r.Duration,
		Embedding: r.Embedding, Category: int(r.Category), Language: int(r.Language)}
}

// applyUpsert applies an admitted upsert; the caller holds writeMu.
func (e *Engine) applyUpsert(r Reel) (replaced bool, err error) {
	now := e.cfg.Clock().UnixMilli()
	info, known := e.store.ReelInfo(r.ID)
	if err := e.store.PutReel(storeReel(&r)); err != nil {
		return false, fmt.Errorf("%w: upsert: %w", ErrBadRequest, err)
	}
	if !e.owns(r.ID) {
		// Only a replay gets here, of a folder served as another shard
		// before (Config.Reshard): the store keeps the reel's metadata;
		// the index and the pools stay this shard's.
		return known, nil
	}
	// Every serving model's index takes it (the control's and a
	// canary's). A reel the control's index cannot take (its embedding
	// failed, or Add did) is served from the fresh pool instead.
	indexed := false
	var control *Model
	if lv := e.live.Load(); lv != nil {
		control = lv.m
	}
	for _, m := range e.liveModels() {
		ix := m.index
		if !ix.Trained() {
			continue
		}
		if ix.Contains(r.ID) {
			ix.Delete(r.ID) // known to be there: no error
		}
		vec, err := EmbedReels(e.store, m.bundle.ReelTower, []int64{r.ID}, e.embedTime())
		ok := err == nil && ix.Add([]int64{r.ID}, vec) == nil
		if m == control {
			indexed = ok
		}
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

// Delete is DeleteKeyed without a key.
func (e *Engine) Delete(id int64) error {
	_, err := e.DeleteKeyed("", id)
	return err
}

// DeleteKeyed removes a reel from everything the engine serves from (the
// index, the pools) and from Score; it stays in the feature store, whose
// events may still name it. An unknown or already deleted reel is an error
// wrapping ErrNotFound. With Config.Dir the delete is journaled as Upsert
// is; a non-empty key makes it idempotent (a retry of a delete that was
// applied answers Replayed, not NotFound).
func (e *Engine) DeleteKeyed(key string, id int64) (WriteResult, error) {
	e.ctr.deletes.Add(1)
	switch {
	case len(key) > MaxKey:
		return WriteResult{}, badRequest("delete", "key of %d bytes, over %d", len(key), MaxKey)
	case id < 0:
		return WriteResult{}, badRequest("delete", "reel %d is negative", id)
	case !e.owns(id):
		return WriteResult{}, e.wrongShard("delete", id)
	}
	e.writeMu.Lock()
	if ent, ok := e.keys.get(key); ok {
		e.writeMu.Unlock()
		return e.replayedWrite("delete", keyDelete, key, ent)
	}
	if !e.deletable(id) {
		e.writeMu.Unlock()
		return WriteResult{}, fmt.Errorf("%w: delete: reel %d", ErrNotFound, id)
	}
	var next uint64
	if d := e.dur; d != nil {
		line, _ := json.Marshal(catalogueEntry{Op: "delete", ID: id, Ev: d.events.Next(), Key: key}) // plain fields: no error
		var err error
		if _, next, err = d.cat.Append(append(line, '\n')); err != nil {
			e.writeMu.Unlock()
			return WriteResult{}, e.logFailure(1, err)
		}
	}
	e.applyDelete(id) // deletable: no error
	e.keys.put(key, ledgerEntry{kind: keyDelete, durable: next})
	e.writeMu.Unlock()
	if d := e.dur; d != nil {
		if err := d.cat.Sync(next); err != nil {
			return WriteResult{}, e.logFailure(1, err)
		}
	}
	return WriteResult{}, nil
}

// deletable reports whether reel id is there to delete; the caller holds
// writeMu.
func (e *Engine) deletable(id int64) bool {
	_, inStore := e.store.ReelInfo(id)
	inIndex := false
	for _, m := range e.liveModels() {
		inIndex = inIndex || m.index.Contains(id)
	}
	return !e.isDeleted(id) && (inStore || inIndex)
}

// applyDelete applies a delete; the caller holds writeMu.
func (e *Engine) applyDelete(id int64) error {
	if !e.deletable(id) {
		return fmt.Errorf("%w: delete: reel %d", ErrNotFound, id)
	}
	e.delMu.Lock()
	e.deleted[id] = struct{}{}
	e.delMu.Unlock()
	for _, m := range e.liveModels() {
		if m.index.Contains(id) {
			m.index.Delete(id) // known to be there: no error
		}
	}
	delete(e.upserted, id)
	e.fresh.remove(id)
	e.explore.remove(id)
	return nil
}
