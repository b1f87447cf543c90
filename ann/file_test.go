package ann

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reelrank/reelrank/kernels"
)

// fileVectors returns n clustered vectors of dimension d.
func fileVectors(n, d int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	centres := make([]float32, 20*d)
	for i := range centres {
		centres[i] = float32(r.NormFloat64())
	}
	x := make([]float32, n*d)
	for i := range n {
		c := centres[r.IntN(20)*d:][:d]
		for j := range d {
			x[i*d+j] = c[j] + 0.3*float32(r.NormFloat64())
		}
	}
	return x
}

// fileTrained caches one trained index per shape.
var fileTrained = map[Options]*Index{}

// fileIndex returns an index with opt's settings, trained on vectors from
// fileVectors (the training shared by every refine), holding n vectors with
// ids 1000+3i of which every 17th is deleted.
func fileIndex(t testing.TB, opt Options, n int) *Index {
	t.Helper()
	ix, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	key := opt
	key.Refine, key.Threads = RefineNone, 0
	base := fileTrained[key]
	if base == nil {
		bopt := opt
		bopt.Refine = RefineNone
		if base, err = New(bopt); err != nil {
			t.Fatal(err)
		}
		if err := base.Train(fileVectors(1200, opt.Dim, 1)); err != nil {
			t.Fatal(err)
		}
		fileTrained[key] = base
	}
	ix.setCentroids(base.centroids)
	ix.pqCent = base.pqCent
	ix.pq = base.pq
	ix.trained.Store(true)
	x := fileVectors(n, opt.Dim, 2)
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = 1000 + 3*int64(i)
	}
	if err := ix.Add(ids, x); err != nil {
		t.Fatal(err)
	}
	var del []int64
	for i := 0; i < n; i += 17 {
		del = append(del, ids[i])
	}
	if err := ix.Delete(del...); err != nil {
		t.Fatal(err)
	}
	return ix
}

// fileOpts are the options of the test indexes: d = 16, 16 lists, M = 8.
func fileOpts(metric kernels.Metric, bits int, refine Refine) Options {
	return Options{Dim: 16, Metric: metric, Lists: 16, M: 8, Bits: bits, Refine: refine, Seed: 5, TrainIters: 3, Threads: 2, Residual: metric == kernels.L2 && bits == 4}
}

// fileResults searches a few queries.
func fileResults(t testing.TB, ix *Index) [][]kernels.Result {
	t.Helper()
	q := fileVectors(6, ix.opt.Dim, 3)
	// A probe count of its own for each metric: search.go reuses a pooled
	// searcher's list selector when the count matches, whatever its order.
	nprobe := 6
	if ix.opt.Metric == kernels.L2 {
		nprobe = 7
	}
	out, err := ix.SearchBatch(q, SearchOptions{K: 10, NProbe: nprobe, RefineFactor: 3}, 1)
	if err != nil {
		t.Fatal(err)
	}
	all, err := ix.Search(q[:ix.opt.Dim], SearchOptions{K: 50, NProbe: ix.opt.Lists})
	if err != nil {
		t.Fatal(err)
	}
	return append(out, all)
}

func TestSaveOpen(t *testing.T) {
	for _, metric := range []kernels.Metric{kernels.InnerProduct, kernels.L2} {
		for _, bits := range []int{4, 8} {
			for _, refine := range []Refine{RefineNone, RefineF16, RefineF32} {
				t.Run(fmt.Sprintf("%v/%d/%v", metric, bits, refine), func(t *testing.T) {
					testSaveOpen(t, fileOpts(metric, bits, refine))
				})
			}
		}
	}
}

