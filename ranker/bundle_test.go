package ranker

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func testBundle(t testing.TB, experts int) *Bundle {
	t.Helper()
	sp := smallSpec()
	rng := rand.New(rand.NewPCG(21, 22))
	m := newTestModel(t, sp, experts, BF16, 5)
	return &Bundle{
		Version:    "v1-test",
		Spec:       sp,
		Ranker:     m,
		UserTower:  NewUserTower(len(sp.User), []int{8}, 6, rng),
		ReelTower:  NewReelTower(sp, []int{9}, 6, []int64{5, 900, -3}, rng),
		TrainFrom:  time.UnixMilli(1_700_000_000_000).UTC(),
		TrainTo:    time.UnixMilli(1_700_086_400_000).UTC(),
		Created:    time.UnixMilli(1_700_090_000_123).UTC(),
		Report:     []byte("# report\nAUC 0.71\n"),
		ReportJSON: []byte(`{"auc":0.71}`),
	}
}

// sameModels compares two bundles' exported content.
func sameModels(t *testing.T, a, b *Bundle) {
	t.Helper()
	if a.Version != b.Version || !reflect.DeepEqual(a.Spec, b.Spec) ||
		!a.TrainFrom.Equal(b.TrainFrom) || !a.TrainTo.Equal(b.TrainTo) || !a.Created.Equal(b.Created) ||
		!bytes.Equal(a.Report, b.Report) || !bytes.Equal(a.ReportJSON, b.ReportJSON) {
		t.Fatalf("bundle metadata differs:\n%+v\n%+v", a, b)
	}
	ra, rb := a.Ranker, b.Ranker
	if !reflect.DeepEqual(ra.Bottom, rb.Bottom) || !reflect.DeepEqual(ra.MMoE, rb.MMoE) ||
		!reflect.DeepEqual(ra.Heads, rb.Heads) || !reflect.DeepEqual(ra.Tasks, rb.Tasks) ||
		!reflect.DeepEqual(ra.Weights, rb.Weights) || ra.Precision != rb.Precision ||
		ra.FixPosition != rb.FixPosition || ra.ServePosition != rb.ServePosition {
		t.Fatal("ranker differs after the round trip")
	}
	if !reflect.DeepEqual(a.UserTower.MLP, b.UserTower.MLP) {
		t.Fatal("user tower differs")
	}
	x, y := a.ReelTower, b.ReelTower
	if x.Dim != y.Dim || x.ReelFeatures != y.ReelFeatures || !reflect.DeepEqual(x.IDs, y.IDs) ||
		!reflect.DeepEqual(x.IDEmb, y.IDEmb) || !reflect.DeepEqual(x.Content, y.Content) {
		t.Fatal("reel tower differs")
	}
}

func TestBundleRoundTrip(t *testing.T) {
	for _, experts := range []int{0, 2} {
		b := testBundle(t, experts)
		dir := filepath.Join(t.TempDir(), "bundle")
		if err := Save(dir, b); err != nil {
			t.Fatal(err)
		}
		got, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		sameModels(t, b, got)
		if err := got.Check(b.Spec); err != nil {
			t.Fatal(err)
		}
		// The loaded ranker scores as the original.
		in := randInputs(b.Spec, 9, rand.New(rand.NewPCG(1, 1)))
		var s1, s2 Scores
		if err := b.Ranker.ScoreInputs(in, &s1); err != nil {
			t.Fatal(err)
		}
		if err := got.Ranker.ScoreInputs(in, &s2); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(s1.Probs, s2.Probs) {
			t.Fatal("loaded ranker scores differently")
		}
		var m manifest
		mj, _ := os.ReadFile(filepath.Join(dir, ManifestFile))
		if err := json.Unmarshal(mj, &m); err != nil || m.FormatVersion != FormatVersion || m.ModelVersion != "v1-test" || len(m.Files) != 3 {
			t.Fatalf("manifest %s: %v", mj, err)
		}
		rep, _ := os.ReadFile(filepath.Join(dir, ReportFile))
		if string(rep) != string(b.Report) {
			t.Fatalf("report.md = %q", rep)
		}
	}
}

