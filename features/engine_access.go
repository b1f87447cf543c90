package features

// Read-only views of the catalogue for the serving engine: a reel's
// metadata and evidence, the authors of a list of reels (for author
// diversity) and a filtered listing of the reels (for the fresh and
// exploration pools and for building an index).

// ReelInfo is what the store holds of one reel besides its counters.
type ReelInfo struct {
	ID     int64
	Author int64 // -1 when unknown
	// Upload is the upload time in ms since the Unix epoch, 0 when unknown.
	Upload int64
	// Category is the reel's category, -1 when unknown.
	Category     int
	HasEmbedding bool
	// Impressions is the reel's decayed impression count over the longest
	// window, as of the newest applied event.
	Impressions float64
}

// longest returns the index of the longest decay window.
func (s *Store) longest() int {
	w := 0
	for i := 1; i < s.nw; i++ {
		if s.tau[i] > s.tau[w] {
			w = i
		}
	}
	return w
}

// info fills a ReelInfo of reel index i; the caller holds mu and passes
// the forward-decay factor of the longest window (f) and its index (w).
func (s *Store) info(i int32, f float64, w int) ReelInfo {
	rec := &s.reels.recs[i]
	r := ReelInfo{ID: s.reels.id[i], Author: -1, Upload: rec.upload, Category: int(rec.cat), HasEmbedding: rec.hasEmb,
		Impressions: float64(rec.ctr[w*nCounters+cImp]) * f}
	if rec.author >= 0 {
		r.Author = s.authors.id[rec.author]
	}
	return r
}

// decayNow returns the longest window's index and its forward-decay
// factor as of the newest applied event; the caller holds mu.
func (s *Store) decayNow() (int, float64) {
	var buf [maxWindows + 2]float64
	f := s.expo(buf[:0], s.newest, -1, s.nw)
	w := s.longest()
	return w, f[w]
}

// ReelInfo returns what the store holds of reel id; ok is false when the
// store has never seen it (neither put nor in an event).
func (s *Store) ReelInfo(id int64) (r ReelInfo, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, ok := s.reels.index.get(id)
	if !ok {
		return ReelInfo{}, false
	}
	w, f := s.decayNow()
	return s.info(i, f, w), true
}

// ReelAuthors appends to dst the author of each reel of ids (-1 for a reel
// or author the store does not know), under one read lock.
func (s *Store) ReelAuthors(ids, dst []int64) []int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, id := range ids {
		a := int64(-1)
		if i, ok := s.reels.index.get(id); ok {
			if ai := s.reels.recs[i].author; ai >= 0 {
				a = s.authors.id[ai]
			}
		}
		dst = append(dst, a)
	}
	return dst
}

// ListReels appends to dst every reel for which keep returns true (every
// reel when keep is nil), in the order the store first saw them. keep runs
// under the store's read lock: it must not call the store.
func (s *Store) ListReels(dst []ReelInfo, keep func(*ReelInfo) bool) []ReelInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	w, f := s.decayNow()
	var r ReelInfo // one variable for the whole loop: keep's argument escapes
	for i := range s.reels.id {
		r = s.info(int32(i), f, w)
		if keep == nil || keep(&r) {
			dst = append(dst, r)
		}
	}
	return dst
}
