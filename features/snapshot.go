package features

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"slices"
	"time"

	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/internal/fsutil"
	"github.com/reelrank/reelrank/kernels"
)

// ErrBadSnapshot is returned for a snapshot file that is not one, is of an
// unknown version, fails its checksum, or does not decode.
var ErrBadSnapshot = errors.New("features: bad snapshot")

// The snapshot file: the magic, a version, the body, a CRC-32C of
// everything before it, and an end magic.
const (
	snapMagic   = "RRFSNAP\x00"
	snapEnd     = "RRFEND\x00"
	snapVersion = 3
	// snapVersion2 is the version before the per-country counts of the
	// region source; it still loads, with those counts empty.
	snapVersion2 = 2
	snapMaxItems = 1 << 31
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// snapConfig is the configuration as the snapshot stores it.
type snapConfig struct {
	EmbedDim, Categories                      int
	Windows                                   []int64 // ns, as every duration here
	CategoryWindow, HistoryWindow             int64
	PriorStrength                             float64
	WatchThrough                              float32
	Countries, Languages, AgeBuckets, Devices int
	LastReels                                 int
	Tolerance                                 int64
}

func toSnapConfig(c Config) snapConfig {
	sc := snapConfig{EmbedDim: c.EmbedDim, Categories: c.Categories, CategoryWindow: int64(c.CategoryWindow),
		HistoryWindow: int64(c.HistoryWindow), PriorStrength: c.PriorStrength, WatchThrough: c.WatchThrough,
		Countries: c.Countries, Languages: c.Languages, AgeBuckets: c.AgeBuckets, Devices: c.Devices,
		LastReels: c.LastReels, Tolerance: int64(c.Tolerance)}
	for _, w := range c.Windows {
		sc.Windows = append(sc.Windows, int64(w))
	}
	return sc
}

func (sc snapConfig) config() Config {
	c := Config{EmbedDim: sc.EmbedDim, Categories: sc.Categories, CategoryWindow: time.Duration(sc.CategoryWindow),
		HistoryWindow: time.Duration(sc.HistoryWindow), PriorStrength: sc.PriorStrength, WatchThrough: sc.WatchThrough,
		Countries: sc.Countries, Languages: sc.Languages, AgeBuckets: sc.AgeBuckets, Devices: sc.Devices,
		LastReels: sc.LastReels, Tolerance: time.Duration(sc.Tolerance)}
	for _, w := range sc.Windows {
		c.Windows = append(c.Windows, time.Duration(w))
	}
	return c
}

// LogCheckpoint returns where ApplyLog stopped in its log, which snapshots
// keep so that a restarted store reads only the log's tail.
func (s *Store) LogCheckpoint() eventlog.Checkpoint {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.logCk
}

// SaveSnapshot writes the store's whole state to path: to a temporary file
// in the same folder, synced, then renamed over path, so that a crash
// leaves either the old snapshot or the new one. The file is its owner's
// alone (mode 0600). Writers wait while it runs; readers do not.
func (s *Store) SaveSnapshot(path string) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	err := fsutil.WriteFile(path, 0o600, func(w io.Writer) error {
		h := crc32.New(castagnoli)
		bw := bufio.NewWriterSize(io.MultiWriter(w, h), 1<<20)
		e := &snapEncoder{w: bw}
		s.encode(e)
		if e.err == nil {
			e.err = bw.Flush()
		}
		if e.err != nil {
			return e.err
		}
		var tail [4 + len(snapEnd)]byte
		binary.LittleEndian.PutUint32(tail[:], h.Sum32())
		copy(tail[4:], snapEnd)
		_, err := w.Write(tail[:])
		return err
	})
	if err != nil {
		return fmt.Errorf("features: snapshot %s: %w", path, err)
	}
	return nil
}

