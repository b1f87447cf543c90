package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/reelrank/reelrank/drift"
	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/ranker"
)

// quietPolicy is a canary policy whose latency rule cannot fire in a test
// (latency depends on the machine) and that promotes by hand only.
func quietPolicy() CanaryPolicy {
	return CanaryPolicy{P99Factor: 1e9, PromoteImpressions: -1, MinRequests: 50, MinImpressions: 200}
}

// constantModel returns a model whose heads ignore their input: every
// candidate gets the same scores.
func constantModel(t testing.TB, w *world, version string) *Model {
	t.Helper()
	m := w.model(t, version, "default", 99)
	for i := range m.bundle.Ranker.Heads {
		h := &m.bundle.Ranker.Heads[i]
		clear(h.W)
	}
	if err := m.bundle.Ranker.Prepare(); err != nil {
		t.Fatal(err)
	}
	return m
}

func armCounts(e *Engine, users int) map[string]int {
	out := map[string]int{}
	for u := 1; u <= users; u++ {
		out[e.ArmOf(int64(u))]++
	}
	return out
}

func TestArmsSharesAndStability(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 400, users: 50, known: 200, seed: 1})
	e := w.engine(t, Config{Canary: quietPolicy(), HoldoutShare: 0.2, ArmSalt: 7}, w.model(t, "v1", "default", 1))
	if err := e.LoadCanary(w.model(t, "v2", "default", 2), LoadOptions{Share: 0.1}); err != nil {
		t.Fatal(err)
	}
	const users = 20000
	c := armCounts(e, users)
	for arm, want := range map[string]float64{"default": 0.7, RoleCanary: 0.1, HoldoutArm: 0.2} {
		if got := float64(c[arm]) / users; math.Abs(got-want) > 0.02 {
			t.Errorf("arm %s: %.3f of users, want %.2f (%v)", arm, got, want, c)
		}
	}
	var inCanary []int64
	for u := int64(1); u <= users; u++ {
		if e.ArmOf(u) == RoleCanary {
			inCanary = append(inCanary, u)
		}
	}
	// Growing the canary keeps its users and takes from the control only.
	if err := e.SetShares(0.3, -1); err != nil {
		t.Fatal(err)
	}
	for _, u := range inCanary {
		if a := e.ArmOf(u); a != RoleCanary {
			t.Fatalf("user %d left the canary for %s when its share grew", u, a)
		}
	}
	c2 := armCounts(e, users)
	if math.Abs(float64(c2[HoldoutArm])/users-0.2) > 0.02 || math.Abs(float64(c2[RoleCanary])/users-0.3) > 0.02 {
		t.Fatalf("after SetShares(0.3): %v", c2)
	}
	// Another salt reshuffles.
	e2 := w.engine(t, Config{Canary: quietPolicy(), HoldoutShare: 0.2, ArmSalt: 8}, w.model(t, "v1", "default", 1))
	same := 0
	for u := int64(1); u <= 1000; u++ {
		if (e.ArmOf(u) == HoldoutArm) == (e2.ArmOf(u) == HoldoutArm) {
			same++
		}
	}
	if same > 900 {
		t.Fatalf("another salt kept %d of 1000 users' holdout membership", same)
	}
	for _, bad := range [][2]float64{{0.9, -1}, {math.NaN(), -1}, {-1, 0.85}} {
		if err := e.SetShares(bad[0], bad[1]); !errors.Is(err, ErrBadRequest) {
			t.Errorf("SetShares(%v): %v, want ErrBadRequest", bad, err)
		}
	}
}

