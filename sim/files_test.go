package sim

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyWorld copies the shared world into a fresh folder for damage.
func copyWorld(t *testing.T) string {
	t.Helper()
	src, _ := sharedWorld(t)
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestOpenRoundTrip(t *testing.T) {
	dir, sum := sharedWorld(t)
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := Verify(dir); err != nil {
		t.Fatal(err)
	}
	g := memWorld(t, testConfig())
	if w.NumUsers() != g.NumUsers() || w.NumReels() != g.NumReels() || w.NumFollows() != g.NumFollows() ||
		int64(w.NumReels()) != sum.Counts.Reels || int64(len(w.Authors())) != sum.Counts.Authors {
		t.Fatalf("opened world differs in size from the generated one")
	}
	for _, id := range []int64{1, 2, 100, int64(w.NumReels())} {
		a, _ := w.Reel(id)
		b, _ := g.Reel(id)
		if a.Description != b.Description || a.Upload != b.Upload || a.Author != b.Author || a.Quality != b.Quality {
			t.Errorf("reel %d: opened %+v, generated %+v", id, a, b)
		}
		ea, eb := w.Embedding(id), g.Embedding(id)
		var norm float64
		for i := range ea {
			if ea[i] != eb[i] {
				t.Fatalf("reel %d: embedding differs at %d", id, i)
			}
			norm += float64(ea[i]) * float64(ea[i])
		}
		if math.Abs(norm-1) > 1e-5 {
			t.Errorf("reel %d: embedding norm² %v", id, norm)
		}
		if !strings.HasPrefix(a.Description, "#"+w.TopicName(a.Topics[0])) {
			t.Errorf("reel %d: description %q does not start with its topic", id, a.Description)
		}
	}
	ctx := Context{Time: w.Start() + 5*msPerHour, Position: 2, Prev: 3}
	for u := int64(1); u <= 20; u++ {
		if w.Probs(u, u*7, ctx) != g.Probs(u, u*7, ctx) {
			t.Fatalf("user %d: the opened oracle differs", u)
		}
	}
	// The embedding is a noisy view of the topics: closer to its main
	// topic's prototype than to the others, on average.
	D := w.cfg.EmbedDim
	var own, other float64
	for id := int64(1); id <= 500; id++ {
		r := &w.reels[id-1]
		e := w.Embedding(id)
		for t := range w.cfg.Topics {
			var dot float64
			for i, x := range e {
				dot += float64(x) * float64(w.topicVecs[t*D+i])
			}
			if t == int(r.topic[0]) {
				own += dot
			} else {
				other += dot / float64(w.cfg.Topics-1)
			}
		}
	}
	if own/500 < 0.4 || other/500 > 0.1 {
		t.Errorf("mean cosine to the main topic %.3f, to the others %.3f", own/500, other/500)
	}
	if len(w.Users()) != w.NumUsers() || len(w.Follows()) != w.NumFollows() || len(w.Reels()) != w.NumReels() {
		t.Error("bulk accessors disagree with the counts")
	}
	u, ok := w.User(3)
	if !ok || len(u.Interest) != w.cfg.Topics || u.Country == "" || len(w.Followees(3, nil)) != u.Followees {
		t.Errorf("user 3: %+v", u)
	}
	if _, ok := w.User(0); ok {
		t.Error("user 0 exists")
	}
	if w.Embedding(0) != nil {
		t.Error("embedding of reel 0")
	}
}

func TestOpenErrors(t *testing.T) {
	flip := func(name string, at func(size int64) int64) func(dir string) {
		return func(dir string) {
			p := filepath.Join(dir, name)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[at(int64(len(b)))] ^= 0x40
			os.WriteFile(p, b, 0o644)
		}
	}
	truncate := func(name string) func(dir string) {
		return func(dir string) {
			p := filepath.Join(dir, name)
			st, _ := os.Stat(p)
			os.Truncate(p, st.Size()/2)
		}
	}
	edit := func(old, new string) func(dir string) {
		return func(dir string) {
			p := filepath.Join(dir, FileManifest)
			b, _ := os.ReadFile(p)
			s := strings.Replace(string(b), old, new, 1)
			if s == string(b) {
				t.Fatalf("manifest has no %q", old)
			}
			os.WriteFile(p, []byte(s), 0o644)
		}
	}
	cases := []struct {
		name   string
		damage func(dir string)
		want   error
	}{
		{"no manifest", func(dir string) { os.Remove(filepath.Join(dir, FileManifest)) }, fs.ErrNotExist},
		{"no users", func(dir string) { os.Remove(filepath.Join(dir, FileUsers)) }, fs.ErrNotExist},
		{"no embeddings", func(dir string) { os.Remove(filepath.Join(dir, FileEmbeddings)) }, fs.ErrNotExist},
		{"no events", func(dir string) { os.Remove(filepath.Join(dir, FileEvents)) }, fs.ErrNotExist},
		{"garbage manifest", func(dir string) { os.WriteFile(filepath.Join(dir, FileManifest), []byte("{\"format\": [1,"), 0o644) }, ErrCorrupt},
		{"empty manifest", func(dir string) { os.WriteFile(filepath.Join(dir, FileManifest), nil, 0o644) }, ErrCorrupt},
		{"foreign manifest", edit(`"format": "reelrank-sim"`, `"format": "other"`), ErrCorrupt},
		{"future version", edit(`"version": 1`, `"version": 9`), ErrVersion},
		{"bad config", edit(`"topics": 32`, `"topics": 1`), ErrCorrupt},
		{"other size", edit(`"users": 3000`, `"users": 3001`), ErrCorrupt},
		{"bad crc", edit(`"crc32c": "`, `"crc32c": "0`), ErrCorrupt},
		{"truncated users", truncate(FileUsers), ErrCorrupt},
		{"truncated reels", truncate(FileReels), ErrCorrupt},
		{"truncated follows", truncate(FileFollows), ErrCorrupt},
		{"truncated embeddings", truncate(FileEmbeddings), ErrCorrupt},
		{"truncated events", truncate(FileEvents), ErrCorrupt},
		{"flipped user byte", flip(FileUsers, func(n int64) int64 { return n / 3 }), ErrCorrupt},
		{"flipped reel byte", flip(FileReels, func(n int64) int64 { return n - 9 }), ErrCorrupt},
		{"flipped header", flip(FileFollows, func(int64) int64 { return 2 }), ErrCorrupt},
		{"flipped embedding", flip(FileEmbeddings, func(n int64) int64 { return n / 2 }), ErrCorrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyWorld(t)
			tc.damage(dir)
			w, err := Open(dir)
			if err == nil {
				w.Close()
				t.Fatal("Open accepted a damaged world")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			t.Log(err)
		})
	}
	// A flipped byte in the event log passes Open (size only) but not Verify.
	dir := copyWorld(t)
	flip(FileEvents, func(n int64) int64 { return n / 2 })(dir)
	if err := Verify(dir); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Verify of a damaged log: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "nowhere")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing folder: %v", err)
	}
}

