package ranker

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/internal/fsutil"
)

//go:generate flatc --go --go-namespace fb -o internal bundle.fbs

// FormatVersion is the version of the bundle format this package writes
// and reads, recorded both in bundle.json and in model.fb.
const FormatVersion = 1

// The files of a bundle folder.
const (
	ManifestFile   = "bundle.json"
	ModelFile      = "model.fb"
	ReportFile     = "report.md"
	ReportJSONFile = "report.json"
)

// manifestFormat names the format in bundle.json.
const manifestFormat = "reelrank-bundle"

// maxManifest bounds the size of bundle.json that Load reads.
const maxManifest = 1 << 20

var (
	// ErrBadBundle is wrapped by Load's errors for a bundle that is
	// corrupt, truncated, of another format version, or whose files do not
	// match the checksums of its manifest.
	ErrBadBundle = errors.New("ranker: bad bundle")
	// ErrSpecMismatch is wrapped by Check's error for a bundle trained on
	// other features than the store computes.
	ErrSpecMismatch = errors.New("ranker: feature spec mismatch")
)

// Bundle is everything a trained model version ships with: the ranker, the
// two towers, the feature spec they read, where their training data came
// from, and the trainer's report. Any of the three models may be nil.
type Bundle struct {
	// Version names the model version ("2026-11-23.1", a commit, ...).
	Version string
	// Spec is the feature spec the models were trained on.
	Spec features.Spec
	// Ranker is the multitask ranker; its Spec must equal the bundle's.
	Ranker    *Multitask
	UserTower *UserTower
	ReelTower *ReelTower
	// TrainFrom and TrainTo bound the time range of the training data.
	TrainFrom, TrainTo time.Time
	// Created is when the bundle was made.
	Created time.Time
	// Report and ReportJSON are written verbatim to report.md and
	// report.json when not nil.
	Report, ReportJSON []byte
}

// Validate checks every model and that they read the bundle's spec.
func (b *Bundle) Validate() error {
	sp := &b.Spec
	if b.Ranker == nil && b.UserTower == nil && b.ReelTower == nil {
		return invalid("bundle holds no model")
	}
	if b.Ranker != nil {
		if b.Ranker.Spec.Fingerprint() != sp.Fingerprint() {
			return invalid("the ranker's feature spec differs from the bundle's")
		}
		if err := b.Ranker.Validate(); err != nil {
			return fmt.Errorf("ranker: %w", err)
		}
		runtime.Gosched()
	}
	if t := b.UserTower; t != nil {
		if err := t.Validate(); err != nil {
			return err
		}
		runtime.Gosched()
		if t.MLP.In() != len(sp.User) {
			return invalid("user tower takes %d inputs, the spec has %d user features", t.MLP.In(), len(sp.User))
		}
	}
	if t := b.ReelTower; t != nil {
		if err := t.Validate(); err != nil {
			return err
		}
		if t.ReelFeatures != len(sp.Reel) || t.Content.In() != len(sp.Reel)+sp.EmbedDim {
			return invalid("reel tower takes %d reel features and %d inputs, the spec has %d reel features and embedding dimension %d",
				t.ReelFeatures, t.Content.In(), len(sp.Reel), sp.EmbedDim)
		}
	}
	if b.UserTower != nil && b.ReelTower != nil && b.UserTower.Dim() != b.ReelTower.Dim {
		return invalid("user tower gives %d dimensions, reel tower %d", b.UserTower.Dim(), b.ReelTower.Dim)
	}
	return nil
}

// Check refuses a bundle trained on another feature spec than spec (the
// store's), with an error wrapping ErrSpecMismatch that names the first
// difference.
func (b *Bundle) Check(spec features.Spec) error {
	if b.Spec.Fingerprint() == spec.Fingerprint() {
		return nil
	}
	return fmt.Errorf("%w: bundle %q: %s", ErrSpecMismatch, b.Version, specDiff(b.Spec, spec))
}

