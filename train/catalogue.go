package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/reelrank/reelrank/features"
)

// Catalogue is what training knows of the world before the log: users
// with their profiles, authors with their follower counts, the follow
// graph and the reels with their metadata and content embeddings. It is
// what a feature store holds besides its counters.
type Catalogue struct {
	// EmbedDim is the content embeddings' dimension.
	EmbedDim int
	// Users' profile fields are one-hot slots; -1 (or a slot past the
	// store's width) is "other or unknown".
	Users   []features.User
	Authors []features.Author
	Follows []features.Follow
	// Reels, with Category -1 to derive it from the embedding and
	// Language a profile code plus one (0: unknown); Embedding nil or
	// EmbedDim values.
	Reels []features.Reel
	// Seed seeds the categories' clustering.
	Seed uint64
}

// CatalogueOfStore returns the static catalogue a feature store holds:
// its profiles, authors (with the follower counts the catalogue gave),
// follow graph and reels, and none of its counters. The store's follow
// graph includes the follows of the events it applied.
func CatalogueOfStore(s *features.Store) *Catalogue {
	return &Catalogue{EmbedDim: s.Config().EmbedDim, Users: s.Users(), Authors: s.Authors(), Follows: s.Follows(), Reels: s.Reels()}
}

// LoadSnapshotCatalogue reads the static catalogue of the feature store
// snapshot at path (features.LoadSnapshot), leaving its counters out: a
// snapshot taken after a log would hand its future to every row.
func LoadSnapshotCatalogue(path string) (*Catalogue, error) {
	s, err := features.LoadSnapshot(path)
	if err != nil {
		return nil, fmt.Errorf("train: catalogue: %w", err)
	}
	return CatalogueOfStore(s), nil
}

// Load puts the catalogue into a feature store, users, authors, follows
// then reels, and fits the categories. The store's EmbedDim must be the
// catalogue's.
func (c *Catalogue) Load(s *features.Store) error {
	if got := s.Config().EmbedDim; got != c.EmbedDim {
		return fmt.Errorf("train: load catalogue: the store's embeddings have %d dimensions, the catalogue's %d", got, c.EmbedDim)
	}
	for _, u := range c.Users {
		if err := s.PutUser(u); err != nil {
			return fmt.Errorf("train: load catalogue: %w", err)
		}
	}
	for _, a := range c.Authors {
		if err := s.PutAuthor(a.ID, a.Followers); err != nil {
			return fmt.Errorf("train: load catalogue: %w", err)
		}
	}
	for _, e := range c.Follows {
		if err := s.PutFollow(e.User, e.Author); err != nil {
			return fmt.Errorf("train: load catalogue: %w", err)
		}
	}
	for _, r := range c.Reels {
		if err := s.PutReel(r); err != nil {
			return fmt.Errorf("train: load catalogue: %w", err)
		}
	}
	if err := s.FitCategories(c.Seed); err != nil {
		return fmt.Errorf("train: load catalogue: %w", err)
	}
	return nil
}

// The catalogue export: JSON lines (see the package documentation).
const (
	exportVersion = 1
	kindHeader    = "catalogue"
	kindUser      = "user"
	kindAuthor    = "author"
	kindFollow    = "follow"
	kindReel      = "reel"
)

// exportLine is any line of the export; each kind reads its own keys.
type exportLine struct {
	Kind     string    `json:"kind"`
	Version  *int      `json:"version,omitempty"`
	EmbedDim *int      `json:"embed_dim,omitempty"`
	ID       *int64    `json:"id,omitempty"`
	Country  *int      `json:"country,omitempty"`
	Lang     *int      `json:"language,omitempty"`
	Age      *int      `json:"age,omitempty"`
	Device   *int      `json:"device,omitempty"`
	Follows  *int64    `json:"followers,omitempty"`
	User     *int64    `json:"user,omitempty"`
	Author   *int64    `json:"author,omitempty"`
	Upload   *int64    `json:"upload,omitempty"`
	Duration *float32  `json:"duration,omitempty"`
	Category *int      `json:"category,omitempty"`
	Emb      []float32 `json:"embedding,omitempty"`
}

