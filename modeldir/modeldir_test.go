package modeldir_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/modeldir"
	"github.com/reelrank/reelrank/ranker"
)

// logs collects Options.Logf's notes.
type logs []string

func (l *logs) logf(format string, args ...any) { *l = append(*l, fmt.Sprintf(format, args...)) }

func (l *logs) has(s string) bool {
	return slices.ContainsFunc(*l, func(m string) bool { return strings.Contains(m, s) })
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	c := smallContents(t, "v1", 1)
	dir := filepath.Join(t.TempDir(), "v1")
	if err := modeldir.Write(dir, c); err != nil {
		t.Fatal(err)
	}
	var l logs
	v, err := modeldir.Open(ctx, dir, modeldir.Options{Logf: l.logf})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if v.Version() != "v1" || !v.Verified() || !v.Created().Equal(c.Created) || v.Dir() != dir {
		t.Errorf("version %q, verified %v, created %v, dir %s", v.Version(), v.Verified(), v.Created(), v.Dir())
	}
	if got := v.Index().Len(); got != testReels {
		t.Errorf("the index holds %d reels, want %d", got, testReels)
	}
	if !l.has("building the index") {
		t.Errorf("no note of the index's building: %q", l)
	}
	if v.Reference() == nil || !slices.Equal(v.Reference().Names(), c.Reference.Names()) {
		t.Errorf("reference %+v, want series %v", v.Reference(), c.Reference.Names())
	}
	if err := v.Check(c.Store.Spec()); err != nil {
		t.Error(err)
	}
	st, err := v.LoadSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	if st.Stats().Reels != testReels {
		t.Errorf("the snapshot holds %d reels", st.Stats().Reels)
	}
	if v.SnapshotPath() != filepath.Join(dir, modeldir.SnapshotFile) || v.StatePath() != filepath.Join(dir, modeldir.StateFolder) {
		t.Errorf("snapshot %s, state %s", v.SnapshotPath(), v.StatePath())
	}
	if _, err := os.Stat(filepath.Join(dir, modeldir.IndexFile)); err != nil {
		t.Errorf("the index was not saved: %v", err)
	}
	// The second open finds the index.
	var l2 logs
	v2, err := modeldir.Open(ctx, dir, modeldir.Options{Logf: l2.logf})
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Close()
	if l2.has("building") || v2.Index().Len() != testReels {
		t.Errorf("second open: %d reels, notes %q", v2.Index().Len(), l2)
	}
	// Nothing is left beside the folder.
	ents, _ := os.ReadDir(filepath.Dir(dir))
	if len(ents) != 1 {
		t.Errorf("beside the folder: %v", ents)
	}
}