func testSaveOpen(t *testing.T, opt Options) {
	ix := fileIndex(t, opt, 3000)
	path := filepath.Join(t.TempDir(), "index.rrann")
	if err := ix.Save(path); err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ox, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ox.Close()
	if got, want := ox.Options(), ix.Options(); got != want {
		t.Fatalf("options %+v, want %+v", got, want)
	}
	if ox.Len() != ix.Len() || ox.Stats() != ix.Stats() {
		t.Fatalf("opened: %d vectors, %+v; saved %d, %+v", ox.Len(), ox.Stats(), ix.Len(), ix.Stats())
	}
	if !reflect.DeepEqual(ox.where, ix.where) {
		t.Fatal("id maps differ")
	}
	if got, want := fileResults(t, ox), fileResults(t, ix); !reflect.DeepEqual(got, want) {
		t.Fatalf("results differ after Open:\n%v\n%v", got, want)
	}

	// The same writes on both: the results stay the same, the file unchanged.
	x := fileVectors(500, opt.Dim, 4)
	ids := make([]int64, 500)
	for i := range ids {
		ids[i] = -1 - int64(i)
	}
	for _, jx := range []*Index{ix, ox} {
		if err := jx.Add(ids[:7], x[:7*opt.Dim]); err != nil {
			t.Fatal(err)
		}
		if err := jx.Delete(1000+3*1, 1000+3*2, 1000+3*2998, -3); err != nil {
			t.Fatal(err)
		}
		if err := jx.Add(ids[7:], x[7*opt.Dim:]); err != nil {
			t.Fatal(err)
		}
		if err := jx.Delete(1000+3*5, -400); err != nil {
			t.Fatal(err)
		}
		if err := jx.Add(ids[:1], x[:opt.Dim]); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("duplicate add: %v", err)
		}
	}
	if got, want := fileResults(t, ox), fileResults(t, ix); !reflect.DeepEqual(got, want) {
		t.Fatalf("results differ after writes:\n%v\n%v", got, want)
	}
	if ox.Compact() != ix.Compact() || ox.Len() != ix.Len() {
		t.Fatal("Compact differs")
	}
	if got, want := fileResults(t, ox), fileResults(t, ix); !reflect.DeepEqual(got, want) {
		t.Fatalf("results differ after Compact:\n%v\n%v", got, want)
	}
	if now, err := os.ReadFile(path); err != nil || !bytes.Equal(now, saved) {
		t.Fatalf("the file changed under the opened index (%v)", err)
	}

	// Saving the opened index over its own file, then opening that.
	if err := ox.Save(path); err != nil {
		t.Fatal(err)
	}
	ox2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fileResults(t, ox2), fileResults(t, ix); !reflect.DeepEqual(got, want) {
		t.Fatalf("results differ after a second save:\n%v\n%v", got, want)
	}
	if err := ox2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ox.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ox.Search(x[:opt.Dim], SearchOptions{K: 1, NProbe: 1}); !errors.Is(err, ErrNotTrained) {
		t.Fatalf("search after Close: %v", err)
	}
	if err := ox.Add(ids[:1], x[:opt.Dim]); !errors.Is(err, ErrNotTrained) {
		t.Fatalf("add after Close: %v", err)
	}
	if err := ox.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := ix.Close(); err != nil {
		t.Fatalf("Close of an index not opened: %v", err)
	}
}

