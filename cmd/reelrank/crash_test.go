package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reelrank/reelrank/client"
	"github.com/reelrank/reelrank/engine"
	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/sim"
	"github.com/reelrank/reelrank/train"
	"github.com/reelrank/reelrank/wire"
)

// serveChildEnv, when set, makes the test binary run `reelrank serve` with
// the arguments it holds (one per line) instead of the tests: the crash
// test's child process.
const serveChildEnv = "REELRANK_TEST_SERVE_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(serveChildEnv); args != "" {
		if err := cmdServe(strings.Split(args, "\n"), os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "serve:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// trainSmall simulates and trains a small world into dir/model and
// returns that folder and the world.
func trainSmall(t *testing.T, dir string) (string, *sim.World) {
	t.Helper()
	ctx := context.Background()
	wdir := filepath.Join(dir, "world")
	cfg := sim.DefaultConfig()
	cfg.Users, cfg.Reels, cfg.Days, cfg.Seed = 1500, 2000, 5, 3
	cfg.SessionsPerDay = 1
	if _, err := sim.Generate(ctx, cfg, wdir, sim.GenerateOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := sim.Open(wdir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	tc := train.Config{Seed: 1, RetrievalUsers: 20}
	tc.Ranker = train.RankerConfig{Hidden: []int{16}, Epochs: 1, Batch: 256}
	tc.Towers = train.TowerConfig{Dim: 8, UserHidden: []int{16}, ReelHidden: []int{16}, Epochs: 1, Batch: 128, UniformNegatives: 64}
	res, err := train.Run(ctx, w, filepath.Join(wdir, sim.FileEvents), tc)
	if err != nil {
		t.Fatal(err)
	}
	mdir := filepath.Join(dir, "model")
	if err := writeTraining(mdir, res); err != nil {
		t.Fatal(err)
	}
	return mdir, w
}

// child is a `reelrank serve` process.
type child struct {
	cmd  *exec.Cmd
	addr string
}

// startChild starts `reelrank serve` over mdir and waits until it serves.
func startChild(t *testing.T, mdir string, extra ...string) *child {
	t.Helper()
	args := append([]string{"--bundle", mdir, "--addr", "127.0.0.1:0", "--metrics", "", "--sample=false"}, extra...)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveChildEnv+"="+strings.Join(args, "\n"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if _, rest, ok := strings.Cut(line, " reels on "); ok {
			addr, _, _ := strings.Cut(rest, " ")
			go func() {
				for sc.Scan() {
				}
			}()
			return &child{cmd: cmd, addr: addr}
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	t.Fatalf("the server did not start: %s", stderr.String())
	return nil
}

func (c *child) kill() {
	c.cmd.Process.Kill() // SIGKILL
	c.cmd.Wait()
}

// crashOp is one write of the crash test: an event batch (three
// impressions whose sessions name it) or an upsert (of reel id).
type crashOp struct {
	key      string
	sessions []int64
	reel     int64
}

// TestCrashKill kills a serving child process with SIGKILL at random
// moments while writers send events and upserts, 20 times. Every write
// carries an idempotency key; a write that got no answer is sent again
// after the restart. After each restart every acknowledged event and
// upsert is in the logs exactly once, and nothing that was not sent is.
func TestCrashKill(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model and starts 21 servers")
	}
	mdir, w := trainSmall(t, t.TempDir())
	author := w.Reels()[1].Author
	kills := 20
	r := rand.New(rand.NewPCG(7, 7))
	var mu sync.Mutex
	acked := map[string]crashOp{}
	sent := map[string]crashOp{}
	var pending []crashOp // sent, not answered: sent again after the restart
	next, retried := 0, 0
	newOp := func(writer int) crashOp {
		mu.Lock()
		defer mu.Unlock()
		next++
		op := crashOp{key: fmt.Sprintf("w%d-%d", writer, next)}
		if next%4 == 0 {
			op.reel = 1_000_000 + int64(next)
		} else {
			base := int64(next) * 10
			op.sessions = []int64{base, base + 1, base + 2}
		}
		sent[op.key] = op
		return op
	}
	do := func(ctx context.Context, c *client.Client, op crashOp) error {
		if op.reel != 0 {
			_, err := c.Upsert(ctx, &wire.UpsertRequest{Key: op.key, Reel: wire.Reel{ID: op.reel, Author: 5, Category: -1, Duration: 9}})
			return err
		}
		evs := make([]wire.Event, len(op.sessions))
		for i, s := range op.sessions {
			evs[i] = wire.Event{Type: wire.EventType(eventlog.Impression), Has: requiredImpression, User: 1, Reel: 2, Author: author,
				Session: s, Propensity: 0.5, Arm: "crash"}
		}
		res, err := c.Event(ctx, &wire.EventRequest{Key: op.key, Events: evs})
		if err == nil && res.Accepted != uint32(len(evs)) {
			return fmt.Errorf("event batch %s: %+v", op.key, res)
		}
		return err
	}
	for round := 0; round <= kills; round++ {
		ch := startChild(t, mdir, "--checkpoint-every", "-1ns")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		c, err := client.Dial(ctx, ch.addr, client.Options{})
		if err != nil {
			ch.kill()
			t.Fatal(err)
		}
		// What was left unanswered goes again, with its key: it must be
		// applied once whether or not the killed server had applied it.
		for _, op := range pending {
			if err := do(ctx, c, op); err != nil {
				ch.kill()
				t.Fatalf("round %d: retry of %s: %v", round, op.key, err)
			}
			acked[op.key] = op
			retried++
		}
		pending = nil
		checkCrashLogs(t, round, filepath.Join(mdir, servedDir), acked, sent)
		if round == kills {
			c.Close()
			cancel()
			ch.kill()
			break
		}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for writer := range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					op := newOp(writer)
					wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
					err := do(wctx, c, op)
					wcancel()
					mu.Lock()
					if err != nil {
						pending = append(pending, op)
						mu.Unlock()
						return
					}
					acked[op.key] = op
					mu.Unlock()
				}
			})
		}
		time.Sleep(time.Duration(20+r.IntN(200)) * time.Millisecond)
		ch.kill()
		close(stop)
		wg.Wait()
		c.Close()
		cancel()
	}
	if len(acked) < 2*kills || retried == 0 {
		t.Fatalf("%d writes acknowledged, %d sent again after a kill, over %d kills: the kills missed the writes", len(acked), retried, kills)
	}
	t.Logf("%d writes acknowledged, %d of them sent again after a kill", len(acked), retried)
}

