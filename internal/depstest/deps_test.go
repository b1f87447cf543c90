package depstest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// module is the module path; the table's names are relative to it.
const module = "github.com/reelrank/reelrank"

// allowed lists, for every package of the module, the packages of the
// module it may import: DESIGN.md's arrows. Anything may import the
// module's top-level internal/ packages (internal/fsutil, internal/wal,
// internal/fbverify, ...) except those packages themselves, whose rows
// say what they use. A package's own internal/ sub-packages (ranker/
// internal/fb) are in its row. Only imports of non-test files count: a
// test may reach further (an engine test may use sim's worlds), as may an
// example.
var allowed = map[string][]string{
	// The leaves: nothing of ours.
	"kernels":  {},
	"eventlog": {},
	"drift":    {}, // training builds references, the engine monitors them
	"wire":     {"wire/internal/fb"},
	"sim":      {"eventlog"},

	"wire/internal/fb":   {},
	"ranker/internal/fb": {},

	"ann": {"kernels", "kernels/cuda"}, // kernels/cuda with -tags cuda
	// The GPU backend (build tag cuda for all but its docs, errors and
	// shapes): the driver through gorgonia.org/cu, kernels for f16/bf16.
	"kernels/cuda": {"kernels"},
	"features":     {"eventlog", "kernels", "ann"}, // ann for k-means
	"ranker":       {"features", "kernels", "kernels/cuda", "ranker/internal/fb"},
	"train":        {"features", "ranker", "kernels", "eventlog", "sim", "drift"},
	"engine":       {"ann", "ranker", "features", "eventlog", "kernels", "drift"},
	"server":       {"wire", "engine", "eventlog"},
	"client":       {"wire"},
	// bench: the load generator, the index sweep, and calibrate's rates
	// (the ranker, a server with a canned handler), written as a plan's
	// Calibration.
	"bench": {"client", "wire", "ann", "kernels", "eventlog", "plan", "ranker", "features", "server"},
	// Capacity planning: arithmetic over a Calibration, reports and
	// manifests; nothing of ours.
	"plan": {},
	// The served model folder: layout, atomic write, open, versions.
	"modeldir": {"ann", "ranker", "features", "drift", "kernels"},
	// The learning loop: the simulator's users served by the engine,
	// retrained nightly by train.
	"loop": {"sim", "engine", "train", "features", "ann", "modeldir", "eventlog", "ranker", "kernels", "drift"},

	"client/clienttest": {"client", "wire"},

	"internal/fsutil":   {},
	"internal/fbverify": {},
	"internal/wal":      {"internal/fsutil"},
	"internal/depstest": {},
	"internal/hashx":    {},
	"internal/svgplot":  {},

	// Flags and wiring: anything.
	"cmd/reelrank": {"*"},
}

// pkg is what `go list` says of one package.
type pkg struct {
	ImportPath string
	Imports    []string
	Error      *struct{ Err string }
}

func TestImports(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	root := moduleRoot(t)
	cmd := exec.Command(goTool, "list", "-e", "-json=ImportPath,Imports,Error", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	seen := map[string]bool{}
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("go list's output: %v", err)
		}
		name, ok := strings.CutPrefix(p.ImportPath, module+"/")
		if !ok {
			continue // the module has no root package; anything else is not ours
		}
		seen[name] = true
		row, ok := allowed[name]
		if !ok {
			t.Errorf("%s is not in the import table of internal/depstest/deps_test.go: add its row (the packages of ours it may import) there and its arrow to DESIGN.md", name)
			continue
		}
		if p.Error != nil {
			t.Logf("%s: go list: %s (its imports are checked as far as they were read)", name, p.Error.Err)
		}
		for _, imp := range p.Imports {
			dep, ours := strings.CutPrefix(imp, module+"/")
			if !ours || slices.Contains(row, "*") || slices.Contains(row, dep) {
				continue
			}
			if strings.HasPrefix(dep, "internal/") && !strings.HasPrefix(name, "internal/") {
				continue
			}
			t.Errorf("%s imports %s, which its row in internal/depstest's table does not allow (allowed: %s)", name, dep, rowString(row))
		}
	}
	for name := range allowed {
		if !seen[name] {
			t.Errorf("the import table has a row for %s, which is no package of the module: remove it", name)
		}
	}
}

func rowString(row []string) string {
	if len(row) == 0 {
		return "nothing of ours"
	}
	return strings.Join(row, ", ")
}

// moduleRoot walks up from the test's folder to the one holding go.mod.
func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = up
	}
}
