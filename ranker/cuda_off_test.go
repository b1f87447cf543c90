//go:build !cuda

package ranker

import (
	"errors"
	"strings"
	"testing"
)

func TestNoCUDABuild(t *testing.T) {
	if _, _, err := ResolveDevice(CUDA); !errors.Is(err, ErrNoCUDA) {
		t.Fatalf("cuda: err = %v, want ErrNoCUDA", err)
	}
	d, note, err := ResolveDevice(Auto)
	if err != nil || d != CPU || !strings.Contains(note, "scoring on the CPU") {
		t.Fatalf("auto = %q, %q, %v; want the CPU and a note saying so", d, note, err)
	}
	m := newTestModel(t, smallSpec(), 0, F32, 1)
	if _, err := NewDeviceScorer(m, CUDA); !errors.Is(err, ErrNoCUDA) {
		t.Fatalf("NewDeviceScorer(cuda): %v", err)
	}
	sc, err := NewDeviceScorer(m, Auto)
	if err != nil || sc.Backend() != "cpu" {
		t.Fatalf("NewDeviceScorer(auto): %v", err)
	}
}