// requiredImpression is the field set of an impression whose time is
// left to the server (which stamps it).
var requiredImpression = uint16(eventlog.Required(eventlog.Impression) &^ eventlog.FTime)

// checkCrashLogs reads the engine folder's logs: every acknowledged write
// is there exactly once, and every write there was sent.
func checkCrashLogs(t *testing.T, round int, dir string, acked, sent map[string]crashOp) {
	t.Helper()
	sessions := map[int64]int{}
	reels := map[int64]int{}
	segs, _ := filepath.Glob(filepath.Join(dir, "events-*.jsonl"))
	for _, p := range segs {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var ev struct {
				Session int64  `json:"session"`
				Arm     string `json:"arm"`
			}
			if line == "" {
				continue
			}
			if json.Unmarshal([]byte(line), &ev) != nil {
				t.Fatalf("round %d: %s: bad line %q", round, p, line)
			}
			if ev.Arm == "crash" {
				sessions[ev.Session]++
			}
		}
	}
	segs, _ = filepath.Glob(filepath.Join(dir, "catalogue-*.jsonl"))
	for _, p := range segs {
		data, _ := os.ReadFile(p)
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var ent struct {
				Op   string       `json:"op"`
				Reel *engine.Reel `json:"reel"`
			}
			if line == "" {
				continue
			}
			if json.Unmarshal([]byte(line), &ent) != nil {
				t.Fatalf("round %d: %s: bad line %q", round, p, line)
			}
			if ent.Op == "upsert" && ent.Reel != nil {
				reels[ent.Reel.ID]++
			}
		}
	}
	for _, op := range acked {
		for _, s := range op.sessions {
			if sessions[s] != 1 {
				t.Fatalf("round %d: acknowledged batch %s: session %d logged %d times", round, op.key, s, sessions[s])
			}
		}
		if op.reel != 0 && reels[op.reel] != 1 {
			t.Fatalf("round %d: acknowledged upsert %s: reel %d logged %d times", round, op.key, op.reel, reels[op.reel])
		}
	}
	known := map[int64]bool{}
	knownReel := map[int64]bool{}
	for _, op := range sent {
		for _, s := range op.sessions {
			known[s] = true
		}
		knownReel[op.reel] = true
	}
	for s, n := range sessions {
		if !known[s] || n != 1 {
			t.Fatalf("round %d: session %d logged %d times, sent: %v", round, s, n, known[s])
		}
	}
	for id, n := range reels {
		if !knownReel[id] || n != 1 {
			t.Fatalf("round %d: reel %d upserted %d times, sent: %v", round, id, n, knownReel[id])
		}
	}
}
