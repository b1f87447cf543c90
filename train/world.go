package train

import (
	"fmt"
	"slices"

	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/sim"
)

// LoadWorld puts a simulated world's catalogue into a feature store: the
// users' profiles, the authors' follower counts, the follow graph and the
// reels with their content embeddings, then fits the categories. Only what
// a real catalogue would know goes in; the world's latent truth (interests,
// topics, qualities) stays out. The store's EmbedDim must be the world's.
func LoadWorld(w *sim.World, s *features.Store) error {
	if got, want := s.Config().EmbedDim, w.Config().EmbedDim; got != want {
		return fmt.Errorf("train: load world: the store's embeddings have %d dimensions, the world's %d", got, want)
	}
	var countries []string
	for _, c := range sim.Countries() {
		countries = append(countries, c.Code)
	}
	languages, ages, devices := sim.Languages(), sim.AgeBuckets(), sim.Devices()
	slot := func(list []string, v string) int { return slices.Index(list, v) } // -1: the "other" slot
	for _, u := range w.Users() {
		err := s.PutUser(features.User{ID: u.ID, Country: slot(countries, u.Country), Language: slot(languages, u.Language),
			AgeBucket: slot(ages, u.AgeBucket), Device: slot(devices, u.Device)})
		if err != nil {
			return fmt.Errorf("train: load world: %w", err)
		}
	}
	for _, a := range w.Authors() {
		if err := s.PutAuthor(a.ID, int64(a.Followers)); err != nil {
			return fmt.Errorf("train: load world: %w", err)
		}
	}
	for _, e := range w.Follows() {
		if err := s.PutFollow(e.Follower, e.Followee); err != nil {
			return fmt.Errorf("train: load world: %w", err)
		}
	}
	for _, r := range w.Reels() {
		err := s.PutReel(features.Reel{ID: r.ID, Author: r.Author, Upload: r.Upload, Duration: float32(r.Duration),
			Embedding: w.Embedding(r.ID), Category: -1, Language: slot(languages, r.Language) + 1})
		if err != nil {
			return fmt.Errorf("train: load world: %w", err)
		}
	}
	if err := s.FitCategories(w.Config().Seed); err != nil {
		return fmt.Errorf("train: load world: %w", err)
	}
	return nil
}
