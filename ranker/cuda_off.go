//go:build !cuda

package ranker

// probeCUDA: a binary built without the cuda tag has no GPU backend.
func probeCUDA() (string, error) { return "", ErrNoCUDA }

func newCUDAScorer(*Multitask) (BatchScorer, error) { return nil, ErrNoCUDA }