// Write writes the catalogue as JSON lines: the header, then one line per
// user, author, follow and reel.
func (c *Catalogue) Write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	ip := func(v int) *int { return &v }
	i64 := func(v int64) *int64 { return &v }
	if err := enc.Encode(exportLine{Kind: kindHeader, Version: ip(exportVersion), EmbedDim: ip(c.EmbedDim)}); err != nil {
		return fmt.Errorf("train: write catalogue: %w", err)
	}
	for _, u := range c.Users {
		if err := enc.Encode(exportLine{Kind: kindUser, ID: i64(u.ID), Country: ip(u.Country), Lang: ip(u.Language), Age: ip(u.AgeBucket), Device: ip(u.Device)}); err != nil {
			return fmt.Errorf("train: write catalogue: %w", err)
		}
	}
	for _, a := range c.Authors {
		if err := enc.Encode(exportLine{Kind: kindAuthor, ID: i64(a.ID), Follows: i64(a.Followers)}); err != nil {
			return fmt.Errorf("train: write catalogue: %w", err)
		}
	}
	for _, f := range c.Follows {
		if err := enc.Encode(exportLine{Kind: kindFollow, User: i64(f.User), Author: i64(f.Author)}); err != nil {
			return fmt.Errorf("train: write catalogue: %w", err)
		}
	}
	for _, r := range c.Reels {
		d := r.Duration
		if err := enc.Encode(exportLine{Kind: kindReel, ID: i64(r.ID), Author: i64(r.Author), Upload: i64(r.Upload), Duration: &d,
			Lang: ip(r.Language), Category: ip(r.Category), Emb: r.Embedding}); err != nil {
			return fmt.Errorf("train: write catalogue: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("train: write catalogue: %w", err)
	}
	return nil
}

// maxCatalogueErrors is how many bad lines ReadCatalogue names before it
// gives up.
const maxCatalogueErrors = 10

// ReadCatalogue reads a catalogue export (JSON lines, see the package
// documentation). Every line must be good: a line that is not a JSON
// object, names no or an unknown kind, lacks a required key, holds a
// negative id or count, or an embedding of the wrong dimension fails the
// read, with the line numbers of the first bad lines. Blank lines are
// skipped; unknown keys are ignored. name names the input in errors.
func ReadCatalogue(r io.Reader, name string) (*Catalogue, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<16), 64<<20)
	c := &Catalogue{EmbedDim: -1}
	var errs []error
	bad := 0
	line := 0
	fail := func(format string, args ...any) {
		bad++
		if len(errs) < maxCatalogueErrors {
			errs = append(errs, fmt.Errorf("%s line %d: %s", name, line, fmt.Sprintf(format, args...)))
		}
	}
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var l exportLine
		if b[0] != '{' {
			fail("not a JSON object")
			continue
		}
		if err := json.Unmarshal(b, &l); err != nil {
			fail("%v", err)
			continue
		}
		if c.EmbedDim < 0 && l.Kind != kindHeader {
			fail("the first line must be the header {\"kind\":\"catalogue\",\"version\":1,\"embed_dim\":D}, not kind %q", l.Kind)
			c.EmbedDim = 0 // report the header once
			continue
		}
		if msg := c.addLine(&l); msg != "" {
			fail("%s", msg)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("train: catalogue %s line %d: %w", name, line+1, err)
	}
	if c.EmbedDim < 0 {
		line++
		fail("no header: the catalogue is empty")
	}
	if bad > 0 {
		more := ""
		if bad > len(errs) {
			more = fmt.Sprintf(" (and %d more)", bad-len(errs))
		}
		return nil, fmt.Errorf("train: catalogue: %d bad lines%s: %w", bad, more, errors.Join(errs...))
	}
	return c, nil
}

