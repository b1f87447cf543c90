package features

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

func requestAll(t testing.TB, s *Store, users []int64, tm int64) [][]float32 {
	t.Helper()
	var out [][]float32
	for _, u := range users {
		r := &Request{User: u, Reels: []int64{1, 2, 3, 50, 299, 5000}, Context: Context{Time: tm, Session: 3}, Embeddings: true}
		if err := s.Features(r); err != nil {
			t.Fatal(err)
		}
		out = append(out, slices.Concat(r.UserVec, r.ReelVec, r.CrossVec, r.Emb))
	}
	return out
}

func TestSnapshotRoundTrip(t *testing.T) {
	evs := testLog(4, 200, 40, 300)
	s, _, _ := replayAll(t, Config{}, evs, 50)
	path := filepath.Join(t.TempDir(), "store.snap")
	if err := s.SaveSnapshot(path); err != nil {
		t.Fatal(err)
	}
	l, err := LoadSnapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	tm := evs[len(evs)-1].Time + 5000
	users := []int64{1, 2, 17, 40, 12345}
	a, b := requestAll(t, s, users, tm), requestAll(t, l, users, tm)
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Fatalf("user %d's features differ after a snapshot round trip", users[i])
		}
	}
	if s.Stats() != l.Stats() || !l.Spec().Equal(s.Spec()) || !slices.Equal(s.Centroids(), l.Centroids()) {
		t.Fatalf("stats %+v and %+v", s.Stats(), l.Stats())
	}
	// Applying the same events after the snapshot keeps them equal.
	more := testLog(5, 30, 40, 300)
	for i := range more {
		more[i].Time += tm - t0
	}
	if err := s.Apply(more); err != nil {
		t.Fatal(err)
	}
	if err := l.Apply(more); err != nil {
		t.Fatal(err)
	}
	tm = more[len(more)-1].Time + 1
	a, b = requestAll(t, s, users, tm), requestAll(t, l, users, tm)
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Fatalf("user %d's features differ after applying the same events", users[i])
		}
	}
}

func TestSnapshotCorrupt(t *testing.T) {
	s, _, _ := replayAll(t, Config{}, testLog(6, 20, 10, 300), 50)
	dir := t.TempDir()
	path := filepath.Join(dir, "store.snap")
	if err := s.SaveSnapshot(path); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":     nil,
		"not ours":  []byte("hello, world: this is not a snapshot at all"),
		"truncated": good[:len(good)/2],
		"no end":    good[:len(good)-1],
		"bit flip":  flip(good, len(good)/3),
		"header":    flip(good, 9),
	}
	for name, b := range cases {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadSnapshot(p); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: %v, want ErrBadSnapshot", name, err)
		}
	}
	if _, err := LoadSnapshot(filepath.Join(dir, "missing")); err == nil || errors.Is(err, ErrBadSnapshot) {
		t.Errorf("missing file: %v", err)
	}
	// A failed save leaves the old snapshot in place.
	if err := s.SaveSnapshot(filepath.Join(dir, "no-such-dir", "x")); err == nil {
		t.Error("saving into a missing folder succeeded")
	}
	if _, err := LoadSnapshot(path); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if filepath.Ext(e.Name()) != "" && e.Name() != "store.snap" {
			t.Errorf("left behind %s", e.Name())
		}
	}
}

func flip(b []byte, i int) []byte {
	c := slices.Clone(b)
	c[i] ^= 0x40
	return c
}

// FuzzDecodeSnapshot feeds mutated snapshots to the decoder, with the
// checksum fixed up so that decoding itself is exercised: it must return a
// store or ErrBadSnapshot, never panic.
func FuzzDecodeSnapshot(f *testing.F) {
	s := newTestStore(f, Config{EmbedDim: 2, Categories: 2, Windows: []time.Duration{time.Hour}, Countries: 2, Languages: 2, AgeBuckets: 2, Devices: 2, LastReels: 1})
	for r := range int64(4) {
		if err := s.PutReel(Reel{ID: r, Author: r % 2, Upload: t0, Duration: 9, Embedding: []float32{float32(r), 1}, Category: -1}); err != nil {
			f.Fatal(err)
		}
	}
	if err := s.FitCategories(1); err != nil {
		f.Fatal(err)
	}
	if err := s.Apply(testLog(8, 2, 2, 3)); err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(f.TempDir(), "s")
	if err := s.SaveSnapshot(path); err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	f.Add(good, 0, byte(0))
	f.Add(good, 20, byte(1))
	f.Add(good, 100, byte(0xff))
	f.Add(good, len(good)/2, byte(0x80))
	f.Fuzz(func(t *testing.T, b []byte, at int, x byte) {
		if len(b) > 1<<20 {
			return
		}
		b = slices.Clone(b)
		if at >= 0 && at < len(b) {
			b[at] ^= x
		}
		b = fixChecksum(b)
		st, err := decodeSnapshot(b)
		if err != nil && !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("error %v is not ErrBadSnapshot", err)
		}
		if err == nil {
			requestAll(t, st, []int64{1, 2}, st.newest)
		}
	})
}

func TestConcurrentApplyAndRequests(t *testing.T) {
	s := newTestStore(t, Config{})
	testCatalogue(t, s, 40, 300)
	evs := testLog(9, 300, 40, 300)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < len(evs); i += 37 {
			if err := s.Apply(evs[i:min(i+37, len(evs))]); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	dir := t.TempDir()
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &Request{User: int64(g + 1), Reels: []int64{1, 2, 3, 4, 5}}
			for i := range 200 {
				r.Context.Time = evs[len(evs)-1].Time + int64(i)
				if err := s.Features(r); err != nil {
					t.Error(err)
					return
				}
				if g == 0 && i%50 == 0 {
					if err := s.SaveSnapshot(filepath.Join(dir, "s")); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if got := s.Stats().Applied; got != int64(len(evs)) {
		t.Fatalf("applied %d of %d events", got, len(evs))
	}
}

// fixChecksum rewrites the checksum of a snapshot image whose body was
// changed, for tests that exercise the decoder past the checksum.
func fixChecksum(b []byte) []byte {
	if len(b) < 4+len(snapEnd) {
		return b
	}
	body := b[:len(b)-len(snapEnd)-4]
	binary.LittleEndian.PutUint32(b[len(body):], crc32.Checksum(body, castagnoli))
	return b
}
