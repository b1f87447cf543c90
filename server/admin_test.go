package server

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/reelrank/reelrank/engine"
	"github.com/reelrank/reelrank/wire"
)

func adminStatus(t *testing.T, env *wire.Envelope) engine.Status {
	t.Helper()
	r, ok := env.Body.(*wire.AdminResponse)
	if !ok {
		t.Fatalf("admin answered %T %+v", env.Body, env.Body)
	}
	var st engine.Status
	if err := json.Unmarshal(r.JSON, &st); err != nil {
		t.Fatalf("admin JSON: %v: %s", err, r.JSON)
	}
	return st
}

func TestAdmin(t *testing.T) {
	e := newTestEngine(t)
	models := map[string]*engine.Model{"v2": testModel(t, e.Store(), "v2", rand.New(rand.NewPCG(5, 5)))}
	load := func(_ context.Context, dir string) (*engine.Model, error) {
		m, ok := models[dir]
		if !ok {
			return nil, errors.New("no such model folder")
		}
		return m, nil
	}
	const token, admin = "user-token", "admin-token"
	srv, addr := startServer(t, Config{Token: token, AdminToken: admin}, EngineHandlerWith(e, EngineOptions{Load: load}))

	// A client's token may not administer; its connection stays open.
	c := dial(t, addr)
	c.call(1, &wire.AuthRequest{Token: token})
	if env := c.call(2, &wire.AdminRequest{Op: wire.AdminStatus, Share: -1, Holdout: -1}); wire.Code(errOf(env)) != wire.Unauthenticated {
		t.Fatalf("admin on a client's token: %+v", env.Body)
	}
	c.healthy(3)

	a := dial(t, addr)
	a.call(1, &wire.AuthRequest{Token: admin})
	st := adminStatus(t, a.call(2, &wire.AdminRequest{Op: wire.AdminStatus, Share: -1, Holdout: -1}))
	if len(st.Arms) != 1 || st.Arms[0].Version != "test-1" {
		t.Fatalf("status: %+v", st.Arms)
	}
	// A refused load names its reason, and the served model stays.
	env := a.call(3, &wire.AdminRequest{Op: wire.AdminLoad, Bundle: "missing", Share: 0.2, Holdout: -1})
	if err := errOf(env); wire.Code(err) != wire.BadRequest || !strings.Contains(err.Error(), "no such model folder") {
		t.Fatalf("load of a missing folder: %v", err)
	}
	env = a.call(4, &wire.AdminRequest{Op: wire.AdminLoad, Bundle: "v2", Share: 0.2, Holdout: -1, Weights: `{"nohead": 1}`})
	if err := errOf(env); wire.Code(err) != wire.BadRequest || !strings.Contains(err.Error(), "nohead") {
		t.Fatalf("load with a weight of no head: %v", err)
	}
	st = adminStatus(t, a.call(5, &wire.AdminRequest{Op: wire.AdminLoad, Bundle: "v2", Share: 0.2, Holdout: -1, Weights: `{"like": 2}`}))
	if len(st.Arms) != 2 || st.Arms[1].Version != "v2" || st.Arms[1].Share != 0.2 || st.Arms[1].Settings.Weights["like"] != 2 {
		t.Fatalf("after load: %+v", st.Arms)
	}
	st = adminStatus(t, a.call(6, &wire.AdminRequest{Op: wire.AdminShares, Share: 0.3, Holdout: 0.1}))
	if len(st.Arms) != 3 || st.Arms[1].Share != 0.3 || st.Arms[2].Role != engine.RoleHoldout {
		t.Fatalf("after shares: %+v", st.Arms)
	}
	// Requests are served by every arm.
	arms := map[string]bool{}
	for u := int64(1); u <= 40; u++ {
		env := c.call(uint64(10+u), &wire.RecommendRequest{User: u, N: 5, Context: wire.Context{Time: testNow}})
		r, ok := env.Body.(*wire.RecommendResponse)
		if !ok {
			t.Fatalf("recommend: %+v", env.Body)
		}
		if r.Arm != e.ArmOf(u) {
			t.Fatalf("user %d: arm %q, want %q", u, r.Arm, e.ArmOf(u))
		}
		arms[r.Arm] = true
	}
	if len(arms) != 3 {
		t.Fatalf("40 users saw arms %v", arms)
	}
	// The metrics carry an arm label.
	mfs, err := srv.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "arm" {
					found[mf.GetName()+"/"+l.GetValue()] = true
				}
			}
		}
	}
	for _, want := range []string{"reelrank_arm_requests_total/control", "reelrank_arm_share/canary", "reelrank_arm_rate/holdout"} {
		if !found[want] {
			t.Fatalf("metrics lack %s: %v", want, found)
		}
	}
	st = adminStatus(t, a.call(60, &wire.AdminRequest{Op: wire.AdminPromote, Reason: "looks good", Share: -1, Holdout: -1}))
	if st.Arms[0].Version != "v2" || st.History[len(st.History)-1].Action != "promote" {
		t.Fatalf("after promote: %+v %+v", st.Arms, st.History)
	}
	st = adminStatus(t, a.call(61, &wire.AdminRequest{Op: wire.AdminRollback, Share: -1, Holdout: -1}))
	if st.Arms[0].Version != "test-1" {
		t.Fatalf("after rollback: %+v", st.Arms)
	}
	if env := a.call(62, &wire.AdminRequest{Op: wire.AdminPromote, Share: -1, Holdout: -1}); wire.Code(errOf(env)) != wire.BadRequest {
		t.Fatalf("promote with no canary: %+v", env.Body)
	}
}

func errOf(env *wire.Envelope) error {
	if e, ok := env.Body.(*wire.Error); ok {
		return e
	}
	return nil
}
