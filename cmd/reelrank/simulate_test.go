package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reelrank/reelrank/sim"
)

func TestSimulateJSON(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "world")
	var out, errb bytes.Buffer
	args := []string{"--out", dir, "--users", "400", "--reels", "900", "--days", "2", "--seed", "3", "--json"}
	if err := cmdSimulate(args, &out, &errb); err != nil {
		t.Fatal(err, errb.String())
	}
	var r simulateResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("--json: %v in %q", err, out.String())
	}
	if r.Counts.Users != 400 || r.Counts.InitialReels != 900 || r.Counts.Impressions == 0 || r.Seed != 3 || len(r.Files) != 7 {
		t.Fatalf("--json: %+v", r)
	}
	if !strings.Contains(errb.String(), "day 2/2") {
		t.Errorf("no progress on stderr: %q", errb.String())
	}
	w, err := sim.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.NumUsers() != 400 || int64(w.NumReels()) != r.Counts.Reels {
		t.Errorf("opened %d users, %d reels", w.NumUsers(), w.NumReels())
	}
	st, err := os.Stat(filepath.Join(dir, sim.FileEvents))
	if err != nil || st.Size() == 0 {
		t.Fatalf("events: %v", err)
	}
}

func TestSimulateHuman(t *testing.T) {
	var out, errb bytes.Buffer
	args := []string{"--out", t.TempDir(), "--users", "300", "--reels", "500", "--days", "1", "--policy", "random", "--start", "2025-03-01"}
	if err := cmdSimulate(args, &out, &errb); err != nil {
		t.Fatal(err, errb.String())
	}
	for _, want := range []string{"impressions", "events.jsonl", "policy random", "skip"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestSimulateBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{},
		{"--out", dir, "--users", "0"},
		{"--out", dir, "--policy", "best"},
		{"--out", dir, "--epsilon", "2"},
		{"--out", dir, "--start", "yesterday"},
		{"--out", dir, "--days", "-1"},
		{"--out", dir, "extra"},
		{"--nonsense"},
	} {
		var out, errb bytes.Buffer
		if err := cmdSimulate(args, &out, &errb); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
