//go:build !cuda

package main

import (
	"fmt"
	"io"

	"github.com/reelrank/reelrank/ranker"
)

func benchGPU(_ benchGPUConfig, _, _ io.Writer) error {
	return fmt.Errorf("bench gpu: %w: it needs the cuda build (make build-cuda, then .bin/reelrank-cuda bench gpu on a GPU host)", ranker.ErrNoCUDA)
}