func TestArmsResponses(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 400, users: 50, known: 200, seed: 2})
	e := w.engine(t, Config{Canary: quietPolicy(), HoldoutShare: 0.3, Epsilon: 0.5}, w.model(t, "v1", "default", 1))
	if err := e.LoadCanary(w.model(t, "v2", "default", 2), LoadOptions{Share: 0.3}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for u := int64(1); u <= 60; u++ {
		resp, err := e.Recommend(context.Background(), w.request(u, 10))
		if err != nil {
			t.Fatal(err)
		}
		arm := e.ArmOf(u)
		seen[arm] = true
		if resp.Arm != arm {
			t.Fatalf("user %d: response arm %q, the user's arm is %q", u, resp.Arm, arm)
		}
		wantV := map[string]string{"default": "v1", RoleCanary: "v2", HoldoutArm: "v1"}[arm]
		if resp.ModelVersion != wantV {
			t.Fatalf("user %d in %s: version %s, want %s", u, arm, resp.ModelVersion, wantV)
		}
		if arm == HoldoutArm {
			// Popularity alone: no exploration, scores in order.
			for j, it := range resp.Items {
				if it.Propensity != 1 || it.Source == SourceExplore && j > 0 && it.Score > resp.Items[j-1].Score {
					t.Fatalf("holdout item %d: propensity %v source %v", j, it.Propensity, it.Source)
				}
			}
		}
	}
	if len(seen) != 3 {
		t.Fatalf("60 users reached arms %v, want all three", seen)
	}
	st := e.ArmsStatus(false)
	if len(st.Arms) != 3 {
		t.Fatalf("status has %d arms", len(st.Arms))
	}
	total := int64(0)
	for _, a := range st.Arms {
		total += a.Metrics.Requests
		if a.Metrics.Requests > 0 && a.Metrics.DistinctReels == 0 {
			t.Errorf("arm %s served %d requests and no distinct reels", a.Name, a.Metrics.Requests)
		}
	}
	if total != 60 {
		t.Fatalf("arms counted %d requests, want 60", total)
	}
}

func TestLoadCanaryRefusals(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 300, users: 30, known: 100, seed: 3})
	e := w.engine(t, Config{Canary: quietPolicy()}, w.model(t, "v1", "default", 1))
	if err := e.LoadCanary(constantModel(t, w, "flat"), LoadOptions{}); err == nil || !strings.Contains(err.Error(), "constant") {
		t.Fatalf("constant model: %v, want a refusal naming constant scores", err)
	}
	other := newWorld(t, worldConfig{reels: 300, users: 30, known: 100, seed: 3, embed: 8})
	if err := e.LoadCanary(other.model(t, "otherspec", "default", 1), LoadOptions{}); err == nil || !strings.Contains(err.Error(), "embedding dimension") {
		t.Fatalf("other spec: %v, want a refusal naming the embedding dimension", err)
	}
	if got := e.Model().Version(); got != "v1" {
		t.Fatalf("after refusals the control is %s", got)
	}
	st := e.ArmsStatus(false)
	if len(st.Arms) != 1 {
		t.Fatalf("%d arms after refusals", len(st.Arms))
	}
	refused := 0
	for _, c := range st.History {
		if c.Action == "refused" {
			refused++
		}
	}
	if refused != 2 {
		t.Fatalf("history %+v: want 2 refusals", st.History)
	}
	if err := e.Promote(""); !errors.Is(err, ErrNoCanary) {
		t.Fatalf("promote with no canary: %v", err)
	}
	if err := e.Rollback(""); !errors.Is(err, ErrNoCanary) {
		t.Fatalf("rollback with nothing before: %v", err)
	}
}

func TestCanaryRollsBackConstantScores(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 300, users: 30, known: 100, seed: 4})
	e := w.engine(t, Config{Canary: quietPolicy()}, w.model(t, "v1", "default", 1))
	if err := e.LoadCanary(constantModel(t, w, "flat"), LoadOptions{Share: 0.1, NoProbe: true}); err != nil {
		t.Fatal(err)
	}
	served := 0
	for u := int64(1); u <= 5000 && e.ArmsStatus(false).Arms[len(e.ArmsStatus(false).Arms)-1].Role == RoleCanary; u++ {
		resp, err := e.Recommend(context.Background(), w.request(u, 5))
		if err != nil {
			t.Fatal(err)
		}
		if resp.ModelVersion == "flat" {
			served++
		}
	}
	st := e.ArmsStatus(false)
	if len(st.Arms) != 1 {
		t.Fatalf("the constant canary is still served after %d requests", served)
	}
	last := st.History[len(st.History)-1]
	if last.Action != "rollback" || !strings.Contains(last.Reason, "the same for every candidate") {
		t.Fatalf("last change %+v, want a rollback for constant scores", last)
	}
	// Checked every 16 canary requests, from the 32nd on.
	if served != degenerateMin {
		t.Fatalf("the canary served %d requests before its rollback, want %d", served, degenerateMin)
	}
}

