package ann

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// vecsBytes returns TEXMEX records: for each row, its dimension dims[i] (or len(row)
// when dims is nil) and its values, each written by put.
func vecsBytes[T any](rows [][]T, dims []int32, size int, put func([]byte, T)) []byte {
	var b []byte
	for i, row := range rows {
		d := int32(len(row))
		if dims != nil {
			d = dims[i]
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(d))
		for _, x := range row {
			v := make([]byte, size)
			put(v, x)
			b = append(b, v...)
		}
	}
	return b
}

func fvecsBytes(rows [][]float32, dims []int32) []byte {
	return vecsBytes(rows, dims, 4, func(b []byte, x float32) { binary.LittleEndian.PutUint32(b, math.Float32bits(x)) })
}

func bvecsBytes(rows [][]uint8) []byte {
	return vecsBytes(rows, nil, 1, func(b []byte, x uint8) { b[0] = x })
}

func idxBytes(magic uint32, sizes []uint32, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	for _, s := range sizes {
		b = binary.BigEndian.AppendUint32(b, s)
	}
	return append(b, payload...)
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func randVectors(n, dim int, seed uint64) Vectors {
	rng := rand.New(rand.NewPCG(seed, 1))
	v := Vectors{Data: make([]float32, n*dim), Dim: dim}
	for i := range v.Data {
		v.Data[i] = float32(rng.NormFloat64())
	}
	return v
}

// sameBits compares float32 slices bit for bit, so that NaN equals NaN.
func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func TestFvecsRoundTrip(t *testing.T) {
	const n, dim = 37, 5
	v := randVectors(n, dim, 1)
	v.Data[3] = float32(math.NaN()) // read as stored, rejected later by the index
	v.Data[7] = float32(math.Inf(-1))
	path := filepath.Join(t.TempDir(), "x.fvecs")
	if err := WriteFvecs(path, v); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != n*(4+4*dim) {
		t.Fatalf("stat: %v, %v", st, err)
	}
	for _, limit := range []int{0, -1, 1, 10, n, n + 5} {
		want := n
		if limit > 0 && limit < n {
			want = limit
		}
		got, err := ReadFvecs(path, limit)
		if err != nil {
			t.Fatalf("limit %d: %v", limit, err)
		}
		if got.Dim != dim || got.Len() != want || !sameBits(got.Data, v.Data[:want*dim]) {
			t.Fatalf("limit %d: got %d vectors of dim %d, want %d of %d, or values differ", limit, got.Len(), got.Dim, want, dim)
		}
		if !sameBits(got.Row(want-1), v.Row(want-1)) {
			t.Fatalf("limit %d: last row differs", limit)
		}
		viaExt, err := ReadVectors(path, limit)
		if err != nil || !sameBits(viaExt.Data, got.Data) {
			t.Fatalf("ReadVectors limit %d: %v", limit, err)
		}
	}
	// The same bytes through a reader, plain and compressed.
	raw, _ := os.ReadFile(path)
	for _, b := range [][]byte{raw, gzipBytes(t, raw)} {
		got, err := DecodeFvecs(bytes.NewReader(b), 3)
		if err != nil || got.Dim != dim || !sameBits(got.Data, v.Data[:3*dim]) {
			t.Fatalf("DecodeFvecs: %v", err)
		}
	}
	var buf bytes.Buffer
	if err := EncodeFvecs(&buf, v); err != nil || !bytes.Equal(buf.Bytes(), raw) {
		t.Fatalf("EncodeFvecs differs from WriteFvecs: %v", err)
	}
}

func TestFvecsGzipNotByName(t *testing.T) {
	v := randVectors(20, 3, 2)
	var buf bytes.Buffer
	if err := EncodeFvecs(&buf, v); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a.fvecs", "a.fvecs.gz"} {
		path := writeTemp(t, name, gzipBytes(t, buf.Bytes()))
		for _, limit := range []int{0, 7} {
			got, err := ReadVectors(path, limit)
			want := v.Data
			if limit > 0 {
				want = want[:limit*v.Dim]
			}
			if err != nil || got.Dim != 3 || !sameBits(got.Data, want) {
				t.Fatalf("%s limit %d: %v", name, limit, err)
			}
		}
	}
	// A plain file named .gz is read as plain.
	path := writeTemp(t, "b.fvecs.gz", buf.Bytes())
	if got, err := ReadFvecs(path, 0); err != nil || !sameBits(got.Data, v.Data) {
		t.Fatalf("plain .gz: %v", err)
	}
}

