package modeldir

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/drift"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/internal/fsutil"
	"github.com/reelrank/reelrank/ranker"
)

// The names in a version folder.
const (
	BundleFolder  = "bundle"         // the model bundle (ranker.Save)
	VectorsFile   = "reels.fvecs"    // the reel tower's vectors of the catalogue
	IDsFile       = "reels.ids"      // their reel ids, one per line
	SnapshotFile  = "features.snap"  // the feature store after the training log
	ReferenceFile = "reference.json" // the drift reference (optional)
	ManifestFile  = "manifest.json"  // sizes and checksums of the files above
	IndexFile     = "reels.ivf"      // the index Open builds from the vectors
	StateFolder   = "served"         // the engine's durable state (engine.Config.Dir)

	// LegacyEventLog and LegacyCatalogue are the single-file logs an
	// older layout kept beside served/; StateDir adopts them into it.
	LegacyEventLog  = "served-events.jsonl"
	LegacyCatalogue = "served-catalogue.jsonl"
)

// FormatVersion is the version of manifest.json this package writes and
// reads.
const FormatVersion = 1

// manifestFormat names the format in manifest.json.
const manifestFormat = "reelrank-model"

// maxManifest bounds the size of manifest.json that Open reads.
const maxManifest = 1 << 20

// ErrCorrupt is wrapped by Open's errors for a version folder whose
// manifest is unreadable or whose files are missing, truncated, corrupt
// or inconsistent with it.
var ErrCorrupt = errors.New("modeldir: corrupt version folder")

// manifest is manifest.json.
type manifest struct {
	Format        string    `json:"format"`
	FormatVersion int       `json:"format_version"`
	ModelVersion  string    `json:"model_version"`
	Created       time.Time `json:"created"`
	// SpecFingerprint is the bundle's features.Spec fingerprint, in hex.
	SpecFingerprint string         `json:"spec_fingerprint"`
	EmbedDim        int            `json:"embed_dim"` // the spec's content embedding dimension
	Dim             int            `json:"dim"`       // the towers' (and the index's) dimension
	Reels           int            `json:"reels"`     // vectors in reels.fvecs
	Files           []manifestFile `json:"files"`
}

