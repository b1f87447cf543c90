package ranker

import (
	"fmt"

	"github.com/reelrank/reelrank/features"
)

// embedChunk is how many reels one pass of EmbedStore asks the store for.
const embedChunk = 4096

// EmbedStore writes the tower's vectors of ids into dst (len(ids) rows of
// Dim), from store's reel features as of at (ms since the Unix epoch) and
// its content embeddings, a chunk of reels at a time so that the features
// of a whole catalogue are never held at once. A reel without an id vector
// gets the content part alone, as a new reel does.
func (t *ReelTower) EmbedStore(dst []float32, store *features.Store, ids []int64, at int64) error {
	sp := store.Spec()
	if t.ReelFeatures != len(sp.Reel) || t.Content.In() != len(sp.Reel)+sp.EmbedDim {
		return fmt.Errorf("ranker: embed reels: the reel tower reads %d reel features and %d inputs, the store gives %d and %d",
			t.ReelFeatures, t.Content.In(), len(sp.Reel), len(sp.Reel)+sp.EmbedDim)
	}
	if len(dst) != len(ids)*t.Dim {
		return fmt.Errorf("%w: embed reels: %d values for %d reels of dimension %d", ErrBadInput, len(dst), len(ids), t.Dim)
	}
	req := &features.Request{Embeddings: true, Context: features.Context{Time: at}}
	for lo := 0; lo < len(ids); lo += embedChunk {
		hi := min(len(ids), lo+embedChunk)
		req.Reels = ids[lo:hi]
		if err := store.Features(req); err != nil {
			return fmt.Errorf("ranker: embed reels: %w", err)
		}
		if err := t.EmbedBatch(req.Reels, req.ReelVec, req.Emb, dst[lo*t.Dim:hi*t.Dim]); err != nil {
			return fmt.Errorf("ranker: embed reels: %w", err)
		}
	}
	return nil
}
