package ann

// Readers and writers of vector files: TEXMEX .fvecs, .ivecs and .bvecs, and the IDX
// files of Fashion-MNIST, plain or gzip-compressed.
//
// A TEXMEX file is a sequence of records, one per vector: a little-endian int32
// dimension d, then d values (float32 for .fvecs, int32 for .ivecs, uint8 for .bvecs).
// Every record of a file has the same dimension.
//
// An IDX file is a big-endian header, magic 0x00000803 and three uint32 sizes
// n, rows, cols for images (0x00000801 and n for labels), then n×rows×cols uint8.
//
// Compression is detected by the gzip magic bytes, never by the file name. Files are
// read in large chunks straight into the result, which is allocated once when the size
// of a plain file is known.

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unsafe"

	"github.com/reelrank/reelrank/internal/fsutil"
)

// MaxVectorDim is the largest dimension a vector file may declare; a larger one means
// a damaged file or a file of another format.
const MaxVectorDim = 1 << 20

const (
	ioBufSize = 1 << 20        // bufio buffer for reading and writing
	growStart = 1 << 18        // values allocated first when the total is unknown
	idxImages = 0x0803         // IDX magic of uint8 [n][rows][cols]
	idxLabels = 0x0801         // IDX magic of uint8 [n]
	gzipMagic = "\x1f\x8b\x08" // gzip ID1, ID2 and CM = deflate
)

// hostLittle is true on little-endian hosts, where 4-byte values are read and written
// without conversion.
var hostLittle = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// Vectors is Len() row-major vectors of dimension Dim, stored in Data.
type Vectors struct {
	Data []float32
	Dim  int
}

// Len returns the number of vectors.
func (v Vectors) Len() int {
	if v.Dim <= 0 {
		return 0
	}
	return len(v.Data) / v.Dim
}

// Row returns vector i, sharing memory with v.Data. Appending to it never overwrites
// row i+1.
func (v Vectors) Row(i int) []float32 {
	return v.Data[i*v.Dim : (i+1)*v.Dim : (i+1)*v.Dim]
}

// ReadFvecs reads the first limit vectors of a .fvecs file (all of them when limit <= 0).
// The file may be gzip-compressed.
//
// Values are returned as stored: NaN and ±Inf are not rejected here (the index rejects
// them when vectors are added). Every damage is an error naming the file and the vector:
// an empty file, a dimension <= 0 or > MaxVectorDim, a dimension that differs from the
// first vector's, a truncated last vector, a plain file whose size is not a whole number
// of records. On a compressed file with a limit, the data past the limit is not read.
func ReadFvecs(path string, limit int) (Vectors, error) {
	var v Vectors
	err := withInput(path, func(in input) error {
		data, dim, err := decode4[float32](in, limit)
		v = Vectors{Data: data, Dim: dim}
		return err
	})
	return v, err
}

// DecodeFvecs reads the first limit vectors (all when limit <= 0) of .fvecs data, plain
// or gzip-compressed, from r. It checks what ReadFvecs checks, except the file size,
// which a reader does not know.
func DecodeFvecs(r io.Reader, limit int) (Vectors, error) {
	var v Vectors
	err := withReader(r, "fvecs data", func(in input) error {
		data, dim, err := decode4[float32](in, limit)
		v = Vectors{Data: data, Dim: dim}
		return err
	})
	return v, err
}

// ReadIvecs reads the first limit rows (all when limit <= 0) of an .ivecs file, plain or
// gzip-compressed, such as ground truth: row i holds the ids of the exact neighbours of
// query i, best first. It returns the rows back to back and their length dim, and checks
// what ReadFvecs checks.
func ReadIvecs(path string, limit int) (data []int32, dim int, err error) {
	err = withInput(path, func(in input) error {
		data, dim, err = decode4[int32](in, limit)
		return err
	})
	return data, dim, err
}

// DecodeIvecs reads the first limit rows (all when limit <= 0) of .ivecs data, plain or
// gzip-compressed, from r. See ReadIvecs.
func DecodeIvecs(r io.Reader, limit int) ([]int32, int, error) {
	var data []int32
	var dim int
	err := withReader(r, "ivecs data", func(in input) error {
		var err error
		data, dim, err = decode4[int32](in, limit)
		return err
	})
	return data, dim, err
}

