package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/reelrank/reelrank/engine"
	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/sim"
	"github.com/reelrank/reelrank/train"
)

// TestTrainOnServedFolder serves a small world's log through a durable
// engine (with a checkpoint that archives the segments it drops, an upsert
// and a delete on each side of it, and a torn line at the end), then
// trains from the served model folder alone, with no world: the upserted
// reels are in the trained catalogue, the deleted are not, and the report
// has no oracle figures.
func TestTrainOnServedFolder(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	ctx := context.Background()
	dir := t.TempDir()
	wdir := filepath.Join(dir, "world")
	scfg := sim.DefaultConfig()
	scfg.Users, scfg.Reels, scfg.Days, scfg.Seed = 1500, 2000, 5, 3
	scfg.SessionsPerDay = 1
	if _, err := sim.Generate(ctx, scfg, wdir, sim.GenerateOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := sim.Open(wdir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	base := func() (*features.Store, error) {
		s, err := features.NewStore(features.Config{EmbedDim: scfg.EmbedDim})
		if err != nil {
			return nil, err
		}
		return s, train.LoadWorld(w, s)
	}
	// The model folder: its features.snap is the base catalogue.
	mdir := filepath.Join(dir, "model")
	s, err := base()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(mdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(filepath.Join(mdir, "features.snap")); err != nil {
		t.Fatal(err)
	}
	end := scfg.Start.Add(time.Duration(scfg.Days) * 24 * time.Hour)
	ecfg := engine.Config{Dir: filepath.Join(mdir, "served"), ArchiveDir: "archive", Clock: func() time.Time { return end },
		CheckpointInterval: -1, CheckpointBytes: -1}
	e, err := engine.Open(ecfg, nil, base)
	if err != nil {
		t.Fatal(err)
	}
	reels := w.Reels()
	emb := make([]float32, scfg.EmbedDim)
	emb[0] = 1
	mid := scfg.Start.Add(time.Duration(scfg.Days) * 12 * time.Hour).UnixMilli()
	newReel := func(id int64) engine.Reel {
		return engine.Reel{ID: id, Author: reels[0].Author, Upload: mid, Duration: 12, Category: -1, Embedding: emb, Language: 1}
	}
	up1, up2 := reels[len(reels)-1].ID+1000, reels[len(reels)-1].ID+1001
	del1, del2 := reels[3].ID, reels[7].ID
	half := false
	_, err = eventlog.ReadFile(filepath.Join(wdir, sim.FileEvents), eventlog.Options{}, func(evs []eventlog.Event) error {
		if _, err := e.Event(evs); err != nil {
			return err
		}
		if !half && evs[0].Time > mid {
			half = true
			if _, err := e.Upsert(newReel(up1)); err != nil {
				return err
			}
			if err := e.Delete(del1); err != nil {
				return err
			}
			if err := e.Checkpoint(); err != nil {
				return err
			}
			if _, err := e.Upsert(newReel(up2)); err != nil {
				return err
			}
			return e.Delete(del2)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	archived, _ := filepath.Glob(filepath.Join(mdir, "served", "archive", "events-*.jsonl"))
	if len(archived) == 0 {
		t.Fatal("the checkpoint archived no event segment")
	}
	segs, _ := filepath.Glob(filepath.Join(mdir, "served", "events-*.jsonl"))
	slices.Sort(segs)
	f, err := os.OpenFile(segs[len(segs)-1], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"type":"impression","ts":`) // a torn write
	f.Close()

	tc := train.Config{Seed: 1, RetrievalUsers: 20}
	tc.Ranker = train.RankerConfig{Hidden: []int{16}, Epochs: 1, Batch: 256}
	tc.Towers = train.TowerConfig{Dim: 8, UserHidden: []int{16}, ReelHidden: []int{16}, Epochs: 1, Batch: 128, UniformNegatives: 64}
	tc.Log = t.Logf
	res, err := trainFrom(ctx, mdir, mdir, "", tc)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{up1, up2} {
		if !slices.Contains(res.ReelIDs, id) {
			t.Errorf("upserted reel %d is not in the trained catalogue", id)
		}
	}
	for _, id := range []int64{del1, del2} {
		if slices.Contains(res.ReelIDs, id) {
			t.Errorf("deleted reel %d is in the trained catalogue", id)
		}
	}
	rep := res.Report
	if rep.Oracle || rep.Heads[0].OracleAUC != 0 || rep.Retrieval.Recall != 0 {
		t.Errorf("oracle figures without an oracle: %+v %+v", rep.Heads[0], rep.Retrieval)
	}
	if rep.Retrieval.TestUsers == 0 {
		t.Errorf("retrieval evaluated on no test user: %+v", rep.Retrieval)
	}
	if rep.Data.Events == 0 || res.Reference == nil {
		t.Errorf("%d events, reference %v", rep.Data.Events, res.Reference != nil)
	}
	if res.Reference != nil {
		got := res.Reference.Names()
		want := train.ReferenceNames(res.Bundle.Ranker)
		sp := res.Bundle.Spec
		if !slices.Equal(got, want) || len(want) != len(sp.User)+len(sp.Reel)+len(sp.Cross)+5 || !slices.Contains(got, "head/watch") ||
			!slices.Contains(got, "user/"+sp.User[0]) || !slices.Contains(got, "cross/"+sp.Cross[0]) {
			t.Errorf("reference series %v", got)
		}
	}
	t.Logf("%s", res.Bundle.Report)
}
