package ranker

import (
	"errors"
	"fmt"

	"github.com/reelrank/reelrank/features"
)

// BatchScorer scores the candidate sets of several requests in one pass.
// The CPU [Scorer] implements it request by request; the CUDA backend
// (build tag cuda, [NewDeviceScorer]) runs all of a batch's candidates
// through each layer at once, every request's share of the first layer
// included. A [Batcher] gathers concurrent requests into such batches.
//
// ScoreBatch scores ins[i] into outs[i] for every i (len(outs) must equal
// len(ins)); it fails as a whole. An error wrapping [ErrBadInput] is the
// inputs' fault; any other is the backend's, and a Batcher then scores the
// batch on the CPU. A BatchScorer need not be safe for concurrent use: a
// Batcher calls it from one goroutine.
type BatchScorer interface {
	ScoreBatch(ins []Inputs, outs []*Scores) error
	// Backend names where the passes run: "cpu", "cuda:0 (NVIDIA H100 ...)".
	Backend() string
}

// ErrBackendDown is wrapped by a backend error after which the backend
// cannot score again (a lost device): a [Batcher] stops using it and scores
// on the CPU from then on.
var ErrBackendDown = errors.New("ranker: scoring backend down")

// ErrBatcherClosed is returned by [Batcher.Score] after [Batcher.Close].
var ErrBatcherClosed = errors.New("ranker: batcher closed")

// ScoreBatch is the CPU's [BatchScorer]: each request scored in turn with
// this Scorer's scratch.
func (s *Scorer) ScoreBatch(ins []Inputs, outs []*Scores) error {
	if len(ins) != len(outs) {
		return fmt.Errorf("%w: %d inputs but %d outputs", ErrBadInput, len(ins), len(outs))
	}
	for i := range ins {
		if outs[i] == nil {
			return fmt.Errorf("%w: request %d of the batch has no output", ErrBadInput, i)
		}
		if err := s.ScoreInputs(ins[i], outs[i]); err != nil {
			return fmt.Errorf("request %d of the batch: %w", i, err)
		}
	}
	return nil
}

// RequestInputs returns the model's inputs of a request the feature
// store filled, as Scorer.Score reads them.
func (m *Multitask) RequestInputs(req *features.Request) (Inputs, error) {
	if req == nil {
		return Inputs{}, fmt.Errorf("%w: nil request", ErrBadInput)
	}
	in := Inputs{User: req.UserVec, Reel: req.ReelVec, Cross: req.CrossVec, N: len(req.Reels)}
	if m.Spec.EmbedDim > 0 {
		if !req.Embeddings {
			return Inputs{}, fmt.Errorf("%w: the model reads content embeddings but the request was made without Embeddings", ErrBadInput)
		}
		in.Emb = req.Emb
	}
	return in, nil
}

// Backend returns "cpu".
func (s *Scorer) Backend() string { return "cpu" }

// Check reports whether in fits the model: the error [Scorer.ScoreInputs]
// would return for it, without scoring. It only reads the prepared model,
// so it is safe to call concurrently with scoring.
func (s *Scorer) Check(in Inputs) error { return s.check(&in) }