// ReadBvecs reads the first limit vectors (all when limit <= 0) of a .bvecs file, plain
// or gzip-compressed, converting the uint8 values to float32. It checks what ReadFvecs
// checks.
func ReadBvecs(path string, limit int) (Vectors, error) {
	var v Vectors
	err := withInput(path, func(in input) error {
		var err error
		v, err = decodeBytes(in, limit)
		return err
	})
	return v, err
}

// DecodeBvecs reads the first limit vectors (all when limit <= 0) of .bvecs data, plain
// or gzip-compressed, from r. See ReadBvecs.
func DecodeBvecs(r io.Reader, limit int) (Vectors, error) {
	var v Vectors
	err := withReader(r, "bvecs data", func(in input) error {
		var err error
		v, err = decodeBytes(in, limit)
		return err
	})
	return v, err
}

// ReadIDX reads the first limit items (all when limit <= 0) of an IDX file of unsigned
// bytes, plain or gzip-compressed, such as Fashion-MNIST's train-images-idx3-ubyte.gz.
// Images (magic 0x00000803) are flattened to vectors of rows×cols values 0..255; labels
// (magic 0x00000801) give vectors of dimension 1. A wrong magic, a size of 0 or a
// payload whose length differs from what the header declares (checked on plain files;
// on compressed ones, a short payload, and trailing data when all items are read) is an
// error.
func ReadIDX(path string, limit int) (Vectors, error) {
	var v Vectors
	err := withInput(path, func(in input) error {
		var err error
		v, err = decodeIDX(in, limit)
		return err
	})
	return v, err
}

// DecodeIDX reads the first limit items (all when limit <= 0) of IDX data, plain or
// gzip-compressed, from r. See ReadIDX.
func DecodeIDX(r io.Reader, limit int) (Vectors, error) {
	var v Vectors
	err := withReader(r, "IDX data", func(in input) error {
		var err error
		v, err = decodeIDX(in, limit)
		return err
	})
	return v, err
}

// ReadVectors reads the first limit vectors (all when limit <= 0) of a file of vectors,
// choosing the format by the name, with or without a final .gz: .fvecs, .bvecs, and IDX
// files (.idx, or names ending in -ubyte such as train-images-idx3-ubyte). The content
// itself says whether it is compressed.
func ReadVectors(path string, limit int) (Vectors, error) {
	name := strings.ToLower(filepath.Base(path))
	name = strings.TrimSuffix(name, ".gz")
	switch {
	case strings.HasSuffix(name, ".fvecs"):
		return ReadFvecs(path, limit)
	case strings.HasSuffix(name, ".bvecs"):
		return ReadBvecs(path, limit)
	case strings.HasSuffix(name, ".idx"), strings.HasSuffix(name, "-ubyte"), strings.HasSuffix(name, ".ubyte"):
		return ReadIDX(path, limit)
	case strings.HasSuffix(name, ".ivecs"):
		return Vectors{}, fmt.Errorf("ann: read %s: .ivecs holds integer rows (ids), not vectors; use ReadIvecs", path)
	}
	return Vectors{}, fmt.Errorf("ann: read %s: unknown vector file type; want .fvecs, .bvecs or an IDX file (.idx, *-ubyte), optionally .gz", path)
}

// WriteFvecs writes v to path as .fvecs. It writes a temporary file in the same folder,
// syncs it and renames it over path, so path holds either its old content or all of v.
func WriteFvecs(path string, v Vectors) error {
	if err := checkShape(len(v.Data), v.Dim); err != nil {
		return fmt.Errorf("ann: write %s: %w", path, err)
	}
	return writeAtomic(path, func(w io.Writer) error { return encode4(w, v.Data, v.Dim) })
}