// specDiff describes the first difference between the bundle's spec and
// the store's.
func specDiff(have, want features.Spec) string {
	if have.Version != want.Version {
		return fmt.Sprintf("spec version %d, the store's is %d", have.Version, want.Version)
	}
	if have.EmbedDim != want.EmbedDim {
		return fmt.Sprintf("embedding dimension %d, the store's is %d", have.EmbedDim, want.EmbedDim)
	}
	parts := []struct {
		name       string
		have, want []string
	}{{"user", have.User, want.User}, {"reel", have.Reel, want.Reel}, {"cross", have.Cross, want.Cross}}
	for _, p := range parts {
		for i := range max(len(p.have), len(p.want)) {
			h, w := "(none)", "(none)"
			if i < len(p.have) {
				h = fmt.Sprintf("%q", p.have[i])
			}
			if i < len(p.want) {
				w = fmt.Sprintf("%q", p.want[i])
			}
			if h != w {
				return fmt.Sprintf("%s feature %d is %s in the bundle, %s in the store", p.name, i, h, w)
			}
		}
	}
	return "fingerprints differ"
}

// manifest is bundle.json.
type manifest struct {
	Format        string         `json:"format"`
	FormatVersion int            `json:"format_version"`
	ModelVersion  string         `json:"model_version"`
	Files         []manifestFile `json:"files"`
}

type manifestFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	CRC32C string `json:"crc32c"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func checksum(b []byte) string {
	var sum [4]byte
	crc := crc32.Checksum(b, castagnoli)
	sum[0], sum[1], sum[2], sum[3] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
	return hex.EncodeToString(sum[:])
}

// Save writes b to the folder dir atomically: it writes every file into a
// new folder beside dir, syncs them, and renames it to dir. A crash leaves
// either the old bundle or the new one at dir, never part of one. An
// existing dir must be a bundle (it holds bundle.json) or empty; it is
// replaced.
func Save(dir string, b *Bundle) error {
	dir = filepath.Clean(dir)
	if err := b.Validate(); err != nil {
		return fmt.Errorf("ranker: save %s: %w", dir, err)
	}
	type file struct {
		name string
		data []byte
	}
	files := []file{{ModelFile, encodeModel(b)}}
	if b.Report != nil {
		files = append(files, file{ReportFile, b.Report})
	}
	if b.ReportJSON != nil {
		files = append(files, file{ReportJSONFile, b.ReportJSON})
	}
	m := manifest{Format: manifestFormat, FormatVersion: FormatVersion, ModelVersion: b.Version}
	for _, f := range files {
		m.Files = append(m.Files, manifestFile{Name: f.name, Size: int64(len(f.data)), CRC32C: checksum(f.data)})
	}
	mj, err := json.MarshalIndent(&m, "", "  ")
	if err != nil {
		return fmt.Errorf("ranker: save %s: %w", dir, err)
	}
	mj = append(mj, '\n')

	if err := checkReplaceable(dir); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("ranker: save %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp) // after a failure: once in place, tmp is gone
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("ranker: save %s: %w", dir, err)
	}
	// The manifest last: a folder with a manifest has all its files.
	files = append(files, file{ManifestFile, mj})
	for _, f := range files {
		err := fsutil.WriteFile(filepath.Join(tmp, f.name), 0o644, func(w io.Writer) error {
			_, err := w.Write(f.data)
			return err
		})
		if err != nil {
			return fmt.Errorf("ranker: save %s: %w", dir, err)
		}
	}
	if err := fsutil.ReplaceDir(tmp, dir); err != nil {
		return fmt.Errorf("ranker: save %s: %w", dir, err)
	}
	return nil
}

// checkReplaceable refuses to replace a folder that is not a bundle.
func checkReplaceable(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ranker: save %s: %w", dir, err)
	}
	if len(ents) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err != nil {
		return fmt.Errorf("ranker: save %s: the folder exists and is not a bundle (no %s); refusing to replace it", dir, ManifestFile)
	}
	return nil
}

// sizeError is a file whose size is not the manifest's.
type sizeError struct{ have, want int64 }

func (e *sizeError) Error() string {
	return fmt.Sprintf("%d bytes, the manifest says %d", e.have, e.want)
}

// readChunk is how many bytes readYielding reads between yields.
const readChunk = 256 << 10

// readYielding reads the file at path in pieces, yielding the processor
// between them: a fresh buffer of megabytes faults its pages in as it is
// written, and a server loading a model beside the one it serves must let
// its requests in meanwhile. want is the size the manifest gives (a
// larger file is read whole and refused by the size check after).
func readYielding(path string, want int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if size != want {
		return nil, &sizeError{have: size, want: want}
	}
	b := make([]byte, size)
	for off := 0; off < len(b); {
		n, err := f.Read(b[off:min(len(b), off+readChunk)])
		off += n
		if err == io.EOF {
			return b[:off], nil
		}
		if err != nil {
			return nil, err
		}
		runtime.Gosched()
	}
	return b, nil
}

// Load reads the bundle in dir, checking its manifest, the sizes and
// checksums of its files, and every offset of model.fb before decoding it;
// errors about the bundle's content wrap ErrBadBundle. The models are
// validated but not yet prepared.
func Load(dir string) (*Bundle, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("ranker: load %s: %w", dir, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrBadBundle, dir, fmt.Sprintf(format, args...))
	}
	mf, err := os.Open(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadBundle, dir, err)
	}
	mj, err := io.ReadAll(io.LimitReader(mf, maxManifest+1))
	mf.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadBundle, dir, err)
	}
	if len(mj) > maxManifest {
		return nil, bad("%s is over %d bytes", ManifestFile, maxManifest)
	}
	var m manifest
	dec := json.NewDecoder(bytes.NewReader(mj))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, bad("%s: %v", ManifestFile, err)
	}
	if m.Format != manifestFormat {
		return nil, bad("%s: format %q, want %q", ManifestFile, m.Format, manifestFormat)
	}
	if m.FormatVersion != FormatVersion {
		return nil, bad("%s: format version %d, this build reads version %d", ManifestFile, m.FormatVersion, FormatVersion)
	}
	known := []string{ModelFile, ReportFile, ReportJSONFile}
	data := make(map[string][]byte)
	for _, f := range m.Files {
		if !slices.Contains(known, f.Name) {
			return nil, bad("%s lists unknown file %q", ManifestFile, f.Name)
		}
		if _, dup := data[f.Name]; dup {
			return nil, bad("%s lists %s twice", ManifestFile, f.Name)
		}
		b, err := readYielding(filepath.Join(dir, f.Name), f.Size)
		var se *sizeError
		if errors.As(err, &se) {
			return nil, bad("%s has %d bytes, the manifest says %d", f.Name, se.have, se.want)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadBundle, dir, err)
		}
		if int64(len(b)) != f.Size {
			return nil, bad("%s has %d bytes, the manifest says %d", f.Name, len(b), f.Size)
		}
		if sum := checksum(b); sum != f.CRC32C {
			return nil, bad("%s has CRC-32C %s, the manifest says %s", f.Name, sum, f.CRC32C)
		}
		data[f.Name] = b
		runtime.Gosched() // a load beside a served model: let requests in
	}
	model, ok := data[ModelFile]
	if !ok {
		return nil, bad("%s does not list %s", ManifestFile, ModelFile)
	}
	b, err := decodeModel(model)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %s: %w", ErrBadBundle, dir, ModelFile, err)
	}
	runtime.Gosched()
	if b.Version != m.ModelVersion {
		return nil, bad("model version %q in %s, %q in %s", b.Version, ModelFile, m.ModelVersion, ManifestFile)
	}
	b.Report, b.ReportJSON = data[ReportFile], data[ReportJSONFile]
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadBundle, dir, err)
	}
	return b, nil
}
