package sim

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/reelrank/reelrank/eventlog"
)

func TestValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	bad := map[string]func(c *Config){
		"no users":        func(c *Config) { c.Users = 0 },
		"negative reels":  func(c *Config) { c.Reels = -1 },
		"negative days":   func(c *Config) { c.Days = -2 },
		"one topic":       func(c *Config) { c.Topics = 1 },
		"too many topics": func(c *Config) { c.Topics = 300 },
		"dim 1":           func(c *Config) { c.EmbedDim = 1 },
		"zero start":      func(c *Config) { c.Start = time.Time{} },
		"upload rate":     func(c *Config) { c.UploadRate = 1.5 },
		"nan sessions":    func(c *Config) { c.SessionsPerDay = math.NaN() },
		"short sessions":  func(c *Config) { c.SessionLength = 0.5 },
		"long sessions":   func(c *Config) { c.SessionLength = 500 },
		"max session":     func(c *Config) { c.MaxSessionLength = 0 },
		"follows":         func(c *Config) { c.FollowsPerUser = -1 },
		"drift period":    func(c *Config) { c.DriftPeriod = 0 },
		"drift scale":     func(c *Config) { c.DriftScale = math.Inf(1) },
		"embed noise":     func(c *Config) { c.EmbedNoise = -1 },
		"catalogue age":   func(c *Config) { c.CatalogueAge = 0 },
		"oracle nan":      func(c *Config) { c.Oracle.LikeSlope = math.NaN() },
		"oracle huge":     func(c *Config) { c.Oracle.DeviceSkip[2] = 1e9 },
		"oracle loop":     func(c *Config) { c.Oracle.LoopBase = -1 },
		"oracle boost":    func(c *Config) { c.Oracle.CompleteBoost = -1 },
	}
	for name, f := range bad {
		c := DefaultConfig()
		f(&c)
		err := c.Validate()
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%s: got %v, want ErrConfig", name, err)
		}
		if _, gerr := Generate(context.Background(), c, t.TempDir(), GenerateOptions{}); !errors.Is(gerr, ErrConfig) {
			t.Errorf("%s: Generate gave %v, want ErrConfig", name, gerr)
		}
	}
}

