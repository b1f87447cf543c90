package train

import "github.com/reelrank/reelrank/features"

// storeSources returns the store's candidate sources, each alone (the
// store leaves out of a source what the sources before it proposed when
// asked for several, which the evaluation redoes with the towers').
func storeSources(s *features.Store) sourceFunc {
	kinds := [numSources]features.CandidateSource{features.SourceRegion, features.SourceLanguage, features.SourceFollowed, features.SourcePopular}
	var buf []features.Candidate
	return func(user, t int64, c SourceConfig) (*sourceLists, error) {
		l := new(sourceLists)
		for k, kind := range kinds {
			if c.quota(k) == 0 {
				continue
			}
			var q features.SourceQuotas
			d := c.depth(k)
			switch kind {
			case features.SourceRegion:
				q.Region = d
			case features.SourceLanguage:
				q.Language = d
			case features.SourceFollowed:
				q.Followed = d
			case features.SourcePopular:
				q.Popular = d
			}
			var err error
			if buf, err = s.Sources(buf[:0], user, nil, t, q, nil); err != nil {
				return nil, err
			}
			for _, x := range buf {
				l[k] = append(l[k], x.Reel)
			}
		}
		return l, nil
	}
}