// TestRecordChecks writes records with values out of range but valid
// checksums: Open must refuse them.
func TestRecordChecks(t *testing.T) {
	c := testConfig()
	c.Users, c.Reels, c.Days = 300, 500, 1
	for name, damage := range map[string]func(w *World){
		"reel author": func(w *World) { w.reels[3].author = uint32(len(w.users) + 5) },
		"reel order":  func(w *World) { w.reels[10].upload = w.reels[11].upload + 1 },
		"reel topic":  func(w *World) { w.reels[3].topic[1] = 200 },
		"user device": func(w *World) { w.users[7].device = 9 },
		"interest":    func(w *World) { w.interest[5] = float32(math.NaN()) },
		"followers":   func(w *World) { w.users[0].followers += 3 },
	} {
		t.Run(name, func(t *testing.T) {
			w := memWorld(t, c)
			damage(w)
			dir := t.TempDir()
			var files []FileInfo
			for _, f := range []struct {
				name string
				fn   func(*outFile) error
			}{{FileUsers, w.writeUsers}, {FileReels, w.writeReels}, {FileFollows, w.writeFollows},
				{FileEmbeddings, func(o *outFile) error { return w.writeEmbeddings(context.Background(), 1, o) }},
				{FileReelsText, func(o *outFile) error { return nil }}, {FileEvents, func(o *outFile) error { return nil }}} {
				o, err := createOut(dir, f.name)
				if err != nil {
					t.Fatal(err)
				}
				if err := f.fn(o); err != nil {
					t.Fatal(err)
				}
				fi, err := o.finish()
				if err != nil {
					t.Fatal(err)
				}
				o.commit()
				files = append(files, fi)
			}
			b, _ := jsonIndent(w.manifest(Counts{Reels: int64(len(w.reels))}, "", files))
			os.WriteFile(filepath.Join(dir, FileManifest), b, 0o644)
			if _, err := Open(dir); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestBadPolicy(t *testing.T) {
	c := testConfig()
	c.Users, c.Reels, c.Days = 200, 300, 1
	dir := t.TempDir()
	_, err := Generate(context.Background(), c, dir, GenerateOptions{Policy: &badPolicy{}})
	if !errors.Is(err, ErrPolicy) {
		t.Fatalf("got %v, want ErrPolicy", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("%d files left after a failed Generate", len(ents))
	}
	// A random policy world: every propensity is 1/(available - shown).
	s, err := Generate(context.Background(), c, dir, GenerateOptions{Policy: &RandomPolicy{}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	shown := map[int64]int64{}
	for _, l := range readLog(t, dir) {
		if l.Type != "impression" {
			continue
		}
		want := 1 / float64(w.Available(l.TS)-shown[l.Sess])
		if l.Prop != want || l.Arm != "random" {
			t.Fatalf("impression at %d: prop %v arm %q, want %v random", l.TS, l.Prop, l.Arm, want)
		}
		shown[l.Sess]++
	}
	if s.Policy != "*sim.RandomPolicy" {
		t.Errorf("summary policy %q", s.Policy)
	}
}