// EncodeFvecs writes v to w as .fvecs.
func EncodeFvecs(w io.Writer, v Vectors) error {
	if err := checkShape(len(v.Data), v.Dim); err != nil {
		return fmt.Errorf("ann: encode fvecs: %w", err)
	}
	bw := bufio.NewWriterSize(w, ioBufSize)
	if err := encode4(bw, v.Data, v.Dim); err != nil {
		return fmt.Errorf("ann: encode fvecs: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("ann: encode fvecs: %w", err)
	}
	return nil
}

// WriteIvecs writes the rows of length dim held back to back in data to path as .ivecs,
// atomically as WriteFvecs does.
func WriteIvecs(path string, data []int32, dim int) error {
	if err := checkShape(len(data), dim); err != nil {
		return fmt.Errorf("ann: write %s: %w", path, err)
	}
	return writeAtomic(path, func(w io.Writer) error { return encode4(w, data, dim) })
}

// EncodeIvecs writes the rows of length dim held back to back in data to w as .ivecs.
func EncodeIvecs(w io.Writer, data []int32, dim int) error {
	if err := checkShape(len(data), dim); err != nil {
		return fmt.Errorf("ann: encode ivecs: %w", err)
	}
	bw := bufio.NewWriterSize(w, ioBufSize)
	if err := encode4(bw, data, dim); err != nil {
		return fmt.Errorf("ann: encode ivecs: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("ann: encode ivecs: %w", err)
	}
	return nil
}

// ---- input ----

// input is an open stream of (decompressed) data.
type input struct {
	r    *bufio.Reader
	name string // file path, or what the data is, for errors
	size int64  // bytes of data, -1 when unknown (compressed data, a reader, a pipe)
}

func (in input) errf(format string, args ...any) error {
	return fmt.Errorf("ann: read %s: "+format, append([]any{in.name}, args...)...)
}

// withInput opens path and runs decode on its data.
func withInput(path string, decode func(input) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("ann: read %s: %w", path, err)
	}
	defer f.Close()
	size := int64(-1)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return withStream(f, path, size, decode)
}

// withReader runs decode on the data of r.
func withReader(r io.Reader, name string, decode func(input) error) error {
	return withStream(r, name, -1, decode)
}

func withStream(r io.Reader, name string, size int64, decode func(input) error) error {
	br := bufio.NewReaderSize(r, ioBufSize)
	magic, _ := br.Peek(len(gzipMagic))
	if string(magic) != gzipMagic {
		return decode(input{r: br, name: name, size: size})
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return fmt.Errorf("ann: read %s: gzip: %w", name, err)
	}
	defer zr.Close()
	return decode(input{r: bufio.NewReaderSize(zr, ioBufSize), name: name, size: -1})
}

// ---- TEXMEX records ----

// records reads the records of a TEXMEX file one header at a time.
type records struct {
	input
	elem    int   // bytes per value
	dim     int   // dimension of the first vector; 0 before it
	i       int   // index of the vector whose header was read last
	n       int   // number of whole records in a plain file; -1 when unknown
	damaged bool  // a plain file whose size is not a whole number of records
	rec     int64 // bytes per record
}

// header reads the dimension of vector r.i. It reports false at the clean end of data.
func (r *records) header() (bool, error) {
	var b [4]byte
	n, err := io.ReadFull(r.r, b[:])
	switch {
	case err == io.EOF && r.i == 0:
		return false, r.errf("no vectors (empty data)")
	case err == io.EOF:
		return false, nil
	case err == io.ErrUnexpectedEOF && n == 0:
		return false, r.errf("vector %d: unexpected end of data (truncated compressed stream)", r.i)
	case err == io.ErrUnexpectedEOF && r.damaged:
		return false, r.errf("vector %d: truncated dimension header: %d of 4 bytes missing (file size %d is not a whole number of %d-byte records)",
			r.i, 4-n, r.size, r.rec)
	case err == io.ErrUnexpectedEOF:
		return false, r.errf("vector %d: truncated dimension header: %d of 4 bytes missing", r.i, 4-n)
	case err != nil:
		return false, r.errf("vector %d: %w", r.i, err)
	}
	d := int64(int32(binary.LittleEndian.Uint32(b[:])))
	if d <= 0 || d > MaxVectorDim {
		return false, r.errf("vector %d: dimension %d out of range [1, %d] (damaged file or not this format)", r.i, d, MaxVectorDim)
	}
	if r.dim == 0 {
		r.dim = int(d)
		r.rec = 4 + d*int64(r.elem)
		r.n = -1
		if r.size >= 0 {
			r.damaged = r.size%r.rec != 0
			if r.size/r.rec > math.MaxInt/d {
				return false, r.errf("file of %d bytes too large for this host", r.size)
			}
			r.n = int(r.size / r.rec)
		}
	} else if int(d) != r.dim {
		return false, r.errf("vector %d: dimension %d, want %d (the dimension of vector 0)", r.i, d, r.dim)
	}
	return true, nil
}

// values reads the values of vector r.i into p, or skips them when p is nil.
func (r *records) values(p []byte) error {
	want := r.dim * r.elem
	var n int
	var err error
	if p != nil {
		n, err = io.ReadFull(r.r, p)
	} else {
		var n64 int64
		n64, err = io.CopyN(io.Discard, r.r, int64(want))
		n = int(n64)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	}
	switch {
	case (err == io.EOF || err == io.ErrUnexpectedEOF) && r.damaged:
		return r.errf("vector %d: truncated: %d of its %d value bytes missing (file size %d is not a whole number of %d-byte records)",
			r.i, want-n, want, r.size, r.rec)
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return r.errf("vector %d: truncated: %d of its %d value bytes missing", r.i, want-n, want)
	case err != nil:
		return r.errf("vector %d: %w", r.i, err)
	}
	r.i++
	return nil
}

// want reports whether vector r.i is to be kept under limit.
func (r *records) want(limit int) bool { return limit <= 0 || r.i < limit }

// more reads the next header, if the vectors wanted are not all read. A damaged plain
// file is read on past the limit, skipping values, to name the first bad vector.
func (r *records) more(limit int) (bool, error) {
	if !r.want(limit) && !r.damaged {
		return false, nil
	}
	if r.n >= 0 && r.i == r.n && !r.damaged {
		return false, nil
	}
	return r.header()
}

// done checks the end of a damaged file that read without error (it changed on disk).
func (r *records) done() error {
	if r.damaged {
		return r.errf("file size %d is not a whole number of %d-byte records (dimension %d)", r.size, r.rec, r.dim)
	}
	return nil
}

// capHint returns how many values to allocate first for limit vectors.
func (r *records) capHint(limit int) int {
	if r.n >= 0 {
		n := r.n
		if limit > 0 && limit < n {
			n = limit
		}
		return n * r.dim
	}
	hint := max(growStart, r.dim)
	if limit > 0 && limit <= hint/r.dim {
		hint = limit * r.dim
	}
	return hint
}

// decode4 reads .fvecs (T float32) or .ivecs (T int32) records.
func decode4[T float32 | int32](in input, limit int) ([]T, int, error) {
	r := &records{input: in, elem: 4}
	if _, err := r.header(); err != nil {
		return nil, 0, err
	}
	d := r.dim
	data := make([]T, 0, r.capHint(limit))
	for ok := true; ok; {
		if r.want(limit) {
			data = slices.Grow(data, d)
			row := data[len(data) : len(data)+d]
			b := bytesOf(row)
			if err := r.values(b); err != nil {
				return nil, 0, err
			}
			fromLittle(b)
			data = data[:len(data)+d]
		} else if err := r.values(nil); err != nil {
			return nil, 0, err
		}
		var err error
		if ok, err = r.more(limit); err != nil {
			return nil, 0, err
		}
	}
	if err := r.done(); err != nil {
		return nil, 0, err
	}
	return data, d, nil
}

// decodeBytes reads .bvecs records, converting values to float32.
func decodeBytes(in input, limit int) (Vectors, error) {
	r := &records{input: in, elem: 1}
	if _, err := r.header(); err != nil {
		return Vectors{}, err
	}
	d := r.dim
	data := make([]float32, 0, r.capHint(limit))
	buf := make([]byte, d)
	for ok := true; ok; {
		if r.want(limit) {
			if err := r.values(buf); err != nil {
				return Vectors{}, err
			}
			data = slices.Grow(data, d)
			for _, b := range buf {
				data = append(data, float32(b))
			}
		} else if err := r.values(nil); err != nil {
			return Vectors{}, err
		}
		var err error
		if ok, err = r.more(limit); err != nil {
			return Vectors{}, err
		}
	}
	if err := r.done(); err != nil {
		return Vectors{}, err
	}
	return Vectors{Data: data, Dim: d}, nil
}

// ---- IDX ----

func decodeIDX(in input, limit int) (Vectors, error) {
	var head [4]byte
	if n, err := io.ReadFull(in.r, head[:]); err != nil {
		if err == io.EOF {
			return Vectors{}, in.errf("no vectors (empty data)")
		}
		return Vectors{}, in.errf("IDX header: truncated: %d of 4 magic bytes missing", 4-n)
	}
	magic := binary.BigEndian.Uint32(head[:])
	if magic != idxImages && magic != idxLabels {
		return Vectors{}, in.errf("not an IDX file of unsigned bytes: magic %#08x, want 0x00000803 (images) or 0x00000801 (labels)", magic)
	}
	ndims := int(head[3])
	sizes := make([]byte, 4*ndims)
	if n, err := io.ReadFull(in.r, sizes); err != nil {
		return Vectors{}, in.errf("IDX header: truncated: %d of %d size bytes missing", len(sizes)-n, len(sizes))
	}
	count := int64(binary.BigEndian.Uint32(sizes))
	if count == 0 {
		return Vectors{}, in.errf("no vectors (IDX header declares 0 items)")
	}
	dim := int64(1)
	for k := 1; k < ndims; k++ {
		s := int64(binary.BigEndian.Uint32(sizes[4*k:]))
		if s == 0 {
			return Vectors{}, in.errf("IDX header: size %d is 0", k)
		}
		if dim *= s; dim > MaxVectorDim {
			return Vectors{}, in.errf("IDX header: item of %d values or more, want at most %d", dim, MaxVectorDim)
		}
	}
	headLen := int64(4 + len(sizes))
	payload := count * dim // < 2^52, no overflow
	if in.size >= 0 && in.size-headLen != payload {
		return Vectors{}, in.errf("IDX header declares %d items of %d bytes (%d bytes), the file holds %d bytes after the header",
			count, dim, payload, in.size-headLen)
	}
	n := count
	if limit > 0 && int64(limit) < n {
		n = int64(limit)
	}
	if n*dim > math.MaxInt {
		return Vectors{}, in.errf("%d values too many for this host", n*dim)
	}
	total := int(n * dim)
	d := int(dim)
	hint := total
	if in.size < 0 {
		hint = min(total, max(growStart, d)) // the header is not trusted before the data is there
	}
	data := make([]float32, 0, hint)
	buf := make([]byte, min(total, ioBufSize))
	for len(data) < total {
		chunk := buf[:min(len(buf), total-len(data))]
		got, err := io.ReadFull(in.r, chunk)
		for _, b := range chunk[:got] {
			data = append(data, float32(b))
		}
		if err != nil {
			i := len(data) / d
			missing := int64(d-len(data)%d) + (count-int64(i)-1)*dim
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return Vectors{}, in.errf("item %d: truncated: %d bytes of %d declared items missing", i, missing, count)
			}
			return Vectors{}, in.errf("item %d: %w", i, err)
		}
	}
	if n == count && in.size < 0 {
		var one [1]byte
		if got, err := io.ReadFull(in.r, one[:]); got > 0 {
			return Vectors{}, in.errf("trailing data after the %d items the IDX header declares", count)
		} else if err == io.ErrUnexpectedEOF {
			return Vectors{}, in.errf("after item %d: unexpected end of data (truncated compressed stream)", count-1)
		} else if err != io.EOF {
			return Vectors{}, in.errf("after item %d: %w", count-1, err)
		}
	}
	return Vectors{Data: data, Dim: d}, nil
}