func TestIvecsRoundTrip(t *testing.T) {
	const n, dim = 11, 4
	data := make([]int32, n*dim)
	for i := range data {
		data[i] = int32(i*7919) - 100
	}
	path := filepath.Join(t.TempDir(), "gt.ivecs")
	if err := WriteIvecs(path, data, dim); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{0, 1, 5, n, 100} {
		want := n
		if limit > 0 && limit < n {
			want = limit
		}
		got, d, err := ReadIvecs(path, limit)
		if err != nil || d != dim || !slices.Equal(got, data[:want*dim]) {
			t.Fatalf("limit %d: dim %d, %v", limit, d, err)
		}
	}
	raw, _ := os.ReadFile(path)
	var buf bytes.Buffer
	if err := EncodeIvecs(&buf, data, dim); err != nil || !bytes.Equal(buf.Bytes(), raw) {
		t.Fatalf("EncodeIvecs differs from WriteIvecs: %v", err)
	}
	got, d, err := DecodeIvecs(bytes.NewReader(gzipBytes(t, raw)), 2)
	if err != nil || d != dim || !slices.Equal(got, data[:2*dim]) {
		t.Fatalf("DecodeIvecs: %v", err)
	}
	if _, err := ReadVectors(path, 0); err == nil || !strings.Contains(err.Error(), "ReadIvecs") {
		t.Fatalf("ReadVectors on .ivecs: %v", err)
	}
}

func TestBvecs(t *testing.T) {
	rows := [][]uint8{{0, 1, 255}, {9, 8, 7}, {128, 0, 3}}
	raw := bvecsBytes(rows)
	want := []float32{0, 1, 255, 9, 8, 7, 128, 0, 3}
	for _, b := range [][]byte{raw, gzipBytes(t, raw)} {
		path := writeTemp(t, "x.bvecs", b)
		for _, limit := range []int{0, 2} {
			w := want
			if limit > 0 {
				w = want[:limit*3]
			}
			got, err := ReadVectors(path, limit)
			if err != nil || got.Dim != 3 || !slices.Equal(got.Data, w) {
				t.Fatalf("limit %d: %v %v", limit, got, err)
			}
			got, err = DecodeBvecs(bytes.NewReader(b), limit)
			if err != nil || got.Dim != 3 || !slices.Equal(got.Data, w) {
				t.Fatalf("DecodeBvecs limit %d: %v %v", limit, got, err)
			}
		}
	}
}

func TestIDX(t *testing.T) {
	const n, rows, cols = 5, 3, 2
	pix := make([]byte, n*rows*cols)
	for i := range pix {
		pix[i] = byte(i * 37)
	}
	images := idxBytes(0x803, []uint32{n, rows, cols}, pix)
	labels := idxBytes(0x801, []uint32{n}, []byte{9, 0, 3, 1, 7})
	for _, gz := range []bool{false, true} {
		img, lab := images, labels
		suffix := ""
		if gz {
			img, lab, suffix = gzipBytes(t, images), gzipBytes(t, labels), ".gz"
		}
		ipath := writeTemp(t, "train-images-idx3-ubyte"+suffix, img)
		lpath := writeTemp(t, "train-labels-idx1-ubyte"+suffix, lab)
		for _, limit := range []int{0, 2, 10} {
			m := n
			if limit > 0 && limit < n {
				m = limit
			}
			got, err := ReadVectors(ipath, limit)
			if err != nil || got.Dim != rows*cols || got.Len() != m {
				t.Fatalf("gz %v limit %d images: %d×%d, %v", gz, limit, got.Len(), got.Dim, err)
			}
			for i, x := range got.Data {
				if x != float32(pix[i]) {
					t.Fatalf("gz %v limit %d: value %d = %v, want %d", gz, limit, i, x, pix[i])
				}
			}
			got, err = ReadIDX(lpath, limit)
			if err != nil || got.Dim != 1 || !slices.Equal(got.Data, []float32{9, 0, 3, 1, 7}[:m]) {
				t.Fatalf("gz %v limit %d labels: %v %v", gz, limit, got, err)
			}
			got, err = DecodeIDX(bytes.NewReader(img), limit)
			if err != nil || got.Len() != m {
				t.Fatalf("gz %v limit %d DecodeIDX: %v", gz, limit, err)
			}
		}
	}
	// Any name ending in .idx works too.
	if got, err := ReadVectors(writeTemp(t, "x.idx", images), 0); err != nil || got.Len() != n {
		t.Fatalf(".idx: %v", err)
	}
}

