package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/bench"
	"github.com/reelrank/reelrank/client"
	"github.com/reelrank/reelrank/engine"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/internal/wal"
	"github.com/reelrank/reelrank/kernels"
	"github.com/reelrank/reelrank/ranker"
	"github.com/reelrank/reelrank/server"
	"github.com/reelrank/reelrank/sim"
	"github.com/reelrank/reelrank/train"
	"github.com/reelrank/reelrank/wire"
)

// servedDir is the engine's folder (engine.Config.Dir) in the serving
// folder: its event log, catalogue journal and checkpoints. legacyLog and
// legacyCatalogue are the single-file logs an older layout kept beside it;
// serve adopts them into the folder once.
const (
	servedDir       = "served"
	legacyLog       = "served-events.jsonl"
	legacyCatalogue = "served-catalogue.jsonl"
)

// cmdServe runs `reelrank serve`.
func cmdServe(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("bundle", "", "folder `reelrank train --out` wrote (default: build the embedded default world into the cache once and serve it)")
	addr := fs.String("addr", server.DefaultAddr, "TCP address to serve on")
	metrics := fs.String("metrics", "127.0.0.1:9090", "HTTP address of /metrics (empty: none)")
	cache := fs.String("cache", "", "cache folder of the embedded default (default $REELRANK_CACHE or the user cache folder)")
	token := fs.String("token", "", "shared token clients must send first (default $REELRANK_TOKEN; empty: none)")
	certFile := fs.String("tls-cert", "", "TLS certificate (PEM); with --tls-key serves TLS")
	keyFile := fs.String("tls-key", "", "TLS key (PEM)")
	maxInFlight := fs.Int("max-inflight", 0, "requests served at once; beyond, requests are answered overloaded at once (0: the server's default, 8 per core)")
	k := fs.Int("k", 1000, "candidates recalled from the index")
	nprobe := fs.Int("nprobe", 0, "inverted lists scanned a query (0: default)")
	clock := fs.String("clock", "auto", "the engine's present: wall, data (the log's last event, moving on with the wall clock) or auto (data when the log ends over a day ago)")
	sample := fs.Bool("sample", true, "print one live recommendation once serving")
	maxQueue := fs.Int("max-queue", 0, "requests waiting for a slot while their predicted wait fits their deadline (0: 16 per slot; negative: none)")
	maxConnQueue := fs.Int("max-conn-queue", 0, "requests one connection may have waiting (0: half of --max-queue)")
	maxUnsent := fs.Int("max-unsent", 0, "bytes of answers a connection may have unsent before the server stops reading it (0: 8 MiB)")
	perAddr := fs.Int("max-conns-per-addr", 0, "connections per remote IP (0: 1024; negative: no cap, for clients behind one proxy)")
	authTimeout := fs.Duration("auth-timeout", 0, "time a new connection has to present its token (0: 2 s)")
	insecure := fs.Bool("insecure", false, "serve a non-loopback address without a token")
	maxLead := fs.Duration("max-lead", 5*time.Minute, "refuse events stamped more than this after the engine's clock")
	ckEvery := fs.Duration("checkpoint-every", 10*time.Minute, "snapshot the feature store and truncate the logs this often (negative: never on a timer)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	if *token == "" {
		*token = os.Getenv("REELRANK_TOKEN")
	}
	if *token == "" && !*insecure && !loopback(*addr) {
		return fmt.Errorf("serve: %s is not a loopback address and no token is set: set --token (or $REELRANK_TOKEN), or pass --insecure to serve it open", *addr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "reelrank: "+format+"\n", args...) }
	if *dir == "" {
		d, err := ensureDefault(ctx, *cache, logf)
		if err != nil {
			return err
		}
		*dir = d
	}
	var tlsCfg *tls.Config
	if *certFile != "" || *keyFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return fmt.Errorf("serve: TLS: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	eng, err := openServing(ctx, *dir, engine.Config{K: *k, Nprobe: *nprobe, MaxLead: *maxLead, CheckpointInterval: *ckEvery, Logger: logger}, *clock, logf)
	if err != nil {
		return err
	}
	defer eng.Close()
	srv, err := server.New(server.Config{Addr: *addr, MetricsAddr: *metrics, Token: *token, TLS: tlsCfg, MaxInFlight: *maxInFlight,
		MaxQueue: *maxQueue, MaxConnQueue: *maxConnQueue, MaxUnsent: *maxUnsent, MaxConnsPerAddr: *perAddr, AuthTimeout: *authTimeout,
		Logger: logger}, server.EngineHandler(eng))
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	if err := waitListening(ctx, srv, errc); err != nil {
		return err
	}
	m := eng.Model()
	fmt.Fprintf(stdout, "reelrank: serving model %s over %d reels on %s (auth %s, TLS %s)", m.Version(), m.Index().Len(), srv.Addr(),
		onOff(*token != ""), onOff(tlsCfg != nil))
	if a := srv.MetricsAddr(); a != nil {
		fmt.Fprintf(stdout, ", metrics on http://%s/metrics", a)
	}
	fmt.Fprintf(stdout, "\n  call it: %s bench load --addr %s --qps 50,100 --duration 5s\n", os.Args[0], srv.Addr())
	fmt.Fprintf(stdout, "  or from Go: client.Dial(ctx, %q, client.Options{}) then c.Recommend(ctx, &wire.RecommendRequest{User: 1, N: 10})\n", srv.Addr().String())
	if *sample {
		if err := printSample(ctx, srv.Addr().String(), *token, tlsCfg != nil, stdout); err != nil {
			fmt.Fprintf(stderr, "reelrank: sample recommendation: %v\n", err)
		}
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logf("shutting down: finishing the requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, server.ErrServerClosed) {
		return err
	}
	return nil
}

// waitListening waits until the server has its listener.
func waitListening(ctx context.Context, srv *server.Server, errc chan error) error {
	for srv.Addr() == nil {
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// printSample asks the running server for ten reels for user 1.
func printSample(ctx context.Context, addr, token string, useTLS bool, stdout io.Writer) error {
	opt := client.Options{Token: token}
	if useTLS {
		opt.TLS = &tls.Config{InsecureSkipVerify: true} // our own certificate, on our own address
	}
	c, err := client.Dial(ctx, addr, opt)
	if err != nil {
		return err
	}
	defer c.Close()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := c.Recommend(rctx, &wire.RecommendRequest{User: 1, N: 10})
	if err != nil {
		return err
	}
	t := &resp.Timings
	fmt.Fprintf(stdout, "\nuser 1, model %s, arm %q: %d reels in %v (features %v, tower %v, ann %v over %d candidates, rank %v over %d, postrank %v)\n",
		resp.ModelVersion, resp.Arm, len(resp.Items), t.Total, t.Features, t.Tower, t.ANN, t.ANNCandidates+t.FreshCandidates+t.ExploreCandidates,
		t.Rank, t.Ranked, t.Postrank)
	fmt.Fprintf(stdout, "  %-4s %-9s %-8s %-7s", "slot", "reel", "score", "source")
	for _, h := range resp.Heads {
		fmt.Fprintf(stdout, " %-8s", "p_"+h)
	}
	fmt.Fprintf(stdout, " propensity\n")
	for i, it := range resp.Items {
		fmt.Fprintf(stdout, "  %-4d %-9d %-8.4f %-7s", i, it.Reel, it.Score, it.Source)
		for _, p := range it.Probs {
			fmt.Fprintf(stdout, " %-8.4f", p)
		}
		fmt.Fprintf(stdout, " %.4f\n", it.Propensity)
	}
	return nil
}

// loopback reports whether addr's host is a loopback address (a host
// name resolves: "localhost" is loopback, an empty host is every address).
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// openServing loads what `reelrank train --out dir` wrote (building the
// index from the reel vectors on first use) and returns an engine over it,
// durable in dir/served: the engine restores what was served before
// (its checkpoint, the logs' tails) itself.
func openServing(ctx context.Context, dir string, cfg engine.Config, clock string, logf func(string, ...any)) (*engine.Engine, error) {
	b, err := ranker.Load(filepath.Join(dir, trainBundleDir))
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	ix, err := openIndex(ctx, dir, logf)
	if err != nil {
		return nil, err
	}
	model, err := engine.NewModel(b, ix, "default")
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	cfg.Dir = filepath.Join(dir, servedDir)
	if err := adoptLegacy(dir, cfg.Dir, logf); err != nil {
		return nil, err
	}
	// The clock: on a simulated world whose log ended long ago, the data's
	// clock, from the newest event the state holds (the checkpoint's, or
	// the base snapshot's when there is none yet).
	switch clock {
	case "wall", "auto", "data":
	default:
		return nil, fmt.Errorf("serve: --clock %q: want wall, data or auto", clock)
	}
	var clockFn func() time.Time
	pick := func(newest int64) {
		if clock == "data" || (clock == "auto" && time.Since(time.UnixMilli(newest)) > 24*time.Hour) {
			began := time.Now()
			at := time.UnixMilli(newest)
			clockFn = func() time.Time { return at.Add(time.Since(began)) }
			logf("the log ends at %s: serving on the data's clock from there", at.UTC().Format(time.RFC3339))
		} else {
			clockFn = time.Now
		}
	}
	if newest, ok, err := engine.CheckpointNewest(cfg.Dir); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	} else if ok {
		pick(newest)
	}
	cfg.Clock = func() time.Time { return clockFn() }
	start := time.Now()
	e, err := engine.Open(cfg, model, func() (*features.Store, error) {
		store, err := features.LoadSnapshot(filepath.Join(dir, trainSnapshot))
		if err == nil && clockFn == nil {
			pick(store.Stats().Newest)
		}
		return store, err
	})
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	st := e.Stats()
	logf("state restored in %.2f s: %d events applied, %d users, %d reels", time.Since(start).Seconds(), st.Events, st.Users, st.Reels)
	return e, nil
}

// adoptLegacy moves the single-file logs of the older layout into the
// engine's folder, once. (Catalogue entries of that layout carry no event
// count: they replay before the adopted events.)
func adoptLegacy(dir, state string, logf func(string, ...any)) error {
	for _, l := range []struct{ file, name string }{{legacyLog, "events"}, {legacyCatalogue, "catalogue"}} {
		path := filepath.Join(dir, l.file)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		lg, err := wal.Open(wal.Options{Dir: state, Name: l.name, Legacy: path})
		if err != nil {
			return fmt.Errorf("serve: adopt %s: %w", path, err)
		}
		if err := lg.Close(); err != nil {
			return fmt.Errorf("serve: adopt %s: %w", path, err)
		}
		logf("moved %s into %s", path, state)
	}
	return nil
}

// openIndex opens dir's index, building it from the reel vectors when it
// is missing.
func openIndex(ctx context.Context, dir string, logf func(string, ...any)) (*ann.Index, error) {
	path := filepath.Join(dir, trainIndex)
	ix, err := ann.Open(path)
	if err == nil {
		return ix, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("serve: %w", err)
	}
	vecs, err := ann.ReadFvecs(filepath.Join(dir, trainVectors), 0)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	ids, err := readIDs(filepath.Join(dir, trainIDs), vecs.Len())
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lists := max(16, min(4096, int(4*sqrtInt(vecs.Len()))))
	logf("building the index of %d reel vectors (%d lists)...", vecs.Len(), lists)
	ix, took, err := bench.BuildIndexIDs(vecs, ids, ann.Options{Metric: kernels.InnerProduct, Lists: lists, Bits: 4, Refine: ann.RefineF16, Seed: 1})
	if err != nil {
		return nil, fmt.Errorf("serve: index: %w", err)
	}
	logf("index built in %.1f s", took.Seconds())
	if err := ix.Save(path); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	return ix, nil
}

func sqrtInt(n int) int {
	r := 1
	for r*r < n {
		r++
	}
	return r
}

// defaultWorld is the world `make run` serves: smaller than the benchmark
// world (sim.DefaultConfig) so that a fresh machine serves within minutes.
func defaultWorld() sim.Config {
	c := sim.DefaultConfig()
	c.Users, c.Reels, c.Days = 20_000, 50_000, 10
	return c
}

// ensureDefault builds the embedded default into the cache once: the
// world, the trained models with their reel vectors and feature snapshot,
// and the index (on first serve). It returns the folder to serve.
func ensureDefault(ctx context.Context, cache string, logf func(string, ...any)) (string, error) {
	if cache == "" {
		cache = os.Getenv("REELRANK_CACHE")
	}
	if cache == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("serve: no cache folder: %w (set --cache)", err)
		}
		cache = filepath.Join(d, "reelrank")
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("serve: %w", err)
	}
	unlock, err := lockDir(cache)
	if err != nil {
		return "", err
	}
	defer unlock()
	wdir := filepath.Join(cache, "world")
	mdir := filepath.Join(cache, "model")
	if _, err := os.Stat(filepath.Join(wdir, sim.FileManifest)); err != nil {
		cfg := defaultWorld()
		logf("simulating the default world (%d users, %d reels, %d days) into %s...", cfg.Users, cfg.Reels, cfg.Days, wdir)
		tmp := wdir + ".tmp"
		os.RemoveAll(tmp)
		if _, err := sim.Generate(ctx, cfg, tmp, sim.GenerateOptions{}); err != nil {
			return "", fmt.Errorf("serve: simulate: %w", err)
		}
		os.RemoveAll(wdir)
		if err := os.Rename(tmp, wdir); err != nil {
			return "", fmt.Errorf("serve: %w", err)
		}
	}
	if _, err := os.Stat(filepath.Join(mdir, trainSnapshot)); err != nil {
		w, err := sim.Open(wdir)
		if err != nil {
			return "", fmt.Errorf("serve: %w", err)
		}
		defer w.Close()
		logf("training on its event log...")
		cfg := train.Config{Seed: 1, RetrievalUsers: 200, Log: func(format string, args ...any) { logf("train: "+format, args...) }}
		cfg.Ranker.Epochs = 3
		cfg.Towers.Epochs = 3
		res, err := train.Run(ctx, w, filepath.Join(wdir, sim.FileEvents), cfg)
		if err != nil {
			return "", fmt.Errorf("serve: %w", err)
		}
		tmp := mdir + ".tmp"
		os.RemoveAll(tmp)
		if err := writeTraining(tmp, res); err != nil {
			return "", err
		}
		os.RemoveAll(mdir)
		if err := os.Rename(tmp, mdir); err != nil {
			return "", fmt.Errorf("serve: %w", err)
		}
		logf("model %s: %s", res.Bundle.Version, summaryLine(res.Report))
	}
	return mdir, nil
}

func summaryLine(r *train.Report) string {
	if len(r.Heads) == 0 {
		return ""
	}
	h := r.Heads[0]
	return fmt.Sprintf("watch-through AUC %.3f (oracle %.3f, popularity %.3f), retrieval recall@1000 of the oracle's top 100 %.3f (popularity %.3f)",
		h.AUC, h.OracleAUC, h.PopularityAUC, r.Retrieval.Recall, r.Retrieval.PopularityRecall)
}

// lockDir takes an exclusive lock on dir, so that two servers do not build
// the same cache at once.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("serve: lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("serve: lock %s: %w", dir, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