// ---- writing ----

func checkShape(n, dim int) error {
	switch {
	case dim <= 0 || dim > MaxVectorDim:
		return fmt.Errorf("dimension %d out of range [1, %d]", dim, MaxVectorDim)
	case n%dim != 0:
		return fmt.Errorf("%d values are not a whole number of %d-dimensional vectors", n, dim)
	case n == 0:
		return errors.New("no vectors")
	}
	return nil
}

// encode4 writes TEXMEX records of 4-byte values.
func encode4[T float32 | int32](w io.Writer, data []T, dim int) error {
	var head [4]byte
	binary.LittleEndian.PutUint32(head[:], uint32(dim))
	var scratch []byte
	if !hostLittle {
		scratch = make([]byte, 4*dim)
	}
	for i := 0; i < len(data); i += dim {
		if _, err := w.Write(head[:]); err != nil {
			return err
		}
		b := bytesOf(data[i : i+dim])
		if !hostLittle {
			copy(scratch, b)
			fromLittle(scratch) // a swap both ways
			b = scratch
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// writeAtomic writes path atomically with the content write writes (see fsutil.WriteFile).
func writeAtomic(path string, write func(io.Writer) error) error {
	if err := fsutil.WriteFile(path, 0o644, write); err != nil {
		return fmt.Errorf("ann: write %s: %w", path, err)
	}
	return nil
}

// ---- bytes ----

// bytesOf returns the memory of s as bytes.
func bytesOf[T float32 | int32](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*4)
}

// fromLittle turns little-endian 4-byte values in b into host order, in place.
func fromLittle(b []byte) {
	if hostLittle {
		return
	}
	for i := 0; i+4 <= len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
}