func TestReadVectorsUnknown(t *testing.T) {
	path := writeTemp(t, "x.npy", []byte("whatever"))
	_, err := ReadVectors(path, 0)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "unknown vector file type") {
		t.Fatalf("got %v", err)
	}
	if _, err := ReadFvecs(filepath.Join(t.TempDir(), "missing.fvecs"), 0); err == nil || !os.IsNotExist(errorsUnwrapAll(err)) {
		t.Fatalf("missing file: %v", err)
	}
}

func errorsUnwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

func TestVecBadInput(t *testing.T) {
	f := func(rows ...[]float32) [][]float32 { return rows }
	two := f([]float32{1, 2}, []float32{3, 4})
	fv := fvecsBytes(two, nil)
	four := fvecsBytes(f([]float32{1, 2, 3, 4}, []float32{5, 6, 7, 8}), nil)
	images := idxBytes(0x803, []uint32{2, 2, 2}, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	gzImages := gzipBytes(t, images)
	bigPix := make([]byte, 50*28*28)
	for i := range bigPix {
		bigPix[i] = byte(rand.Uint32())
	}
	bigGz := gzipBytes(t, idxBytes(0x803, []uint32{50, 28, 28}, bigPix))
	type readFn func(path string) error
	fvecs := func(limit int) readFn {
		return func(p string) error { _, err := ReadFvecs(p, limit); return err }
	}
	ivecs := func(p string) error { _, _, err := ReadIvecs(p, 0); return err }
	bvecs := func(p string) error { _, err := ReadBvecs(p, 0); return err }
	idx := func(limit int) readFn {
		return func(p string) error { _, err := ReadIDX(p, limit); return err }
	}
	cases := []struct {
		name string
		data []byte
		read readFn
		want []string
	}{
		{"empty fvecs", nil, fvecs(0), []string{"no vectors"}},
		{"empty ivecs", nil, ivecs, []string{"no vectors"}},
		{"empty bvecs", nil, bvecs, []string{"no vectors"}},
		{"empty gzip", gzipBytes(t, nil), fvecs(0), []string{"no vectors"}},
		{"dim 0", fvecsBytes(f(nil), nil), fvecs(0), []string{"vector 0: dimension 0 out of range"}},
		{"dim negative", fvecsBytes(two, []int32{-3, 2}), fvecs(0), []string{"vector 0: dimension -3 out of range"}},
		{"dim absurd", fvecsBytes(two, []int32{1<<20 + 1, 2}), fvecs(0), []string{"vector 0: dimension 1048577 out of range"}},
		{"dim absurd later", fvecsBytes(f([]float32{1, 2}, []float32{3, 4}, []float32{5, 6}), []int32{2, 2, 1 << 30}), fvecs(0),
			[]string{"vector 2: dimension 1073741824 out of range"}},
		{"dim differs", fvecsBytes(f([]float32{1, 2}, []float32{3, 4, 5}), nil), fvecs(0),
			[]string{"vector 1: dimension 3, want 2"}},
		{"dim differs past limit", fvecsBytes(f([]float32{1, 2}, []float32{3, 4, 5}), nil), fvecs(1),
			[]string{"vector 1: dimension 3, want 2"}},
		{"dim differs gzip", gzipBytes(t, fvecsBytes(f([]float32{1, 2}, []float32{3, 4, 5}, []float32{6, 7}), nil)), fvecs(0),
			[]string{"vector 1: dimension 3, want 2"}},
		{"truncated last", four[:len(four)-6], fvecs(0),
			[]string{"vector 1: truncated: 6 of its 16 value bytes missing", "file size 34 is not a whole number of 20-byte records"}},
		{"truncated last past limit", four[:len(four)-6], fvecs(1),
			[]string{"vector 1: truncated: 6 of its 16 value bytes missing"}},
		{"truncated header", append(slices.Clone(fv), 2, 0), fvecs(0),
			[]string{"vector 2: truncated dimension header: 2 of 4 bytes missing", "file size 26"}},
		{"truncated ivecs", fv[:len(fv)-1], ivecs, []string{"vector 1: truncated: 1 of its 8 value bytes missing"}},
		{"truncated bvecs", bvecsBytes([][]uint8{{1, 2, 3}, {4, 5, 6}})[:12], bvecs,
			[]string{"vector 1: truncated: 2 of its 3 value bytes missing"}},
		{"truncated gzip", gzipBytes(t, four)[:20], fvecs(0), []string{"vector "}},
		{"gzip without trailer", func() []byte { g := gzipBytes(t, fv); return g[:len(g)-8] }(), fvecs(0),
			[]string{"vector 2: unexpected end of data (truncated compressed stream)"}},
		{"bad gzip header", []byte{0x1f, 0x8b, 0x08, 0xff, 0, 0}, fvecs(0), []string{"gzip"}},
		{"idx wrong magic", idxBytes(0x804, []uint32{1, 2, 2, 1}, []byte{1, 2, 3, 4}), idx(0),
			[]string{"magic 0x00000804", "want 0x00000803 (images) or 0x00000801 (labels)"}},
		{"idx fvecs given", fv, idx(0), []string{"not an IDX file"}},
		{"idx empty", nil, idx(0), []string{"no vectors"}},
		{"idx zero items", idxBytes(0x803, []uint32{0, 2, 2}, nil), idx(0), []string{"no vectors"}},
		{"idx zero rows", idxBytes(0x803, []uint32{1, 0, 2}, nil), idx(0), []string{"size 1 is 0"}},
		{"idx truncated header", images[:10], idx(0), []string{"IDX header: truncated: 6 of 12 size bytes missing"}},
		{"idx short payload", images[:len(images)-3], idx(0),
			[]string{"declares 2 items of 4 bytes (8 bytes), the file holds 5 bytes"}},
		{"idx short payload with limit", images[:len(images)-3], idx(1), []string{"declares 2 items"}},
		{"idx long payload", append(slices.Clone(images), 0), idx(0), []string{"the file holds 9 bytes"}},
		{"idx labels mismatch", idxBytes(0x801, []uint32{3}, []byte{1, 2}), idx(0), []string{"declares 3 items of 1 bytes"}},
		{"idx gzip short payload", gzipBytes(t, images[:len(images)-3]), idx(0),
			[]string{"item 1: truncated: 3 bytes of 2 declared items missing"}},
		{"idx gzip trailing data", gzipBytes(t, append(slices.Clone(images), 0)), idx(0), []string{"trailing data after the 2 items"}},
		{"idx truncated gzip trailer", gzImages[:len(gzImages)-4], idx(0),
			[]string{"after item 1: unexpected end of data (truncated compressed stream)"}},
		{"idx truncated gzip header", gzImages[:15], idx(1), []string{"IDX header: truncated"}},
		{"idx truncated gzip payload", bigGz[:len(bigGz)/2], idx(0), []string{": truncated: ", " bytes of 50 declared items missing"}},
		{"idx truncated gzip payload with limit", bigGz[:len(bigGz)/2], idx(49), []string{": truncated: "}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeTemp(t, "bad.data", c.data)
			err := c.read(path)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			for _, w := range append([]string{"ann: read " + path + ": "}, c.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

// Through a reader the size is unknown: damage is found while reading.
func TestVecDecodeBadInput(t *testing.T) {
	four := fvecsBytes([][]float32{{1, 2, 3, 4}, {5, 6, 7, 8}}, nil)
	cases := []struct {
		data []byte
		want string
	}{
		{four[:len(four)-6], "ann: read fvecs data: vector 1: truncated: 6 of its 16 value bytes missing"},
		{four[:len(four)-19], "ann: read fvecs data: vector 1: truncated dimension header: 3 of 4 bytes missing"},
		{nil, "ann: read fvecs data: no vectors (empty data)"},
	}
	for _, c := range cases {
		_, err := DecodeFvecs(bytes.NewReader(c.data), 0)
		if err == nil || err.Error() != c.want {
			t.Errorf("got %v, want %s", err, c.want)
		}
	}
	// A limit inside the good part reads no further.
	if v, err := DecodeFvecs(bytes.NewReader(four[:len(four)-6]), 1); err != nil || v.Len() != 1 {
		t.Errorf("limit 1: %v", err)
	}
	_, err := DecodeIDX(bytes.NewReader(idxBytes(0x801, []uint32{3}, []byte{1, 2})), 0)
	if err == nil || err.Error() != "ann: read IDX data: item 2: truncated: 1 bytes of 3 declared items missing" {
		t.Errorf("DecodeIDX: %v", err)
	}
}

func TestWriteVecsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "v.fvecs")
	v := randVectors(4, 3, 3)
	if err := WriteFvecs(path, v); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path)
	entries := func() []string {
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		return names
	}
	if got := entries(); !slices.Equal(got, []string{"v.fvecs"}) {
		t.Fatalf("after write: %v", got)
	}
	// Overwrite with other content: replaced whole, no temporary file left.
	if err := WriteFvecs(path, randVectors(2, 3, 4)); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadFvecs(path, 0); err != nil || got.Len() != 2 {
		t.Fatalf("overwrite: %v", err)
	}
	if got := entries(); !slices.Equal(got, []string{"v.fvecs"}) {
		t.Fatalf("after overwrite: %v", got)
	}
	if err := WriteFvecs(path, v); err != nil {
		t.Fatal(err)
	}

	// Failures leave the old file as it was and no temporary file.
	bad := []struct {
		name string
		err  error
		want string
	}{
		{"missing folder", WriteFvecs(filepath.Join(dir, "nope", "v.fvecs"), v), "nope"},
		{"dim 0", WriteFvecs(path, Vectors{Data: []float32{1}, Dim: 0}), "dimension 0 out of range"},
		{"ragged", WriteFvecs(path, Vectors{Data: []float32{1, 2, 3}, Dim: 2}), "3 values are not a whole number of 2-dimensional vectors"},
		{"empty", WriteFvecs(path, Vectors{Dim: 2}), "no vectors"},
		{"ivecs ragged", WriteIvecs(path, []int32{1, 2, 3}, 2), "not a whole number"},
	}
	for _, b := range bad {
		if b.err == nil || !strings.Contains(b.err.Error(), b.want) || !strings.Contains(b.err.Error(), "ann: write ") {
			t.Errorf("%s: got %v, want %q", b.name, b.err, b.want)
		}
	}
	// Renaming over a folder fails after the temporary file is written.
	sub := filepath.Join(dir, "sub")
	if err := os.MkdirAll(filepath.Join(sub, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFvecs(sub, v); err == nil {
		t.Error("write over a folder: no error")
	}
	if got := entries(); !slices.Equal(got, []string{"sub", "v.fvecs"}) {
		t.Fatalf("after failures: %v", got)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, old) {
		t.Fatal("a failed write changed the file")
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("mode: %v %v", st.Mode(), err)
	}
}

func TestVectorsRowLen(t *testing.T) {
	v := Vectors{Data: []float32{1, 2, 3, 4, 5, 6}, Dim: 2}
	if v.Len() != 3 || (Vectors{}).Len() != 0 {
		t.Fatal("Len")
	}
	r := append(v.Row(0), 99) // must not overwrite row 1
	if r[2] != 99 || v.Data[2] != 3 || !slices.Equal(v.Row(2), []float32{5, 6}) {
		t.Fatal("Row")
	}
}

func TestFvecsRealFmnist(t *testing.T) {
	const path = "/work/data/fmnist.base.fvecs"
	if _, err := os.Stat(path); err != nil {
		t.Skip("no", path)
	}
	v, err := ReadFvecs(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	if v.Dim != 784 || v.Len() != 100 {
		t.Fatalf("got %d vectors of dim %d", v.Len(), v.Dim)
	}
	for _, x := range v.Data {
		if x < 0 || x > 255 {
			t.Fatalf("pixel %v out of 0..255", x)
		}
	}
}

func FuzzDecodeFvecs(f *testing.F) {
	var buf bytes.Buffer
	if err := EncodeFvecs(&buf, randVectors(3, 4, 5)); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(gzipBytes(f, buf.Bytes()))
	f.Add(buf.Bytes()[:30])
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeFvecs(bytes.NewReader(b), 0)
		if err != nil {
			return
		}
		if v.Dim <= 0 || v.Dim > MaxVectorDim || v.Len() == 0 || len(v.Data) != v.Len()*v.Dim {
			t.Fatalf("%d values, dim %d", len(v.Data), v.Dim)
		}
		first, err := DecodeFvecs(bytes.NewReader(b), 1)
		if err != nil || first.Dim != v.Dim || !sameBits(first.Data, v.Row(0)) {
			t.Fatalf("limit 1: %v", err)
		}
		var out bytes.Buffer
		if err := EncodeFvecs(&out, v); err != nil {
			t.Fatal(err)
		}
		again, err := DecodeFvecs(&out, 0)
		if err != nil || again.Dim != v.Dim || !sameBits(again.Data, v.Data) {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

func FuzzDecodeIDX(f *testing.F) {
	images := idxBytes(0x803, []uint32{2, 2, 2}, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(images)
	f.Add(gzipBytes(f, images))
	f.Add(idxBytes(0x801, []uint32{3}, []byte{1, 2, 3}))
	f.Add(idxBytes(0x803, []uint32{0xffffffff, 1024, 1024}, nil))
	f.Add(images[:11])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeIDX(bytes.NewReader(b), 0)
		if err != nil {
			return
		}
		if v.Dim <= 0 || v.Len() == 0 || len(v.Data) != v.Len()*v.Dim {
			t.Fatalf("%d values, dim %d", len(v.Data), v.Dim)
		}
		for _, x := range v.Data {
			if x < 0 || x > 255 || x != float32(int(x)) {
				t.Fatalf("value %v is not a byte", x)
			}
		}
	})
}