// TestBundleServePosition checks that a ranker's fixed serve position
// survives the round trip, and that a ranker without one reads the
// request's position.
func TestBundleServePosition(t *testing.T) {
	for _, fix := range []bool{false, true} {
		b := testBundle(t, 0)
		b.Ranker.FixPosition, b.Ranker.ServePosition = fix, 0
		if fix {
			b.Ranker.ServePosition = 3
		}
		dir := filepath.Join(t.TempDir(), "bundle")
		if err := Save(dir, b); err != nil {
			t.Fatal(err)
		}
		got, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		sameModels(t, b, got)
		want := 7
		if fix {
			want = 3
		}
		if p := got.Ranker.Position(7); p != want {
			t.Errorf("fixed %v: position %d for a request at 7, want %d", fix, p, want)
		}
	}
	b := testBundle(t, 0)
	b.Ranker.FixPosition, b.Ranker.ServePosition = true, -2
	if err := b.Ranker.Validate(); err == nil {
		t.Error("a negative serve position accepted")
	}
}

func TestBundleReplace(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "bundle")
	b := testBundle(t, 0)
	if err := Save(dir, b); err != nil {
		t.Fatal(err)
	}
	b.Version = "v2"
	b.Report = nil
	if err := Save(dir+"/", b); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != "v2" || got.Report != nil {
		t.Fatalf("replaced bundle: version %q, report %q", got.Version, got.Report)
	}
	if _, err := os.Stat(filepath.Join(dir, ReportFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the old report survived the replacement: %v", err)
	}
	ents, _ := os.ReadDir(parent)
	if len(ents) != 1 {
		t.Fatalf("temporary folders left beside the bundle: %v", ents)
	}
	// A folder that is not a bundle is never replaced.
	other := filepath.Join(parent, "other")
	os.Mkdir(other, 0o755)
	os.WriteFile(filepath.Join(other, "keep.txt"), []byte("x"), 0o644)
	if err := Save(other, b); err == nil || !strings.Contains(err.Error(), "not a bundle") {
		t.Fatalf("saving over a non-bundle folder: %v", err)
	}
	if _, err := os.Stat(filepath.Join(other, "keep.txt")); err != nil {
		t.Fatal(err)
	}
	// An invalid bundle is refused before anything is written.
	b.Ranker.Heads = nil
	if err := Save(filepath.Join(parent, "bad"), b); !errors.Is(err, ErrInvalidModel) {
		t.Fatalf("saving an invalid bundle: %v", err)
	}
	if _, err := os.Stat(filepath.Join(parent, "bad")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("an invalid bundle left a folder")
	}
}

func TestBundleCheck(t *testing.T) {
	b := testBundle(t, 0)
	other := smallSpec()
	other.Reel[3] = "r3_renamed"
	err := b.Check(other)
	if !errors.Is(err, ErrSpecMismatch) || !strings.Contains(err.Error(), `reel feature 3 is "r3" in the bundle, "r3_renamed" in the store`) {
		t.Fatalf("got %v", err)
	}
	other = smallSpec()
	other.EmbedDim = 8
	if err := b.Check(other); !errors.Is(err, ErrSpecMismatch) || !strings.Contains(err.Error(), "embedding dimension 4") {
		t.Fatalf("got %v", err)
	}
	if err := b.Check(storeSpec(t)); !errors.Is(err, ErrSpecMismatch) {
		t.Fatalf("got %v", err)
	}
}