// feed sends an impression and, with probability wt, a watch-through for
// each user.
func feed(t *testing.T, e *Engine, w *world, users []int64, wt float64, r *rand.Rand) {
	t.Helper()
	var evs []eventlog.Event
	for _, u := range users {
		reel := w.reels[r.IntN(len(w.reels))]
		evs = append(evs, eventlog.Event{Type: eventlog.Impression, Has: eventlog.Required(eventlog.Impression), Time: w.now, User: u, Reel: reel,
			Session: 1, Position: 0, Propensity: 1})
		if r.Float64() < wt {
			evs = append(evs, eventlog.Event{Type: eventlog.Watch, Has: eventlog.Required(eventlog.Watch), Time: w.now, User: u, Reel: reel,
				Session: 1, Seconds: 10, Fraction: 0.95})
		}
	}
	res, err := e.Event(evs)
	if err != nil || res.Rejected > 0 {
		t.Fatalf("events: %+v %v", res, err)
	}
}

func TestCanaryWatchThroughRule(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 300, users: 30, known: 100, seed: 5})
	e := w.engine(t, Config{Canary: quietPolicy()}, w.model(t, "v1", "default", 1))
	if err := e.LoadCanary(w.model(t, "v2", "default", 2), LoadOptions{Share: 0.5}); err != nil {
		t.Fatal(err)
	}
	var canary, control []int64
	for u := int64(1); u <= 4000; u++ {
		if e.ArmOf(u) == RoleCanary {
			canary = append(canary, u)
		} else {
			control = append(control, u)
		}
	}
	r := rand.New(rand.NewPCG(5, 5))
	// Equal rates: no rollback however long.
	for range 3 {
		feed(t, e, w, control[:500], 0.4, r)
		feed(t, e, w, canary[:500], 0.4, r)
	}
	if n := len(e.ArmsStatus(false).Arms); n != 2 {
		t.Fatalf("equal watch-through rolled the canary back")
	}
	// The canary's users stop watching: rolled back.
	for i := 0; i < 10 && len(e.ArmsStatus(false).Arms) == 2; i++ {
		feed(t, e, w, control[:500], 0.4, r)
		feed(t, e, w, canary[:500], 0.2, r)
	}
	st := e.ArmsStatus(false)
	if len(st.Arms) != 1 {
		t.Fatal("a canary watched through half as often was not rolled back")
	}
	if last := st.History[len(st.History)-1]; last.Action != "rollback" || !strings.Contains(last.Reason, "watch-through") {
		t.Fatalf("last change %+v", last)
	}
}

func TestCanaryPromoteAndRollback(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 300, users: 30, known: 100, seed: 6})
	pol := quietPolicy()
	pol.PromoteImpressions = 600
	e := w.engine(t, Config{Canary: pol}, w.model(t, "v1", "default", 1))
	if err := e.LoadCanary(w.model(t, "v2", "default", 2), LoadOptions{Share: 0.5}); err != nil {
		t.Fatal(err)
	}
	// Impressions without an arm are counted to their user's arm.
	var users []int64
	for u := int64(1); u <= 400; u++ {
		users = append(users, u)
	}
	r := rand.New(rand.NewPCG(6, 6))
	for range 2 {
		feed(t, e, w, users, 0.3, r)
	}
	// Requests, so that the canary has its MinRequests.
	for u := int64(1); u <= 200; u++ {
		if _, err := e.Recommend(context.Background(), w.request(u, 3)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 10 && e.Model().Version() != "v2"; i++ {
		feed(t, e, w, users, 0.3, r)
	}
	if v := e.Model().Version(); v != "v2" {
		t.Fatalf("control %s after the canary's volume, want v2 promoted", v)
	}
	st := e.ArmsStatus(false)
	if len(st.Arms) != 1 || st.Arms[0].Name != "default" {
		t.Fatalf("after promotion: %+v", st.Arms)
	}
	// Rolling back with no canary reinstates v1, caught up with an upsert
	// and a delete made meanwhile.
	emb := make([]float32, testEmbed)
	emb[0] = 1
	if _, err := e.Upsert(Reel{ID: 90001, Author: 5, Upload: w.now, Duration: 12, Category: -1, Embedding: emb}); err != nil {
		t.Fatal(err)
	}
	if err := e.Delete(w.reels[0]); err != nil {
		t.Fatal(err)
	}
	if err := e.Rollback("test"); err != nil {
		t.Fatal(err)
	}
	m := e.Model()
	if m.Version() != "v1" || !m.Index().Contains(90001) || m.Index().Contains(w.reels[0]) {
		t.Fatalf("after rollback: version %s, upserted %v, deleted %v", m.Version(), m.Index().Contains(90001), m.Index().Contains(w.reels[0]))
	}
}

func TestCanaryIndexFollowsCatalogue(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 300, users: 30, known: 100, seed: 7})
	e := w.engine(t, Config{Canary: quietPolicy()}, w.model(t, "v1", "default", 1))
	c := w.model(t, "v2", "default", 2)
	emb := make([]float32, testEmbed)
	emb[1] = 1
	if _, err := e.Upsert(Reel{ID: 80001, Author: 5, Upload: w.now, Duration: 12, Category: -1, Embedding: emb}); err != nil {
		t.Fatal(err)
	}
	if err := e.LoadCanary(c, LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	if !c.Index().Contains(80001) {
		t.Fatal("the canary's index missed a reel upserted before its load")
	}
	if _, err := e.Upsert(Reel{ID: 80002, Author: 5, Upload: w.now, Duration: 12, Category: -1, Embedding: emb}); err != nil {
		t.Fatal(err)
	}
	if err := e.Delete(w.reels[1]); err != nil {
		t.Fatal(err)
	}
	if !c.Index().Contains(80002) || c.Index().Contains(w.reels[1]) {
		t.Fatal("the canary's index did not follow an upsert and a delete")
	}
}

