package sim

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/reelrank/reelrank/internal/fsutil"
)

// The files of a world folder.
const (
	FileManifest   = "world.json"
	FileUsers      = "users.bin"
	FileReels      = "reels.bin"
	FileFollows    = "follows.bin"
	FileEmbeddings = "reels.fvecs"
	FileReelsText  = "reels.tsv"
	FileEvents     = "events.jsonl"
)

// FormatVersion is the version of the world files this package writes and reads.
const FormatVersion = 1

const (
	formatName = "reelrank-sim"
	binMagic   = "RRSIMBIN"
	headerSize = 40
	userFixed  = 28 // bytes of a user record before its interest vectors
	reelSize   = 24
)

// Errors of Open and Verify (wrapped with the file and the detail).
var (
	ErrCorrupt = errors.New("sim: corrupt world file")
	ErrVersion = errors.New("sim: unsupported world format version")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// FileInfo describes one file of a world in its manifest.
type FileInfo struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	CRC32C string `json:"crc32c"` // of the whole file, 8 hex digits
}

// Counts are the sizes of a world and of its event log.
type Counts struct {
	Users        int64            `json:"users"`
	Reels        int64            `json:"reels"` // initial catalogue plus uploads
	InitialReels int64            `json:"initial_reels"`
	Uploads      int64            `json:"uploads"` // reels uploaded during the simulated days
	Authors      int64            `json:"authors"` // users with at least one reel
	Follows      int64            `json:"follows"` // initial follow edges
	Sessions     int64            `json:"sessions"`
	Impressions  int64            `json:"impressions"`
	Events       int64            `json:"events"`
	ByType       map[string]int64 `json:"events_by_type"`
}

// TopicInfo names a topic and its words.
type TopicInfo struct {
	Name  string   `json:"name"`
	Words []string `json:"words"`
}

// manifest is world.json.
type manifest struct {
	Format     string      `json:"format"`
	Version    int         `json:"version"`
	Config     Config      `json:"config"`
	Counts     Counts      `json:"counts"`
	Policy     string      `json:"policy"`
	Countries  []Country   `json:"countries"`
	Languages  []string    `json:"languages"`
	Devices    []string    `json:"devices"`
	AgeBuckets []string    `json:"age_buckets"`
	Topics     []TopicInfo `json:"topics"`
	Files      []FileInfo  `json:"files"`
}

// outFile is a file being written under a temporary name; commit puts it
// in place.
type outFile struct {
	path string
	t    *fsutil.Temp
	bw   *bufio.Writer
	crc  uint32
	n    int64
}

func createOut(dir, name string) (*outFile, error) {
	path := filepath.Join(dir, name)
	// Not private, as a temporary file would be: the world is data to share.
	t, err := fsutil.CreateTemp(path, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sim: create %s: %w", path, err)
	}
	return &outFile{path: path, t: t, bw: bufio.NewWriterSize(t.File, 1<<20)}, nil
}

func (o *outFile) Write(p []byte) (int, error) {
	o.crc = crc32.Update(o.crc, castagnoli, p)
	n, err := o.bw.Write(p)
	o.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("sim: write %s: %w", o.path, err)
	}
	return n, nil
}

// finish flushes and syncs the temporary file and returns its entry. The
// sync here, before Generate takes the old world's manifest away, keeps
// commit's own sync short.
func (o *outFile) finish() (FileInfo, error) {
	err := o.bw.Flush()
	if err == nil {
		err = o.t.File.Sync()
	}
	if err != nil {
		return FileInfo{}, fmt.Errorf("sim: write %s: %w", o.path, err)
	}
	return FileInfo{Name: filepath.Base(o.path), Bytes: o.n, CRC32C: fmt.Sprintf("%08x", o.crc)}, nil
}

// commit puts the finished file in place.
func (o *outFile) commit() error {
	if err := o.t.Commit(); err != nil {
		return fmt.Errorf("sim: write %s: %w", o.path, err)
	}
	return nil
}

// discard removes the temporary file (after an error); after commit it
// does nothing.
func (o *outFile) discard() { o.t.Abort() }

