package train

import (
	"bytes"
	"fmt"
	"slices"
)

// SourceConfig sizes the candidate sources retrieval is evaluated with
// beside the towers, as the engine recalls at serving: the towers' top
// TowerK and each of the feature store's sources (features.Store.Sources)
// at its quota, their union deduplicated. The zero value takes the
// defaults.
type SourceConfig struct {
	// TowerK is the towers' share of the candidates (default 600).
	TowerK int
	// Region, Language, Followed and Popular are the sources' quotas
	// (default 150, 100, 150 and 0; negative: none).
	Region, Language, Followed, Popular int
}

// withDefaults returns c with its zero fields at their defaults and its
// negative quotas at 0.
func (c SourceConfig) withDefaults() SourceConfig {
	if c.TowerK <= 0 {
		c.TowerK = 600
	}
	for _, q := range []struct {
		v   *int
		def int
	}{{&c.Region, 150}, {&c.Language, 100}, {&c.Followed, 150}, {&c.Popular, 0}} {
		switch {
		case *q.v == 0:
			*q.v = q.def
		case *q.v < 0:
			*q.v = 0
		}
	}
	return c
}

// quota returns the quota of source k (sourceRegion..sourcePopular).
func (c SourceConfig) quota(k int) int {
	return [numSources]int{c.Region, c.Language, c.Followed, c.Popular}[k]
}

// The sources, in the order of the report's table.
const (
	sourceRegion = iota
	sourceLanguage
	sourceFollowed
	sourcePopular
	numSources
)

var sourceNames = [numSources]string{"region", "language", "followed", "popular"}

// candidate is a recalled reel and the source (sourceRegion..) that
// recalled it.
type candidate struct {
	reel int64
	src  uint8
}

// sourceFunc returns the sources' candidates for a user (its id and its
// profile in the store) at t under the quotas of c, appended to dst.
type sourceFunc func(dst []candidate, user int64, t int64, c SourceConfig) ([]candidate, error)

// sourceUsers bounds the sampled users whose source lists the retrieval
// snapshot keeps: enough that the test users evaluated (those active on
// the test days, a random subset) are found among them.
func sourceUsers(retrievalUsers int) int { return 4 * retrievalUsers }

// SourceRecall measures one candidate source alone.
type SourceRecall struct {
	Source string `json:"source"`
	Quota  int    `json:"quota"`
	// Size is the mean length of its list (at most Quota).
	Size float64 `json:"mean_size"`
	// Recall is the share of the oracle's top 100 in its list; Only is the
	// share found by this source and by no other source nor the towers'
	// top TowerK.
	Recall float64 `json:"recall_of_oracle_top100"`
	Only   float64 `json:"only_recall_of_oracle_top100"`
}

// SourcesReport measures the candidate sources and their union with the
// towers on the users with source lists, against the oracle's top 100.
type SourcesReport struct {
	Users  int `json:"users"`
	TowerK int `json:"tower_k"`
	// TowersRecall and TowersRecallAtK are the towers' recall at 1000 and
	// at TowerK; PopularityRecall and PopularityRecallAtUnion are the most
	// watched reels' at 1000 and at each user's union size.
	TowersRecall            float64        `json:"towers_recall_at_1000"`
	TowersRecallAtK         float64        `json:"towers_recall_at_k"`
	PopularityRecall        float64        `json:"popularity_recall_at_1000"`
	PopularityRecallAtUnion float64        `json:"popularity_recall_at_union_size"`
	Sources                 []SourceRecall `json:"sources"`
	// UnionSize is the mean size of the union (towers' top TowerK and every
	// source, deduplicated); UnionRecall its recall.
	UnionSize   float64 `json:"mean_union_size"`
	UnionRecall float64 `json:"union_recall"`
}

// sourceEval accumulates SourcesReport over users.
type sourceEval struct {
	cfg                           SourceConfig
	users                         int
	towers, towersK, pop, popU    float64
	size, recall, only            [numSources]float64
	unionSize, union              float64
	seen                          map[int64]uint8 // reel → bit per source, bit numSources for the towers
	inBest                        map[int64]bool
	listRecall, listOnly, listLen [numSources]int
}

func newSourceEval(cfg SourceConfig) *sourceEval {
	return &sourceEval{cfg: cfg, seen: map[int64]uint8{}, inBest: map[int64]bool{}}
}

