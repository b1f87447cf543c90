package ann

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
	"runtime"
	"sync"
	"unsafe"

	"github.com/reelrank/reelrank/internal/fsutil"
	"github.com/reelrank/reelrank/kernels"
)

// The index file, version 1. Every number is little-endian.
//
//	0    [8]byte  magic "RRANNIDX"
//	8    uint32   format version (1)
//	12   uint32   header size (264)
//	16   uint64   file size in bytes
//	24   uint32   Dim, Metric, Lists, M, Bits, Refine
//	48   uint64   Seed
//	56   uint32   TrainPerList, TrainIters
//	64   uint64   vectors (positions, deleted included), deleted, live
//	88   7 x      section: offset uint64, size uint64, CRC-32C uint32, reserved uint32 (0)
//	256  uint32   flags: bit 0 Options.Residual, bit 1 Options.OPQ; other bits 0
//	260  uint32   CRC-32C of bytes 0..259
//
// The sections follow in this order, each at the first multiple of 64
// bytes after the one before (the gaps are zeros), the last one ending the
// file; each one's CRC-32C (Castagnoli) covers all its bytes:
//
//	centroids      Lists x Dim float32
//	PQ centroids   M x 2^Bits x Dim/M float32, sub-quantizer-major, then with
//	               OPQ the Dim x Dim rotation (float32, row-major)
//	list table     per list 11 uint64: vectors, deleted, then the offset and
//	               size in bytes of its ids, codes, refine vectors and
//	               tombstones, each offset from the start of that section,
//	               then the sum of its residual norms (float64 bits)
//	ids            per list, n int64
//	codes          per list, kernels.PackCodes4 blocks (4 bits) or n x M bytes (8 bits)
//	refine vectors per list, n x Dim float16 or float32 (none: empty)
//	tombstones     per list with deletions, ceil(n/64) uint64, bit p set when
//	               position p is deleted (lists without deletions: empty)
//
// Within the four bulk sections every list's array starts at a multiple of
// 64 bytes from the start of the section (so of the file), in list order;
// Open uses them in place.
const (
	fileMagic     = "RRANNIDX"
	fileVersion   = 1
	fileAlign     = 64
	headerSize    = 264
	headerCRCAt   = 260
	sectionsAt    = 88
	listEntrySize = 88
	flagResidual  = 1
	flagOPQ       = 2
	maxFileDim    = 1 << 20
)

const (
	secCentroids = iota
	secPQ
	secLists
	secIDs
	secCodes
	secRefine
	secDead
	numSections
)

var sectionNames = [numSections]string{"centroids", "PQ centroids", "list table", "ids", "codes", "refine vectors", "tombstones"}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrBadFile is wrapped by the errors of Open for a file that is not a
// well-formed index: truncated, corrupted, of another kind or version.
var ErrBadFile = errors.New("ann: bad index file")

// littleEndian is true on hosts whose memory order matches the file's.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

var errBigEndian = errors.New("ann: index files are little-endian and are used in place; this host is big-endian")

type fileSection struct {
	off, size uint64
	crc       uint32
}

type fileHeader struct {
	fileSize                            uint64
	dim, metric, lists, m, bits, refine uint32
	seed                                uint64
	trainPerList, trainIters            uint32
	vectors, deleted, live              uint64
	sec                                 [numSections]fileSection
	flags                               uint32
}

func (h *fileHeader) encode() []byte {
	b := make([]byte, headerSize)
	le := binary.LittleEndian
	copy(b, fileMagic)
	le.PutUint32(b[8:], fileVersion)
	le.PutUint32(b[12:], headerSize)
	le.PutUint64(b[16:], h.fileSize)
	for i, v := range []uint32{h.dim, h.metric, h.lists, h.m, h.bits, h.refine} {
		le.PutUint32(b[24+4*i:], v)
	}
	le.PutUint64(b[48:], h.seed)
	le.PutUint32(b[56:], h.trainPerList)
	le.PutUint32(b[60:], h.trainIters)
	le.PutUint64(b[64:], h.vectors)
	le.PutUint64(b[72:], h.deleted)
	le.PutUint64(b[80:], h.live)
	for i, s := range h.sec {
		e := b[sectionsAt+24*i:]
		le.PutUint64(e, s.off)
		le.PutUint64(e[8:], s.size)
		le.PutUint32(e[16:], s.crc)
	}
	le.PutUint32(b[headerCRCAt-4:], h.flags)
	le.PutUint32(b[headerCRCAt:], crc32.Checksum(b[:headerCRCAt], castagnoli))
	return b
}