// rewriteManifest edits the saved bundle's manifest.
func rewriteManifest(t *testing.T, dir string, edit func(m *manifest)) {
	t.Helper()
	path := filepath.Join(dir, ManifestFile)
	mj, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(mj, &m); err != nil {
		t.Fatal(err)
	}
	edit(&m)
	mj, _ = json.Marshal(&m)
	if err := os.WriteFile(path, mj, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeModel replaces model.fb and fixes its size and checksum in the
// manifest, so that Load gets as far as decoding it.
func writeModel(t testing.TB, dir string, model []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, ModelFile), model, 0o644); err != nil {
		t.Fatal(err)
	}
	m := manifest{Format: manifestFormat, FormatVersion: FormatVersion, ModelVersion: "v1-test",
		Files: []manifestFile{{Name: ModelFile, Size: int64(len(model)), CRC32C: checksum(model)}}}
	mj, _ := json.Marshal(&m)
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), mj, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadBadBundles(t *testing.T) {
	b := testBundle(t, 2)
	model := encodeModel(b)
	cases := []struct {
		name string
		edit func(t *testing.T, dir string)
		want string
	}{
		{"flipped byte", func(t *testing.T, dir string) {
			p := filepath.Join(dir, ModelFile)
			data, _ := os.ReadFile(p)
			data[len(data)/2] ^= 1
			os.WriteFile(p, data, 0o644)
		}, "CRC-32C"},
		{"truncated", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, ModelFile), model[:len(model)-10], 0o644)
		}, "the manifest says"},
		{"truncated, checksum fixed", func(t *testing.T, dir string) { writeModel(t, dir, model[:len(model)/3]) }, "beyond the end"},
		{"manifest version", func(t *testing.T, dir string) { rewriteManifest(t, dir, func(m *manifest) { m.FormatVersion = 2 }) }, "format version 2"},
		{"manifest format", func(t *testing.T, dir string) { rewriteManifest(t, dir, func(m *manifest) { m.Format = "zip" }) }, `format "zip"`},
		{"unknown file", func(t *testing.T, dir string) {
			rewriteManifest(t, dir, func(m *manifest) { m.Files[1].Name = "../etc/passwd" })
		}, "unknown file"},
		{"no model", func(t *testing.T, dir string) { rewriteManifest(t, dir, func(m *manifest) { m.Files = m.Files[1:] }) }, "does not list model.fb"},
		{"model version", func(t *testing.T, dir string) { rewriteManifest(t, dir, func(m *manifest) { m.ModelVersion = "v9" }) }, `model version "v1-test"`},
		{"missing report", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, ReportFile)) }, "no such file"},
		{"no manifest", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, ManifestFile)) }, "no such file"},
		{"garbage manifest", func(t *testing.T, dir string) { os.WriteFile(filepath.Join(dir, ManifestFile), []byte("{"), 0o644) }, "bundle.json"},
		{"identifier", func(t *testing.T, dir string) {
			m := bytes.Clone(model)
			copy(m[4:], "XXXX")
			writeModel(t, dir, m)
		}, "file identifier"},
		{"spec fingerprint", func(t *testing.T, dir string) {
			c := *b
			c.Spec.User = append([]string{"extra"}, c.Spec.User...)
			m := encodeModel(&c)
			// Patch the name "extra" to "Extra": the names no longer hash to the fingerprint.
			i := bytes.Index(m, []byte("extra"))
			m[i] = 'E'
			writeModel(t, dir, m)
		}, "does not match its names"},
		{"invalid model", func(t *testing.T, dir string) {
			c := *b
			c.Ranker = cloneWithPrecision(b.Ranker, b.Ranker.Precision)
			c.Ranker.Heads = c.Ranker.Heads[:2]
			writeModel(t, dir, encodeModel(&c))
		}, "5 tasks but 2 heads"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "b")
			if err := Save(dir, b); err != nil {
				t.Fatal(err)
			}
			c.edit(t, dir)
			got, err := Load(dir)
			if !errors.Is(err, ErrBadBundle) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, %v; want ErrBadBundle containing %q", got, err, c.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "absent")); !errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrBadBundle) {
		t.Fatalf("absent folder: %v", err)
	}
}

// TestDecodeEveryByte changes each byte of a small model.fb in turn and
// decodes it: the verifier must turn every change into an error or a
// model that validates, never a panic.
func TestDecodeEveryByte(t *testing.T) {
	model := encodeModel(testBundle(t, 2))
	step := 1
	if testing.Short() {
		step = 7
	}
	for i := 0; i < len(model); i += step {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			m := bytes.Clone(model)
			m[i] ^= x
			decodeAndValidate(m)
		}
	}
	for n := range len(model) {
		decodeAndValidate(model[:n])
	}
}

func decodeAndValidate(m []byte) {
	b, err := decodeModel(m)
	if err == nil {
		_ = b.Validate()
	}
}

func FuzzLoad(f *testing.F) {
	model := encodeModel(testBundle(f, 2))
	f.Add(model)
	f.Add(encodeModel(testBundle(f, 0)))
	f.Add(model[:len(model)/2])
	f.Add([]byte("RRMBRRMB"))
	dir := filepath.Join(f.TempDir(), "b")
	if err := os.Mkdir(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		writeModel(t, dir, data)
		b, err := Load(dir)
		if err != nil {
			if !errors.Is(err, ErrBadBundle) {
				t.Fatalf("error not wrapping ErrBadBundle: %v", err)
			}
			return
		}
		// What loads must be usable.
		if b.Ranker != nil {
			var out Scores
			in := randInputs(b.Spec, 2, rand.New(rand.NewPCG(1, 1)))
			if err := b.Ranker.ScoreInputs(in, &out); err != nil {
				t.Fatalf("loaded ranker does not score: %v", err)
			}
		}
	})
}
