package engine

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

func TestExperiments(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 400, users: 50, known: 200, fresh: 40, seed: 3})
	e := w.engine(t, Config{Canary: quietPolicy(), HoldoutShare: 0.1, ArmSalt: 3, Epsilon: 0.5, Seed: 9}, w.model(t, "v1", "default", 1))
	exps := []Experiment{
		{Name: "none", Share: 0.2, Settings: ArmSettings{Epsilon: ptr(-1.0)}},
		{Name: "thompson", Share: 0.2, Settings: ArmSettings{Exploration: "thompson"}},
		{Name: "fresh", Share: 0.2, Settings: ArmSettings{ExplorePool: PoolFresh}},
		{Name: "own", Share: 0.1, Model: w.model(t, "v3", "default", 3)},
	}
	if err := e.SetExperiments(exps); err != nil {
		t.Fatal(err)
	}
	const users = 20000
	c := armCounts(e, users)
	for arm, want := range map[string]float64{"none": 0.2, "thompson": 0.2, "fresh": 0.2, "own": 0.1, HoldoutArm: 0.1, "default": 0.2} {
		if got := float64(c[arm]) / users; math.Abs(got-want) > 0.02 {
			t.Errorf("arm %s: %.3f of users, want %.2f (%v)", arm, got, want, c)
		}
	}
	members := map[int64]string{}
	for u := int64(1); u <= 2000; u++ {
		members[u] = e.ArmOf(u)
	}

	explored := map[string]int{}
	for u := int64(1); u <= 300; u++ {
		resp, err := e.Recommend(context.Background(), w.request(u, 10))
		if err != nil {
			t.Fatal(err)
		}
		arm := members[u]
		if resp.Arm != arm {
			t.Fatalf("user %d: response arm %q, ArmOf %q", u, resp.Arm, arm)
		}
		wantV := map[string]string{"own": "v3"}[arm]
		if wantV == "" {
			wantV = "v1"
		}
		if resp.ModelVersion != wantV {
			t.Fatalf("user %d in %s: version %s, want %s", u, arm, resp.ModelVersion, wantV)
		}
		checkResponse(t, w, resp, nil, 5, nil)
		for j, it := range resp.Items {
			if it.Propensity == 1 {
				continue
			}
			explored[arm]++
			switch arm {
			case "none", HoldoutArm:
				t.Fatalf("user %d in %s: item %d has propensity %v: the arm does not explore", u, arm, j, it.Propensity)
			}
		}
	}
	for _, arm := range []string{"thompson", "fresh", "default"} {
		if explored[arm] == 0 {
			t.Errorf("arm %s explored no slot in its requests (%v)", arm, explored)
		}
	}
	st := e.ArmsStatus(false)
	if len(st.Arms) != 6 {
		t.Fatalf("status has %d arms, want 6: %+v", len(st.Arms), st.Arms)
	}
	for _, a := range st.Arms {
		if a.Name == "default" && math.Abs(a.Share-0.2) > 1e-9 {
			t.Errorf("control share %v, want 0.2", a.Share)
		}
		if a.Metrics.Requests == 0 {
			t.Errorf("arm %s served no request", a.Name)
		}
	}

	// The holdout's share and a canary move no experiment user.
	if err := e.SetShares(-1, 0.05); err != nil {
		t.Fatal(err)
	}
	if err := e.LoadCanary(w.model(t, "v2", "default", 2), LoadOptions{Share: 0.1}); err != nil {
		t.Fatal(err)
	}
	for u, arm := range members {
		if arm == "default" || arm == HoldoutArm {
			continue
		}
		if got := e.ArmOf(u); got != arm {
			t.Fatalf("user %d moved from %s to %s", u, arm, got)
		}
	}
	// Experiments on the control's model follow a promotion; one with
	// its own model keeps it.
	if err := e.Promote("test"); err != nil {
		t.Fatal(err)
	}
	for u := int64(1); u <= 200; u++ {
		arm := e.ArmOf(u)
		if arm != "none" && arm != "own" {
			continue
		}
		resp, err := e.Recommend(context.Background(), w.request(u, 5))
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{"none": "v2", "own": "v3"}[arm]; resp.ModelVersion != want {
			t.Fatalf("user %d in %s after promotion: version %s, want %s", u, arm, resp.ModelVersion, want)
		}
	}
	// Keeping an arm's name and share keeps its statistics.
	var before int64
	for _, a := range e.ArmsStatus(false).Arms {
		if a.Name == "none" {
			before = a.Metrics.Requests
		}
	}
	if err := e.SetExperiments(exps[:1]); err != nil {
		t.Fatal(err)
	}
	for _, a := range e.ArmsStatus(false).Arms {
		if a.Name == "none" && a.Metrics.Requests != before {
			t.Errorf("arm none kept %d requests, had %d", a.Metrics.Requests, before)
		}
		if a.Name == "thompson" {
			t.Errorf("arm thompson still served")
		}
	}
	if err := e.SetExperiments(nil); err != nil {
		t.Fatal(err)
	}
	if got := len(e.Experiments()); got != 0 {
		t.Fatalf("%d experiments after ending them", got)
	}
}