// listEntry is one row of the list table.
type listEntry struct {
	n, ndead uint64
	arr      [4]struct{ off, size uint64 } // ids, codes, refine, tombstones
	rsum     float64                       // sum of residual norms
}

// listArrays is the order of the bulk sections in a list entry.
var listArrays = [4]int{secIDs, secCodes, secRefine, secDead}

// sizes returns the byte sizes of a list's arrays.
func (o *Options) fileSizes(n, ndead uint64) [4]uint64 {
	var s [4]uint64
	s[0] = mul(n, 8)
	if o.Bits == 4 {
		s[1] = mul((n+kernels.FastScan4BlockSize-1)/kernels.FastScan4BlockSize, uint64(kernels.FastScan4BlockBytes(o.M)))
	} else {
		s[1] = mul(n, uint64(o.M))
	}
	switch o.Refine {
	case RefineF16:
		s[2] = mul(n, 2*uint64(o.Dim))
	case RefineF32:
		s[2] = mul(n, 4*uint64(o.Dim))
	}
	if ndead > 0 {
		s[3] = mul((n+63)/64, 8)
	}
	return s
}

// mul multiplies, saturating at the largest uint64.
func mul(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}

func alignUp(x uint64) uint64 { return (x + fileAlign - 1) &^ (fileAlign - 1) }

// asBytes views a slice's memory as bytes.
func asBytes[T any](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(s[0])))
}

// view reinterprets b, 64-byte aligned in place, as n values of T, its
// capacity its length so that append never writes into b.
func view[T any](b []byte, n int) []T {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), n)[:n:n]
}

// alignedBuf returns n zero bytes starting at a multiple of 64 in memory.
func alignedBuf(n int) []byte {
	w := make([]uint64, (n+2*fileAlign)/8)
	b := asBytes(w)
	skip := int(-uintptr(unsafe.Pointer(&b[0])) & (fileAlign - 1))
	return b[skip : skip+n : skip+n]
}

// fileWriter writes the file sequentially, keeping the running CRC of the
// current section.
type fileWriter struct {
	bw  *bufio.Writer
	pos uint64
	crc uint32
	err error
}

var zeros [fileAlign]byte

func (w *fileWriter) write(b []byte) {
	if w.err != nil || len(b) == 0 {
		return
	}
	w.crc = crc32.Update(w.crc, castagnoli, b)
	_, w.err = w.bw.Write(b)
	w.pos += uint64(len(b))
}

// padTo writes zeros up to offset to (counted in the section's CRC).
func (w *fileWriter) padTo(to uint64) {
	if w.err == nil && to < w.pos {
		w.err = fmt.Errorf("ann: save: internal error: at byte %d, next item at %d", w.pos, to)
	}
	for w.err == nil && w.pos < to {
		w.write(zeros[:min(uint64(len(zeros)), to-w.pos)])
	}
}

// beginSection pads to the section's offset and restarts the CRC.
func (w *fileWriter) beginSection(s fileSection) {
	w.padTo(s.off)
	w.crc = 0
}