// driftReference builds a reference as training does: a stream of
// impressions of the world's users on random reels is applied to the
// world's store, each impression's row taken just before it.
func driftReference(t *testing.T, w *world, m *Model, r *rand.Rand) *drift.Reference {
	t.Helper()
	sp := w.store.Spec()
	var names []string
	for _, n := range sp.User {
		names = append(names, DriftUser+n)
	}
	for _, n := range sp.Reel {
		names = append(names, DriftReel+n)
	}
	for _, n := range sp.Cross {
		names = append(names, DriftCross+n)
	}
	for _, n := range m.heads {
		names = append(names, DriftHead+n)
	}
	b := drift.NewBuilder(names, 0, 1)
	sc, err := m.bundle.Ranker.NewScorer()
	if err != nil {
		t.Fatal(err)
	}
	var scores ranker.Scores
	for range 10 {
		batch := impressions(w, population(r, 200, 300), r)
		for _, ev := range batch {
			fr := &features.Request{User: ev.User, Reels: []int64{ev.Reel}, Embeddings: true,
				Context: features.Context{Time: ev.Time, Session: ev.Session}}
			if err := w.store.Features(fr); err != nil {
				t.Fatal(err)
			}
			if err := sc.Score(fr, &scores); err != nil {
				t.Fatal(err)
			}
			row := append([]float32(nil), fr.UserVec...)
			row = append(row, fr.ReelVec...)
			row = append(row, fr.CrossVec...)
			row = append(row, scores.Probs[:len(m.heads)]...)
			if err := b.Add(row); err != nil {
				t.Fatal(err)
			}
			if err := w.store.Apply([]eventlog.Event{ev}); err != nil {
				t.Fatal(err)
			}
		}
	}
	ref, err := b.Build(0)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// population draws n users of 1..users.
func population(r *rand.Rand, n int, users int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = 1 + r.Int64N(users)
	}
	return out
}

// impressions returns an impression for each user on a random reel.
func impressions(w *world, users []int64, r *rand.Rand) []eventlog.Event {
	var evs []eventlog.Event
	for _, u := range users {
		evs = append(evs, eventlog.Event{Type: eventlog.Impression, Has: eventlog.Required(eventlog.Impression), Time: w.now, User: u,
			Reel: w.reels[r.IntN(len(w.reels))], Session: u*7 + 1, Propensity: 1})
	}
	return evs
}

