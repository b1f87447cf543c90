//go:build !cuda

package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/reelrank/reelrank/ranker"
)

// TestWithoutCUDA: the default build refuses the GPU clearly.
func TestWithoutCUDA(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "gpu"},
		{"serve", "--device", "cuda", "--cache", t.TempDir()},
	} {
		var out, errb bytes.Buffer
		err := run(args, &out, &errb)
		if !errors.Is(err, ranker.ErrNoCUDA) || !strings.Contains(err.Error(), "make build-cuda") {
			t.Errorf("%v: err = %v, want the cuda build named", args, err)
		}
	}
	var out, errb bytes.Buffer
	for _, args := range [][]string{
		{"serve", "--device", "tpu"},
		{"bench", "gpu", "--requests", "0"},
		{"bench", "gpu", "--candidates", "-1"},
	} {
		if err := run(args, &out, &errb); err == nil || errors.Is(err, ranker.ErrNoCUDA) {
			t.Errorf("%v: err = %v, want a flag error", args, err)
		}
	}
}
