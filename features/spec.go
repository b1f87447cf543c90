package features

import (
	"fmt"
	"hash/fnv"
	"strings"
)

// SpecVersion changes whenever a feature's meaning changes without its name
// changing, so that a model trained on the old meaning is refused.
const SpecVersion = 3

// Spec names every feature the store computes, in vector order. A model
// records the Spec it was trained on; the engine refuses a model whose
// Spec's fingerprint differs from the store's.
type Spec struct {
	// User holds the features of the user and the request's context.
	User []string
	// Reel holds the features of a reel alone, the same for every user.
	Reel []string
	// Cross holds the features of a (user, reel) pair.
	Cross []string
	// EmbedDim is the dimension of the content embeddings served beside.
	EmbedDim int
	// Version is SpecVersion.
	Version int
}

// Spec returns the store's feature spec.
func (s *Store) Spec() Spec { return s.spec }

// Fingerprint hashes the names, their order, the embedding dimension and
// the version.
func (sp Spec) Fingerprint() uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "v%d d%d|", sp.Version, sp.EmbedDim)
	for _, part := range [][]string{sp.User, sp.Reel, sp.Cross} {
		h.Write([]byte(strings.Join(part, ",")))
		h.Write([]byte{'|'})
	}
	return h.Sum64()
}

// Equal reports whether two specs name the same features in the same order.
func (sp Spec) Equal(o Spec) bool { return sp.Fingerprint() == o.Fingerprint() }

// The rate features of every window, in order, for users and reels.
var (
	userRates = []string{"log_imp", "watch_rate", "wt_rate", "like_rate", "comment_rate", "share_rate", "follow_rate"}
	reelRates = []string{"log_imp", "watch_rate", "wt_rate", "mean_frac", "like_rate", "comment_rate", "share_rate", "follow_rate"}
	authRates = []string{"log_imp", "wt_rate", "like_rate", "follow_rate"}
	crossKeys = []string{"x_ucat_wt_rate", "x_ucat_log_imp", "x_follows_author", "x_hist_dot", "x_hist_cos", "x_same_cat_as_last", "x_same_language", "x_int_dot", "x_int_cos"}
)

func newSpec(c Config) Spec {
	var sp Spec
	sp.Version, sp.EmbedDim = SpecVersion, c.EmbedDim
	u := &sp.User
	onehot := func(name string, n int) {
		for i := range n - 1 {
			*u = append(*u, fmt.Sprintf("%s_%d", name, i))
		}
		*u = append(*u, name+"_other")
	}
	onehot("country", c.Countries)
	onehot("language", c.Languages)
	onehot("age", c.AgeBuckets)
	onehot("device", c.Devices)
	for _, w := range c.Windows {
		for _, r := range userRates {
			*u = append(*u, "user_"+r+"_"+windowName(w))
		}
	}
	*u = append(*u, "user_log_follows")
	for k := range c.Categories {
		*u = append(*u, fmt.Sprintf("ucat_log_imp_%d", k))
	}
	for k := range c.Categories {
		*u = append(*u, fmt.Sprintf("ucat_wt_rate_%d", k))
	}
	for j := range c.EmbedDim {
		*u = append(*u, fmt.Sprintf("hist_%d", j))
	}
	*u = append(*u, "hist_log_weight",
		"sess_log_pos", "sess_log_secs", "sess_wt_rate")
	for k := range c.Categories {
		*u = append(*u, fmt.Sprintf("sess_last_cat_%d", k))
	}
	*u = append(*u, "ctx_hour_sin", "ctx_hour_cos", "ctx_dow_sin", "ctx_dow_cos")

	r := &sp.Reel
	for _, w := range c.Windows {
		for _, n := range reelRates {
			*r = append(*r, "reel_"+n+"_"+windowName(w))
		}
	}
	*r = append(*r, "reel_known", "reel_log_age_h", "reel_fresh_1h", "reel_log_duration", "author_log_followers")
	for _, w := range c.Windows {
		for _, n := range authRates {
			*r = append(*r, "author_"+n+"_"+windowName(w))
		}
	}
	for k := range c.Categories {
		*r = append(*r, fmt.Sprintf("reel_cat_%d", k))
	}
	for k := range c.Languages {
		*r = append(*r, fmt.Sprintf("reel_lang_%d", k))
	}
	sp.Cross = append(sp.Cross, crossKeys...)
	return sp
}