// Save writes the index to path: to a temporary file in the same folder,
// synced, then renamed over path, and the folder synced, so a crash leaves
// either the old file or the new one at path, never a half-written one.
// Save sees one state of the index: Add, Delete and Compact wait for it,
// while searches go on (it holds each list's read lock only while writing
// that list's arrays).
func (ix *Index) Save(path string) error {
	if !littleEndian {
		return errBigEndian
	}
	if !ix.trained.Load() {
		return fmt.Errorf("ann: save: %w", ErrNotTrained)
	}
	ix.idMu.Lock()
	defer ix.idMu.Unlock()
	o := &ix.opt

	// The layout, from every list's length (fixed while idMu is held).
	h := fileHeader{
		dim: uint32(o.Dim), metric: uint32(o.Metric), lists: uint32(o.Lists), m: uint32(o.M),
		bits: uint32(o.Bits), refine: uint32(o.Refine), seed: o.Seed,
		trainPerList: uint32(o.TrainPerList), trainIters: uint32(o.TrainIters),
	}
	if o.Residual {
		h.flags |= flagResidual
	}
	if ix.rot != nil {
		h.flags |= flagOPQ
	}
	entries := make([]listEntry, o.Lists)
	var bulk [4]uint64 // running size of each bulk section
	for l := range ix.lists {
		L := &ix.lists[l]
		L.mu.RLock()
		e := &entries[l]
		e.n, e.ndead, e.rsum = uint64(L.n), uint64(L.ndead), L.rsum
		L.mu.RUnlock()
		for a, size := range o.fileSizes(e.n, e.ndead) {
			e.arr[a].off = alignUp(bulk[a])
			e.arr[a].size = size
			bulk[a] = e.arr[a].off + size
		}
		h.vectors += e.n
		h.deleted += e.ndead
	}
	h.live = h.vectors - h.deleted
	h.sec[secCentroids].size = uint64(4 * len(ix.centroids))
	h.sec[secPQ].size = uint64(4 * (len(ix.pqCent) + len(ix.rot)))
	h.sec[secLists].size = uint64(listEntrySize * o.Lists)
	for a, s := range listArrays {
		h.sec[s].size = bulk[a]
	}
	pos := uint64(headerSize)
	for i := range h.sec {
		h.sec[i].off = alignUp(pos)
		pos = h.sec[i].off + h.sec[i].size
	}
	h.fileSize = pos

	table := make([]byte, h.sec[secLists].size)
	for l, e := range entries {
		b := table[l*listEntrySize:]
		binary.LittleEndian.PutUint64(b, e.n)
		binary.LittleEndian.PutUint64(b[8:], e.ndead)
		for a, arr := range e.arr {
			binary.LittleEndian.PutUint64(b[16+16*a:], arr.off)
			binary.LittleEndian.PutUint64(b[24+16*a:], arr.size)
		}
		binary.LittleEndian.PutUint64(b[80:], math.Float64bits(e.rsum))
	}

	f, err := fsutil.CreateTemp(path, 0o644)
	if err != nil {
		return fmt.Errorf("ann: save: %w", err)
	}
	defer f.Abort()
	w := &fileWriter{bw: bufio.NewWriterSize(f.File, 1<<20)}
	w.write(make([]byte, headerSize)) // written again at the end
	w.beginSection(h.sec[secCentroids])
	w.write(asBytes(ix.centroids))
	h.sec[secCentroids].crc = w.crc
	w.beginSection(h.sec[secPQ])
	w.write(asBytes(ix.pqCent))
	w.write(asBytes(ix.rot))
	h.sec[secPQ].crc = w.crc
	w.beginSection(h.sec[secLists])
	w.write(table)
	h.sec[secLists].crc = w.crc
	for a, s := range listArrays {
		w.beginSection(h.sec[s])
		for l := range ix.lists {
			e := &entries[l]
			if e.arr[a].size == 0 {
				continue
			}
			w.padTo(h.sec[s].off + e.arr[a].off)
			L := &ix.lists[l]
			L.mu.RLock()
			var b []byte
			switch s {
			case secIDs:
				b = asBytes(L.ids[:e.n])
			case secCodes:
				b = L.codes[:e.arr[a].size]
			case secRefine:
				if o.Refine == RefineF16 {
					b = asBytes(L.f16[:e.n*uint64(o.Dim)])
				} else {
					b = asBytes(L.f32[:e.n*uint64(o.Dim)])
				}
			case secDead:
				words := make([]uint64, e.arr[a].size/8)
				copy(words, L.dead)
				if r := e.n % 64; r != 0 {
					words[len(words)-1] &= 1<<r - 1
				}
				b = asBytes(words)
			}
			w.write(b)
			L.mu.RUnlock()
		}
		w.padTo(h.sec[s].off + h.sec[s].size)
		h.sec[s].crc = w.crc
	}
	if w.err != nil {
		return fmt.Errorf("ann: save: %w", w.err)
	}
	if w.pos != h.fileSize {
		return fmt.Errorf("ann: save: internal error: wrote %d bytes, planned %d", w.pos, h.fileSize)
	}
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("ann: save: %w", err)
	}
	if _, err := f.File.WriteAt(h.encode(), 0); err != nil {
		return fmt.Errorf("ann: save: %w", err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("ann: save: %w", err)
	}
	return nil
}