func TestDriftFlagsNewUsers(t *testing.T) {
	// Training's world, and the same world served.
	wc := worldConfig{reels: 400, users: 300, known: 200, seed: 8}
	tw := newWorld(t, wc)
	ref := driftReference(t, tw, tw.model(t, "v1", "default", 1), rand.New(rand.NewPCG(8, 8)))
	w := newWorld(t, wc)
	m := w.model(t, "v1", "default", 1)
	if err := m.SetReference(ref, drift.Options{Window: 2000, MinCount: 500}); err != nil {
		t.Fatal(err)
	}
	e := w.engine(t, Config{Epsilon: -1, DriftSample: 1}, m)
	// The same population's impressions: nothing drifts.
	r := rand.New(rand.NewPCG(9, 9))
	for range 10 {
		if res, err := e.Event(impressions(w, population(r, 200, 300), r)); err != nil || res.Rejected > 0 {
			t.Fatalf("events: %+v %v", res, err)
		}
	}
	ds := e.ArmsStatus(true).Drift
	if ds == nil || ds.Drifted != 0 {
		t.Fatalf("unshifted impressions flagged: %+v", ds.Series[:3])
	}
	if ds.Series[0].Count < 500 {
		t.Fatalf("the monitor saw %d rows of 2000 impressions", ds.Series[0].Count)
	}
	// Users the catalogue does not know arrive: their profile and counters
	// drift.
	for k := range 5 {
		var users []int64
		for j := range 200 {
			users = append(users, 100000+int64(k*200+j))
		}
		if _, err := e.Event(impressions(w, users, r)); err != nil {
			t.Fatal(err)
		}
	}
	ds = m.Drift()
	userDrift := ""
	for _, s := range ds.Series {
		if s.Level == drift.Drift && strings.HasPrefix(s.Name, DriftUser) {
			userDrift = s.Name
			break
		}
	}
	if userDrift == "" {
		t.Fatalf("new users flagged no user series: worst %+v", ds.Series[0])
	}
	for _, s := range ds.Series {
		if strings.HasPrefix(s.Name, DriftUser+"ctx_") && (s.Level != "" || !s.Exempt) {
			t.Fatalf("calendar series %s judged: %+v", s.Name, s)
		}
	}
}

// TestArmsConcurrent changes the arms while requests, scores, events and
// upserts run: every answer names a model that was serving and an arm of
// the set, and the race detector sees the rest.
func TestArmsConcurrent(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 300, users: 40, known: 100, seed: 11})
	models := []*Model{w.model(t, "v1", "default", 1), w.model(t, "v2", "default", 2), w.model(t, "v3", "default", 3)}
	e := w.engine(t, Config{Canary: quietPolicy(), HoldoutShare: 0.1}, models[0])
	rounds := 30
	if testing.Short() {
		rounds = 10
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for g := range 2 {
		wg.Go(func() {
			for i := range rounds * 3 {
				u := int64(1 + (g*97+i)%60)
				resp, err := e.Recommend(context.Background(), w.request(u, 5))
				if err != nil {
					fail(err)
					return
				}
				switch resp.Arm {
				case "default", RoleCanary, HoldoutArm:
				default:
					fail(fmt.Errorf("arm %q", resp.Arm))
					return
				}
				if _, err := e.Score(context.Background(), u, Context{Time: w.now}, []int64{1, 2}); err != nil {
					fail(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		r := rand.New(rand.NewPCG(11, 11))
		emb := make([]float32, testEmbed)
		for i := range rounds {
			if _, err := e.Event(impressions(w, population(r, 20, 60), r)); err != nil {
				fail(err)
				return
			}
			emb[i%testEmbed] = 1
			if _, err := e.Upsert(Reel{ID: int64(70000 + i), Author: 5, Upload: w.now, Duration: 10, Category: -1, Embedding: emb}); err != nil {
				fail(err)
				return
			}
		}
	})
	wg.Go(func() {
		for i := range rounds {
			m := models[1+i%2]
			if m.Version() == e.Model().Version() {
				m = models[0]
				if m.Version() == e.Model().Version() {
					m = models[1]
				}
			}
			if err := e.LoadCanary(m, LoadOptions{Share: 0.3, NoProbe: true}); err != nil && !errors.Is(err, ErrBadRequest) {
				fail(err)
				return
			}
			switch i % 3 {
			case 0:
				e.Promote("test")
			case 1:
				e.Rollback("test")
			case 2:
				e.SetShares(-1, 0.2)
			}
			e.ArmsStatus(true)
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