func TestExperimentsRefused(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 200, users: 20, known: 100, seed: 4})
	e := w.engine(t, Config{Canary: quietPolicy(), HoldoutShare: 0.2}, w.model(t, "v1", "default", 1))
	for name, exps := range map[string][]Experiment{
		"empty name":     {{Name: "", Share: 0.1}},
		"space":          {{Name: "a b", Share: 0.1}},
		"reserved":       {{Name: HoldoutArm, Share: 0.1}},
		"control's name": {{Name: "default", Share: 0.1}},
		"twice":          {{Name: "a", Share: 0.1}, {Name: "a", Share: 0.1}},
		"share NaN":      {{Name: "a", Share: math.NaN()}},
		"share 0":        {{Name: "a", Share: 0}},
		"share 1":        {{Name: "a", Share: 1}},
		"no room":        {{Name: "a", Share: 0.5}, {Name: "b", Share: 0.3}},
		"exploration":    {{Name: "a", Share: 0.1, Settings: ArmSettings{Exploration: "greedy"}}},
		"pool":           {{Name: "a", Share: 0.1, Settings: ArmSettings{ExplorePool: "old"}}},
		"epsilon":        {{Name: "a", Share: 0.1, Settings: ArmSettings{Epsilon: ptr(math.NaN())}}},
		"weights":        {{Name: "a", Share: 0.1, Settings: ArmSettings{Weights: map[string]float32{"nope": 1}}}},
	} {
		err := e.SetExperiments(exps)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if name != "weights" && !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: %v, want ErrBadRequest", name, err)
		}
	}
	if len(e.Experiments()) != 0 {
		t.Fatalf("a refused call left experiments: %v", e.Experiments())
	}
	// With experiments serving, the canary and the holdout must leave the
	// control some users.
	if err := e.SetExperiments([]Experiment{{Name: "a", Share: 0.5}}); err != nil {
		t.Fatal(err)
	}
	if err := e.SetShares(-1, 0.5); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("SetShares leaving the control nothing: %v", err)
	}
	if err := e.LoadCanary(w.model(t, "v2", "default", 2), LoadOptions{Share: 0.3}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("LoadCanary leaving the control nothing: %v", err)
	}
}

// TestExperimentFreshPool: a fresh-reel share draws fresh reels only.
func TestExperimentFreshPool(t *testing.T) {
	const reels, fresh = 300, 30
	w := newWorld(t, worldConfig{reels: reels, users: 40, known: reels, fresh: fresh, seed: 5})
	// The world uploads its fresh reels within the last hour, the others
	// two hours ago or more.
	e := w.engine(t, Config{Canary: quietPolicy(), Epsilon: 0.5, Seed: 3, FreshWindow: 90 * time.Minute}, w.model(t, "v1", "default", 1))
	if err := e.SetExperiments([]Experiment{{Name: "fresh", Share: 0.5, Settings: ArmSettings{ExplorePool: PoolFresh}}}); err != nil {
		t.Fatal(err)
	}
	explored := 0
	for u := int64(1); u <= 200; u++ {
		resp, err := e.Recommend(context.Background(), w.request(u, 10))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Arm != "fresh" {
			continue
		}
		for _, it := range resp.Items {
			// Greedy alone puts a reel in a slot with probability 1-ε;
			// less is an exploration draw, which only a fresh reel gets.
			if it.Propensity < 0.5-1e-9 {
				explored++
				if it.Reel <= reels-fresh {
					t.Fatalf("user %d: reel %d drawn by exploration (propensity %v), uploaded before the fresh window", u, it.Reel, it.Propensity)
				}
			}
		}
	}
	if explored == 0 {
		t.Fatal("the fresh arm explored nothing")
	}
}

// TestExperimentsCountEvents: with more arms than a batch used to tally,
// every arm's impressions come back to its metrics, the canary's too.
func TestExperimentsCountEvents(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 200, users: 50, known: 100, seed: 6})
	e := w.engine(t, Config{Canary: quietPolicy(), HoldoutShare: 0.1, ArmSalt: 5}, w.model(t, "v1", "default", 1))
	var exps []Experiment
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		exps = append(exps, Experiment{Name: name, Share: 0.1})
	}
	if err := e.SetExperiments(exps); err != nil {
		t.Fatal(err)
	}
	if err := e.LoadCanary(w.model(t, "v2", "default", 2), LoadOptions{Share: 0.1}); err != nil {
		t.Fatal(err)
	}
	users := make([]int64, 3000)
	for i := range users {
		users[i] = int64(i + 1)
	}
	if _, err := e.Event(impressions(w, users, rand.New(rand.NewPCG(1, 2)))); err != nil {
		t.Fatal(err)
	}
	st := e.ArmsStatus(false)
	if len(st.Arms) != 8 {
		t.Fatalf("%d arms", len(st.Arms))
	}
	var total int64
	for _, a := range st.Arms {
		if a.Metrics.Impressions == 0 {
			t.Errorf("arm %s counted no impression", a.Name)
		}
		total += a.Metrics.Impressions
	}
	if total != int64(len(users)) {
		t.Fatalf("the arms counted %d impressions of %d", total, len(users))
	}
}