func (s *Store) encode(e *snapEncoder) {
	e.raw([]byte(snapMagic))
	e.u64(snapVersion)
	cj, _ := json.Marshal(toSnapConfig(s.cfg))
	e.u64(uint64(len(cj)))
	e.raw(cj)
	ck := s.logCk
	e.i64s([]int64{s.landmark, b2i(s.set), s.newest, s.applied, ck.Offset, ck.Line, ck.MaxTime, ck.LastTime, ck.LastLine, ck.ReadTo})
	e.f64s(s.global)
	e.u64(uint64(len(s.centroids)))
	e.f32s(s.centroids)

	r := &s.reels
	e.u64(uint64(len(r.id)))
	e.i64s(r.id)
	n := len(r.recs)
	col := func(f func(m *reelMeta) int64) []int64 {
		v := make([]int64, n)
		for i := range r.recs {
			v[i] = f(&r.recs[i].reelMeta)
		}
		return v
	}
	cs := s.cs
	flat := func(n int, ctr func(i int) []float32) []float32 {
		v := make([]float32, 0, n*cs)
		for i := range n {
			v = append(v, ctr(i)[:cs]...)
		}
		return v
	}
	e.i64s(col(func(m *reelMeta) int64 { return m.upload }))
	e.i64s(col(func(m *reelMeta) int64 { return int64(m.author) }))
	e.i64s(col(func(m *reelMeta) int64 { return int64(m.cat) }))
	e.i64s(col(func(m *reelMeta) int64 { return b2i(m.hasEmb) | b2i(m.catGiven)<<1 | int64(m.lang+1)<<8 }))
	e.i64s(col(func(m *reelMeta) int64 { return int64(math.Float32bits(m.duration)) }))
	e.f32s(r.emb)
	e.f32s(flat(n, func(i int) []float32 { return r.recs[i].ctr[:] }))

	a := &s.authors
	na := len(a.recs)
	e.u64(uint64(len(a.id)))
	e.i64s(a.id)
	acol := func(f func(a *authorRec) int64) []int64 {
		v := make([]int64, na)
		for i := range a.recs {
			v[i] = f(&a.recs[i])
		}
		return v
	}
	e.i64s(acol(func(a *authorRec) int64 { return a.base }))
	e.i64s(acol(func(a *authorRec) int64 { return a.follows }))
	e.f32s(flat(na, func(i int) []float32 { return a.recs[i].ctr[:] }))

	u := &s.users
	e.u64(uint64(len(u.id)))
	e.i64s(u.id)
	e.raw(u.profile)
	e.f32s(u.ctr)
	e.f32s(u.catImp)
	e.f32s(u.catWT)
	e.f32s(u.hist)
	histW := make([]float64, len(u.sess))
	sessCols := [4][]int64{}
	for j := range sessCols {
		sessCols[j] = make([]int64, len(u.sess))
	}
	for i, ss := range u.sess {
		histW[i] = ss.histW
		sessCols[0][i], sessCols[1][i], sessCols[2][i], sessCols[3][i] = ss.id, ss.at, int64(ss.n), int64(ss.wt)
	}
	e.f64s(histW)
	lens := make([]int64, len(u.follows))
	total := 0
	for i, f := range u.follows {
		lens[i] = int64(len(f))
		total += len(f)
	}
	e.i64s(lens)
	all := make([]int64, 0, total)
	for _, f := range u.follows {
		all = append(all, f...)
	}
	e.i64s(all)
	for _, c := range sessCols {
		e.i64s(c)
	}
	e.i16s(u.lastCats)

	// Version 3: the per-country watch-through counts, by country slot
	// then reel index.
	var rc, ri []int64
	var rv []float32
	for c, m := range s.src.region {
		start := len(ri)
		for r := range m {
			ri = append(ri, int64(r))
		}
		slices.Sort(ri[start:])
		for _, r := range ri[start:] {
			rc = append(rc, int64(c))
			rv = append(rv, m[int32(r)])
		}
	}
	e.u64(uint64(len(ri)))
	e.i64s(rc)
	e.i64s(ri)
	e.f32s(rv)
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

type snapEncoder struct {
	w   *bufio.Writer
	buf []byte
	err error
}

func (e *snapEncoder) raw(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *snapEncoder) u64(v uint64) { e.raw(binary.LittleEndian.AppendUint64(e.buf[:0], v)) }

// put writes n fixed-size values through a chunk buffer.
func put[T any](e *snapEncoder, v []T, app func([]byte, T) []byte) {
	const chunk = 8192
	for len(v) > 0 && e.err == nil {
		n := min(len(v), chunk)
		e.buf = e.buf[:0]
		for _, x := range v[:n] {
			e.buf = app(e.buf, x)
		}
		e.raw(e.buf)
		v = v[n:]
	}
}

func (e *snapEncoder) i64s(v []int64) {
	put(e, v, func(b []byte, x int64) []byte { return binary.LittleEndian.AppendUint64(b, uint64(x)) })
}
func (e *snapEncoder) i16s(v []int16) {
	put(e, v, func(b []byte, x int16) []byte { return binary.LittleEndian.AppendUint16(b, uint16(x)) })
}
func (e *snapEncoder) f64s(v []float64) {
	put(e, v, func(b []byte, x float64) []byte { return binary.LittleEndian.AppendUint64(b, math.Float64bits(x)) })
}
func (e *snapEncoder) f32s(v []float32) {
	put(e, v, func(b []byte, x float32) []byte { return binary.LittleEndian.AppendUint32(b, math.Float32bits(x)) })
}

// LoadSnapshot reads a snapshot written by SaveSnapshot into a new store
// with the snapshot's configuration. Resume the log after it with ApplyLog.
func LoadSnapshot(path string) (*Store, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("features: load snapshot %s: %w", path, err)
	}
	s, err := decodeSnapshot(b)
	if err != nil {
		return nil, fmt.Errorf("features: load snapshot %s: %w", path, err)
	}
	return s, nil
}

