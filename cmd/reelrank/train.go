package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/modeldir"
	"github.com/reelrank/reelrank/train"
)

// The files `reelrank train --out DIR` writes: a version folder, whose
// layout is package modeldir's.
const (
	trainBundleDir = modeldir.BundleFolder // the model bundle (ranker.Save)
	trainVectors   = modeldir.VectorsFile  // the reel tower's vectors of the catalogue
	trainIDs       = modeldir.IDsFile      // their reel ids, one per line
	trainSnapshot  = modeldir.SnapshotFile // the feature store after the log
	trainIndex     = modeldir.IndexFile    // the index serve builds from the vectors
)

// cmdTrain runs `reelrank train`.
func cmdTrain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	events := fs.String("events", "", "event log to train on: a file (events.jsonl), a folder of served segments or a served model folder, or several, comma-separated")
	out := fs.String("out", "", "folder to write the bundle, reel vectors and feature snapshot into")
	world := fs.String("world", "", "simulated world the log belongs to: its catalogue and oracle (default, without --catalogue: the log's folder)")
	catalogue := fs.String("catalogue", "", "the catalogue: a served model folder, a feature snapshot or a catalogue export (JSON lines); with --world, the world is the oracle only")
	theta := fs.Float64("theta", 0, "watch-through threshold on the fraction watched (default: the feature store's, 0.8)")
	ips := fs.Bool("ips", false, "weigh rows by clipped inverse propensity")
	ipsClip := fs.Float64("ips-clip", 10, "clip inverse propensities at this multiple of their median")
	validDays := fs.Int("valid-days", 1, "days held out for early stopping")
	testDays := fs.Int("test-days", 2, "last days held out for the report")
	epochs := fs.Int("epochs", 0, "most ranker epochs (0: default)")
	towerEpochs := fs.Int("tower-epochs", 0, "two-tower epochs (0: default)")
	towerMin := fs.Int("tower-min-count", 0, "training positives a reel needs for an id vector (0: default 2)")
	towerTemp := fs.Float64("tower-temperature", 0, "in-batch softmax temperature (0: default 0.05)")
	towerDrop := fs.Float64("tower-id-dropout", 0, "share of examples trained without their id vector (0: default 0.25)")
	towerLR := fs.Float64("tower-lr", 0, "two-tower learning rate (0: default)")
	noLogQ := fs.Bool("no-logq", false, "train the towers without the sampling-bias correction")
	towerBatch := fs.Int("tower-batch", 0, "rows of a tower step (0: default 1024)")
	uniform := fs.Int("uniform-negatives", 0, "reels drawn uniformly as extra negatives of each tower step (0: default 1024; -1: none)")
	windows := fs.String("windows", "", "the feature store's counter windows, comma-separated durations (default 1h,24h,168h; at most 3)")
	mmoe := fs.Int("experts", 0, "train an MMoE of this many experts (128-64 each, a gate per head) instead of the shared bottom")
	precision := fs.String("precision", "auto", "served ranker precision: auto (bf16 if it costs < 0.001 AUC on every head), f32 or bf16")
	users := fs.Int("retrieval-users", 500, "test users to evaluate retrieval on")
	threads := fs.Int("threads", 0, "worker goroutines (0: all cores)")
	seed := fs.Uint64("seed", 1, "seed")
	version := fs.String("version", "", "model version (default: the validation day and the seed)")
	asJSON := fs.Bool("json", false, "print one JSON object (the report)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	stop, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	defer stop()
	if fs.NArg() > 0 {
		return fmt.Errorf("train: unexpected argument %q", fs.Arg(0))
	}
	if *events == "" || *out == "" {
		return errors.New("train: --events and --out are required")
	}
	cfg := train.Config{Theta: float32(*theta), IPS: *ips, IPSClip: *ipsClip, ValidDays: *validDays, TestDays: *testDays,
		RetrievalUsers: *users, Threads: *threads, Seed: *seed, Version: *version}
	if *windows != "" {
		for _, f := range strings.Split(*windows, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(f))
			if err != nil || d <= 0 {
				return fmt.Errorf("train: --windows: %q is not a positive duration", f)
			}
			cfg.Store.Windows = append(cfg.Store.Windows, d)
		}
	}
	cfg.Ranker.Epochs = *epochs
	cfg.Ranker.Experts = *mmoe
	cfg.Towers = train.TowerConfig{Epochs: *towerEpochs, MinCount: *towerMin, Temperature: *towerTemp, IDDropout: *towerDrop,
		LR: *towerLR, NoLogQ: *noLogQ, UniformNegatives: *uniform, Batch: *towerBatch}
	switch *precision {
	case "auto":
		cfg.Precision = train.Auto
	case "f32":
		cfg.Precision = train.ForceF32
	case "bf16":
		cfg.Precision = train.ForceBF16
	default:
		return fmt.Errorf("train: --precision %q: want auto, f32 or bf16", *precision)
	}
	start := time.Now()
	cfg.Log = func(format string, args ...any) {
		fmt.Fprintf(stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := trainFrom(ctx, *events, *catalogue, *world, cfg)
	if err != nil {
		return err
	}
	if err := writeTraining(*out, res); err != nil {
		return err
	}
	cfg.Log("wrote %s", *out)
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res.Report)
	}
	_, err = stdout.Write(res.Bundle.Report)
	return err
}

// writeTraining writes a run's outputs into the version folder dir,
// atomically (modeldir.Write): the bundle folder, the reel vectors with
// their ids, the feature store's snapshot, the drift reference when the
// run made one, and the manifest of them all.
func writeTraining(dir string, res *train.Result) error {
	c := modeldir.Contents{Bundle: res.Bundle, IDs: res.ReelIDs, Store: res.Store,
		Vectors: ann.Vectors{Dim: res.Bundle.ReelTower.Dim, Data: res.ReelVectors}, Reference: res.Reference}
	if err := modeldir.Write(dir, c); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}
