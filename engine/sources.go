package engine

import "github.com/reelrank/reelrank/features"

// The feature store's candidate sources (features.Store.Sources) join the
// index's candidates in recall: reels popular in the viewer's country and
// in their language, recent reels of the authors they follow, and popular
// reels, each up to its quota in Config.Sources. The store computes them
// for serving and for the trainer's evaluation alike.

// sourceOf maps a feature store's candidate source to the engine's.
func sourceOf(c features.CandidateSource) Source {
	switch c {
	case features.SourceRegion:
		return SourceRegion
	case features.SourceLanguage:
		return SourceLanguage
	case features.SourceFollowed:
		return SourceFollowed
	}
	return SourcePopular
}

// sourceQuotas returns the store's quotas of the configured sources: a
// negative one (off) is none.
func (c *Config) sourceQuotas() features.SourceQuotas {
	q := c.Sources
	q.Region, q.Language, q.Followed, q.Popular = max(q.Region, 0), max(q.Language, 0), max(q.Followed, 0), max(q.Popular, 0)
	return q
}

// addSources adds the sources' candidates through add, leaving out in the
// store itself what add would refuse (the candidates so far, the
// request's exclusions and the session's recent reels, all in s.seen),
// deleted reels and the reels of other shards, so that each source fills
// its quota with new reels of this shard.
func (e *Engine) addSources(s *scratch, user, t int64, add func(int64, Source) bool) error {
	q := e.cfg.sourceQuotas()
	if q == (features.SourceQuotas{}) {
		return nil
	}
	if s.exclude == nil {
		s.exclude = func(id int64) bool {
			_, seen := s.seen[id]
			return seen || !e.owns(id) || e.isDeleted(id)
		}
	}
	var err error
	s.sources, err = e.store.Sources(s.sources[:0], user, &s.profile, t, q, s.exclude)
	if err != nil {
		return featuresErr("recommend: candidate sources", err)
	}
	for _, c := range s.sources {
		add(c.Reel, sourceOf(c.Source))
	}
	return nil
}
