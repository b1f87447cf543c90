package train

import "github.com/reelrank/reelrank/features"

// storeSources returns the feature store's candidate sources, nil while
// the store has none.
func storeSources(s *features.Store, users []features.User) sourceFunc { return nil }
