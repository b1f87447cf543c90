package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/reelrank/reelrank/features"
)

// Report is a training run's evaluation on its test days; the bundle
// carries it as report.json and report.md.
type Report struct {
	Version string `json:"version"`
	// Oracle says whether the run had an oracle (a simulated world): only
	// then are the oracle's figures (OracleAUC, OracleShare, OracleECE,
	// retrieval's Recall and PopularityRecall) measured; without one they
	// are zero and left out of the JSON and the text.
	Oracle    bool            `json:"oracle"`
	Data      DataReport      `json:"data"`
	Heads     []HeadReport    `json:"heads"`
	Retrieval RetrievalReport `json:"retrieval"`
	// Precision is the served ranker's arithmetic, "f32" or "bf16";
	// BF16MaxAUCLoss is the most test AUC a head loses to bf16.
	Precision      string        `json:"precision"`
	BF16MaxAUCLoss float64       `json:"bf16_max_auc_loss"`
	Ranker         RankerReport  `json:"ranker"`
	Towers         TowersReport  `json:"towers"`
	Seconds        Seconds       `json:"seconds"`
	Config         ConfigSummary `json:"config"`
}

// DataReport describes the rows and their split.
type DataReport struct {
	Events     int64  `json:"events"`
	Refused    int64  `json:"refused"`
	Rows       int    `json:"rows"`
	TrainRows  int    `json:"train_rows"`
	ValidRows  int    `json:"valid_rows"`
	TestRows   int    `json:"test_rows"`
	TrainFrom  string `json:"train_from"`
	ValidFrom  string `json:"valid_from"`
	TestFrom   string `json:"test_from"`
	TestTo     string `json:"test_to"`
	Users      int    `json:"users"`
	Reels      int    `json:"reels"`
	ExploreArm string `json:"explore_arm"`
	// TestReelPrior and TestUserPrior are the medians, over the test rows,
	// of the impressions the row's reel and user had in the log before
	// it: how much evidence the features carry about what is ranked.
	TestReelPrior int `json:"test_reel_prior_impressions"`
	TestUserPrior int `json:"test_user_prior_impressions"`
	// NoTestDays says the run held out no test day (Config.TestDays < 0):
	// the test figures are then of the validation days, which early
	// stopping has seen.
	NoTestDays bool `json:"no_test_days,omitempty"`
}

// HeadReport measures one head on the test days.
type HeadReport struct {
	Head      string  `json:"head"`
	Positives int     `json:"positives"`
	BaseRate  float64 `json:"base_rate"`
	AUC       float64 `json:"auc"`
	AUCBF16   float64 `json:"auc_bf16"`
	// OracleAUC is the AUC of the simulator's true probabilities: the best
	// any model can do on these rows.
	OracleAUC     float64 `json:"oracle_auc,omitempty"`
	PopularityAUC float64 `json:"popularity_auc"`
	// OracleShare is (AUC - 0.5)/(OracleAUC - 0.5): the share of the
	// oracle's lift over chance.
	OracleShare float64 `json:"oracle_share,omitempty"`
	// LiftShare is (AUC - PopularityAUC)/(OracleAUC - PopularityAUC): the
	// share of the oracle's lift over popularity the model gets.
	LiftShare float64      `json:"oracle_lift_share,omitempty"`
	ECE       float64      `json:"ece"`
	OracleECE float64      `json:"oracle_ece,omitempty"`
	LogLoss   float64      `json:"log_loss"`
	Explore   *SliceReport `json:"explore,omitempty"`
}

// SliceReport measures a head on a slice of the test rows.
type SliceReport struct {
	Rows          int     `json:"rows"`
	AUC           float64 `json:"auc"`
	OracleAUC     float64 `json:"oracle_auc,omitempty"`
	PopularityAUC float64 `json:"popularity_auc"`
}

// RetrievalReport measures the towers.
type RetrievalReport struct {
	Users           int    `json:"users"`
	At              string `json:"at"`
	Catalogue       int    `json:"catalogue"`
	IDVectors       int    `json:"id_vectors"`
	CatalogueWithID int    `json:"catalogue_with_id"`
	// Recall and PopularityRecall are recall@1000 of the oracle's top 100
	// reels, with an oracle only.
	Recall           float64 `json:"recall_at_1000_of_oracle_top100,omitempty"`
	PopularityRecall float64 `json:"popularity_recall_at_1000_of_oracle_top100,omitempty"`
	// TestRecall and TestPopularityRecall are recall@1000 of the reels
	// each of TestUsers (the sampled users with one) watched through on
	// the test days, among those uploaded by At.
	TestUsers            int     `json:"test_users"`
	TestRecall           float64 `json:"recall_at_1000_of_test_watch_throughs"`
	TestPopularityRecall float64 `json:"popularity_recall_at_1000_of_test_watch_throughs"`
	// Sources measures the candidate sources and their union with the
	// towers, with an oracle and a store with sources only.
	Sources *SourcesReport `json:"sources,omitempty"`
}

