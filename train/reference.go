package train

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/reelrank/reelrank/drift"
	"github.com/reelrank/reelrank/ranker"
)

// referenceRows is how many training rows the drift reference samples.
const referenceRows = 20_000

// ReferenceNames returns the drift reference's series names for a ranker:
// "user/<name>", "reel/<name>" and "cross/<name>" for the features of its
// spec, in vector order, then "head/<task>" for each of its tasks.
func ReferenceNames(m *ranker.Multitask) []string {
	var names []string
	for _, part := range []struct {
		prefix string
		names  []string
	}{{"user/", m.Spec.User}, {"reel/", m.Spec.Reel}, {"cross/", m.Spec.Cross}} {
		for _, n := range part.names {
			names = append(names, part.prefix+n)
		}
	}
	for _, t := range m.Tasks {
		names = append(names, "head/"+t)
	}
	return names
}

// buildReference samples up to referenceRows rows of span tr (evenly
// spread over it, each with a random offset) and makes the drift reference
// of their inputs and of m's probabilities for them.
func buildReference(ctx context.Context, cfg *Config, d *dataset, tr span, m *ranker.Multitask) (*drift.Reference, error) {
	n := min(tr.len(), referenceRows)
	if n == 0 {
		return nil, fmt.Errorf("train: drift reference: no training row: %w", ErrNoData)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6472696674))
	idx := make([]int, n)
	step := float64(tr.len()) / float64(n)
	for k := range idx {
		lo := tr.lo + int(float64(k)*step)
		hi := min(tr.lo+int(float64(k+1)*step), tr.hi)
		idx[k] = lo + rng.IntN(max(hi-lo, 1))
	}
	if len(m.Tasks) != numHeads {
		return nil, fmt.Errorf("train: drift reference: the ranker has %d tasks, want %d", len(m.Tasks), numHeads)
	}
	probs := make([]float32, n*numHeads)
	if err := scoreAt(ctx, cfg.Threads, d, n, func(r int) int { return idx[r] }, m, probs); err != nil {
		return nil, fmt.Errorf("train: drift reference: %w", err)
	}
	names := ReferenceNames(m)
	b := drift.NewBuilder(names, n, cfg.Seed)
	row := make([]float32, 0, len(names))
	for k, i := range idx {
		row = append(append(row[:0], d.row(i)...), probs[k*numHeads:(k+1)*numHeads]...)
		if err := b.Add(row); err != nil {
			return nil, fmt.Errorf("train: drift reference: %w", err)
		}
	}
	ref, err := b.Build(0)
	if err != nil {
		return nil, fmt.Errorf("train: drift reference: %w", err)
	}
	return ref, nil
}