func TestWithoutReference(t *testing.T) {
	c := smallContents(t, "v1", 1)
	c.Reference = nil
	dir := filepath.Join(t.TempDir(), "v1")
	if err := modeldir.Write(dir, c); err != nil {
		t.Fatal(err)
	}
	v, err := modeldir.Open(context.Background(), dir, modeldir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if v.Reference() != nil {
		t.Error("a reference from nowhere")
	}
}

// TestCorruption damages each file of a written version in every way and
// checks that Open refuses it naming the file and the damage.
func TestCorruption(t *testing.T) {
	ctx := context.Background()
	pristine := filepath.Join(t.TempDir(), "v1")
	if err := modeldir.Write(pristine, smallContents(t, "v1", 1)); err != nil {
		t.Fatal(err)
	}
	files := []string{"bundle/bundle.json", "bundle/model.fb", modeldir.VectorsFile, modeldir.IDsFile, modeldir.SnapshotFile, modeldir.ReferenceFile}
	damages := []struct {
		name, want string
		do         func(p string) error
	}{
		{"flip", "corrupt", func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[len(b)/2] ^= 0x10
			return os.WriteFile(p, b, 0o644)
		}},
		{"truncate", "truncated", func(p string) error {
			st, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, st.Size()-1)
		}},
		{"extend", "too long", func(p string) error {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			f.Write([]byte("\n"))
			return f.Close()
		}},
		{"remove", "missing", os.Remove},
	}
	for _, f := range files {
		for _, d := range damages {
			t.Run(d.name+"/"+f, func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "v")
				copyDir(t, pristine, dir)
				if err := d.do(filepath.Join(dir, filepath.FromSlash(f))); err != nil {
					t.Fatal(err)
				}
				v, err := modeldir.Open(ctx, dir, modeldir.Options{})
				if err == nil {
					v.Close()
					t.Fatal("opened")
				}
				if !errors.Is(err, modeldir.ErrCorrupt) || !strings.Contains(err.Error(), f+": ") || !strings.Contains(err.Error(), d.want) {
					t.Fatalf("error %q: want ErrCorrupt naming %s and %q", err, f, d.want)
				}
			})
		}
	}
	manifests := []struct {
		name, want string
		edit       func(string) string
	}{
		{"garbage", "invalid character", func(string) string { return "\x00garbage{" }},
		{"empty", "unexpected end", func(string) string { return "" }},
		{"format", "format", func(s string) string { return strings.Replace(s, `"reelrank-model"`, `"other"`, 1) }},
		{"version", "format version 99", func(s string) string {
			return strings.Replace(s, `"format_version": 1`, `"format_version": 99`, 1)
		}},
		{"unlisted", "does not list reels.ids", func(s string) string { return strings.Replace(s, `"reels.ids"`, `"reels.other"`, 1) }},
		{"escape", "not one of the version's", func(s string) string { return strings.Replace(s, `"reels.ids"`, `"../reels.ids"`, 1) }},
		{"model", "model version", func(s string) string { return strings.Replace(s, `"model_version": "v1"`, `"model_version": "v2"`, 1) }},
		{"dim", "dimension 9", func(s string) string { return strings.Replace(s, `"dim": 8`, `"dim": 9`, 1) }},
		{"spec", "spec fingerprint", func(s string) string {
			i := strings.Index(s, `"spec_fingerprint": "`) + len(`"spec_fingerprint": "`)
			return s[:i] + "0000000000000000" + s[i+16:]
		}},
	}
	for _, m := range manifests {
		t.Run("manifest/"+m.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "v")
			copyDir(t, pristine, dir)
			p := filepath.Join(dir, modeldir.ManifestFile)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			edited := m.edit(string(b))
			if edited == string(b) {
				t.Fatal("the edit changed nothing")
			}
			if err := os.WriteFile(p, []byte(edited), 0o644); err != nil {
				t.Fatal(err)
			}
			v, err := modeldir.Open(ctx, dir, modeldir.Options{})
			if err == nil {
				v.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, modeldir.ErrCorrupt) || !strings.Contains(err.Error(), modeldir.ManifestFile) || !strings.Contains(err.Error(), m.want) {
				t.Fatalf("error %q: want ErrCorrupt naming %s and %q", err, modeldir.ManifestFile, m.want)
			}
		})
	}
}