func decodeSnapshot(b []byte) (*Store, error) {
	if len(b) < len(snapMagic)+8+4+len(snapEnd) || string(b[:len(snapMagic)]) != snapMagic {
		return nil, fmt.Errorf("%w: not a feature snapshot", ErrBadSnapshot)
	}
	if string(b[len(b)-len(snapEnd):]) != snapEnd {
		return nil, fmt.Errorf("%w: truncated (no end marker)", ErrBadSnapshot)
	}
	body := b[:len(b)-len(snapEnd)-4]
	if want := binary.LittleEndian.Uint32(b[len(body):]); crc32.Checksum(body, castagnoli) != want {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrBadSnapshot)
	}
	d := &snapDecoder{b: body[len(snapMagic):]}
	version := d.u64()
	if version != snapVersion && version != snapVersion2 {
		return nil, fmt.Errorf("%w: version %d, this build reads %d and %d", ErrBadSnapshot, version, snapVersion2, snapVersion)
	}
	cj := d.raw(d.count(1))
	if d.err != nil {
		return nil, d.err
	}
	var sc snapConfig
	if err := json.Unmarshal(cj, &sc); err != nil {
		return nil, fmt.Errorf("%w: config: %v", ErrBadSnapshot, err)
	}
	s, err := NewStore(sc.config())
	if err != nil {
		return nil, fmt.Errorf("%w: config: %v", ErrBadSnapshot, err)
	}
	hdr := d.i64s(10)
	if d.err != nil {
		return nil, d.err
	}
	s.landmark, s.set, s.newest, s.applied = hdr[0], hdr[1] != 0, hdr[2], hdr[3]
	s.logCk = eventlog.Checkpoint{Offset: hdr[4], Line: hdr[5], MaxTime: hdr[6], LastTime: hdr[7], LastLine: hdr[8], ReadTo: hdr[9]}
	if s.logCk.Offset < 0 || s.logCk.Line < 0 {
		return nil, fmt.Errorf("%w: log checkpoint %+v", ErrBadSnapshot, s.logCk)
	}
	d.f64sInto(s.global)
	s.centroids = d.f32s(d.count(4))
	if len(s.centroids) != 0 && len(s.centroids) != s.cfg.Categories*s.cfg.EmbedDim {
		d.fail("centroids: %d values, want %d", len(s.centroids), s.cfg.Categories*s.cfg.EmbedDim)
	}
	if len(s.centroids) == 0 {
		s.centroids = nil
	}
	D, K, L, cs := s.cfg.EmbedDim, s.cfg.Categories, s.cfg.LastReels, s.cs

	r := &s.reels
	nr := d.count(6*8 + 4*D + 4*cs)
	r.id = d.i64s(nr)
	cols := [5][]int64{}
	for j := range cols {
		cols[j] = d.i64s(nr)
	}
	r.recs = make([]reelRec, nr)
	for i := range r.recs {
		m := &r.recs[i].reelMeta
		m.upload = cols[0][i]
		if a := cols[1][i]; a >= -1 && a < math.MaxInt32 {
			m.author = int32(a)
		} else {
			d.fail("reel author index %d", a)
		}
		if c := cols[2][i]; c >= -1 && c < int64(K) {
			m.cat = int16(c)
		} else {
			d.fail("reel category %d", c)
		}
		m.hasEmb, m.catGiven = cols[3][i]&1 != 0, cols[3][i]&2 != 0
		if l := cols[3][i] >> 8; l >= 0 && l <= int64(s.cfg.Languages) {
			m.lang = int16(l - 1)
		} else {
			d.fail("reel language %d", l-1)
		}
		m.duration = math.Float32frombits(uint32(cols[4][i]))
		if !(m.duration >= 0 && m.duration < 1e6) {
			d.fail("reel duration %v", m.duration)
		}
		m.logDur = fastLog1p(m.duration)
	}
	r.emb = d.f32s(nr * D)
	rctr := d.f32s(nr * cs)
	for i := range r.recs {
		copy(r.recs[i].ctr[:cs], rctr[i*cs:])
	}

	a := &s.authors
	na := d.count(8 + 8 + 8 + 4*cs)
	a.id = d.i64s(na)
	base, follows := d.i64s(na), d.i64s(na)
	actr := d.f32s(na * cs)
	a.recs = make([]authorRec, na)
	for i := range a.recs {
		a.recs[i].id, a.recs[i].base, a.recs[i].follows = a.id[i], base[i], follows[i]
		copy(a.recs[i].ctr[:cs], actr[i*cs:])
	}

	u := &s.users
	nu := d.count(8 + 4 + 4*cs + 8*K + 4*D + 8 + 8 + 4*8 + 2*L)
	u.id = d.i64s(nu)
	u.profile = slices.Clone(d.raw(4 * nu))
	u.ctr = d.f32s(nu * cs)
	u.catImp = d.f32s(nu * K)
	u.catWT = d.f32s(nu * K)
	u.hist = d.f32s(nu * D)
	histW := d.f64s(nu)
	lens := d.i64s(nu)
	var total int64
	for _, n := range lens {
		if n < 0 || n > int64(len(d.b)/8) {
			d.fail("follow list of %d entries", n)
			break
		}
		total += n
	}
	if d.err != nil {
		return nil, d.err
	}
	if total > int64(len(d.b)/8) {
		return nil, fmt.Errorf("%w: %d follows past the end", ErrBadSnapshot, total)
	}
	all := d.i64s(int(total))
	u.follows = make([][]int64, nu)
	for i, n := range lens {
		u.follows[i], all = all[:n:n], all[n:]
	}
	var sessCols [4][]int64
	for j := range sessCols {
		sessCols[j] = d.i64s(nu)
	}
	u.sess = make([]userSess, nu)
	for i := range u.sess {
		n, wt := sessCols[2][i], sessCols[3][i]
		if n < 0 || n > math.MaxInt32 || wt < 0 || wt > math.MaxInt32 {
			d.fail("session counts %d, %d", n, wt)
			break
		}
		u.sess[i] = userSess{histW: histW[i], id: sessCols[0][i], at: sessCols[1][i], n: int32(n), wt: int32(wt)}
	}
	u.lastCats = d.i16s(nu * L)
	if version >= 3 {
		nrc := d.count(8 + 8 + 4)
		rc, ri, rv := d.i64s(nrc), d.i64s(nrc), d.f32s(nrc)
		for j := range rc {
			c, r, v := rc[j], ri[j], rv[j]
			if c < 0 || c >= int64(len(s.src.region)) || r < 0 || r >= int64(nr) || !(v > 0) || math.IsInf(float64(v), 0) {
				d.fail("region count %v of reel index %d in country %d", v, r, c)
				break
			}
			s.src.region[c][int32(r)] = v
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes past the end of the state", ErrBadSnapshot, len(d.b))
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	s.rebuildByAuthor()
	s.rebuildSources()
	return s, nil
}

// check validates decoded state and rebuilds the indexes and norms.
func (s *Store) check() error {
	D, K := s.cfg.EmbedDim, s.cfg.Categories
	widths := [4]int{s.cfg.Countries, s.cfg.Languages, s.cfg.AgeBuckets, s.cfg.Devices}
	for _, v := range s.centroids {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return errors.New("a centroid is not finite")
		}
	}
	r := &s.reels
	for i, id := range r.id {
		if _, dup := r.index.get(id); dup || id < 0 {
			return fmt.Errorf("reel id %d repeated or negative", id)
		}
		r.index.put(id, int32(i))
		m := &r.recs[i].reelMeta
		if a := m.author; a < -1 || int(a) >= len(s.authors.id) {
			return fmt.Errorf("reel %d: author index %d out of range", id, a)
		}
		e := r.emb[i*D : (i+1)*D]
		if err := s.checkEmbedding(e); err != nil {
			return fmt.Errorf("reel %d: %v", id, err)
		}
		m.norm = float32(math.Sqrt(float64(kernels.Dot(e, e))))
	}
	a := &s.authors
	for i, id := range a.id {
		if _, dup := a.index.get(id); dup || id < 0 {
			return fmt.Errorf("author id %d repeated or negative", id)
		}
		a.index.put(id, int32(i))
	}
	u := &s.users
	for i, id := range u.id {
		if _, dup := u.index.get(id); dup || id < 0 {
			return fmt.Errorf("user id %d repeated or negative", id)
		}
		u.index.put(id, int32(i))
		for j, w := range widths {
			if int(u.profile[4*i+j]) >= w {
				return fmt.Errorf("user %d: profile slot %d out of range", id, u.profile[4*i+j])
			}
		}
		if !slices.IsSorted(u.follows[i]) {
			return fmt.Errorf("user %d: follows not sorted", id)
		}
	}
	for _, c := range u.lastCats {
		if c < -1 || int(c) >= K {
			return fmt.Errorf("session category %d out of range", c)
		}
	}
	return nil
}