type manifestFile struct {
	Name   string `json:"name"` // slash-separated, relative to the folder
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// required are the files every manifest must list.
var required = []string{BundleFolder + "/" + ranker.ManifestFile, BundleFolder + "/" + ranker.ModelFile, VectorsFile, IDsFile, SnapshotFile}

func fingerprint(sp features.Spec) string {
	return fmt.Sprintf("%016x", sp.Fingerprint())
}

// Contents is what Write puts in a version folder.
type Contents struct {
	// Bundle holds the models; it needs a reel tower, whose dimension
	// the vectors have.
	Bundle *ranker.Bundle
	// IDs names the rows of Vectors: the reel tower's vectors of the
	// catalogue, what the index is built from.
	IDs     []int64
	Vectors ann.Vectors
	// Store is the feature store serving goes on from; it is snapshotted
	// and its spec must be the bundle's.
	Store *features.Store
	// Reference, when not nil, is the drift reference of the model.
	Reference *drift.Reference
	// Created is the version's creation time (default now).
	Created time.Time
}

func (c *Contents) check() error {
	b := c.Bundle
	switch {
	case b == nil:
		return errors.New("no bundle")
	case b.ReelTower == nil:
		return fmt.Errorf("bundle %q has no reel tower", b.Version)
	case c.Store == nil:
		return errors.New("no feature store")
	case c.Vectors.Dim != b.ReelTower.Dim:
		return fmt.Errorf("vectors of dimension %d, the reel tower gives %d", c.Vectors.Dim, b.ReelTower.Dim)
	case len(c.Vectors.Data)%c.Vectors.Dim != 0:
		return fmt.Errorf("%d vector values are not rows of %d", len(c.Vectors.Data), c.Vectors.Dim)
	case len(c.IDs) != c.Vectors.Len():
		return fmt.Errorf("%d ids for %d vectors", len(c.IDs), c.Vectors.Len())
	}
	if err := b.Check(c.Store.Spec()); err != nil {
		return err
	}
	if c.Reference != nil {
		if err := c.Reference.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Write writes a version folder at dir atomically: every file into a
// hidden folder beside dir, synced, the manifest last, then renamed into
// place. A crash leaves the old folder or the new one at dir. An existing
// dir must be a version folder (it holds a manifest or a bundle) without
// served state, or empty: Write refuses to replace a folder the engine
// has served from, as its logs and checkpoints would go with it.
func Write(dir string, c Contents) error {
	dir = filepath.Clean(dir)
	fail := func(err error) error { return fmt.Errorf("modeldir: write %s: %w", dir, err) }
	if err := c.check(); err != nil {
		return fail(err)
	}
	if err := checkReplaceable(dir); err != nil {
		return fail(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp) // after a failure: once in place, tmp is gone
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fail(err)
	}
	if err := ranker.Save(filepath.Join(tmp, BundleFolder), c.Bundle); err != nil {
		return fail(err)
	}
	if err := ann.WriteFvecs(filepath.Join(tmp, VectorsFile), c.Vectors); err != nil {
		return fail(err)
	}
	if err := WriteIDs(filepath.Join(tmp, IDsFile), c.IDs); err != nil {
		return fail(err)
	}
	if err := c.Store.SaveSnapshot(filepath.Join(tmp, SnapshotFile)); err != nil {
		return fail(err)
	}
	if c.Reference != nil {
		err := fsutil.WriteFile(filepath.Join(tmp, ReferenceFile), 0o644, c.Reference.Write)
		if err != nil {
			return fail(err)
		}
	}
	created := c.Created
	if created.IsZero() {
		created = time.Now()
	}
	sp := c.Bundle.Spec
	m := manifest{Format: manifestFormat, FormatVersion: FormatVersion, ModelVersion: c.Bundle.Version,
		Created: created.UTC(), SpecFingerprint: fingerprint(sp), EmbedDim: sp.EmbedDim, Dim: c.Vectors.Dim, Reels: len(c.IDs)}
	// The checksums of what landed on disk, read back.
	err = filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(tmp, p)
		if err != nil {
			return err
		}
		size, sum, err := hashFile(p)
		if err != nil {
			return err
		}
		m.Files = append(m.Files, manifestFile{Name: filepath.ToSlash(rel), Size: size, SHA256: sum})
		return nil
	})
	if err != nil {
		return fail(err)
	}
	mj, err := json.MarshalIndent(&m, "", "  ")
	if err != nil {
		return fail(err)
	}
	mj = append(mj, '\n')
	err = fsutil.WriteFile(filepath.Join(tmp, ManifestFile), 0o644, func(w io.Writer) error {
		_, err := w.Write(mj)
		return err
	})
	if err != nil {
		return fail(err)
	}
	if err := fsutil.ReplaceDir(tmp, dir); err != nil {
		return fail(err)
	}
	return nil
}

// checkReplaceable refuses to replace a folder that is not a version
// folder, or one that holds served state.
func checkReplaceable(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(ents) == 0 {
		return nil
	}
	for _, name := range []string{StateFolder, LegacyEventLog, LegacyCatalogue} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return fmt.Errorf("the folder holds served state (%s): replacing it would lose the engine's logs and checkpoints; write the new version to another folder", name)
		}
	}
	if !exists(filepath.Join(dir, ManifestFile)) && !exists(filepath.Join(dir, BundleFolder)) {
		return fmt.Errorf("the folder exists and is not a model version (no %s or %s/); refusing to replace it", ManifestFile, BundleFolder)
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// hashChunk is how many bytes hashFile reads between yields.
const hashChunk = 256 << 10

// hashFile returns the size and hex SHA-256 of the file at p. It yields
// the processor between chunks (about 0.1 ms of hashing each), so that a
// server opening a version to load it beside the served one keeps
// answering its requests promptly even on one core.
func hashFile(p string) (int64, string, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, hashChunk)
	var n int64
	for {
		k, err := io.ReadFull(f, buf)
		h.Write(buf[:k])
		n += int64(k)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return 0, "", err
		}
		runtime.Gosched()
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// readManifest reads and checks dir's manifest.json; ok is false when
// there is none.
func readManifest(dir string) (m *manifest, ok bool, err error) {
	f, err := os.Open(filepath.Join(dir, ManifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifest+1))
	if err != nil {
		return nil, true, err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s: %s", ErrCorrupt, dir, ManifestFile, fmt.Sprintf(format, args...))
	}
	if len(b) > maxManifest {
		return nil, true, bad("over %d bytes", maxManifest)
	}
	m = new(manifest)
	if err := json.Unmarshal(b, m); err != nil {
		return nil, true, bad("%v", err)
	}
	if m.Format != manifestFormat {
		return nil, true, bad("format %q, want %q", m.Format, manifestFormat)
	}
	if m.FormatVersion != FormatVersion {
		return nil, true, bad("format version %d, this build reads version %d", m.FormatVersion, FormatVersion)
	}
	if m.ModelVersion == "" || m.Dim <= 0 || m.Reels < 0 {
		return nil, true, bad("model version %q, dimension %d, %d reels", m.ModelVersion, m.Dim, m.Reels)
	}
	if _, err := strconv.ParseUint(m.SpecFingerprint, 16, 64); err != nil {
		return nil, true, bad("spec fingerprint %q is not hex", m.SpecFingerprint)
	}
	seen := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		if !filepath.IsLocal(f.Name) || path.Clean(f.Name) != f.Name || f.Name == ManifestFile || f.Name == IndexFile ||
			f.Name == StateFolder || len(f.Name) > len(StateFolder) && f.Name[:len(StateFolder)+1] == StateFolder+"/" {
			return nil, true, bad("file name %q is not one of the version's", f.Name)
		}
		if seen[f.Name] {
			return nil, true, bad("lists %s twice", f.Name)
		}
		if f.Size < 0 || len(f.SHA256) != 2*sha256.Size {
			return nil, true, bad("%s: size %d, SHA-256 %q", f.Name, f.Size, f.SHA256)
		}
		seen[f.Name] = true
	}
	for _, name := range required {
		if !seen[name] {
			return nil, true, bad("does not list %s", name)
		}
	}
	return m, true, nil
}

// verify checks the size and checksum of every file the manifest lists.
func verify(dir string, m *manifest) error {
	for _, f := range m.Files {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: %s: %s: %s", ErrCorrupt, dir, f.Name, fmt.Sprintf(format, args...))
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return bad("missing (the manifest lists it)")
		}
		if err != nil {
			return fmt.Errorf("modeldir: open %s: %w", dir, err)
		}
		if st.Size() != f.Size {
			what := "truncated"
			if st.Size() > f.Size {
				what = "too long"
			}
			return bad("%s: %d bytes, the manifest says %d", what, st.Size(), f.Size)
		}
		size, sum, err := hashFile(p)
		if err != nil {
			return fmt.Errorf("modeldir: open %s: %w", dir, err)
		}
		if size != f.Size {
			return bad("changed while read: %d bytes, the manifest says %d", size, f.Size)
		}
		if sum != f.SHA256 {
			return bad("corrupt: SHA-256 %s, the manifest says %s", sum, f.SHA256)
		}
	}
	return nil
}
