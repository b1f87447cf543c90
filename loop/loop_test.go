package loop

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/train"
)

// smallConfig is a loop that runs in seconds: two warm-up days, then two
// days served by the engine, one thread (deterministic).
func smallConfig() Config {
	w := DefaultWorld()
	w.Users, w.Reels, w.Days = 600, 1200, 4
	if testing.Short() {
		// One night: the race and purego runs train slowly.
		w.Users, w.Reels, w.Days = 400, 800, 3
	}
	return Config{World: w, Warmup: 2, Threads: 1, Seed: 3, Train: train.Config{
		Ranker: train.RankerConfig{Epochs: 2}, Towers: train.TowerConfig{Epochs: 1, Batch: 256}, RetrievalUsers: 100}}
}

// served reads the world's log: what the simulator recorded of the
// sessions the engine served.
func served(t *testing.T, dir string) []eventlog.Event {
	t.Helper()
	var out []eventlog.Event
	rep, err := eventlog.ReadFile(filepath.Join(dir, WorldFolder, "events.jsonl"), eventlog.Options{}, func(evs []eventlog.Event) error {
		out = append(out, evs...)
		return nil
	})
	if err == nil {
		err = rep.Err()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLoop(t *testing.T) {
	cfg := smallConfig()
	dir := t.TempDir()
	rep, err := Run(context.Background(), cfg, dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rejected != 0 {
		t.Fatalf("the engine refused %d served events", rep.Rejected)
	}
	if got, want := len(rep.Days), cfg.World.Days*len(ArmKinds()); got != want {
		t.Fatalf("%d day figures, want %d", got, want)
	}
	// Two nights trained, two models each (with and without IPS); the
	// first control is installed, the second night's goes to the canary.
	nights := cfg.World.Days - cfg.Warmup
	if len(rep.Models) != 2*nights {
		t.Fatalf("%d models over %d nights: %+v", len(rep.Models), nights, rep.Models)
	}
	var outcomes []string
	for _, m := range rep.Models {
		if m.IPS {
			outcomes = append(outcomes, m.Outcome)
		}
		if !(m.WatchAUC > 0.5) || !(m.OracleWatchAUC > 0.5) || m.Recall <= 0 {
			t.Errorf("model %s: watch AUC %v, oracle %v, recall %v", m.Version, m.WatchAUC, m.OracleWatchAUC, m.Recall)
		}
	}
	if len(outcomes) != nights || outcomes[0] != "installed as the first control" || nights > 1 && !strings.HasPrefix(outcomes[1], "canary") {
		t.Fatalf("outcomes %q", outcomes)
	}

	// Every impression the simulator logged is counted, and went through
	// the engine from day 3 on: its arm is an engine arm, the user's.
	evs := served(t, dir)
	start := cfg.World.Start.UnixMilli()
	armOf := map[int64]string{}
	var total int64
	for i := range evs {
		ev := &evs[i]
		if ev.Type != eventlog.Impression {
			continue
		}
		// Sessions begun before the last midnight end after it; the
		// report's days end there.
		if ev.Time < start+int64(cfg.World.Days)*msPerDay {
			total++
		}
		boot := ev.Arm == "popularity" || ev.Arm == "explore"
		since := ev.Time - (start + int64(cfg.Warmup)*msPerDay) // from the first model
		switch {
		case since < 0 && !boot:
			t.Fatalf("warm-up impression with arm %q", ev.Arm)
		case since < 0:
			continue
		case boot && since < 3_600_000:
			continue // a session begun before midnight ends as it began
		case boot:
			t.Fatalf("impression %v after the first model not served by the engine", ev)
		}
		arm := ev.Arm
		if arm == "canary" {
			arm = ArmEpsilon // a canary serves part of the control's users
		}
		if prev, ok := armOf[ev.User]; ok && prev != arm {
			t.Fatalf("user %d served by %s and by %s", ev.User, prev, arm)
		}
		armOf[ev.User] = arm
		if arm == ArmNone || arm == ArmHoldout {
			if ev.Propensity != 1 {
				t.Fatalf("arm %s logged propensity %v: it does not explore", arm, ev.Propensity)
			}
		}
	}
	var counted int64
	arms := map[string]bool{}
	for _, f := range rep.Days {
		counted += f.Impressions
		if f.Day > cfg.Warmup && f.Impressions > 0 {
			arms[f.Arm] = true
		}
		if f.Day > cfg.Warmup && f.Impressions > 0 && (f.Reels == 0 || f.Authors == 0 || f.RegretSamples == 0 || !(f.WatchTimePerUser > 0)) {
			t.Errorf("day %d arm %s: %+v", f.Day, f.Arm, f)
		}
	}
	if counted != total {
		t.Fatalf("the report counts %d impressions, the log holds %d", counted, total)
	}
	if len(arms) != len(ArmKinds()) {
		t.Fatalf("arms served after the warm-up: %v", arms)
	}
	for u, arm := range armOf {
		if f, ok := rep.Figure(cfg.World.Days, arm); !ok || f.Users == 0 {
			t.Fatalf("user %d served by %s, which the report lacks", u, arm)
		}
	}

	// The files: Markdown naming every chart, well-formed SVG, JSON that
	// reads back.
	md, err := os.ReadFile(filepath.Join(dir, ReportMD))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range ChartFiles() {
		if !strings.Contains(string(md), name) {
			t.Errorf("report.md does not show %s", name)
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		d := xml.NewDecoder(strings.NewReader(string(b)))
		for {
			if _, err := d.Token(); err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("%s: %v", name, err)
				}
				break
			}
		}
	}
	var back Report
	b, err := os.ReadFile(filepath.Join(dir, ReportJSON))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Days, rep.Days) {
		t.Fatal("report.json's days differ from the report's")
	}

	// One thread: the same loop again gives the same figures.
	if testing.Short() {
		return
	}
	again, err := Run(context.Background(), cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Days, rep.Days) {
		for i := range rep.Days {
			if again.Days[i] != rep.Days[i] {
				t.Fatalf("a second run differs: %+v\nagainst %+v", again.Days[i], rep.Days[i])
			}
		}
	}
}

func TestConfigRefused(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"warm-up 1":        func(c *Config) { c.Warmup = 1 },
		"warm-up too long": func(c *Config) { c.Warmup = c.World.Days },
		"unknown arm":      func(c *Config) { c.Arms = []string{ArmEpsilon, "greedy"} },
		"no control":       func(c *Config) { c.Arms = []string{ArmNone, ArmHoldout} },
		"arm twice":        func(c *Config) { c.Arms = []string{ArmEpsilon, ArmNone, ArmNone} },
		"epsilon":          func(c *Config) { c.Epsilon = 1.5 },
		"page":             func(c *Config) { c.PageSize = -1 },
		"canary share":     func(c *Config) { c.CanaryShare = 0.5 },
		"world":            func(c *Config) { c.World.Users = -1 },
	} {
		cfg := smallConfig()
		mod(&cfg)
		if _, err := Run(context.Background(), cfg, t.TempDir()); err == nil {
			t.Errorf("%s: accepted", name)
		} else if name != "world" && !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	if _, err := ParseArms(" , "); !errors.Is(err, ErrConfig) {
		t.Errorf("ParseArms of nothing: %v", err)
	}
}