type snapDecoder struct {
	b   []byte
	err error
}

func (d *snapDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrBadSnapshot, fmt.Sprintf(format, args...))
	}
}

func (d *snapDecoder) raw(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail("truncated: want %d bytes, %d left", n, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *snapDecoder) u64() uint64 {
	b := d.raw(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// count reads an item count and checks that that many items of at least
// minSize bytes each can still follow.
func (d *snapDecoder) count(minSize int) int {
	n := d.u64()
	if d.err != nil {
		return 0
	}
	if n > snapMaxItems || n*uint64(minSize) > uint64(len(d.b)) {
		d.fail("count %d does not fit the %d bytes left", n, len(d.b))
		return 0
	}
	return int(n)
}

func get[T any](d *snapDecoder, n, size int, conv func([]byte) T) []T {
	b := d.raw(n * size)
	if b == nil {
		return make([]T, n)
	}
	v := make([]T, n)
	for i := range v {
		v[i] = conv(b[i*size:])
	}
	return v
}

func (d *snapDecoder) i64s(n int) []int64 {
	return get(d, n, 8, func(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b)) })
}
func (d *snapDecoder) i16s(n int) []int16 {
	return get(d, n, 2, func(b []byte) int16 { return int16(binary.LittleEndian.Uint16(b)) })
}
func (d *snapDecoder) f64s(n int) []float64 {
	return get(d, n, 8, func(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) })
}
func (d *snapDecoder) f32s(n int) []float32 {
	return get(d, n, 4, func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) })
}
func (d *snapDecoder) f64sInto(dst []float64) { copy(dst, d.f64s(len(dst))) }