// Open returns the index saved in the file at path, ready for searches. On
// unix systems the file is mapped read-only and the lists' ids, codes and
// refine vectors are used in place; elsewhere it is read into memory. Add,
// Delete and Compact work on the opened index and never change the file:
// whatever they change is copied to memory first. Call Close to release the
// mapping.
//
// Open checks the whole file, every checksum included, and returns an error
// wrapping ErrBadFile that says what is wrong with a file that is not a
// well-formed index (truncated, corrupted, of another kind or version).
func Open(path string) (*Index, error) {
	if !littleEndian {
		return nil, errBigEndian
	}
	data, release, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("ann: open: %w", err)
	}
	ix, err := load(data, path)
	if err != nil {
		if release != nil {
			release()
		}
		return nil, err
	}
	ix.unmap = release
	prefault(data)
	return ix, nil
}

// prefault reads one byte of every page of a mapped index, so that the
// first searches do not pay a page fault for each page they touch: on
// reels1m, a sweep run on a freshly opened index had its p99 doubled and
// its QPS 10% lower than one on the index built in memory, until every page
// had been touched once. It returns a value so that the reads stay.
func prefault(data []byte) byte {
	var x byte
	for i := 0; i < len(data); i += 4096 {
		x ^= data[i]
	}
	return x
}

// Close releases the file mapping of an index returned by Open. It waits for
// searches and writes in flight; after it the index is empty and untrained,
// and Search and Add fail with ErrNotTrained. On an index that did not come
// from Open, or one already closed, Close does nothing.
func (ix *Index) Close() error {
	ix.unmapMu.Lock()
	release := ix.unmap
	ix.unmap = nil
	ix.unmapMu.Unlock()
	if release == nil {
		return nil
	}
	ix.structMu.Lock()
	ix.idMu.Lock()
	ix.trained.Store(false)
	for l := range ix.lists {
		L := &ix.lists[l]
		L.mu.Lock()
		L.n, L.ids, L.codes, L.f16, L.f32, L.dead, L.ndead = 0, nil, nil, nil, nil, nil, 0
		L.publish()
		L.mu.Unlock()
	}
	clear(ix.where)
	ix.live.Store(0)
	ix.idMu.Unlock()
	ix.structMu.Unlock()
	if err := release(); err != nil {
		return fmt.Errorf("ann: close: %w", err)
	}
	return nil
}

