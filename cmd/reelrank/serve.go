package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/reelrank/reelrank/client"
	"github.com/reelrank/reelrank/engine"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/internal/fsutil"
	"github.com/reelrank/reelrank/modeldir"
	"github.com/reelrank/reelrank/ranker"
	"github.com/reelrank/reelrank/server"
	"github.com/reelrank/reelrank/sim"
	"github.com/reelrank/reelrank/train"
	"github.com/reelrank/reelrank/wire"
)

// servedDir is the engine's folder (engine.Config.Dir) in the serving
// folder, whose layout is package modeldir's.
const servedDir = modeldir.StateFolder

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
	adminToken := fs.String("admin-token", "", "token of the connections that may load, promote and roll back models (default $REELRANK_ADMIN_TOKEN; with --token set and none, model changes are refused)")
	holdout := fs.Float64("holdout", 0, "share of users served by popularity alone, bypassing the ranker (a restart keeps the share recorded in served/arms.json)")
	canaryShare := fs.Float64("canary-share", 0.1, "share of users a loaded model serves when the load names none")
	promoteAfter := fs.Int64("promote-after", 20_000, "promote a canary after this many impressions with no rollback rule firing (negative: by hand only)")
	canaryMargin := fs.Float64("canary-margin", 0.02, "roll a canary back when its watch-through rate per impression is below the control's by more than this")
	canaryConf := fs.Float64("canary-confidence", 0.95, "one-sided confidence of that comparison")
	salt := fs.Uint64("arm-salt", 0, "salt of the user hash that assigns arms (keep it across restarts)")
	shardFlag := fs.String("shard", "", "serve shard `i/n` of the catalogue: the reels client.ShardOf places in shard i of n (empty: all); events are taken for every reel, so that user features are the same on every shard")
	reshard := fs.Bool("reshard", false, "serve a folder last served as another shard (or unsharded) as --shard says; it lacks the catalogue changes the other shards took")
	device := fs.String("device", "cpu", "where the ranker scores: cpu, cuda (batches on GPU 0; needs the build of make build-cuda) or auto (cuda when a GPU is there, else cpu)")
	batchWait := fs.Duration("batch-wait", time.Millisecond, "with a GPU: the longest a request waits for others to share its batch")
	batchRequests := fs.Int("batch-requests", 256, "with a GPU: the most requests in one batch")
	batchCands := fs.Int("batch-candidates", 256<<10, "with a GPU: the most candidates in one batch")
	archive := fs.Bool("archive", true, "keep the event log segments checkpoints drop, in served/archive, so that the whole served log can be trained on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	dev, err := ranker.ParseDevice(*device)
	if err != nil {
		return fmt.Errorf("serve: --device: %w", err)
	}
	dev, devNote, err := ranker.ResolveDevice(dev)
	if err != nil {
		return fmt.Errorf("serve: --device %s: %w", *device, err)
	}
	shard, err := engine.ParseShard(*shardFlag)
	if err != nil {
		return fmt.Errorf("serve: --shard: %w", err)
	}
	if *token == "" {
		*token = os.Getenv("REELRANK_TOKEN")
	}
	if *adminToken == "" {
		*adminToken = os.Getenv("REELRANK_ADMIN_TOKEN")
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
	// The server's log at warnings (its connections' comings and goings
	// are noise); the engine's at info: every model change, with its
	// reason, is in the log.
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	engineLogger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	policy := engine.CanaryPolicy{Share: *canaryShare, PromoteImpressions: *promoteAfter, Margin: *canaryMargin, Confidence: *canaryConf}
	ecfg := engine.Config{K: *k, Nprobe: *nprobe, MaxLead: *maxLead, CheckpointInterval: *ckEvery, Logger: engineLogger,
		Canary: policy, HoldoutShare: *holdout, ArmSalt: *salt, Shard: shard, Reshard: *reshard,
		Device: dev, Batch: ranker.BatcherConfig{MaxWait: *batchWait, MaxRequests: *batchRequests, MaxCandidates: *batchCands}}
	if devNote != "" {
		logf("%s", devNote)
	}
	if *archive {
		ecfg.ArchiveDir = "archive"
	}
	eng, keeper, err := openServing(ctx, *dir, ecfg, *clock, logf)
	if err != nil {
		return err
	}
	defer keeper.close()
	defer eng.Close()
	srv, err := server.New(server.Config{Addr: *addr, MetricsAddr: *metrics, Token: *token, TLS: tlsCfg, MaxInFlight: *maxInFlight,
		MaxQueue: *maxQueue, MaxConnQueue: *maxConnQueue, MaxUnsent: *maxUnsent, MaxConnsPerAddr: *perAddr, AuthTimeout: *authTimeout,
		AdminToken: *adminToken, Logger: logger}, server.EngineHandlerWith(eng, server.EngineOptions{Load: keeper.load}))
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	if err := waitListening(ctx, srv, errc); err != nil {
		return err
	}
	m := eng.Model()
	shardNote := ""
	if shard.Sharded() {
		shardNote = " of shard " + shard.String()
	}
	fmt.Fprintf(stdout, "reelrank: serving model %s over %d reels%s on %s (auth %s, admin %s, TLS %s)", m.Version(), m.Index().Len(), shardNote,
		srv.Addr(), onOff(*token != ""), adminState(*token, *adminToken), onOff(tlsCfg != nil))
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

// adminState says who may send model changes.
func adminState(token, admin string) string {
	switch {
	case admin != "":
		return "by admin token"
	case token != "":
		return "off"
	}
	return "open"
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// openServing opens the version folder dir that `reelrank train --out`
// wrote and returns an engine over it, durable in its state folder
// (dir/served): the engine restores what was served before (its
// checkpoint, the logs' tails) itself, and the arms recorded there
// (modeldir.LoadArms: a promoted control, a canary) serve again. The
// keeper opens the folders AdminRequests load.
func openServing(ctx context.Context, dir string, cfg engine.Config, clock string, logf func(string, ...any)) (*engine.Engine, *armsKeeper, error) {
	v, err := modeldir.Open(ctx, dir, modeldir.Options{Logf: logf})
	if err != nil {
		return nil, nil, fmt.Errorf("serve: %w", err)
	}
	fail := func(err error) (*engine.Engine, *armsKeeper, error) {
		v.Close()
		return nil, nil, fmt.Errorf("serve: %w", err)
	}
	clk, err := v.Clock(clock)
	if err != nil {
		return fail(fmt.Errorf("--clock: %w", err))
	}
	if cfg.Dir, err = v.StateDir(); err != nil {
		return fail(err)
	}
	keeper := newArmsKeeper(cfg.Dir, logf)
	keeper.note(v)
	arms, recorded, err := modeldir.LoadArms(cfg.Dir)
	if err != nil {
		return fail(err)
	}
	// The control: the bundle's version, or the one promoted since.
	control := v
	if recorded && arms.Control.Version != v.Version() {
		cv, err := modeldir.Open(ctx, arms.Control.Dir, modeldir.Options{Logf: logf})
		if err != nil {
			return fail(fmt.Errorf("the control %s recorded in %s: %w (remove that file to serve %s)", arms.Control.Version,
				filepath.Join(cfg.Dir, modeldir.ArmsFile), err, v.Version()))
		}
		keeper.note(cv)
		control = cv
		logf("serving the control promoted before: %s from %s", cv.Version(), cv.Dir())
	}
	if recorded {
		cfg.HoldoutShare = arms.HoldoutShare
		cfg.ControlSettings = engine.ArmSettings{Weights: arms.Control.Weights}
	}
	model, err := versionModel(control, "default")
	if err != nil {
		return fail(err)
	}
	// The clock: on a simulated world whose log ended long ago, the data's
	// clock, from the newest event the state holds (the checkpoint's, or
	// the base snapshot's when there is none yet).
	if newest, ok, err := engine.CheckpointNewest(cfg.Dir); err != nil {
		return fail(err)
	} else if ok {
		clk.Observe(newest)
	}
	cfg.Clock = clk.Now
	cfg.OnArmsChange = keeper.onChange
	start := time.Now()
	e, err := engine.Open(cfg, model, func() (*features.Store, error) {
		store, err := v.LoadSnapshot()
		if err == nil {
			clk.Observe(store.Stats().Newest)
		}
		return store, err
	})
	if err != nil {
		return fail(err)
	}
	spec := e.Store().Spec()
	keeper.mu.Lock()
	keeper.spec = &spec
	keeper.mu.Unlock()
	st := e.Stats()
	logf("state restored in %.2f s: %d events applied, %d users, %d reels", time.Since(start).Seconds(), st.Events, st.Users, st.Reels)
	if recorded && arms.Canary != nil {
		m, err := keeper.load(ctx, arms.Canary.Dir)
		if err == nil {
			err = e.LoadCanary(m, engine.LoadOptions{Share: arms.CanaryShare, Settings: engine.ArmSettings{Weights: arms.Canary.Weights}})
		}
		if err != nil {
			logf("the canary %s recorded before is not served again: %v", arms.Canary.Version, err)
		} else {
			logf("serving the canary %s to %.1f%% of users again", arms.Canary.Version, 100*arms.CanaryShare)
		}
	}
	return e, keeper, nil
}

// defaultWorld is the world `make run` serves: smaller than the benchmark
// world (sim.DefaultConfig) so that a fresh machine serves within minutes.
func defaultWorld() sim.Config {
	c, _ := sim.Preset("serve") // a name sim knows: no error
	return c
}

// ensureDefault builds the embedded default into the cache once: the
// world, then the version folder of the trained models (modeldir: reel
// vectors, feature snapshot, and the index on first serve). Each is
// written beside and renamed into place, so a crash leaves none half
// built. It returns the folder to serve.
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
			os.RemoveAll(tmp)
			return "", fmt.Errorf("serve: simulate: %w", err)
		}
		if err := fsutil.ReplaceDir(tmp, wdir); err != nil {
			return "", fmt.Errorf("serve: %w", err)
		}
	}
	if _, err := os.Stat(filepath.Join(mdir, modeldir.SnapshotFile)); err == nil {
		// A model an older build trained on another feature spec is set
		// aside and trained again, rather than refused at every start.
		if why := staleDefault(ctx, mdir); why != nil {
			aside := fmt.Sprintf("%s.stale-%d", mdir, time.Now().Unix())
			logf("the cached model %s: %v: moving it to %s and training again", mdir, why, aside)
			if err := os.Rename(mdir, aside); err != nil {
				return "", fmt.Errorf("serve: %w", err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(mdir, modeldir.SnapshotFile)); err != nil {
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
		// Written atomically (a crash leaves no half-written model), and
		// refused over a folder holding served state.
		if err := writeTraining(mdir, res); err != nil {
			return "", err
		}
		logf("model %s: %s", res.Bundle.Version, summaryLine(res.Report))
	}
	return mdir, nil
}

// staleDefault says why the cached default model cannot serve this
// build's feature store (a spec mismatch), or nil; a model that does not
// open is left for serve to report.
func staleDefault(ctx context.Context, mdir string) error {
	v, err := modeldir.Open(ctx, mdir, modeldir.Options{})
	if err != nil {
		return nil
	}
	defer v.Close()
	st, err := features.NewStore(features.Config{EmbedDim: v.Bundle().Spec.EmbedDim})
	if err != nil {
		return nil
	}
	if err := v.Check(st.Spec()); errors.Is(err, ranker.ErrSpecMismatch) {
		return err
	}
	return nil
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