func TestSaveAtomic(t *testing.T) {
	dir := t.TempDir()
	ix := fileIndex(t, fileOpts(kernels.L2, 4, RefineNone), 300)
	path := filepath.Join(dir, "index.rrann")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ix.Save(path); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 || ents[0].Name() != "index.rrann" {
		t.Fatalf("folder holds %v (%v), want the index alone", ents, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("saved file: %v, %v", st, err)
	}

	missing := filepath.Join(dir, "no", "index.rrann")
	if err := ix.Save(missing); err == nil {
		t.Fatal("saving into a missing folder worked")
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing folder: %v", err)
	}

	// A failed save leaves the file at path as it was.
	before, _ := os.ReadFile(path)
	un, _ := New(Options{Dim: 16, Metric: kernels.L2})
	if err := un.Save(path); !errors.Is(err, ErrNotTrained) {
		t.Fatalf("saving an untrained index: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Fatal("a failed save changed the file")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("folder holds %v after failed saves", ents)
	}
}

// fileSmall returns a small saved index's bytes, in memory aligned to 64.
func fileSmall(t testing.TB, opt Options, n int) []byte {
	t.Helper()
	ix := fileIndex(t, opt, n)
	path := filepath.Join(t.TempDir(), "small.rrann")
	if err := ix.Save(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fileAligned(b)
}

func fileAligned(b []byte) []byte {
	a := alignedBuf(len(b))
	copy(a, b)
	return a
}

// fileReseal recomputes every checksum of a file, so that a test may change
// values and still pass the checksums.
func fileReseal(b []byte) {
	le := binary.LittleEndian
	for i := range numSections {
		e := b[sectionsAt+24*i:]
		off, size := le.Uint64(e), le.Uint64(e[8:])
		if off <= uint64(len(b)) && size <= uint64(len(b))-off {
			le.PutUint32(e[16:], crc32.Checksum(b[off:off+size], castagnoli))
		}
	}
	le.PutUint32(b[headerCRCAt:], crc32.Checksum(b[:headerCRCAt], castagnoli))
}

// fileLoad runs load on a copy of b and checks the error names want.
func fileLoad(t *testing.T, what string, b []byte, want ...string) {
	t.Helper()
	ix, err := load(fileAligned(b), "test")
	if err == nil {
		t.Fatalf("%s: loaded %d vectors, want an error", what, ix.Len())
	}
	if !errors.Is(err, ErrBadFile) {
		t.Fatalf("%s: error %v does not wrap ErrBadFile", what, err)
	}
	for _, w := range want {
		if strings.Contains(err.Error(), w) {
			return
		}
	}
	t.Fatalf("%s: error %q, want one naming %q", what, err, want)
}

func TestOpenBad(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := Open(dir); err == nil {
		t.Fatal("opened a folder")
	}
	opt := fileOpts(kernels.InnerProduct, 4, RefineF16)
	good := fileSmall(t, opt, 400)
	if ix, err := load(fileAligned(good), "test"); err != nil || ix.Len() != 400-24 {
		t.Fatalf("the good file: %v", err)
	}
	le := binary.LittleEndian
	edit := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		fileReseal(b)
		return b
	}

	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte("GIF89a and more bytes than the magic"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(other); !errors.Is(err, ErrBadFile) || !strings.Contains(err.Error(), "bad magic") {
		t.Fatalf("wrong kind of file: %v", err)
	}
	fileLoad(t, "empty", nil, "truncated")
	fileLoad(t, "short", []byte("XY"), "bad magic")
	fileLoad(t, "version 2", edit(func(b []byte) { le.PutUint32(b[8:], 2) }), "format version 2")

	// Every length short of the whole file, the small ones one by one.
	for n := 0; n < len(good); n += 1 + n/64 {
		fileLoad(t, fmt.Sprintf("truncated to %d", n), good[:n], "truncated")
	}
	fileLoad(t, "one byte short", good[:len(good)-1], "truncated")
	fileLoad(t, "trailing byte", append(bytes.Clone(good), 0), "trailing")

	// A flipped bit anywhere.
	step := 1
	if testing.Short() {
		step = 7
	}
	for i := 0; i < len(good); i += step + i/256*step {
		b := bytes.Clone(good)
		b[i] ^= 0x10
		fileLoad(t, fmt.Sprintf("byte %d flipped", i), b, "checksum mismatch", "padding", "bad magic", "format version", "header size")
	}

	// Values out of range with valid checksums.
	for _, c := range []struct {
		what string
		at   int
		v    uint32
		want string
	}{
		{"0 lists", 32, 0, "0 lists"},
		{"2^21 lists", 32, 1 << 21, "lists"},
		{"dimension 0", 24, 0, "dimension 0"},
		{"M 5", 36, 5, "does not divide"},
		{"M 0", 36, 0, "does not divide"},
		{"3 bits", 40, 3, "3-bit"},
		{"metric 7", 28, 7, "metric"},
		{"refine 3", 44, 3, "refine"},
		{"0 iterations", 60, 0, "TrainIters"},
		{"section reserved", sectionsAt + 20, 1, "reserved"},
		{"unknown flag", headerCRCAt - 4, 4, "unknown flags"},
	} {
		fileLoad(t, c.what, edit(func(b []byte) { le.PutUint32(b[c.at:], c.v) }), c.want)
	}
	sec := func(b []byte, i int) (off, size uint64) {
		return le.Uint64(b[sectionsAt+24*i:]), le.Uint64(b[sectionsAt+24*i+8:])
	}
	fileLoad(t, "live count", edit(func(b []byte) { le.PutUint64(b[80:], 1) }), "add up")
	fileLoad(t, "file size", edit(func(b []byte) { le.PutUint64(b[16:], 1<<40) }), "truncated")
	fileLoad(t, "section past the end", edit(func(b []byte) {
		le.PutUint64(b[sectionsAt+24*secDead+8:], 1<<62)
	}), "past the end")
	fileLoad(t, "section moved", edit(func(b []byte) {
		le.PutUint64(b[sectionsAt+24*secIDs:], 1<<40)
	}), "section ids at byte")
	fileLoad(t, "padding", edit(func(b []byte) {
		off, _ := sec(b, secCentroids)
		b[off-1] = 1
	}), "nonzero padding")
	fileLoad(t, "NaN centroid", edit(func(b []byte) {
		off, _ := sec(b, secCentroids)
		le.PutUint32(b[off+8:], math.Float32bits(float32(math.NaN())))
	}), "section centroids: value 2 is NaN")
	fileLoad(t, "Inf codebook", edit(func(b []byte) {
		off, _ := sec(b, secPQ)
		le.PutUint32(b[off+12:], math.Float32bits(float32(math.Inf(1))))
	}), "section PQ centroids: value 3 is +Inf")

	// The list table: list 3's entry.
	entry := func(b []byte, field int) []byte {
		off, _ := sec(b, secLists)
		return b[off+3*listEntrySize+8*uint64(field):]
	}
	fileLoad(t, "n too large", edit(func(b []byte) { le.PutUint64(entry(b, 0), 1<<33) }), "list 3: 8589934592 vectors")
	fileLoad(t, "n changed", edit(func(b []byte) { le.PutUint64(entry(b, 0), le.Uint64(entry(b, 0))+1) }), "list 3: ids are")
	fileLoad(t, "deleted > n", edit(func(b []byte) { le.PutUint64(entry(b, 1), 1<<20) }), "deleted")
	fileLoad(t, "ids offset misaligned", edit(func(b []byte) { le.PutUint64(entry(b, 2), le.Uint64(entry(b, 2))+8) }), "not a multiple")
	fileLoad(t, "ids offset past the end", edit(func(b []byte) { le.PutUint64(entry(b, 2), 1<<40) }), "past the end")
	fileLoad(t, "ids overlap", edit(func(b []byte) { le.PutUint64(entry(b, 2), 0) }), "overlap")
	fileLoad(t, "refine size", edit(func(b []byte) { le.PutUint64(entry(b, 7), 64) }), "refine vectors are 64 bytes")

	// Tombstones and ids that disagree with the table.
	fileLoad(t, "tombstone count", edit(func(b []byte) {
		off, _ := sec(b, secDead)
		b[off] ^= 0x40 // list 0 has deletions (position 0 is deleted in some list; the first with any)
	}), "tombstones")
	fileLoad(t, "duplicate id", edit(func(b []byte) {
		off, _ := sec(b, secIDs)
		copy(b[off+8:off+16], b[off+16:off+24])
	}), "twice")
}

func TestOpenTombstoneBeyondN(t *testing.T) {
	opt := fileOpts(kernels.L2, 8, RefineNone)
	good := fileSmall(t, opt, 200)
	le := binary.LittleEndian
	b := bytes.Clone(good)
	tab := le.Uint64(b[sectionsAt+24*secLists:])
	dead := le.Uint64(b[sectionsAt+24*secDead:])
	for l := range opt.Lists {
		e := b[tab+uint64(l)*listEntrySize:]
		if n := le.Uint64(e); le.Uint64(e[8:]) > 0 && n%64 != 0 {
			w := b[dead+le.Uint64(e[64:]):]
			last := le.Uint64(e[72:]) - 8
			le.PutUint64(w[last:], le.Uint64(w[last:])|1<<63)
			fileReseal(b)
			fileLoad(t, "tombstone past n", b, "past its")
			return
		}
	}
	t.Skip("no list with deletions and a partial tombstone word")
}

var fileFuzzSeed []byte

func FuzzOpen(f *testing.F) {
	if fileFuzzSeed == nil {
		fileFuzzSeed = fileSmall(f, Options{Dim: 4, Metric: kernels.L2, Lists: 2, M: 2, Bits: 4, Refine: RefineF16, Threads: 1}, 70)
	}
	f.Add(fileFuzzSeed)
	f.Add(fileFuzzSeed[:300])
	f.Add([]byte(fileMagic))
	f.Add([]byte{})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "fuzz.rrann")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		ix, err := Open(path)
		if err != nil {
			if !errors.Is(err, ErrBadFile) {
				t.Fatalf("error %v does not wrap ErrBadFile", err)
			}
			return
		}
		defer ix.Close()
		if ix.Len() > 0 {
			if _, err := ix.Search(make([]float32, ix.opt.Dim), SearchOptions{K: 3, NProbe: ix.opt.Lists}); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestOpenLarge times Open on an index of REELRANK_ANN_OPEN_N vectors
// (d = 128, 1024 lists, 4-bit codes, float16 refine) made without
// training; it runs only when that variable is set.
func TestOpenLarge(t *testing.T) {
	var n int
	if _, err := fmt.Sscan(os.Getenv("REELRANK_ANN_OPEN_N"), &n); err != nil || n <= 0 {
		t.Skip("set REELRANK_ANN_OPEN_N to time Open on a large index")
	}
	const d, lists, m = 128, 1024, 64
	ix, err := New(Options{Dim: d, Metric: kernels.InnerProduct, Lists: lists, M: m, Bits: 4, Refine: RefineF16})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	rnd := func(k int) []float32 {
		x := make([]float32, k)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		return x
	}
	ix.setCentroids(rnd(lists * d))
	ix.pqCent = rnd(m * 16 * d / m)
	ix.pq = kernels.NewPQCodebook(ix.pqCent, m, 16, d/m)
	ix.trained.Store(true)
	for l := range lists {
		L := &ix.lists[l]
		L.n = n / lists
		if l < n%lists {
			L.n++
		}
		L.ids = make([]int64, L.n)
		for p := range L.ids {
			L.ids[p] = int64(p*lists + l)
			ix.where[L.ids[p]] = loc{uint32(l), uint32(p)}
		}
		L.codes = make([]byte, kernels.FastScan4Size(L.n, m))
		for i := range L.codes {
			L.codes[i] = byte(r.Uint32())
		}
		L.f16 = make([]kernels.F16, L.n*d)
		for i := range L.f16 {
			L.f16[i] = kernels.F16(r.Uint32() & 0x3bff)
		}
	}
	ix.live.Store(int64(n))
	path := filepath.Join(t.TempDir(), "large.rrann")
	start := time.Now()
	if err := ix.Save(path); err != nil {
		t.Fatal(err)
	}
	t.Logf("Save: %v", time.Since(start))
	st, _ := os.Stat(path)
	for range 3 {
		start = time.Now()
		ox, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("Open of %d vectors, %d MB: %v", ox.Len(), st.Size()>>20, time.Since(start))
		q := rnd(d)
		a, err1 := ix.Search(q, SearchOptions{K: 10, NProbe: 8})
		b, err2 := ox.Search(q, SearchOptions{K: 10, NProbe: 8})
		if err1 != nil || err2 != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("results differ: %v %v\n%v\n%v", err1, err2, a, b)
		}
		ox.Close()
	}
}