func putHeader(b []byte, kind string, recSize uint32, count uint64, p1, p2 uint32) []byte {
	b = append(b, binMagic...)
	var k [8]byte
	copy(k[:], kind)
	b = append(b, k[:]...)
	b = binary.LittleEndian.AppendUint32(b, FormatVersion)
	b = binary.LittleEndian.AppendUint32(b, recSize)
	b = binary.LittleEndian.AppendUint64(b, count)
	b = binary.LittleEndian.AppendUint32(b, p1)
	return binary.LittleEndian.AppendUint32(b, p2)
}

// binWriter writes a .bin file: header, records, then the CRC-32C of all
// that came before.
type binWriter struct {
	o   *outFile
	crc uint32
}

func (b *binWriter) write(p []byte) error {
	b.crc = crc32.Update(b.crc, castagnoli, p)
	_, err := b.o.Write(p)
	return err
}

// close writes the trailer: the CRC-32C of the header and records, big
// endian (a little-endian CRC would make every file's own CRC a constant).
func (b *binWriter) close() error {
	return b.write(binary.BigEndian.AppendUint32(nil, b.crc))
}

func f32(b []byte, x float32) []byte { return binary.LittleEndian.AppendUint32(b, math.Float32bits(x)) }

func (w *World) writeUsers(o *outFile) error {
	T := w.cfg.Topics
	recSize := userFixed + 4*w.stride
	bw := &binWriter{o: o}
	if err := bw.write(putHeader(nil, "users", uint32(recSize), uint64(len(w.users)), uint32(T), uint32(w.anchors))); err != nil {
		return err
	}
	buf := make([]byte, 0, 1<<16)
	for i := range w.users {
		u := &w.users[i]
		buf = f32(buf, u.activity)
		buf = f32(buf, u.authorQ)
		buf = f32(buf, u.creator)
		buf = binary.LittleEndian.AppendUint32(buf, u.followers)
		buf = binary.LittleEndian.AppendUint32(buf, u.reels)
		buf = append(buf, u.country, u.lang, u.age, u.device, u.focus[0], u.focus[1], 0, 0)
		for _, x := range w.interest[i*w.stride : (i+1)*w.stride] {
			buf = f32(buf, x)
		}
		if len(buf) > 1<<15 {
			if err := bw.write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if err := bw.write(buf); err != nil {
		return err
	}
	return bw.close()
}

func appendReel(buf []byte, r *reelRec) []byte {
	buf = binary.LittleEndian.AppendUint64(buf, uint64(r.upload))
	buf = binary.LittleEndian.AppendUint32(buf, r.author)
	buf = f32(buf, r.quality)
	buf = append(buf, r.topic[0], r.topic[1], r.topic[2], r.weight[0], r.weight[1], r.weight[2], r.dur, r.lang)
	return buf
}

func (w *World) writeReels(o *outFile) error {
	bw := &binWriter{o: o}
	if err := bw.write(putHeader(nil, "reels", reelSize, uint64(len(w.reels)), uint32(w.initialReels), 0)); err != nil {
		return err
	}
	buf := make([]byte, 0, 1<<16)
	for i := range w.reels {
		buf = appendReel(buf, &w.reels[i])
		if len(buf) > 1<<15 {
			if err := bw.write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if err := bw.write(buf); err != nil {
		return err
	}
	return bw.close()
}

func (w *World) writeFollows(o *outFile) error {
	bw := &binWriter{o: o}
	if err := bw.write(putHeader(nil, "follows", 4, uint64(len(w.followTo)), uint32(len(w.users)), 0)); err != nil {
		return err
	}
	buf := make([]byte, 0, 1<<16)
	flush := func() error {
		if len(buf) > 1<<15 {
			err := bw.write(buf)
			buf = buf[:0]
			return err
		}
		return nil
	}
	for _, x := range w.followOff {
		buf = binary.LittleEndian.AppendUint64(buf, x)
		if err := flush(); err != nil {
			return err
		}
	}
	for _, x := range w.followTo {
		buf = binary.LittleEndian.AppendUint32(buf, x)
		if err := flush(); err != nil {
			return err
		}
	}
	if err := bw.write(buf); err != nil {
		return err
	}
	return bw.close()
}

// streamChunks builds the bytes of [0, n) in chunks on up to threads
// goroutines, a bounded window at a time, and writes them in order.
func streamChunks(ctx context.Context, threads, n, chunk int, gen func(lo, hi int, dst []byte) []byte, out io.Writer) error {
	threads = threadsOr(threads)
	window := 4 * threads
	bufs := make([][]byte, window)
	for base := 0; base < n; base += window * chunk {
		hi := min(n, base+window*chunk)
		err := parallel(ctx, threads, hi-base, chunk, func(lo, h int) {
			k := lo / chunk
			bufs[k] = gen(base+lo, base+h, bufs[k][:0])
		})
		if err != nil {
			return err
		}
		for k := 0; k*chunk < hi-base; k++ {
			if _, err := out.Write(bufs[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeEmbeddings streams every reel's content embedding, in id order, as
// TEXMEX .fvecs (per vector: int32 dimension, then the float32 values).
func (w *World) writeEmbeddings(ctx context.Context, threads int, o *outFile) error {
	D := w.cfg.EmbedDim
	return streamChunks(ctx, threads, len(w.reels), 2048, func(lo, hi int, dst []byte) []byte {
		v := make([]float32, D)
		for id := lo + 1; id <= hi; id++ {
			w.embedInto(v, int64(id))
			dst = binary.LittleEndian.AppendUint32(dst, uint32(D))
			for _, x := range v {
				dst = f32(dst, x)
			}
		}
		return dst
	}, o)
}

// writeReelsText writes the public fields of every reel as tab-separated text.
func (w *World) writeReelsText(ctx context.Context, threads int, o *outFile) error {
	if _, err := io.WriteString(o, "id\tauthor\tupload_ms\tduration_s\tlanguage\tdescription\n"); err != nil {
		return err
	}
	return streamChunks(ctx, threads, len(w.reels), 8192, func(lo, hi int, dst []byte) []byte {
		for id := lo + 1; id <= hi; id++ {
			r := &w.reels[id-1]
			dst = strconv.AppendInt(dst, int64(id), 10)
			dst = append(dst, '\t')
			dst = strconv.AppendUint(dst, uint64(r.author), 10)
			dst = append(dst, '\t')
			dst = strconv.AppendInt(dst, r.upload, 10)
			dst = append(dst, '\t')
			dst = strconv.AppendUint(dst, uint64(r.dur), 10)
			dst = append(dst, '\t')
			dst = append(dst, languageTable[r.lang]...)
			dst = append(dst, '\t')
			dst = w.description(dst, int64(id))
			dst = append(dst, '\n')
		}
		return dst
	}, o)
}

func (w *World) manifest(counts Counts, policy string, files []FileInfo) manifest {
	m := manifest{
		Format: formatName, Version: FormatVersion, Config: w.cfg, Counts: counts, Policy: policy,
		Countries: w.countries, Languages: languageTable, Devices: deviceTable, AgeBuckets: ageTable, Files: files,
	}
	for t := range w.topicNames {
		m.Topics = append(m.Topics, TopicInfo{Name: w.topicNames[t], Words: w.topicWords[t]})
	}
	return m
}

func corrupt(path, format string, a ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrCorrupt, path, fmt.Sprintf(format, a...))
}

// readManifest reads and checks dir/world.json.
func readManifest(dir string) (*manifest, error) {
	path := filepath.Join(dir, FileManifest)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sim: open world %s: %w", dir, err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, corrupt(path, "%v", err)
	}
	if m.Format != formatName {
		return nil, corrupt(path, "format %q, want %q", m.Format, formatName)
	}
	if m.Version != FormatVersion {
		return nil, fmt.Errorf("%w: %s: version %d, this build reads %d", ErrVersion, path, m.Version, FormatVersion)
	}
	if err := m.Config.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
	if len(m.Countries) == 0 || len(m.Countries) > 255 || len(m.Topics) != m.Config.Topics ||
		!equalStrings(m.Languages, languageTable) || !equalStrings(m.Devices, deviceTable) || !equalStrings(m.AgeBuckets, ageTable) {
		return nil, corrupt(path, "tables of countries, languages, devices, age buckets or topics do not fit this build")
	}
	for _, c := range m.Countries {
		if c.Language < 0 || c.Language >= len(languageTable) || c.OffsetMin < -14*60 || c.OffsetMin > 14*60 {
			return nil, corrupt(path, "country %q: language %d or offset %d out of range", c.Code, c.Language, c.OffsetMin)
		}
	}
	for _, t := range m.Topics {
		if len(t.Words) == 0 {
			return nil, corrupt(path, "topic %q has no words", t.Name)
		}
	}
	return &m, nil
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (m *manifest) file(dir, name string) (FileInfo, string, error) {
	path := filepath.Join(dir, name)
	for _, f := range m.Files {
		if f.Name == name {
			st, err := os.Stat(path)
			if err != nil {
				return f, path, fmt.Errorf("sim: open world %s: %w", dir, err)
			}
			if st.Size() != f.Bytes {
				return f, path, corrupt(path, "%d bytes, the manifest says %d (truncated or replaced)", st.Size(), f.Bytes)
			}
			return f, path, nil
		}
	}
	return FileInfo{}, path, corrupt(filepath.Join(dir, FileManifest), "no entry for %s", name)
}

func checkCRC(path string, f FileInfo, data []byte) error {
	if got := fmt.Sprintf("%08x", crc32.Checksum(data, castagnoli)); got != f.CRC32C {
		return corrupt(path, "checksum %s, the manifest says %s", got, f.CRC32C)
	}
	return nil
}

// readBin reads a .bin file, checks its header, kind, trailer and manifest
// entry, and returns the header fields and the payload.
func (m *manifest) readBin(dir, name, kind string) (recSize uint32, count uint64, p1, p2 uint32, payload []byte, err error) {
	f, path, err := m.file(dir, name)
	if err != nil {
		return 0, 0, 0, 0, nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, 0, 0, nil, fmt.Errorf("sim: read %s: %w", path, err)
	}
	if err := checkCRC(path, f, b); err != nil {
		return 0, 0, 0, 0, nil, err
	}
	if len(b) < headerSize+4 {
		return 0, 0, 0, 0, nil, corrupt(path, "%d bytes, shorter than a header", len(b))
	}
	if string(b[:8]) != binMagic {
		return 0, 0, 0, 0, nil, corrupt(path, "bad magic %q", b[:8])
	}
	var k [8]byte
	copy(k[:], kind)
	if string(b[8:16]) != string(k[:]) {
		return 0, 0, 0, 0, nil, corrupt(path, "holds %q, want %q", b[8:16], kind)
	}
	if v := binary.LittleEndian.Uint32(b[16:]); v != FormatVersion {
		return 0, 0, 0, 0, nil, fmt.Errorf("%w: %s: version %d, this build reads %d", ErrVersion, path, v, FormatVersion)
	}
	body := b[:len(b)-4]
	if got, want := crc32.Checksum(body, castagnoli), binary.BigEndian.Uint32(b[len(b)-4:]); got != want {
		return 0, 0, 0, 0, nil, corrupt(path, "trailer checksum %08x, computed %08x", want, got)
	}
	return binary.LittleEndian.Uint32(b[20:]), binary.LittleEndian.Uint64(b[24:]),
		binary.LittleEndian.Uint32(b[32:]), binary.LittleEndian.Uint32(b[36:]), body[headerSize:], nil
}

func finite32(x float32) bool { return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) }

func rf32(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }

// Open loads the world written by Generate into dir. It checks the format
// version, every file's size and checksum, and every record's values, and
// returns an error wrapping ErrCorrupt, ErrVersion or fs.ErrNotExist for a
// bad, foreign or missing file; it never panics on bad files. The content
// embeddings stay in the mapped file. The event log is checked by size
// only (Verify checks its checksum too). Close the World when done.
func Open(dir string) (*World, error) {
	m, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	c := m.Config
	w := newWorld(c)
	w.countries = m.Countries
	for t, ti := range m.Topics {
		w.topicNames[t], w.topicWords[t] = ti.Name, ti.Words
	}
	if err := w.loadUsers(m, dir); err != nil {
		return nil, err
	}
	if err := w.loadReels(m, dir); err != nil {
		return nil, err
	}
	if err := w.loadFollows(m, dir); err != nil {
		return nil, err
	}
	w.finish()
	if _, _, err := m.file(dir, FileReelsText); err != nil {
		return nil, err
	}
	if _, _, err := m.file(dir, FileEvents); err != nil {
		return nil, err
	}
	if err := w.loadEmbeddings(m, dir); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *World) loadUsers(m *manifest, dir string) error {
	path := filepath.Join(dir, FileUsers)
	recSize, count, p1, p2, b, err := m.readBin(dir, FileUsers, "users")
	if err != nil {
		return err
	}
	T := w.cfg.Topics
	if count != uint64(w.cfg.Users) || p1 != uint32(T) || p2 != uint32(w.anchors) || recSize != uint32(userFixed+4*w.stride) {
		return corrupt(path, "%d users of %d topics and %d anchors in %d-byte records, the config wants %d, %d, %d, %d",
			count, p1, p2, recSize, w.cfg.Users, T, w.anchors, userFixed+4*w.stride)
	}
	if uint64(len(b)) != count*uint64(recSize) {
		return corrupt(path, "%d bytes of records, want %d", len(b), count*uint64(recSize))
	}
	w.users = make([]userRec, count)
	w.interest = make([]float32, int(count)*w.stride)
	for i := range w.users {
		r := b[i*int(recSize):]
		u := &w.users[i]
		u.activity, u.authorQ, u.creator = rf32(r), rf32(r[4:]), rf32(r[8:])
		u.followers, u.reels = binary.LittleEndian.Uint32(r[12:]), binary.LittleEndian.Uint32(r[16:])
		u.country, u.lang, u.age, u.device = r[20], r[21], r[22], r[23]
		u.focus = [2]uint8{r[24], r[25]}
		if !finite32(u.activity) || !finite32(u.authorQ) || !finite32(u.creator) || u.activity < 0 || u.creator < 0 ||
			int(u.country) >= len(w.countries) || int(u.lang) >= len(languageTable) || int(u.age) >= len(ageTable) ||
			int(u.device) >= len(deviceTable) || int(u.focus[0]) >= T || int(u.focus[1]) >= T {
			return corrupt(path, "user %d has values out of range", i+1)
		}
		iv := w.interest[i*w.stride : (i+1)*w.stride]
		for j := range iv {
			x := rf32(r[userFixed+4*j:])
			if !finite32(x) || x < -1e3 || x > 1e3 {
				return corrupt(path, "user %d: interest %v out of range", i+1, x)
			}
			iv[j] = x
		}
	}
	return nil
}

func (w *World) loadReels(m *manifest, dir string) error {
	path := filepath.Join(dir, FileReels)
	recSize, count, p1, _, b, err := m.readBin(dir, FileReels, "reels")
	if err != nil {
		return err
	}
	if recSize != reelSize || count != uint64(m.Counts.Reels) || p1 != uint32(w.cfg.Reels) || count < uint64(p1) {
		return corrupt(path, "%d reels (%d initial) of %d bytes, want %d (%d initial) of %d",
			count, p1, recSize, m.Counts.Reels, w.cfg.Reels, reelSize)
	}
	if uint64(len(b)) != count*reelSize {
		return corrupt(path, "%d bytes of records, want %d", len(b), count*reelSize)
	}
	w.initialReels = int(p1)
	w.reels = make([]reelRec, count)
	T := w.cfg.Topics
	var prev int64 = math.MinInt64
	for i := range w.reels {
		x := b[i*reelSize:]
		r := &w.reels[i]
		r.upload = int64(binary.LittleEndian.Uint64(x))
		r.author = binary.LittleEndian.Uint32(x[8:])
		r.quality = rf32(x[12:])
		r.topic = [3]uint8{x[16], x[17], x[18]}
		r.weight = [3]uint8{x[19], x[20], x[21]}
		r.dur, r.lang = x[22], x[23]
		initial := i < w.initialReels
		if r.author < 1 || int64(r.author) > int64(len(w.users)) || !finite32(r.quality) ||
			int(r.topic[0]) >= T || int(r.topic[1]) >= T || int(r.topic[2]) >= T ||
			int(r.weight[0])+int(r.weight[1])+int(r.weight[2]) != 255 ||
			r.dur < 5 || r.dur > 90 || int(r.lang) >= len(languageTable) ||
			r.upload < prev || r.upload <= 0 || initial != (r.upload < w.startMS) {
			return corrupt(path, "reel %d has values out of range or out of upload order", i+1)
		}
		prev = r.upload
	}
	return nil
}

func (w *World) loadFollows(m *manifest, dir string) error {
	path := filepath.Join(dir, FileFollows)
	recSize, count, p1, _, b, err := m.readBin(dir, FileFollows, "follows")
	if err != nil {
		return err
	}
	U := len(w.users)
	if recSize != 4 || p1 != uint32(U) || uint64(len(b)) != 8*uint64(U+1)+4*count {
		return corrupt(path, "%d bytes for %d users and %d edges", len(b), p1, count)
	}
	w.followOff = make([]uint64, U+1)
	for i := range w.followOff {
		w.followOff[i] = binary.LittleEndian.Uint64(b[8*i:])
		if i > 0 && w.followOff[i] < w.followOff[i-1] || w.followOff[i] > count || (i == 0 && w.followOff[0] != 0) {
			return corrupt(path, "offsets out of order at user %d", i)
		}
	}
	if w.followOff[U] != count {
		return corrupt(path, "offsets end at %d, want %d", w.followOff[U], count)
	}
	e := b[8*(U+1):]
	w.followTo = make([]uint32, count)
	followers := make([]uint32, U)
	for u := range U {
		var last uint32
		for j := w.followOff[u]; j < w.followOff[u+1]; j++ {
			a := binary.LittleEndian.Uint32(e[4*j:])
			if a < 1 || int(a) > U || a <= last || int(a) == u+1 {
				return corrupt(path, "user %d: followee %d out of range or order", u+1, a)
			}
			last = a
			w.followTo[j] = a
			followers[a-1]++
		}
	}
	reels := make([]uint32, U)
	for i := range w.reels {
		reels[w.reels[i].author-1]++
	}
	for u := range U {
		if followers[u] != w.users[u].followers || reels[u] != w.users[u].reels {
			return corrupt(path, "user %d: follower or reel count disagrees with users.bin", u+1)
		}
	}
	return nil
}

func (w *World) loadEmbeddings(m *manifest, dir string) error {
	f, path, err := m.file(dir, FileEmbeddings)
	if err != nil {
		return err
	}
	D := w.cfg.EmbedDim
	if want := int64(len(w.reels)) * int64(4+4*D); f.Bytes != want {
		return corrupt(path, "%d bytes, want %d for %d reels of dimension %d", f.Bytes, want, len(w.reels), D)
	}
	data, release, err := fsutil.Map(path)
	if err != nil {
		return fmt.Errorf("sim: open %s: %w", path, err)
	}
	fail := func(err error) error {
		release()
		return err
	}
	if int64(len(data)) != f.Bytes {
		return fail(corrupt(path, "changed size while opening"))
	}
	if err := checkCRC(path, f, data); err != nil {
		return fail(err)
	}
	for i := range w.reels {
		if binary.LittleEndian.Uint32(data[i*(4+4*D):]) != uint32(D) {
			return fail(corrupt(path, "vector %d: dimension is not %d", i+1, D))
		}
	}
	w.emb, w.embRelease = data, release
	return nil
}

// Verify checks the checksum of every file of the world in dir, the event
// log and the text files included.
func Verify(dir string) error {
	m, err := readManifest(dir)
	if err != nil {
		return err
	}
	for _, name := range []string{FileUsers, FileReels, FileFollows, FileEmbeddings, FileReelsText, FileEvents} {
		f, path, err := m.file(dir, name)
		if err != nil {
			return err
		}
		fh, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("sim: verify %s: %w", path, err)
		}
		h := crc32.New(castagnoli)
		_, err = io.Copy(h, bufio.NewReaderSize(fh, 1<<20))
		fh.Close()
		if err != nil {
			return fmt.Errorf("sim: verify %s: %w", path, err)
		}
		if got := fmt.Sprintf("%08x", h.Sum32()); got != f.CRC32C {
			return corrupt(path, "checksum %s, the manifest says %s", got, f.CRC32C)
		}
	}
	return nil
}
