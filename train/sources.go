package train

import (
	"bytes"
	"fmt"
)

// SourceConfig sizes the candidate sources retrieval is evaluated with
// beside the towers, as the engine recalls at serving: the towers' top
// TowerK, then each of the feature store's sources (features.Store.Sources)
// up to its quota, leaving out what the towers and the sources before it
// proposed. The zero value takes the engine's defaults (engine.Config's K
// and Sources, which this package may not import).
type SourceConfig struct {
	// TowerK is the towers' share of the candidates (default 600).
	TowerK int
	// Region, Language, Followed and Popular are the sources' quotas
	// (default 150, 100, 100 and 50; negative: none).
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
	}{{&c.Region, 150}, {&c.Language, 100}, {&c.Followed, 100}, {&c.Popular, 50}} {
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

// depth returns how long source k's own list must be for the union to be
// rebuilt from it: its quota past the towers' candidates and the sources
// before it, which it may all hold.
func (c SourceConfig) depth(k int) int {
	n := c.TowerK
	for j := range k + 1 {
		n += c.quota(j)
	}
	return n
}

// The sources, in the order the store gives them and the report lists
// them.
const (
	sourceRegion = iota
	sourceLanguage
	sourceFollowed
	sourcePopular
	numSources
)

var sourceNames = [numSources]string{"region", "language", "followed", "popular"}

// sourceLists are a user's candidates of each source alone, best first.
type sourceLists [numSources][]int64

// sourceFunc returns each source's own list for a user at t, source k's
// c.depth(k) long at most (0 for a source whose quota is 0).
type sourceFunc func(user int64, t int64, c SourceConfig) (*sourceLists, error)

// sourceUsers bounds the sampled users whose source lists the retrieval
// snapshot keeps: enough that the test users evaluated (those active on
// the test days, a random subset) are found among them.
func sourceUsers(retrievalUsers int) int { return 3 * retrievalUsers }

// SourceRecall measures one candidate source.
type SourceRecall struct {
	Source string `json:"source"`
	Quota  int    `json:"quota"`
	// Size is the mean length of its own list at its quota; Recall the
	// share of the oracle's top 100 in it; Only the share in it and in no
	// other source's list nor the towers' top TowerK.
	Size   float64 `json:"mean_size"`
	Recall float64 `json:"recall_of_oracle_top100"`
	Only   float64 `json:"only_recall_of_oracle_top100"`
	// Added is the mean number of candidates it adds to the union (what
	// the towers and the sources before it did not propose), AddedRecall
	// the share of the oracle's top 100 among them.
	Added       float64 `json:"mean_added"`
	AddedRecall float64 `json:"added_recall_of_oracle_top100"`
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
	// UnionSize is the mean size of the union (the towers' top TowerK and
	// what each source adds); UnionRecall its recall.
	UnionSize   float64 `json:"mean_union_size"`
	UnionRecall float64 `json:"union_recall"`
}

// sourceEval accumulates SourcesReport over users.
type sourceEval struct {
	cfg                                   SourceConfig
	users                                 int
	towers, towersK, pop, popU            float64
	size, recall, only                    [numSources]float64
	added, addedRecall                    [numSources]float64
	unionSize, union                      float64
	bits                                  map[int64]uint8 // reel → bit per own list, bit numSources for the towers
	taken                                 map[int64]bool  // the union
	inBest                                map[int64]bool
	nOwn, nOwnBest, nOnly, nAdd, nAddBest [numSources]int
}

func newSourceEval(cfg SourceConfig) *sourceEval {
	return &sourceEval{cfg: cfg, bits: map[int64]uint8{}, taken: map[int64]bool{}, inBest: map[int64]bool{}}
}

// add measures one user: towers is the towers' ranking (at least 1000 and
// TowerK long, best first), pop the popularity ranking (long enough for
// any union), lists the sources' own lists and best the oracle's top.
func (e *sourceEval) add(towers, pop []int64, lists *sourceLists, best []int64) {
	if len(best) == 0 {
		return
	}
	clear(e.bits)
	clear(e.taken)
	clear(e.inBest)
	for _, id := range best {
		e.inBest[id] = true
	}
	const towerBit = 1 << numSources
	for _, id := range towers[:min(e.cfg.TowerK, len(towers))] {
		e.bits[id] |= towerBit
		e.taken[id] = true
	}
	e.nOwn, e.nOwnBest, e.nOnly, e.nAdd, e.nAddBest = [numSources]int{}, [numSources]int{}, [numSources]int{}, [numSources]int{}, [numSources]int{}
	for s := range numSources {
		q := e.cfg.quota(s)
		own := lists[s][:min(q, len(lists[s]))]
		e.nOwn[s] = len(own)
		for _, id := range own {
			e.bits[id] |= 1 << s
		}
		// The union as the engine builds it: the source's best reels
		// that the towers and the sources before it did not propose.
		for _, id := range lists[s] {
			if e.nAdd[s] >= q {
				break
			}
			if e.taken[id] {
				continue
			}
			e.taken[id] = true
			e.nAdd[s]++
			if e.inBest[id] {
				e.nAddBest[s]++
			}
		}
	}
	n := float64(len(best))
	var found int
	for id := range e.inBest {
		if e.taken[id] {
			found++
		}
		bits := e.bits[id]
		for s := range numSources {
			if bits&(1<<s) != 0 {
				e.nOwnBest[s]++
				if bits == 1<<s {
					e.nOnly[s]++
				}
			}
		}
	}
	for s := range numSources {
		e.size[s] += float64(e.nOwn[s])
		e.recall[s] += float64(e.nOwnBest[s]) / n
		e.only[s] += float64(e.nOnly[s]) / n
		e.added[s] += float64(e.nAdd[s])
		e.addedRecall[s] += float64(e.nAddBest[s]) / n
	}
	union := len(e.taken)
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
		e.added[s] += o.added[s]
		e.addedRecall[s] += o.addedRecall[s]
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
			Size: e.size[s] / n, Recall: e.recall[s] / n, Only: e.only[s] / n, Added: e.added[s] / n, AddedRecall: e.addedRecall[s] / n})
	}
	return r
}