// load builds an index on data, the whole file, which must start at a
// multiple of 64 in memory and stay unchanged while the index uses it.
func load(data []byte, path string) (*Index, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w %s: %s", ErrBadFile, path, fmt.Sprintf(format, a...))
	}
	size := uint64(len(data))
	le := binary.LittleEndian

	// Magic, version, header.
	if size < uint64(len(fileMagic)) {
		if bytes.HasPrefix([]byte(fileMagic), data) {
			return nil, bad("truncated: %d bytes, not even the magic", size)
		}
		return nil, bad("not an index file (bad magic)")
	}
	if string(data[:len(fileMagic)]) != fileMagic {
		return nil, bad("not an index file (bad magic %q, want %q)", data[:len(fileMagic)], fileMagic)
	}
	if size < 16 {
		return nil, bad("truncated: %d bytes, in the header", size)
	}
	if v := le.Uint32(data[8:]); v != fileVersion {
		return nil, bad("format version %d, this build reads version %d", v, fileVersion)
	}
	if hs := le.Uint32(data[12:]); hs != headerSize {
		return nil, bad("header size %d, want %d", hs, headerSize)
	}
	if size < headerSize {
		return nil, bad("truncated: %d bytes, in the header", size)
	}
	if got, want := crc32.Checksum(data[:headerCRCAt], castagnoli), le.Uint32(data[headerCRCAt:]); got != want {
		return nil, bad("checksum mismatch in header")
	}
	var h fileHeader
	h.fileSize = le.Uint64(data[16:])
	h.dim, h.metric, h.lists, h.m = le.Uint32(data[24:]), le.Uint32(data[28:]), le.Uint32(data[32:]), le.Uint32(data[36:])
	h.bits, h.refine = le.Uint32(data[40:]), le.Uint32(data[44:])
	h.seed = le.Uint64(data[48:])
	h.trainPerList, h.trainIters = le.Uint32(data[56:]), le.Uint32(data[60:])
	h.vectors, h.deleted, h.live = le.Uint64(data[64:]), le.Uint64(data[72:]), le.Uint64(data[80:])
	for i := range h.sec {
		e := data[sectionsAt+24*i:]
		h.sec[i] = fileSection{off: le.Uint64(e), size: le.Uint64(e[8:]), crc: le.Uint32(e[16:])}
		if r := le.Uint32(e[20:]); r != 0 {
			return nil, bad("header: reserved word of section %s is %d, want 0", sectionNames[i], r)
		}
	}
	if h.flags = le.Uint32(data[headerCRCAt-4:]); h.flags&^(flagResidual|flagOPQ) != 0 {
		return nil, bad("header: unknown flags %#x", h.flags)
	}
	if size < h.fileSize {
		return nil, bad("truncated: %d bytes of %d", size, h.fileSize)
	}
	if size > h.fileSize {
		return nil, bad("%d bytes, the header says %d (trailing data)", size, h.fileSize)
	}

	// Options.
	switch {
	case h.dim == 0 || h.dim > maxFileDim:
		return nil, bad("header: dimension %d, want 1..%d", h.dim, maxFileDim)
	case h.metric != uint32(kernels.InnerProduct) && h.metric != uint32(kernels.L2):
		return nil, bad("header: unknown metric %d", h.metric)
	case h.lists == 0 || h.lists > 1<<20:
		return nil, bad("header: %d lists, want 1..%d", h.lists, 1<<20)
	case h.m == 0 || h.dim%h.m != 0:
		return nil, bad("header: M = %d does not divide dimension %d", h.m, h.dim)
	case h.bits != 4 && h.bits != 8:
		return nil, bad("header: %d-bit codes, want 4 or 8", h.bits)
	case h.refine > uint32(RefineF32):
		return nil, bad("header: unknown refine %d", h.refine)
	case h.trainPerList == 0 || h.trainPerList > math.MaxInt32 || h.trainIters == 0 || h.trainIters > math.MaxInt32:
		return nil, bad("header: TrainPerList %d, TrainIters %d, want 1..%d", h.trainPerList, h.trainIters, math.MaxInt32)
	case h.deleted > h.vectors || h.live != h.vectors-h.deleted:
		return nil, bad("header: %d vectors, %d deleted, %d live do not add up", h.vectors, h.deleted, h.live)
	}
	opt := Options{
		Dim: int(h.dim), Metric: kernels.Metric(h.metric), Lists: int(h.lists), M: int(h.m),
		Bits: int(h.bits), Refine: Refine(h.refine), Seed: h.seed,
		TrainPerList: int(h.trainPerList), TrainIters: int(h.trainIters),
		Residual: h.flags&flagResidual != 0,
		OPQ:      h.flags&flagOPQ != 0,
	}
	ix, err := New(opt)
	if err != nil {
		return nil, bad("header: %v", err)
	}
	o := &ix.opt

	// Sections: where they are, their sizes, the zeros between them.
	want := [numSections]uint64{
		secCentroids: mul(uint64(h.lists), 4*uint64(h.dim)),
		secPQ:        mul(uint64(ix.ksub), 4*uint64(h.dim)) + opqBytes(h),
		secLists:     mul(uint64(h.lists), listEntrySize),
	}
	pos := uint64(headerSize)
	for i, s := range h.sec {
		name := sectionNames[i]
		if s.off != alignUp(pos) {
			return nil, bad("section %s at byte %d, want %d", name, s.off, alignUp(pos))
		}
		if s.off > size || s.size > size-s.off {
			return nil, bad("section %s: bytes %d..%d run past the end of the %d-byte file", name, s.off, s.off+s.size, size)
		}
		if i <= secLists && s.size != want[i] {
			return nil, bad("section %s is %d bytes, want %d", name, s.size, want[i])
		}
		for _, c := range data[pos:s.off] {
			if c != 0 {
				return nil, bad("nonzero padding before section %s", name)
			}
		}
		pos = s.off + s.size
	}
	if pos != size {
		return nil, bad("%d bytes after the last section", size-pos)
	}
	sec := func(i int) []byte { return data[h.sec[i].off : h.sec[i].off+h.sec[i].size] }
	for i := range secIDs {
		if crc32.Checksum(sec(i), castagnoli) != h.sec[i].crc {
			return nil, bad("checksum mismatch in section %s", sectionNames[i])
		}
	}
	runtime.Gosched()

	// The list table.
	entries := make([]listEntry, h.lists)
	var ends [4]uint64
	var nsum, dsum uint64
	table := sec(secLists)
	for l := range entries {
		e := &entries[l]
		b := table[l*listEntrySize:]
		e.n, e.ndead = le.Uint64(b), le.Uint64(b[8:])
		if e.n > math.MaxUint32 || e.n > size {
			return nil, bad("list %d: %d vectors", l, e.n)
		}
		if e.ndead > e.n {
			return nil, bad("list %d: %d of %d vectors deleted", l, e.ndead, e.n)
		}
		e.rsum = math.Float64frombits(le.Uint64(b[80:]))
		if !(e.rsum >= 0) || math.IsInf(e.rsum, 0) {
			return nil, bad("list %d: residual norm sum %v", l, e.rsum)
		}
		sizes := o.fileSizes(e.n, e.ndead)
		for a := range e.arr {
			off, sz := le.Uint64(b[16+16*a:]), le.Uint64(b[24+16*a:])
			name, secSize := sectionNames[listArrays[a]], h.sec[listArrays[a]].size
			switch {
			case sz != sizes[a]:
				return nil, bad("list %d: %s are %d bytes, want %d", l, name, sz, sizes[a])
			case off%fileAlign != 0:
				return nil, bad("list %d: %s at offset %d, not a multiple of %d", l, name, off, fileAlign)
			case off < ends[a]:
				return nil, bad("list %d: %s at offset %d overlap the list before (ending at %d)", l, name, off, ends[a])
			case off > secSize || sz > secSize-off:
				return nil, bad("list %d: %s at offset %d, %d bytes, run past the end of their %d-byte section", l, name, off, sz, secSize)
			}
			e.arr[a].off, e.arr[a].size = off, sz
			ends[a] = off + sz
		}
		nsum += e.n
		dsum += e.ndead
	}
	if nsum != h.vectors || dsum != h.deleted {
		return nil, bad("the lists hold %d vectors, %d deleted; the header says %d, %d deleted", nsum, dsum, h.vectors, h.deleted)
	}

	// The bulk sections' checksums, in parallel with building the index
	// (which reads only what the checked header and list table place, so
	// is safe on bad data); a checksum mismatch is the error to report.
	var errs [numSections]error
	var wg sync.WaitGroup
	for i := secIDs; i < numSections; i++ {
		wg.Go(func() {
			if crc32.Checksum(sec(i), castagnoli) != h.sec[i].crc {
				errs[i] = bad("checksum mismatch in section %s", sectionNames[i])
			}
		})
	}
	buildErr := func() error {
		// Centroids and codebook, copied.
		cent := make([]float32, o.Lists*o.Dim)
		copy(asBytes(cent), sec(secCentroids))
		pqCent := make([]float32, o.M*ix.ksub*ix.dsub)
		copy(asBytes(pqCent), sec(secPQ))
		var rot []float32
		if o.OPQ {
			rot = make([]float32, o.Dim*o.Dim)
			copy(asBytes(rot), sec(secPQ)[4*len(pqCent):])
		}
		for i, c := range [][]float32{cent, pqCent, rot} {
			for j, v := range c {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return bad("section %s: value %d is %v", sectionNames[secCentroids+min(i, 1)], j, v)
				}
			}
		}
		ix.setCentroids(cent)
		ix.pqCent = pqCent
		ix.pq = kernels.NewPQCodebook(pqCent, o.M, ix.ksub, ix.dsub)
		if rot != nil {
			ix.setRotation(rot)
		}

		// The lists, in place.
		arr := func(l, a int) []byte {
			s := h.sec[listArrays[a]].off + entries[l].arr[a].off
			return data[s : s+entries[l].arr[a].size]
		}
		for l := range ix.lists {
			e := &entries[l]
			L := &ix.lists[l]
			n := int(e.n)
			L.n, L.ndead, L.rsum = n, int(e.ndead), e.rsum
			if n == 0 {
				continue
			}
			ix.radius[l].Store(math.Float32bits(float32(e.rsum / float64(n))))
			L.ids = view[int64](arr(l, 0), n)
			L.codes = arr(l, 1)
			L.codes = L.codes[:len(L.codes):len(L.codes)]
			if o.Bits == 4 && n%kernels.FastScan4BlockSize != 0 {
				// Add repacks the last partial block in place: give it a copy.
				L.codes = append([]byte(nil), L.codes...)
			}
			L.publish()
			switch o.Refine {
			case RefineF16:
				L.f16 = view[kernels.F16](arr(l, 2), n*o.Dim)
			case RefineF32:
				L.f32 = view[float32](arr(l, 2), n*o.Dim)
			}
			if e.ndead > 0 {
				// Delete sets bits in place: a copy.
				L.dead = make([]uint64, (n+63)/64)
				copy(asBytes(L.dead), arr(l, 3))
				cnt := 0
				for _, w := range L.dead {
					cnt += bits.OnesCount64(w)
				}
				if r := n % 64; r != 0 && L.dead[len(L.dead)-1]>>r != 0 {
					return bad("list %d: tombstones past its %d vectors", l, n)
				}
				if cnt != L.ndead {
					return bad("list %d: %d tombstones, the table says %d deleted", l, cnt, L.ndead)
				}
			}
		}

		// The id map.
		ix.where = make(map[int64]loc, h.live)
		for l := range ix.lists {
			if l%yieldLists == yieldLists-1 {
				runtime.Gosched()
			}
			L := &ix.lists[l]
			for p, id := range L.ids {
				if !L.isDead(p) {
					ix.where[id] = loc{uint32(l), uint32(p)}
				}
			}
		}
		if uint64(len(ix.where)) != h.live {
			return bad("%s", ix.duplicateID())
		}
		return nil
	}()
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	if buildErr != nil {
		return nil, buildErr
	}
	ix.live.Store(int64(h.live))
	ix.trained.Store(true)
	return ix, nil
}

// yieldLists is how many lists Open maps between yields of the processor:
// a server opening an index beside the one it serves keeps answering
// promptly on one core.
const yieldLists = 64

// opqBytes is the size of the rotation stored after the PQ centroids.
func opqBytes(h fileHeader) uint64 {
	if h.flags&flagOPQ == 0 {
		return 0
	}
	return mul(uint64(h.dim), 4*uint64(h.dim))
}

// duplicateID describes the first live id found twice in the lists.
func (ix *Index) duplicateID() string {
	seen := make(map[int64]loc, len(ix.where))
	for l := range ix.lists {
		L := &ix.lists[l]
		for p, id := range L.ids {
			if L.isDead(p) {
				continue
			}
			if w, ok := seen[id]; ok {
				return fmt.Sprintf("id %d twice: %v and %v", id, w, loc{uint32(l), uint32(p)})
			}
			seen[id] = loc{uint32(l), uint32(p)}
		}
	}
	return "live ids do not match the header's count"
}