// add measures one user: towers is the towers' ranking (at least 1000 or
// TowerK long, best first), pop the popularity ranking (long enough for
// any union), lists the sources' candidates and best the oracle's top.
func (e *sourceEval) add(towers, pop []int64, lists []candidate, best []int64) {
	if len(best) == 0 {
		return
	}
	clear(e.seen)
	clear(e.inBest)
	for _, id := range best {
		e.inBest[id] = true
	}
	const towerBit = 1 << numSources
	k := min(e.cfg.TowerK, len(towers))
	for _, id := range towers[:k] {
		e.seen[id] |= towerBit
	}
	e.listLen = [numSources]int{}
	for _, c := range lists {
		if int(c.src) >= numSources {
			continue
		}
		if e.seen[c.reel]&(1<<c.src) == 0 {
			e.listLen[c.src]++
		}
		e.seen[c.reel] |= 1 << c.src
	}
	n := float64(len(best))
	e.listRecall, e.listOnly = [numSources]int{}, [numSources]int{}
	var found int
	for id := range e.inBest {
		bits := e.seen[id]
		if bits != 0 {
			found++
		}
		for s := range numSources {
			if bits&(1<<s) != 0 {
				e.listRecall[s]++
				if bits == 1<<s {
					e.listOnly[s]++
				}
			}
		}
	}
	for s := range numSources {
		e.size[s] += float64(e.listLen[s])
		e.recall[s] += float64(e.listRecall[s]) / n
		e.only[s] += float64(e.listOnly[s]) / n
	}
	union := len(e.seen)
	e.unionSize += float64(union)
	e.union += float64(found) / n
	at := func(ids []int64, k int) float64 {
		r, _ := RecallAtK(ids, best, k)
		return r
	}
	e.towers += at(towers, retrievalK)
	e.towersK += at(towers, e.cfg.TowerK)
	e.pop += at(pop, retrievalK)
	e.popU += at(pop, union)
	e.users++
}

// merge adds o's sums into e.
func (e *sourceEval) merge(o *sourceEval) {
	e.users += o.users
	e.towers += o.towers
	e.towersK += o.towersK
	e.pop += o.pop
	e.popU += o.popU
	e.unionSize += o.unionSize
	e.union += o.union
	for s := range numSources {
		e.size[s] += o.size[s]
		e.recall[s] += o.recall[s]
		e.only[s] += o.only[s]
	}
}

// report returns the means, nil without a user.
func (e *sourceEval) report() *SourcesReport {
	if e.users == 0 {
		return nil
	}
	n := float64(e.users)
	r := &SourcesReport{Users: e.users, TowerK: e.cfg.TowerK, TowersRecall: e.towers / n, TowersRecallAtK: e.towersK / n,
		PopularityRecall: e.pop / n, PopularityRecallAtUnion: e.popU / n, UnionSize: e.unionSize / n, UnionRecall: e.union / n}
	for s := range numSources {
		r.Sources = append(r.Sources, SourceRecall{Source: sourceNames[s], Quota: e.cfg.quota(s),
			Size: e.size[s] / n, Recall: e.recall[s] / n, Only: e.only[s] / n})
	}
	return r
}

// takeSources calls src for the first sourceUsers(retrievalUsers) users
// of order at t and keeps their lists.
func (rs *retrievalSnap) takeSources(src sourceFunc, order []int64, t int64, cfg SourceConfig, retrievalUsers int) error {
	if src == nil {
		return nil
	}
	rs.sources = map[int64][]candidate{}
	for _, u := range order[:min(len(order), sourceUsers(retrievalUsers))] {
		list, err := src(nil, u, t, cfg)
		if err != nil {
			return fmt.Errorf("train: candidate sources of user %d: %w", u, err)
		}
		rs.sources[u] = slices.Clip(list)
	}
	return nil
}

// render writes the sources' table (nothing for a nil report).
func (r *SourcesReport) render(b *bytes.Buffer) {
	if r == nil {
		return
	}
	fmt.Fprintf(b, "Candidate sources at the test instant, %d of the test users: recall of the oracle's top 100 by each source alone at its quota, "+
		"and by the union of the towers' top %d and every source, deduplicated, as the engine recalls (\"only\": found by no other source nor the towers).\n\n", r.Users, r.TowerK)
	b.WriteString("| candidates | quota | mean size | recall | only |\n| --- | ---: | ---: | ---: | ---: |\n")
	fmt.Fprintf(b, "| towers | 1000 | 1000 | %.4f | |\n", r.TowersRecall)
	fmt.Fprintf(b, "| towers | %d | %d | %.4f | |\n", r.TowerK, r.TowerK, r.TowersRecallAtK)
	for _, s := range r.Sources {
		fmt.Fprintf(b, "| %s | %d | %.1f | %.4f | %.4f |\n", s.Source, s.Quota, s.Size, s.Recall, s.Only)
	}
	fmt.Fprintf(b, "| **union** | | %.1f | **%.4f** | |\n", r.UnionSize, r.UnionRecall)
	fmt.Fprintf(b, "| most watched | 1000 | 1000 | %.4f | |\n", r.PopularityRecall)
	fmt.Fprintf(b, "| most watched | union's size | %.1f | %.4f | |\n\n", r.UnionSize, r.PopularityRecallAtUnion)
	if r.PopularityRecall > 0 {
		fmt.Fprintf(b, "The union recalls %.2fx what the 1,000 most watched reels do (%.2fx at the union's size).\n\n", r.UnionRecall/r.PopularityRecall, r.UnionRecall/max(r.PopularityRecallAtUnion, 1e-9))
	}
}
