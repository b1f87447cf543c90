package train

import (
	"fmt"
	"slices"

	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/sim"
)

// CatalogueOfWorld returns a simulated world's catalogue: only what a real
// catalogue would know; the world's latent truth (interests, topics,
// qualities) stays out.
func CatalogueOfWorld(w *sim.World) *Catalogue {
	var countries []string
	for _, c := range sim.Countries() {
		countries = append(countries, c.Code)
	}
	languages, ages, devices := sim.Languages(), sim.AgeBuckets(), sim.Devices()
	slot := func(list []string, v string) int { return slices.Index(list, v) } // -1: the "other" slot
	c := &Catalogue{EmbedDim: w.Config().EmbedDim, Seed: w.Config().Seed}
	for _, u := range w.Users() {
		c.Users = append(c.Users, features.User{ID: u.ID, Country: slot(countries, u.Country), Language: slot(languages, u.Language),
			AgeBucket: slot(ages, u.AgeBucket), Device: slot(devices, u.Device)})
	}
	for _, a := range w.Authors() {
		c.Authors = append(c.Authors, features.Author{ID: a.ID, Followers: int64(a.Followers)})
	}
	for _, e := range w.Follows() {
		c.Follows = append(c.Follows, features.Follow{User: e.Follower, Author: e.Followee})
	}
	for _, r := range w.Reels() {
		c.Reels = append(c.Reels, features.Reel{ID: r.ID, Author: r.Author, Upload: r.Upload, Duration: float32(r.Duration),
			Embedding: w.Embedding(r.ID), Category: -1, Language: slot(languages, r.Language) + 1})
	}
	return c
}

// LoadWorld puts a simulated world's catalogue into a feature store
// (CatalogueOfWorld, then Load). The store's EmbedDim must be the world's.
func LoadWorld(w *sim.World, s *features.Store) error {
	if got, want := s.Config().EmbedDim, w.Config().EmbedDim; got != want {
		return fmt.Errorf("train: load world: the store's embeddings have %d dimensions, the world's %d", got, want)
	}
	return CatalogueOfWorld(w).Load(s)
}
