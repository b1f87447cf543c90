package wire

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	var lines []string
	for _, l := range strings.Split(string(src), "\n") {
		if i := strings.Index(l, "//"); i >= 0 {
			l = l[:i]
		}
		lines = append(lines, l)
	}
	text := strings.Join(lines, "\n")

	scalars := map[string]uint16{"bool": 1, "byte": 1, "ubyte": 1, "short": 2, "ushort": 2, "int": 4, "uint": 4,
		"float": 4, "long": 8, "ulong": 8, "double": 8}
	enums := map[string]bool{}
	for _, m := range regexp.MustCompile(`enum (\w+) : (\w+)`).FindAllStringSubmatch(text, -1) {
		scalars[m[1]] = scalars[m[2]]
		enums[m[1]] = true
	}
	structs := map[string]uint16{}
	decl := regexp.MustCompile(`(?s)(table|struct) (\w+) \{(.*?)\}`)
	field := regexp.MustCompile(`(\w+)\s*:\s*(\[?\w+\]?)`)
	tablesIn := map[string][][2]string{}
	var order []string
	for _, m := range decl.FindAllStringSubmatch(text, -1) {
		var fields [][2]string
		for _, f := range field.FindAllStringSubmatch(m[3], -1) {
			fields = append(fields, [2]string{f[1], f[2]})
		}
		if m[1] == "struct" {
			var size uint16
			for _, f := range fields {
				size += scalars[f[1]]
			}
			structs[m[2]] = size
			continue
		}
		tablesIn[m[2]] = fields
		order = append(order, m[2])
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
	for _, name := range order {
		d, ok := descs[name]
		if !ok {
			t.Errorf("table %s has no verifier descriptor", name)
			continue
		}
		if d.Name != name {
			t.Errorf("descriptor of %s is named %s", name, d.Name)
		}
		var want []fbverify.Field
		for _, f := range tablesIn[name] {
			typ := f[1]
			switch {
			case typ == "Body":
				want = append(want, fbverify.UnionType(), fbverify.UnionOf(bodyUnion))
			case typ == "string":
				want = append(want, fbverify.String())
			case typ == "[string]":
				want = append(want, fbverify.Strings())
			case strings.HasPrefix(typ, "["):
				elem := strings.Trim(typ, "[]")
				if size, ok := scalars[elem]; ok {
					want = append(want, fbverify.Vector(size))
				} else {
					want = append(want, fbverify.TablesOf(descs[elem]))
				}
			case scalars[typ] != 0:
				want = append(want, fbverify.Scalar(scalars[typ]))
			case structs[typ] != 0:
				want = append(want, fbverify.Struct(structs[typ]))
			default:
				want = append(want, fbverify.TableOf(descs[typ]))
			}
		}
		if len(want) != len(d.Fields) {
			t.Errorf("%s: schema has %d slots, verifier %d", name, len(want), len(d.Fields))
			continue
		}
		for i := range want {
			if want[i] != d.Fields[i] {
				t.Errorf("%s slot %d (%s): schema %+v, verifier %+v", name, i, tablesIn[name][min(i, len(tablesIn[name])-1)][0], want[i], d.Fields[i])
			}
		}
	}
	if len(order) != len(descs) {
		t.Errorf("schema has %d tables, the verifier %d", len(order), len(descs))
	}
	if !enums["ErrorCode"] || !enums["Source"] || !enums["EventType"] {
		t.Errorf("enums not found in the schema: %v", enums)
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
