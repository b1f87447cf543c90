package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reelrank/reelrank/engine"
	"github.com/reelrank/reelrank/modeldir"
	"github.com/reelrank/reelrank/server"
	"github.com/reelrank/reelrank/sim"
	"github.com/reelrank/reelrank/train"
)

// trainVersion trains another version for world w into dir.
func trainVersion(t *testing.T, w *sim.World, root, dir, version string, seed uint64) {
	t.Helper()
	tc := train.Config{Seed: seed, RetrievalUsers: 20, Version: version}
	tc.Ranker = train.RankerConfig{Hidden: []int{16}, Epochs: 1, Batch: 256}
	tc.Towers = train.TowerConfig{Dim: 8, UserHidden: []int{16}, ReelHidden: []int{16}, Epochs: 1, Batch: 128, UniformNegatives: 64}
	res, err := train.Run(context.Background(), w, filepath.Join(root, "world", sim.FileEvents), tc)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeTraining(dir, res); err != nil {
		t.Fatal(err)
	}
}

// serveEngine serves e with the keeper's loads on a loopback port.
func serveEngine(t *testing.T, e *engine.Engine, k *armsKeeper) string {
	t.Helper()
	srv, err := server.New(server.Config{Addr: "127.0.0.1:0"}, server.EngineHandlerWith(e, server.EngineOptions{Load: k.load}))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return ln.Addr().String()
}

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(args, &out, &errb)
	return out.String() + errb.String(), err
}

// TestModelCommands loads a second version into a running server, refuses
// a corrupt one by name, promotes, reads the status and the drift, and
// checks that a restart serves the promoted version.
func TestModelCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two models")
	}
	ctx := context.Background()
	root := t.TempDir()
	mdir, w := trainSmall(t, root)
	v2 := filepath.Join(root, "v2")
	trainVersion(t, w, root, v2, "v2", 2)
	// A corrupt copy of v2.
	v3 := filepath.Join(root, "v3")
	if err := os.CopyFS(v3, os.DirFS(v2)); err != nil {
		t.Fatal(err)
	}
	vecs := filepath.Join(v3, modeldir.VectorsFile)
	b, err := os.ReadFile(vecs)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(vecs, b, 0o644); err != nil {
		t.Fatal(err)
	}

	cfg := engine.Config{Canary: engine.CanaryPolicy{P99Factor: 1e9, PromoteImpressions: -1}}
	logf := func(string, ...any) {}
	e, k, err := openServing(ctx, mdir, cfg, "auto", logf)
	if err != nil {
		t.Fatal(err)
	}
	v1 := e.Model().Version()
	addr := serveEngine(t, e, k)

	out, err := runCmd(t, "model", "load", "--addr", addr, "--bundle", v2, "--share", "0.25", "--weights", `{"like": 2}`)
	if err != nil || !strings.Contains(out, "canary") || !strings.Contains(out, "v2") {
		t.Fatalf("model load: %v\n%s", err, out)
	}
	out, err = runCmd(t, "model", "load", "--addr", addr, "--bundle", v3)
	if err == nil || !strings.Contains(err.Error(), modeldir.VectorsFile) {
		t.Fatalf("load of a corrupt folder: %v\n%s", err, out)
	}
	out, err = runCmd(t, "model", "load", "--addr", addr, "--bundle", mdir)
	if err == nil || !strings.Contains(err.Error(), "the control's version") {
		t.Fatalf("load of the control's own version: %v\n%s", err, out)
	}
	for u := int64(1); u <= 50; u++ {
		if _, err := e.Recommend(ctx, engine.RecommendRequest{User: u, N: 5}); err != nil {
			t.Fatal(err)
		}
	}
	out, err = runCmd(t, "model", "status", "--addr", addr, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st engine.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if len(st.Arms) != 2 || st.Arms[1].Version != "v2" || st.Arms[0].Metrics.Requests+st.Arms[1].Metrics.Requests != 50 {
		t.Fatalf("status: %+v", st.Arms)
	}
	if out, err = runCmd(t, "drift", "--addr", addr); err != nil || !strings.Contains(out, "series") {
		t.Fatalf("drift: %v\n%s", err, out)
	}
	if out, err = runCmd(t, "model", "promote", "--addr", addr, "--reason", "test"); err != nil || !strings.Contains(out, "promote") {
		t.Fatalf("promote: %v\n%s", err, out)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	// A restart serves the promoted version, and a rollback reinstates the
	// bundle's.
	e2, k2, err := openServing(ctx, mdir, cfg, "auto", logf)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	if v := e2.Model().Version(); v != "v2" {
		t.Fatalf("the restarted server serves %s, want the promoted v2", v)
	}
	if st := e2.ArmsStatus(false); st.Arms[0].Settings.Weights["like"] != 2 {
		t.Fatalf("the restarted control lost its weights: %+v", st.Arms[0].Settings)
	}
	addr2 := serveEngine(t, e2, k2)
	if out, err := runCmd(t, "model", "load", "--addr", addr2, "--bundle", mdir, "--share", "0.5"); err != nil {
		t.Fatalf("load of the first version back: %v\n%s", err, out)
	}
	if out, err := runCmd(t, "model", "promote", "--addr", addr2); err != nil {
		t.Fatalf("promote: %v\n%s", err, out)
	}
	if v := e2.Model().Version(); v != v1 {
		t.Fatalf("after promoting the first version back: %s", v)
	}
}