// RankerReport records the ranker's training.
type RankerReport struct {
	Hidden []int         `json:"hidden"`
	Epochs []rankerEpoch `json:"epochs"`
	// TrainBaseLoss and ValidBaseLoss are the losses of each day's
	// positive rates taken as constant predictions, over the training and
	// the validation rows: the losses' floor without features. Where the
	// rates move across days (a serving policy that learns), the two
	// losses differ by as much as these do.
	TrainBaseLoss float64 `json:"train_base_loss"`
	ValidBaseLoss float64 `json:"valid_base_loss"`
	// NoPosition is RankerConfig's; ServePosition is the position the
	// served ranker scores at, -1 for the request's.
	NoPosition    bool `json:"no_position,omitempty"`
	ServePosition int  `json:"serve_position"`
}

// TowersReport records the towers' training.
type TowersReport struct {
	Dim       int       `json:"dim"`
	Positives int       `json:"positives"`
	Loss      []float64 `json:"in_batch_loss"`
}

// Seconds is where the run spent its time.
type Seconds struct {
	Replay float64 `json:"replay"`
	Ranker float64 `json:"ranker"`
	Towers float64 `json:"towers"`
	Eval   float64 `json:"eval"`
	Total  float64 `json:"total"`
}

// ConfigSummary is the configuration that shaped the labels and weights.
type ConfigSummary struct {
	Theta       float32 `json:"theta"`
	LabelWindow string  `json:"label_window"`
	IPS         bool    `json:"ips"`
	IPSClip     float64 `json:"ips_clip"`
	Seed        uint64  `json:"seed"`
	Threads     int     `json:"threads"`
}

func (r *Report) fill(cfg *Config, cat *Catalogue, oracle bool, d *dataset, tr, va, te span, st features.ReplayStats, epochs []rankerEpoch, towerLoss []float64) {
	at := func(i int) string { return time.UnixMilli(d.time[i]).UTC().Format(time.RFC3339) }
	r.Data = DataReport{Events: st.Events, Refused: st.Refused, Rows: d.n, TrainRows: tr.len(), ValidRows: va.len(), TestRows: te.len(),
		TrainFrom: at(tr.lo), ValidFrom: at(va.lo), TestFrom: at(te.lo), TestTo: at(te.hi - 1),
		Users: len(cat.Users), Reels: len(cat.Reels), ExploreArm: cfg.ExploreArm, NoTestDays: cfg.testDays() == 0}
	if r.Data.NoTestDays {
		r.Data.TestRows = 0
	}
	r.Data.TestReelPrior, r.Data.TestUserPrior = priorEvidence(d, te)
	r.Oracle = oracle
	r.Ranker = RankerReport{Hidden: cfg.Ranker.Hidden, Epochs: epochs,
		TrainBaseLoss: dailyBaseLoss(d, tr), ValidBaseLoss: dailyBaseLoss(d, va),
		NoPosition: cfg.Ranker.NoPosition, ServePosition: -1}
	if cfg.Ranker.FixPosition {
		r.Ranker.ServePosition = cfg.Ranker.ServePosition
	}
	r.Towers = TowersReport{Dim: cfg.Towers.Dim, Loss: towerLoss}
	for i := tr.lo; i < tr.hi; i++ {
		if d.labels[i]&(1<<headWatch) != 0 {
			r.Towers.Positives++
		}
	}
	r.Config = ConfigSummary{Theta: cfg.Theta, LabelWindow: cfg.LabelWindow.String(), IPS: cfg.IPS, IPSClip: cfg.IPSClip, Seed: cfg.Seed, Threads: cfg.Threads}
}

// priorEvidence returns the median, over the rows of te, of the rows the
// row's reel and user had before it (every impression is a row).
func priorEvidence(d *dataset, te span) (reel, user int) {
	if te.len() == 0 {
		return 0, 0
	}
	reels, users := map[int64]int{}, map[int64]int{}
	rp, up := make([]int, 0, te.len()), make([]int, 0, te.len())
	for i := 0; i < te.hi; i++ {
		if i >= te.lo {
			rp, up = append(rp, reels[d.reel[i]]), append(up, users[d.user[i]])
		}
		reels[d.reel[i]]++
		users[d.user[i]]++
	}
	slices.Sort(rp)
	slices.Sort(up)
	return rp[len(rp)/2], up[len(up)/2]
}