// addLine adds one parsed line, or says why it cannot.
func (c *Catalogue) addLine(l *exportLine) string {
	neg := func(what string, v *int64) string {
		switch {
		case v == nil:
			return fmt.Sprintf("%s line without %q", l.Kind, what)
		case *v < 0:
			return fmt.Sprintf("negative %s %d", what, *v)
		}
		return ""
	}
	opt := func(v *int, def int) int {
		if v == nil {
			return def
		}
		return *v
	}
	switch l.Kind {
	case kindHeader:
		switch {
		case c.EmbedDim >= 0:
			return "a second header"
		case l.Version == nil || *l.Version != exportVersion:
			return fmt.Sprintf("header without version %d", exportVersion)
		case l.EmbedDim == nil || *l.EmbedDim < 1 || *l.EmbedDim > 1<<16:
			return "header without a positive embed_dim"
		}
		c.EmbedDim = *l.EmbedDim
	case kindUser:
		if m := neg("id", l.ID); m != "" {
			return m
		}
		c.Users = append(c.Users, features.User{ID: *l.ID, Country: opt(l.Country, -1), Language: opt(l.Lang, -1),
			AgeBucket: opt(l.Age, -1), Device: opt(l.Device, -1)})
	case kindAuthor:
		if m := neg("id", l.ID); m != "" {
			return m
		}
		f := int64(0)
		if l.Follows != nil {
			f = *l.Follows
		}
		if f < 0 {
			return fmt.Sprintf("negative followers %d", f)
		}
		c.Authors = append(c.Authors, features.Author{ID: *l.ID, Followers: f})
	case kindFollow:
		if m := neg("user", l.User); m != "" {
			return m
		}
		if m := neg("author", l.Author); m != "" {
			return m
		}
		c.Follows = append(c.Follows, features.Follow{User: *l.User, Author: *l.Author})
	case kindReel:
		if m := neg("id", l.ID); m != "" {
			return m
		}
		if m := neg("author", l.Author); m != "" {
			return m
		}
		r := features.Reel{ID: *l.ID, Author: *l.Author, Category: opt(l.Category, -1), Language: opt(l.Lang, 0)}
		if l.Upload != nil {
			r.Upload = *l.Upload
		}
		if l.Duration != nil {
			r.Duration = *l.Duration
		}
		switch {
		case r.Upload < 0:
			return fmt.Sprintf("reel %d: negative upload time %d", r.ID, r.Upload)
		case !(r.Duration >= 0 && r.Duration < 1e6):
			return fmt.Sprintf("reel %d: duration %v outside [0, 1e6) s", r.ID, r.Duration)
		case r.Language < 0:
			return fmt.Sprintf("reel %d: negative language code %d", r.ID, r.Language)
		case r.Category < -1:
			return fmt.Sprintf("reel %d: category %d", r.ID, r.Category)
		}
		if l.Emb != nil {
			if len(l.Emb) != c.EmbedDim {
				return fmt.Sprintf("reel %d: embedding of %d values, the header says %d", r.ID, len(l.Emb), c.EmbedDim)
			}
			for j, v := range l.Emb {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return fmt.Sprintf("reel %d: embedding value %d is %v", r.ID, j, v)
				}
			}
			r.Embedding = l.Emb
		}
		c.Reels = append(c.Reels, r)
	case "":
		return "no \"kind\""
	default:
		return fmt.Sprintf("unknown kind %q (want catalogue, user, author, follow or reel)", l.Kind)
	}
	return ""
}

// snapshotMagic begins a features snapshot file.
const snapshotMagic = "RRFSNAP\x00"

// OpenCatalogue reads a catalogue from path, whichever of three it is: a
// served model folder (a folder holding features.snap, see
// LoadServedCatalogue), a feature store snapshot (LoadSnapshotCatalogue)
// or a catalogue export (ReadCatalogue).
func OpenCatalogue(path string) (*Catalogue, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("train: catalogue: %w", err)
	}
	if st.IsDir() {
		return LoadServedCatalogue(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("train: catalogue: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	head, _ := br.Peek(len(snapshotMagic))
	if string(head) == snapshotMagic {
		f.Close()
		return LoadSnapshotCatalogue(path)
	}
	return ReadCatalogue(br, path)
}

// reelIndex maps the catalogue's reel ids to their positions.
func (c *Catalogue) reelIndex() map[int64]int {
	m := make(map[int64]int, len(c.Reels))
	for i, r := range c.Reels {
		m[r.ID] = i
	}
	return m
}

// putReel adds r, or replaces the reel with its id.
func (c *Catalogue) putReel(r features.Reel, at map[int64]int) {
	if i, ok := at[r.ID]; ok {
		c.Reels[i] = r
		return
	}
	at[r.ID] = len(c.Reels)
	c.Reels = append(c.Reels, r)
}

// deleteReels removes the reels of ids.
func (c *Catalogue) deleteReels(ids map[int64]bool) {
	if len(ids) == 0 {
		return
	}
	c.Reels = slices.DeleteFunc(c.Reels, func(r features.Reel) bool { return ids[r.ID] })
}
