package bench

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestRunKernels(t *testing.T) {
	cases := KernelCases()
	figs, err := RunKernels(cases, time.Millisecond, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(figs) != len(cases) {
		t.Fatalf("%d figures for %d cases", len(figs), len(cases))
	}
	for _, f := range figs {
		if !f.Checked || f.NsPerOp <= 0 || f.Value <= 0 || f.Unit == "" || f.SIMD == "" {
			t.Errorf("bad figure %+v", f)
		}
	}
}

func TestRunKernelsRefusesWrongResult(t *testing.T) {
	bad := KernelCase{Kernel: "Broken", Shape: "n=1", Unit: "GB/s", Setup: func(*rand.Rand) (func(), float64, func() error) {
		return func() {}, 1, func() error { return errors.New("got 3, want 4") }
	}}
	figs, err := RunKernels(append(KernelCases()[:1], bad), time.Millisecond, 1)
	if err == nil || !strings.Contains(err.Error(), "Broken n=1") || !strings.Contains(err.Error(), "got 3, want 4") {
		t.Fatalf("error %v; want one naming the broken kernel and its check", err)
	}
	if len(figs) != 1 {
		t.Fatalf("%d figures; want the one measured before the failure", len(figs))
	}
}
