package wire

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reelrank/reelrank/internal/fbverify"
)

// TestVerifierMatchesSchema reads reelrank.fbs and checks that the
// verifier's descriptors list every field of every table with its kind and
// width: a field added to the schema but not to the verifier would be read
// by the generated code unchecked.
func TestVerifierMatchesSchema(t *testing.T) {
	src, err := os.ReadFile("reelrank.fbs")
	if err != nil {
		t.Fatal(err)
	}
	descs := map[string]*fbverify.Table{"Context": contextDesc, "Item": itemDesc, "Reel": reelDesc, "Event": eventDesc,
		"Envelope": envelopeDesc}
	if len(bodyUnion.Members) != int(numKinds) || &bodyUnion.Members[0] != &bodyDescs[0] {
		t.Errorf("the Body union's members are not bodyDescs")
	}
	for k := KindNone; k < numKinds; k++ {
		if (bodyDescs[k] != nil) != k.known() {
			t.Errorf("kind %d: descriptor %v, known %v", k, bodyDescs[k] != nil, k.known())
		}
		if bodyDescs[k] != nil {
			descs[bodyDescs[k].Name] = bodyDescs[k]
			if bodyDescs[k].Name != k.String() {
				t.Errorf("kind %v: descriptor named %s", k, bodyDescs[k].Name)
			}
		}
	}
	for _, err := range fbverify.CheckSchema(string(src), descs, map[string]*fbverify.Union{"Body": bodyUnion}) {
		t.Error(err)
	}
	for _, enum := range []string{"enum ErrorCode : ubyte", "enum Source : ubyte", "enum EventType : ubyte", "union Body"} {
		if !strings.Contains(string(src), enum) {
			t.Errorf("%q not found in the schema", enum)
		}
	}
	if envelopeHead.Name != "Envelope" || envelopeHead.Fields[0] != envelopeDesc.Fields[0] {
		t.Errorf("envelopeHead %+v is not the envelope's request id", envelopeHead)
	}
}

// TestGeneratedUpToDate regenerates internal/fb with flatc, when it is
// installed, and compares it with the committed files byte for byte.
func TestGeneratedUpToDate(t *testing.T) {
	flatc, err := exec.LookPath("flatc")
	if err != nil {
		t.Skip("flatc not installed")
	}
	if out, err := exec.Command(flatc, "--version").Output(); err != nil || !strings.Contains(string(out), "2.0.8") {
		t.Skipf("flatc is %q, not 2.0.8", strings.TrimSpace(string(out)))
	}
	dir := t.TempDir()
	if out, err := exec.Command(flatc, "--go", "--go-namespace", "fb", "-o", dir, "reelrank.fbs").CombinedOutput(); err != nil {
		t.Fatalf("flatc: %v\n%s", err, out)
	}
	gen, err := filepath.Glob(filepath.Join(dir, "fb", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	have, err := filepath.Glob(filepath.Join("internal", "fb", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	if len(gen) != len(have) {
		t.Fatalf("flatc writes %d files, internal/fb holds %d: run make wire", len(gen), len(have))
	}
	for _, g := range gen {
		want, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("internal", "fb", filepath.Base(g)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("internal/fb/%s is stale (%v): run make wire", filepath.Base(g), err)
		}
	}
}