// TestDeterminism generates the same world on 1 and on 4 threads (and
// GOMAXPROCS 1 and 4) and compares every file byte for byte.
func TestDeterminism(t *testing.T) {
	cfg := testConfig()
	cfg.Users, cfg.Reels, cfg.Days = 2500, 5000, 3
	if testing.Short() {
		cfg.Users, cfg.Reels, cfg.Days = 1500, 3000, 2
	}
	gen := func(procs, threads int) (string, Summary) {
		old := runtime.GOMAXPROCS(procs)
		defer runtime.GOMAXPROCS(old)
		dir := t.TempDir()
		s, err := Generate(context.Background(), cfg, dir, GenerateOptions{Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		return dir, s
	}
	d1, s1 := gen(1, 1)
	d4, s4 := gen(4, 4)
	if s1.Counts.Impressions == 0 || s1.Counts.Uploads == 0 {
		t.Fatalf("empty world: %+v", s1.Counts)
	}
	if !slices.Equal(s1.Files, s4.Files) {
		t.Errorf("file entries differ:\n%v\n%v", s1.Files, s4.Files)
	}
	for _, f := range s1.Files {
		a, err := os.ReadFile(filepath.Join(d1, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(d4, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between 1 and 4 threads", f.Name)
		}
	}
	ents, _ := os.ReadDir(d1)
	if len(ents) != 7 {
		t.Errorf("%d files in the world folder, want 7 (no temporary files left)", len(ents))
	}
	// Another seed gives another world.
	cfg.Seed++
	s2, err := Generate(context.Background(), cfg, t.TempDir(), GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(s1.Files, s2.Files) {
		t.Error("a different seed gave the same files")
	}
}

func TestGenerateCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	if _, err := Generate(ctx, testConfig(), dir, GenerateOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Errorf("%d files left after a cancelled Generate", len(ents))
	}
}

// TestEventLog checks the log's order, fields, ids and sessions.
func TestEventLog(t *testing.T) {
	dir, sum := sharedWorld(t)
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	log := sharedLog(t)
	if int64(len(log)) != sum.Counts.Events {
		t.Fatalf("%d lines, summary says %d events", len(log), sum.Counts.Events)
	}
	want := map[string][]string{
		"impression": {"type", "ts", "user", "reel", "author", "session", "pos", "prop", "arm"},
		"watch":      {"type", "ts", "user", "reel", "author", "session", "pos", "secs", "frac"},
		"skip":       {"type", "ts", "user", "reel", "author", "session", "pos", "secs"},
		"like":       {"type", "ts", "user", "reel", "author", "session", "pos"},
		"comment":    {"type", "ts", "user", "reel", "author", "session", "pos"},
		"share":      {"type", "ts", "user", "reel", "author", "session", "pos"},
		"follow":     {"type", "ts", "user", "reel", "author", "session", "pos"},
		"upload":     {"type", "ts", "reel", "author"},
	}
	type sess struct {
		user      int64
		lastPos   int
		lastImpTS int64
		outcome   bool
		start     int64
		end       int64
	}
	sessions := map[int64]*sess{}
	byType := map[string]int64{}
	uploads := map[int64]int64{}
	arms := map[string]int{}
	var prevTS int64
	crossMidnight := 0
	for i, l := range log {
		byType[l.Type]++
		keys := want[l.Type]
		if keys == nil {
			t.Fatalf("line %d: unknown type %q", i+1, l.Type)
		}
		if len(l.keys) != len(keys) {
			t.Fatalf("line %d (%s): keys %v, want %v", i+1, l.Type, l.keys, keys)
		}
		for _, k := range keys {
			if !l.keys[k] {
				t.Fatalf("line %d (%s): no %q", i+1, l.Type, k)
			}
		}
		if l.TS < prevTS {
			t.Fatalf("line %d: ts %d before %d", i+1, l.TS, prevTS)
		}
		prevTS = l.TS
		r, ok := w.Reel(l.Reel)
		if !ok || r.Author != l.Auth {
			t.Fatalf("line %d: reel %d, author %d do not match the world", i+1, l.Reel, l.Auth)
		}
		if r.Upload > l.TS {
			t.Fatalf("line %d: reel %d used at %d before its upload at %d", i+1, l.Reel, l.TS, r.Upload)
		}
		if l.Type == "upload" {
			uploads[l.Reel] = l.TS
			if r.Upload != l.TS {
				t.Fatalf("line %d: upload at %d, the reel says %d", i+1, l.TS, r.Upload)
			}
			continue
		}
		if !w.HasUser(l.User) || l.Sess < 1 {
			t.Fatalf("line %d: user %d session %d", i+1, l.User, l.Sess)
		}
		s := sessions[l.Sess]
		if l.Type == "impression" {
			arms[l.Arm]++
			if !(l.Prop > 0 && l.Prop <= 1) {
				t.Fatalf("line %d: prop %v", i+1, l.Prop)
			}
			if s == nil {
				if l.Pos != 0 {
					t.Fatalf("line %d: session %d starts at pos %d", i+1, l.Sess, l.Pos)
				}
				s = &sess{user: l.User, lastPos: -1, start: l.TS}
				sessions[l.Sess] = s
			}
			if l.Pos != s.lastPos+1 || (s.lastPos >= 0 && !s.outcome) {
				t.Fatalf("line %d: session %d pos %d after %d (outcome %v)", i+1, l.Sess, l.Pos, s.lastPos, s.outcome)
			}
			s.lastPos, s.lastImpTS, s.outcome = l.Pos, l.TS, false
		} else {
			if s == nil || s.user != l.User || l.Pos != s.lastPos {
				t.Fatalf("line %d: %s of session %d pos %d without its impression", i+1, l.Type, l.Sess, l.Pos)
			}
			if l.TS <= s.lastImpTS {
				t.Fatalf("line %d: %s at %d not after its impression at %d", i+1, l.Type, l.TS, s.lastImpTS)
			}
			switch l.Type {
			case "skip":
				if l.Secs >= 2 {
					t.Fatalf("line %d: skip of %v s", i+1, l.Secs)
				}
				s.outcome = true
			case "watch":
				if l.Secs < 2 || l.Frac <= 0 || l.Frac > loopCap {
					t.Fatalf("line %d: watch of %v s, fraction %v", i+1, l.Secs, l.Frac)
				}
				if d := math.Abs(l.Secs - l.Frac*float64(r.Duration)); d > 1e-3*l.Secs {
					t.Fatalf("line %d: %v s is not %v of %d s", i+1, l.Secs, l.Frac, r.Duration)
				}
				s.outcome = true
			default:
				if !s.outcome {
					t.Fatalf("line %d: %s before the watch", i+1, l.Type)
				}
			}
		}
		s.end = l.TS
	}
	for typ, n := range byType {
		if sum.Counts.ByType[typ] != n {
			t.Errorf("%s: %d in the log, summary says %d", typ, n, sum.Counts.ByType[typ])
		}
	}
	for _, typ := range []string{"impression", "watch", "skip", "like", "comment", "share", "follow", "upload"} {
		if byType[typ] == 0 {
			t.Errorf("no %s event", typ)
		}
	}
	if int64(len(sessions)) != sum.Counts.Sessions {
		t.Errorf("%d sessions in the log, summary says %d", len(sessions), sum.Counts.Sessions)
	}
	ids := make([]int64, 0, len(sessions))
	for id, s := range sessions {
		ids = append(ids, id)
		if floorDiv(s.start-w.Start(), msPerDay) != floorDiv(s.end-w.Start(), msPerDay) {
			crossMidnight++
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	if ids[0] != 1 || ids[len(ids)-1] != int64(len(ids)) {
		t.Errorf("session ids span %d..%d for %d sessions, want dense from 1", ids[0], ids[len(ids)-1], len(ids))
	}
	if crossMidnight == 0 {
		t.Error("no session crosses midnight: the test does not cover the carry-over")
	}
	if int64(len(uploads)) != sum.Counts.Uploads || sum.Counts.Uploads != int64(w.NumReels()-w.InitialReels()) {
		t.Errorf("%d upload events, %d uploads, %d reels after the initial catalogue", len(uploads), sum.Counts.Uploads, w.NumReels()-w.InitialReels())
	}
	if arms["popularity"] == 0 || arms["explore"] == 0 || len(arms) != 2 {
		t.Errorf("arms %v, want popularity and explore", arms)
	}
	if f := float64(arms["explore"]) / float64(byType["impression"]); math.Abs(f-0.1) > 0.02 {
		t.Errorf("explore share %.3f, want about 0.1", f)
	}
	t.Logf("%d events, %d sessions (%d cross midnight), by type %v", len(log), len(sessions), crossMidnight, byType)
}

// TestCatalogueGrowth checks that about UploadRate of users upload each
// day, all day long, and that ids follow upload order.
func TestCatalogueGrowth(t *testing.T) {
	c := testConfig()
	c.Users, c.Reels, c.Days = 20000, 2000, 5
	w := newWorld(c)
	ctx := context.Background()
	if err := w.buildUsers(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.buildReels(ctx, 0); err != nil {
		t.Fatal(err)
	}
	perDay := make([]int, c.Days)
	hours := map[int64]int{}
	for i, r := range w.reels {
		if i > 0 && r.upload < w.reels[i-1].upload {
			t.Fatalf("reel %d uploaded before reel %d", i+1, i)
		}
		if i < w.initialReels {
			if r.upload >= w.startMS {
				t.Fatalf("initial reel %d uploaded at %d, after the start", i+1, r.upload)
			}
			continue
		}
		d := floorDiv(r.upload-w.startMS, msPerDay)
		perDay[d]++
		hours[(r.upload-w.startMS)%msPerDay/msPerHour]++
	}
	for d, n := range perDay {
		f := float64(n) / float64(c.Users)
		if f < 0.008 || f > 0.012 {
			t.Errorf("day %d: %.4f of users uploaded, want about 0.01", d, f)
		}
	}
	if len(hours) != 24 {
		t.Errorf("uploads in %d of the 24 hours of the day", len(hours))
	}
	for h, n := range hours {
		if n > len(w.reels)/6 {
			t.Errorf("hour %d has %d of %d uploads", h, n, len(w.reels)-w.initialReels)
		}
	}
	if got, want := w.Available(w.startMS-1), int64(w.initialReels); got != want {
		t.Errorf("available before the start: %d, want %d", got, want)
	}
	if got := w.Available(w.startMS + int64(c.Days)*msPerDay); got != int64(len(w.reels)) {
		t.Errorf("available at the end: %d, want %d", got, len(w.reels))
	}
}

// countingPolicy is a RandomPolicy that counts its periods and checks
// that it observes every event before the period's end, in time order.
type countingPolicy struct {
	RandomPolicy
	advances int
	last     int64
	bad      int
}

func (p *countingPolicy) Observe(evs []eventlog.Event) {
	for i := range evs {
		if evs[i].Time < p.last {
			p.bad++
		}
		p.last = evs[i].Time
	}
}

func (p *countingPolicy) Advance(now int64) {
	if p.last >= now {
		p.bad++
	}
	p.advances++
}

// TestPeriod: a policy that keeps the contract gets the same log whatever
// the period; the period sets how often it observes.
func TestPeriod(t *testing.T) {
	cfg := testConfig()
	cfg.Users, cfg.Reels, cfg.Days = 800, 2000, 2
	logOf := func(period time.Duration) ([]byte, *countingPolicy) {
		p := &countingPolicy{}
		dir := t.TempDir()
		if _, err := Generate(context.Background(), cfg, dir, GenerateOptions{Policy: p, Period: period}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, FileEvents))
		if err != nil {
			t.Fatal(err)
		}
		return b, p
	}
	day, pd := logOf(0)
	hour, ph := logOf(time.Hour)
	if !bytes.Equal(day, hour) {
		t.Fatal("the log differs between periods of a day and of an hour")
	}
	if pd.bad+ph.bad > 0 {
		t.Fatalf("events out of order or observed after their period: %d, %d", pd.bad, ph.bad)
	}
	// A period per day or hour, and one for the sessions past the last day.
	if pd.advances < cfg.Days || pd.advances > cfg.Days+1 || ph.advances < 24*cfg.Days || ph.advances > 24*cfg.Days+1 {
		t.Fatalf("%d and %d periods over %d days", pd.advances, ph.advances, cfg.Days)
	}
	for _, bad := range []time.Duration{time.Second, 7 * time.Minute, 25 * time.Hour, -time.Hour} {
		if _, err := Generate(context.Background(), cfg, t.TempDir(), GenerateOptions{Period: bad}); !errors.Is(err, ErrConfig) {
			t.Errorf("period %v: %v, want ErrConfig", bad, err)
		}
	}
}
