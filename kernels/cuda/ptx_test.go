package cuda

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPTXFresh recompiles each .cu with the flags of `make ptx` and checks
// the committed PTX is what it gives. It needs the nvcc that made the
// committed files (the release their header names); without nvcc, or with
// another release, it skips.
func TestPTXFresh(t *testing.T) {
	nvcc, err := exec.LookPath("nvcc")
	if err != nil {
		t.Skip("no nvcc: the committed PTX is not checked (make ptx needs nvidia-cuda-toolkit)")
	}
	flags, err := os.ReadFile("nvcc.flags")
	if err != nil {
		t.Fatal(err)
	}
	ver, err := exec.Command(nvcc, "--version").Output()
	if err != nil {
		t.Fatalf("nvcc --version: %v", err)
	}
	release := regexp.MustCompile(`release [0-9.]+, V[0-9.]+`).Find(ver)
	sources, err := filepath.Glob("*.cu")
	if err != nil || len(sources) == 0 {
		t.Fatalf("no .cu sources: %v", err)
	}
	for _, src := range sources {
		name := strings.TrimSuffix(src, ".cu")
		committed, err := os.ReadFile(filepath.Join("ptx", name+".ptx"))
		if err != nil {
			t.Fatalf("%s has no committed PTX (run make ptx): %v", src, err)
		}
		if release == nil || !bytes.Contains(committed, release) {
			t.Skipf("ptx/%s.ptx was made by another nvcc than this one (%q)", name, release)
		}
		out := filepath.Join(t.TempDir(), name+".ptx")
		args := append(strings.Fields(string(flags)), "-o", out, src)
		if msg, err := exec.Command(nvcc, args...).CombinedOutput(); err != nil {
			t.Fatalf("nvcc %s: %v\n%s", strings.Join(args, " "), err, msg)
		}
		fresh, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fresh, committed) {
			t.Errorf("ptx/%s.ptx is stale against %s: run make ptx", name, src)
		}
	}
}

// TestPTXEntries checks the committed PTX holds every kernel the Go code
// launches, for sm_90: a missing one would only show on a GPU.
func TestPTXEntries(t *testing.T) {
	for file, entries := range kernelEntries {
		b, err := os.ReadFile(filepath.Join("ptx", file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(".target sm_90")) {
			t.Errorf("%s does not target sm_90", file)
		}
		for _, e := range entries {
			if !bytes.Contains(b, []byte(".visible .entry "+e+"(")) {
				t.Errorf("%s has no kernel %s", file, e)
			}
		}
	}
}
