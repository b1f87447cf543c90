//go:build cuda

package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/reelrank/reelrank/plan"
)

// calibrateGPU measures the GPU build's batch scoring for the plan: the
// ranker (256-256-128 layers, five heads) over 256 requests of 1,000
// candidates a pass, in f32 and bf16, the shapes `bench gpu` times.
func calibrateGPU(cal *plan.Calibration, stderr io.Writer) error {
	g := &plan.GPU{}
	cfg := benchGPUConfig{requests: []int{256}, candidates: 1000, reels: 4096, dim: 128, k: 100, queries: []int{1}, rounds: 20, seed: 1,
		record: func(name string, _, _, mcand float64) {
			parts := strings.Split(name, "/")
			if len(parts) < 3 || parts[0] != "ranker" {
				return
			}
			g.Name = parts[1]
			if parts[2] == "bf16" {
				g.BF16PerSec = mcand * 1e6
			} else {
				g.CandidatesPerSec = mcand * 1e6
			}
		}}
	if err := benchGPU(cfg, io.Discard, stderr); err != nil {
		return fmt.Errorf("calibrate: gpu: %w", err)
	}
	if !(g.CandidatesPerSec > 0) || !(g.BF16PerSec > 0) {
		return fmt.Errorf("calibrate: gpu: no ranker rate measured")
	}
	cal.GPU = g
	return nil
}