// TestIndexRebuilt: a damaged index is derived data, built again.
func TestIndexRebuilt(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "v1")
	if err := modeldir.Write(dir, smallContents(t, "v1", 1)); err != nil {
		t.Fatal(err)
	}
	v, err := modeldir.Open(ctx, dir, modeldir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	p := filepath.Join(dir, modeldir.IndexFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var l logs
	v, err = modeldir.Open(ctx, dir, modeldir.Options{Logf: l.logf})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if !l.has("building it again") || v.Index().Len() != testReels {
		t.Errorf("%d reels, notes %q", v.Index().Len(), l)
	}
}

func TestWrongSpec(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "v1")
	if err := modeldir.Write(dir, smallContents(t, "v1", 1)); err != nil {
		t.Fatal(err)
	}
	v, err := modeldir.Open(context.Background(), dir, modeldir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	other, err := features.NewStore(features.Config{EmbedDim: testEmbed + 4, Categories: 4})
	if err != nil {
		t.Fatal(err)
	}
	err = v.Check(other.Spec())
	if !errors.Is(err, ranker.ErrSpecMismatch) || !strings.Contains(err.Error(), "embedding dimension") {
		t.Fatalf("Check: %v, want a spec mismatch naming the embedding dimension", err)
	}
	// Write refuses a store of another spec than the bundle's.
	c := smallContents(t, "v2", 2)
	c.Store = other
	if err := modeldir.Write(filepath.Join(t.TempDir(), "v2"), c); !errors.Is(err, ranker.ErrSpecMismatch) {
		t.Fatalf("Write: %v, want a spec mismatch", err)
	}
}

func TestWriteRefuses(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "v")
	c := smallContents(t, "v1", 1)
	if err := modeldir.Write(dir, c); err != nil {
		t.Fatal(err)
	}
	// An old version without state is replaced.
	c2 := smallContents(t, "v2", 2)
	if err := modeldir.Write(dir, c2); err != nil {
		t.Fatal(err)
	}
	v, err := modeldir.Open(context.Background(), dir, modeldir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Version() != "v2" {
		t.Errorf("version %q after the replacement", v.Version())
	}
	v.Close()
	// One with served state is not.
	for _, name := range []string{modeldir.StateFolder, modeldir.LegacyEventLog} {
		p := filepath.Join(dir, name)
		if name == modeldir.StateFolder {
			os.Mkdir(p, 0o700)
		} else {
			os.WriteFile(p, nil, 0o644)
		}
		err := modeldir.Write(dir, c)
		if err == nil || !strings.Contains(err.Error(), "served state ("+name+")") {
			t.Errorf("write over %s: %v", name, err)
		}
		os.RemoveAll(p)
	}
	// Nor is a folder that is not a version.
	other := filepath.Join(root, "other")
	os.Mkdir(other, 0o755)
	os.WriteFile(filepath.Join(other, "notes.txt"), []byte("mine"), 0o644)
	if err := modeldir.Write(other, c); err == nil || !strings.Contains(err.Error(), "not a model version") {
		t.Errorf("write over another folder: %v", err)
	}
	// Bad contents.
	bad := c
	bad.IDs = bad.IDs[1:]
	if err := modeldir.Write(filepath.Join(root, "bad"), bad); err == nil || !strings.Contains(err.Error(), "ids for") {
		t.Errorf("write with an id short: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "bad")); err == nil {
		t.Error("a failed write left its folder")
	}
}

func TestList(t *testing.T) {
	root := t.TempDir()
	for i, name := range []string{"b", "a", "c"} {
		c := smallContents(t, "v-"+name, uint64(i+1))
		c.Created = time.Date(2026, 1, 1+i, 0, 0, 0, 0, time.UTC)
		if err := modeldir.Write(filepath.Join(root, name), c); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(root, "not-a-version"), 0o755)
	os.WriteFile(filepath.Join(root, "file"), nil, 0o644)
	broken := filepath.Join(root, "broken")
	os.Mkdir(broken, 0o755)
	os.WriteFile(filepath.Join(broken, modeldir.ManifestFile), []byte("{"), 0o644)
	infos, err := modeldir.List(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range infos {
		if in.Err != nil {
			got = append(got, "err:"+filepath.Base(in.Path))
			continue
		}
		got = append(got, fmt.Sprintf("%s:%s:%s", filepath.Base(in.Path), in.Version, in.Created.Format("01-02")))
	}
	want := []string{"c:v-c:01-03", "a:v-a:01-02", "b:v-b:01-01", "err:broken"}
	if !slices.Equal(got, want) {
		t.Fatalf("List: %q, want %q", got, want)
	}
}

// TestLegacy opens a folder an older build wrote: no manifest, no reference.
func TestLegacy(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "model")
	c := smallContents(t, "old", 1)
	c.Reference = nil
	if err := modeldir.Write(dir, c); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, modeldir.ManifestFile)); err != nil {
		t.Fatal(err)
	}
	var l logs
	v, err := modeldir.Open(context.Background(), dir, modeldir.Options{Logf: l.logf})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if v.Verified() || !l.has("without checksums") || v.Version() != "old" || v.Index().Len() != testReels {
		t.Errorf("verified %v, version %q, %d reels, notes %q", v.Verified(), v.Version(), v.Index().Len(), l)
	}
	// Damage goes unnoticed by the (absent) manifest but not by the files' own checks.
	if err := os.WriteFile(filepath.Join(dir, modeldir.IDsFile), []byte("1\nx\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, modeldir.IndexFile))
	if _, err := modeldir.Open(context.Background(), dir, modeldir.Options{}); err == nil || !strings.Contains(err.Error(), "not a reel id") {
		t.Errorf("legacy folder with bad ids: %v", err)
	}
	infos, err := modeldir.List(filepath.Dir(dir))
	if err != nil || len(infos) != 0 {
		t.Errorf("List lists a folder without a manifest: %+v, %v", infos, err)
	}
}

// TestStateDirAdopts moves the older layout's single-file logs into
// served/ once.
func TestStateDirAdopts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "model")
	if err := modeldir.Write(dir, smallContents(t, "v1", 1)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{modeldir.LegacyEventLog, modeldir.LegacyCatalogue} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("{\"a\":1}\n{\"a\":2}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var l logs
	v, err := modeldir.Open(context.Background(), dir, modeldir.Options{Logf: l.logf})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for range 2 {
		state, err := v.StateDir()
		if err != nil {
			t.Fatal(err)
		}
		if state != filepath.Join(dir, modeldir.StateFolder) {
			t.Fatalf("state %s", state)
		}
	}
	for _, f := range []string{modeldir.LegacyEventLog, modeldir.LegacyCatalogue} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s is still there", f)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(dir, modeldir.StateFolder))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "events-") }) ||
		!slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "catalogue-") }) {
		t.Errorf("served/ holds %q", names)
	}
	if n := strings.Count(strings.Join(l, "\n"), "moved"); n != 2 {
		t.Errorf("%d notes of adoption: %q", n, l)
	}
}

