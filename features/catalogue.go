package features

import "slices"

// Read-only views of the store's static catalogue: what PutUser,
// PutAuthor, PutFollow and PutReel put in, without the counters the
// events moved. Training reads them to start a fresh store from a
// snapshot's catalogue without the snapshot's history (a snapshot taken
// after a log would otherwise hand every row the log's future).

// Author is an author as the catalogue gives it.
type Author struct {
	ID int64
	// Followers is the follower count PutAuthor gave, without the follow
	// events applied since.
	Followers int64
}

// Follow is one edge of the follow graph: User follows Author.
type Follow struct {
	User, Author int64
}

// Users returns every user's profile, in the order the store first saw
// them. A field in its one-hot's last ("other or unknown") slot is -1.
func (s *Store) Users() []User {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]User, len(s.users.id))
	slot := func(v uint8, width int) int {
		if int(v) >= width-1 {
			return -1
		}
		return int(v)
	}
	for i, id := range s.users.id {
		p := s.users.profile[4*i : 4*i+4]
		out[i] = User{ID: id, Country: slot(p[0], s.cfg.Countries), Language: slot(p[1], s.cfg.Languages),
			AgeBucket: slot(p[2], s.cfg.AgeBuckets), Device: slot(p[3], s.cfg.Devices)}
	}
	return out
}

// Authors returns every author with the follower count the catalogue
// gave (0 for an author known only from events), in the order the store
// first saw them.
func (s *Store) Authors() []Author {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Author, len(s.authors.id))
	for i, id := range s.authors.id {
		out[i] = Author{ID: id, Followers: s.authors.recs[i].base}
	}
	return out
}

// Follows returns the follow graph, by user then author. The store keeps
// the catalogue's follows and those of the follow events it applied
// together: a snapshot's graph holds both.
func (s *Store) Follows() []Follow {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Follow
	for i, id := range s.users.id {
		for _, a := range s.users.follows[i] {
			out = append(out, Follow{User: id, Author: a})
		}
	}
	return out
}

// Reels returns the metadata of every reel whose author the store knows
// (reels put, or seen in an event that names their author), in the order
// the store first saw them: author, upload time (0 when unknown),
// duration, language code, a copy of the content embedding (nil when
// none) and the category when it was given with the reel (-1 when the
// store derived it from the embedding, or has none).
func (s *Store) Reels() []Reel {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.cfg.EmbedDim
	out := make([]Reel, 0, len(s.reels.id))
	for i, id := range s.reels.id {
		m := &s.reels.recs[i].reelMeta
		if m.author < 0 {
			continue
		}
		r := Reel{ID: id, Author: s.authors.id[m.author], Upload: m.upload, Duration: m.duration, Category: -1}
		if m.lang >= 0 {
			r.Language = int(m.lang) + 1
		}
		if m.hasEmb {
			r.Embedding = slices.Clone(s.reels.emb[i*d : (i+1)*d])
		}
		if m.catGiven {
			r.Category = int(m.cat)
		}
		out = append(out, r)
	}
	return out
}