// dailyBaseLoss is the mean, over the rows of s, of the summed per-head
// cross-entropy of predicting each head by its positive rate on the row's
// UTC day.
func dailyBaseLoss(d *dataset, s span) float64 {
	const day = 24 * 60 * 60 * 1000
	var total float64
	for lo := s.lo; lo < s.hi; {
		end := d.time[lo] - d.time[lo]%day + day
		hi := max(lo+1, min(d.splitAt(end), s.hi))
		var pos [numHeads]float64
		for i := lo; i < hi; i++ {
			for h := range numHeads {
				if d.labels[i]&(1<<h) != 0 {
					pos[h]++
				}
			}
		}
		n := float64(hi - lo)
		for h := range numHeads {
			if p := pos[h] / n; p > 0 && p < 1 {
				total -= pos[h]*math.Log(p) + (n-pos[h])*math.Log(1-p)
			}
		}
		lo = hi
	}
	return total / float64(max(s.len(), 1))
}

// jsonFloat keeps NaN (a metric with no data) out of the JSON as null.
func (r *Report) sanitized() *Report {
	c := *r
	c.Heads = append([]HeadReport(nil), r.Heads...)
	fix := func(v *float64) {
		if math.IsNaN(*v) || math.IsInf(*v, 0) {
			*v = -1
		}
	}
	for i := range c.Heads {
		h := &c.Heads[i]
		for _, v := range []*float64{&h.AUC, &h.AUCBF16, &h.OracleAUC, &h.PopularityAUC, &h.OracleShare, &h.LiftShare, &h.ECE, &h.OracleECE, &h.LogLoss} {
			fix(v)
		}
		if h.Explore != nil {
			e := *h.Explore
			for _, v := range []*float64{&e.AUC, &e.OracleAUC, &e.PopularityAUC} {
				fix(v)
			}
			h.Explore = &e
		}
	}
	fix(&c.BF16MaxAUCLoss)
	return &c
}