func TestClock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "model")
	if err := modeldir.Write(dir, smallContents(t, "v1", 1)); err != nil {
		t.Fatal(err)
	}
	v, err := modeldir.Open(context.Background(), dir, modeldir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, err := v.Clock("sundial"); err == nil {
		t.Error("an unknown mode")
	}
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		mode   string
		newest time.Time
		data   bool
	}{
		{modeldir.ClockWall, old, false},
		{modeldir.ClockData, time.Now().Add(-time.Hour), true},
		{modeldir.ClockAuto, old, true},
		{modeldir.ClockAuto, time.Now().Add(-time.Hour), false},
	} {
		c, err := v.Clock(tc.mode)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(c.Now()); d < -time.Minute || d > time.Minute {
			t.Errorf("%s: before Observe, %v from the wall clock", tc.mode, d)
		}
		c.Observe(tc.newest.UnixMilli())
		c.Observe(time.Now().UnixMilli()) // the first pick stays
		d := c.Now().Sub(time.UnixMilli(tc.newest.UnixMilli()))
		if data := d >= 0 && d < time.Minute; data != tc.data {
			t.Errorf("%s, newest %v: now %v, want the data's clock: %v", tc.mode, tc.newest, c.Now(), tc.data)
		}
	}
}

func TestIDs(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ids")
	ids := []int64{5, 0, 1 << 40}
	if err := modeldir.WriteIDs(p, ids); err != nil {
		t.Fatal(err)
	}
	got, err := modeldir.ReadIDs(p, len(ids))
	if err != nil || !slices.Equal(got, ids) {
		t.Fatalf("ReadIDs: %v, %v", got, err)
	}
	if _, err := modeldir.ReadIDs(p, 4); err == nil || !strings.Contains(err.Error(), "3 ids for 4 vectors") {
		t.Errorf("a short file: %v", err)
	}
	os.WriteFile(p, []byte("1\n-2\n"), 0o644)
	if _, err := modeldir.ReadIDs(p, 2); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("a negative id: %v", err)
	}
}

func TestArmsRecord(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := modeldir.LoadArms(dir); ok || err != nil {
		t.Fatalf("no record: ok %v err %v", ok, err)
	}
	want := modeldir.Arms{Control: modeldir.Arm{Dir: "/m/v2", Version: "v2"}, Canary: &modeldir.Arm{Dir: "/m/v3", Version: "v3", Weights: map[string]float32{"like": 2}},
		CanaryShare: 0.1, HoldoutShare: 0.05}
	if err := modeldir.SaveArms(dir, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := modeldir.LoadArms(dir)
	if err != nil || !ok || got.Control.Dir != want.Control.Dir || got.Control.Version != "v2" || got.Canary.Dir != "/m/v3" || got.Canary.Weights["like"] != 2 || got.CanaryShare != 0.1 {
		t.Fatalf("round trip: %+v %v %v", got, ok, err)
	}
	for _, bad := range []modeldir.Arms{{}, {Control: modeldir.Arm{Dir: "a"}, CanaryShare: 0.2}, {Control: modeldir.Arm{Dir: "a"}, HoldoutShare: 1}} {
		if err := modeldir.SaveArms(dir, bad); err == nil {
			t.Errorf("modeldir.SaveArms(%+v) took it", bad)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, modeldir.ArmsFile), []byte("{garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := modeldir.LoadArms(dir); err == nil {
		t.Fatal("a garbled record loaded")
	}
}
