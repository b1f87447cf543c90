//go:build !cuda

package main

import (
	"fmt"
	"io"

	"github.com/reelrank/reelrank/plan"
)

// calibrateGPU says that this build measures no GPU: `plan --gpu` then
// prices a reference H100's figures and names them as such.
func calibrateGPU(_ *plan.Calibration, stderr io.Writer) error {
	fmt.Fprintln(stderr, "calibrate: no GPU figures (a build without CUDA; `make build-cuda` measures them)")
	return nil
}