// render returns report.md and report.json. A metric that could not be
// measured (a head with no positive on the test days) is -1 in the JSON
// and "n/a" in the text.
func (r *Report) render() (md, js []byte, err error) {
	s := r.sanitized()
	js, err = json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, nil, fmt.Errorf("train: report: %w", err)
	}
	js = append(js, '\n')
	f := func(v float64) string {
		if v < 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.4f", v)
	}
	// A share may be negative (a model below popularity); the JSON's -1
	// for "not measured" is then ambiguous, so the text reads the report
	// itself.
	share := func(v float64) string {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "n/a"
		}
		return fmt.Sprintf("%.3f", v)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Model %s\n\n", r.Version)
	d := &r.Data
	days, row := "test days", "A test row"
	if d.NoTestDays {
		days, row = "validation days", "A validation row"
		fmt.Fprintf(&b, "Trained on %d rows from %s, validated on %d from %s to %s; no test day: the figures below are of the validation days, which early stopping has seen.\n", d.TrainRows, d.TrainFrom, d.ValidRows, d.ValidFrom, d.TestTo)
	} else {
		fmt.Fprintf(&b, "Trained on %d rows from %s, validated on %d from %s, tested on %d from %s to %s.\n", d.TrainRows, d.TrainFrom, d.ValidRows, d.ValidFrom, d.TestRows, d.TestFrom, d.TestTo)
	}
	fmt.Fprintf(&b, "%s's reel had a median of %d impressions before it, its user %d.\n", row, d.TestReelPrior, d.TestUserPrior)
	fmt.Fprintf(&b, "Watch-through: fraction watched ≥ %.2f without a skip; labels within %s of the impression; IPS weighting %v.\n\n", r.Config.Theta, r.Config.LabelWindow, r.Config.IPS)
	fmt.Fprintf(&b, "## Ranker, %s\n\n", days)
	if r.Oracle {
		b.WriteString("Share of oracle lift: (AUC - popularity AUC)/(oracle AUC - popularity AUC); over chance: (AUC - 0.5)/(oracle AUC - 0.5).\n\n")
		b.WriteString("| head | positives | AUC | AUC bf16 | oracle AUC | popularity AUC | share of oracle lift | over chance | ECE | oracle ECE |\n")
		b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for i, h := range s.Heads {
			fmt.Fprintf(&b, "| %s | %d (%.2f%%) | %s | %s | %s | %s | %s | %s | %s | %s |\n", h.Head, h.Positives, 100*h.BaseRate,
				f(h.AUC), f(h.AUCBF16), f(h.OracleAUC), f(h.PopularityAUC), share(r.Heads[i].LiftShare), share(r.Heads[i].OracleShare), f(h.ECE), f(h.OracleECE))
		}
	} else {
		b.WriteString("No oracle: the log's true probabilities are unknown.\n\n")
		b.WriteString("| head | positives | AUC | AUC bf16 | popularity AUC | ECE |\n")
		b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: |\n")
		for _, h := range s.Heads {
			fmt.Fprintf(&b, "| %s | %d (%.2f%%) | %s | %s | %s | %s |\n", h.Head, h.Positives, 100*h.BaseRate,
				f(h.AUC), f(h.AUCBF16), f(h.PopularityAUC), f(h.ECE))
		}
	}
	if len(s.Heads) > 0 && s.Heads[0].Explore != nil {
		fmt.Fprintf(&b, "\nExploration slice (arm %q, %d rows):\n\n", d.ExploreArm, s.Heads[0].Explore.Rows)
		if r.Oracle {
			b.WriteString("| head | AUC | oracle AUC | popularity AUC |\n| --- | ---: | ---: | ---: |\n")
			for _, h := range s.Heads {
				fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", h.Head, f(h.Explore.AUC), f(h.Explore.OracleAUC), f(h.Explore.PopularityAUC))
			}
		} else {
			b.WriteString("| head | AUC | popularity AUC |\n| --- | ---: | ---: |\n")
			for _, h := range s.Heads {
				fmt.Fprintf(&b, "| %s | %s | %s |\n", h.Head, f(h.Explore.AUC), f(h.Explore.PopularityAUC))
			}
		}
	}
	fmt.Fprintf(&b, "\nServed precision: %s (bf16 costs at most %.5f AUC on a head).\n\n", r.Precision, s.BF16MaxAUCLoss)
	rr := &r.Retrieval
	b.WriteString("## Retrieval\n\n")
	fmt.Fprintf(&b, "At %s over %d reels (%d with an id vector), %d test users", rr.At, rr.Catalogue, rr.CatalogueWithID, rr.Users)
	if r.Oracle {
		fmt.Fprintf(&b, ": recall@1000 of the oracle's top 100 is %.4f for the towers, %.4f for the 1,000 most watched reels.", rr.Recall, rr.PopularityRecall)
		fmt.Fprintf(&b, " Recall@1000 of the reels the %d of them with one watched through on the test days:", rr.TestUsers)
	} else {
		fmt.Fprintf(&b, ", %d of them with a watch-through on the test days: recall@1000 of the reels they watched through", rr.TestUsers)
	}
	fmt.Fprintf(&b, " %.4f for the towers, %.4f for the 1,000 most watched reels.\n\n", rr.TestRecall, rr.TestPopularityRecall)
	rr.Sources.render(&b)
	b.WriteString("## Training\n\n")
	for _, e := range r.Ranker.Epochs {
		fmt.Fprintf(&b, "- ranker epoch %d: training loss %.5f, validation loss %.5f, %.1f s\n", e.Epoch, e.TrainLoss, e.ValidLoss, e.Seconds)
	}
	if rk := &r.Ranker; rk.TrainBaseLoss > 0 && rk.ValidBaseLoss > 0 && len(rk.Epochs) > 0 {
		best := rk.Epochs[0]
		for _, e := range rk.Epochs {
			if e.ValidLoss < best.ValidLoss {
				best = e
			}
		}
		fmt.Fprintf(&b, "- each day's positive rates as constant predictions lose %.5f on the training days and %.5f on the validation days: the best epoch (%d) loses %.3f and %.3f of these\n",
			rk.TrainBaseLoss, rk.ValidBaseLoss, best.Epoch, best.TrainLoss/rk.TrainBaseLoss, best.ValidLoss/rk.ValidBaseLoss)
	}
	switch {
	case r.Ranker.NoPosition:
		b.WriteString("- ranker trained and served without the position features\n")
	case r.Ranker.ServePosition >= 0:
		fmt.Fprintf(&b, "- ranker served at session position %d for every candidate\n", r.Ranker.ServePosition)
	}
	for i, l := range r.Towers.Loss {
		fmt.Fprintf(&b, "- towers epoch %d: in-batch loss %.4f\n", i+1, l)
	}
	sec := &r.Seconds
	fmt.Fprintf(&b, "\nTime: %.1f s in all (replay and features %.1f, ranker %.1f, towers %.1f, evaluation %.1f), %d threads.\n",
		sec.Total, sec.Replay, sec.Ranker, sec.Towers, sec.Eval, r.Config.Threads)
	return b.Bytes(), js, nil
}