// takeSources calls src for the first sourceUsers(retrievalUsers) users
// of order at t and keeps their lists.
func (rs *retrievalSnap) takeSources(src sourceFunc, order []int64, t int64, cfg SourceConfig, retrievalUsers int) error {
	if src == nil {
		return nil
	}
	rs.sources = map[int64]*sourceLists{}
	for _, u := range order[:min(len(order), sourceUsers(retrievalUsers))] {
		l, err := src(u, t, cfg)
		if err != nil {
			return fmt.Errorf("train: candidate sources of user %d: %w", u, err)
		}
		rs.sources[u] = l
	}
	return nil
}

// render writes the sources' table (nothing for a nil report).
func (r *SourcesReport) render(b *bytes.Buffer) {
	if r == nil {
		return
	}
	fmt.Fprintf(b, "Candidate sources at that instant, %d of the test users: recall of the oracle's top 100 by each source's own list at its quota "+
		"(\"only\": in no other list nor the towers' top %d), and by the union the engine recalls: the towers' top %d, then what each source adds "+
		"(its best reels that the towers and the sources before it did not propose).\n\n", r.Users, r.TowerK, r.TowerK)
	b.WriteString("| candidates | quota | mean size | recall | only | added to the union | its recall |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	fmt.Fprintf(b, "| towers | 1000 | 1000 | %.4f | | | |\n", r.TowersRecall)
	fmt.Fprintf(b, "| towers | %d | %d | %.4f | | %d | %.4f |\n", r.TowerK, r.TowerK, r.TowersRecallAtK, r.TowerK, r.TowersRecallAtK)
	for _, s := range r.Sources {
		fmt.Fprintf(b, "| %s | %d | %.1f | %.4f | %.4f | %.1f | %.4f |\n", s.Source, s.Quota, s.Size, s.Recall, s.Only, s.Added, s.AddedRecall)
	}
	fmt.Fprintf(b, "| **union** | | %.1f | **%.4f** | | | |\n", r.UnionSize, r.UnionRecall)
	fmt.Fprintf(b, "| most watched | 1000 | 1000 | %.4f | | | |\n", r.PopularityRecall)
	fmt.Fprintf(b, "| most watched | union's size | %.1f | %.4f | | | |\n\n", r.UnionSize, r.PopularityRecallAtUnion)
	if r.PopularityRecall > 0 {
		fmt.Fprintf(b, "The union recalls %.2fx what the 1,000 most watched reels do (%.2fx at the union's size).\n\n",
			r.UnionRecall/r.PopularityRecall, r.UnionRecall/max(r.PopularityRecallAtUnion, 1e-9))
	}
}
