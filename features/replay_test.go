package features

import (
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/reelrank/reelrank/eventlog"
)

// sliceSource serves events in batches of a fixed size.
type sliceSource struct {
	evs   []eventlog.Event
	batch int
}

func (s *sliceSource) Next() ([]eventlog.Event, error) {
	if len(s.evs) == 0 {
		return nil, io.EOF
	}
	n := min(s.batch, len(s.evs))
	b := s.evs[:n]
	s.evs = s.evs[n:]
	return b, nil
}

// testLog makes a time-ordered log of sessions: impressions followed by a
// watch or a skip, and sometimes a like, a share or a follow.
func testLog(seed uint64, sessions, users, reels int) []eventlog.Event {
	rng := rand.New(rand.NewPCG(seed, 7))
	var evs []eventlog.Event
	for s := range sessions {
		u := int64(1 + rng.IntN(users))
		tm := t0 + int64(s)*90e3 + int64(rng.IntN(60e3))
		for pos := range int32(3 + rng.IntN(6)) {
			r := int64(1 + rng.IntN(reels))
			a := 1000 + r%13
			sess := int64(s + 1)
			evs = append(evs, impression(tm, u, r, a, sess, pos))
			if rng.IntN(3) == 0 {
				sk := simple(eventlog.Skip, tm+1500, u, r, a, sess, pos)
				sk.Seconds = 1.5
				evs = append(evs, sk)
				tm += 1600
				continue
			}
			frac := rng.Float32()
			evs = append(evs, watch(tm+int64(frac*20e3), u, r, a, sess, pos, frac))
			if rng.IntN(4) == 0 {
				evs = append(evs, simple(eventlog.Like, tm+int64(frac*20e3)+100, u, r, a, sess, pos))
			}
			if rng.IntN(20) == 0 {
				f := simple(eventlog.Follow, tm+int64(frac*20e3)+200, u, r, a, sess, pos)
				f.Has |= eventlog.FReel | eventlog.FSession | eventlog.FPosition
				evs = append(evs, f)
			}
			tm += int64(frac*20e3) + 300
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time < evs[j].Time })
	return evs
}

// testCatalogue puts users, authors and reels with embeddings in s and fits
// the categories.
func testCatalogue(t testing.TB, s *Store, users, reels int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 6))
	d := s.Config().EmbedDim
	for u := 1; u <= users; u++ {
		if err := s.PutUser(User{ID: int64(u), Country: u % 5, Language: u % 3, AgeBucket: u % 4, Device: u % 2}); err != nil {
			t.Fatal(err)
		}
	}
	for a := int64(1000); a < 1013; a++ {
		if err := s.PutAuthor(a, a*10); err != nil {
			t.Fatal(err)
		}
	}
	e := make([]float32, d)
	for r := 1; r <= reels; r++ {
		for j := range e {
			e[j] = float32(rng.NormFloat64())
		}
		if err := s.PutReel(Reel{ID: int64(r), Author: 1000 + int64(r)%13, Upload: t0 - int64(r)*60e3, Duration: 5 + float32(r%80), Embedding: e, Category: -1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FitCategories(9); err != nil {
		t.Fatal(err)
	}
}

type collected struct {
	imps   []eventlog.Event
	labels []Labels
	user   [][]float32
	reel   [][]float32
	cross  [][]float32
}

func replayAll(t testing.TB, cfg Config, evs []eventlog.Event, batch int) (*Store, collected, ReplayStats) {
	t.Helper()
	s := newTestStore(t, cfg)
	testCatalogue(t, s, 40, 300)
	var c collected
	sp := s.Spec()
	st, err := s.Replay(&sliceSource{evs: evs, batch: batch}, ReplayOptions{BatchSize: 7, Emit: func(b *RowBatch) error {
		for i := range b.N {
			c.imps = append(c.imps, b.Impressions[i])
			c.labels = append(c.labels, b.Labels[i])
			c.user = append(c.user, slices.Clone(b.User[i*len(sp.User):(i+1)*len(sp.User)]))
			c.reel = append(c.reel, slices.Clone(b.Reel[i*len(sp.Reel):(i+1)*len(sp.Reel)]))
			c.cross = append(c.cross, slices.Clone(b.Cross[i*len(sp.Cross):(i+1)*len(sp.Cross)]))
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s, c, st
}

func TestReplayLabels(t *testing.T) {
	evs := []eventlog.Event{
		impression(t0, 1, 10, 1000, 1, 0),
		watch(t0+9000, 1, 10, 1000, 1, 0, 0.9),
		simple(eventlog.Like, t0+9100, 1, 10, 1000, 1, 0),
		impression(t0+10000, 1, 11, 1001, 1, 1),
		simple(eventlog.Skip, t0+11000, 1, 11, 1001, 1, 1),
		impression(t0+12000, 2, 12, 1002, 2, 0),
		// Past the 30-minute label window: not a label of the impression.
		simple(eventlog.Share, t0+40*60e3, 2, 12, 1002, 2, 0),
	}
	evs[4].Seconds = 1
	_, c, st := replayAll(t, Config{}, evs, 2)
	if st.Rows != 3 || st.NoOutcome != 1 || st.Applied != int64(len(evs)) || st.Orphans != 1 {
		t.Fatalf("stats %+v", st)
	}
	want := []Labels{
		{Outcome: true, Seconds: 18, Fraction: 0.9, Like: true},
		{Outcome: true, Skip: true, Seconds: 1},
		{},
	}
	for i, l := range c.labels {
		if l != want[i] {
			t.Errorf("row %d labels %+v, want %+v", i, l, want[i])
		}
		if c.imps[i].Reel != evs[[]int{0, 3, 5}[i]].Reel {
			t.Errorf("row %d is reel %d", i, c.imps[i].Reel)
		}
	}
}

// TestReplayPointInTime proves that a row holds nothing from after its
// impression: a row equals the features of a store that applied only the
// log before the impression, and planting future events changes no
// earlier row.
func TestReplayPointInTime(t *testing.T) {
	evs := testLog(11, 400, 40, 300)
	_, base, _ := replayAll(t, Config{}, evs, 64)
	if len(base.imps) < 1000 {
		t.Fatalf("only %d rows", len(base.imps))
	}

	// A row against a store built from the prefix of the log.
	for _, i := range []int{0, 17, len(base.imps) / 2, len(base.imps) - 1} {
		imp := base.imps[i]
		cut := slices.IndexFunc(evs, func(e eventlog.Event) bool {
			return e.Type == eventlog.Impression && e.Session == imp.Session && e.Reel == imp.Reel
		})
		s := newTestStore(t, Config{})
		testCatalogue(t, s, 40, 300)
		if err := s.Apply(evs[:cut]); err != nil {
			t.Fatal(err)
		}
		r := &Request{User: imp.User, Reels: []int64{imp.Reel}, Context: Context{Time: imp.Time, Session: imp.Session, Position: int(imp.Position)}}
		if err := s.Features(r); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.UserVec, base.user[i]) || !slices.Equal(r.ReelVec, base.reel[i]) || !slices.Equal(r.CrossVec, base.cross[i]) {
			t.Fatalf("row %d differs from the features of the log before it", i)
		}
	}

	// Plant future events on the reel and the user of a middle impression.
	mid := base.imps[len(base.imps)/2]
	planted := []eventlog.Event{
		simple(eventlog.Like, mid.Time+1, mid.User, mid.Reel, 1000+mid.Reel%13, mid.Session, mid.Position),
		watch(mid.Time+2, mid.User, mid.Reel, 1000+mid.Reel%13, 999999, 0, 1),
		impression(mid.Time+3, 7, mid.Reel, 1000+mid.Reel%13, 999998, 0),
		simple(eventlog.Share, mid.Time+4, 8, mid.Reel, 1000+mid.Reel%13, 999997, 0),
	}
	f := simple(eventlog.Follow, mid.Time+5, mid.User, mid.Reel, 1000+mid.Reel%13, mid.Session, mid.Position)
	planted = append(planted, f)
	withFuture := slices.Clone(evs)
	for _, p := range planted {
		at := sort.Search(len(withFuture), func(i int) bool { return withFuture[i].Time > p.Time })
		withFuture = slices.Insert(withFuture, at, p)
	}
	_, got, _ := replayAll(t, Config{}, withFuture, 64)
	changed := false
	j := 0
	for i, imp := range base.imps {
		for got.imps[j].Session != imp.Session || got.imps[j].Reel != imp.Reel {
			j++ // a planted impression's row
		}
		same := slices.Equal(got.user[j], base.user[i]) && slices.Equal(got.reel[j], base.reel[i]) && slices.Equal(got.cross[j], base.cross[i])
		if imp.Time <= mid.Time && !same {
			t.Fatalf("row %d at %d changed by events planted after %d", i, imp.Time, mid.Time)
		}
		if imp.Time > mid.Time+5 && imp.Reel == mid.Reel && !same {
			changed = true
		}
		j++
	}
	if !changed {
		t.Fatal("the planted events changed no later row of their reel: the test proves nothing")
	}
}

func TestReplayRefusesBadEventsAndGoesOn(t *testing.T) {
	evs := testLog(2, 20, 10, 50)
	bad := evs[5]
	bad.Has &^= eventlog.FSession
	bad.Line = 6
	evs[5] = bad
	s := newTestStore(t, Config{})
	st, err := s.Replay(&sliceSource{evs: evs, batch: 8}, ReplayOptions{})
	var ae *ApplyError
	if !errors.As(err, &ae) || ae.Bad != 1 || ae.First[0].Line != 6 || st.Refused != 1 || st.Applied != int64(len(evs)-1) {
		t.Fatalf("err %v stats %+v", err, st)
	}
}

func TestReplayEmitErrorStops(t *testing.T) {
	s := newTestStore(t, Config{})
	boom := errors.New("disk full")
	_, err := s.Replay(&sliceSource{evs: testLog(3, 50, 10, 50), batch: 16}, ReplayOptions{BatchSize: 4, Emit: func(*RowBatch) error { return boom }})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	// The store is still usable.
	if err := s.Features(&Request{User: 1, Reels: []int64{1}, Context: Context{Time: t0 + 365*86400e3}}); err != nil {
		t.Fatal(err)
	}
}

func TestReplaySessionFeatures(t *testing.T) {
	evs := []eventlog.Event{
		impression(t0, 1, 10, 1000, 5, 0),
		watch(t0+10000, 1, 10, 1000, 5, 0, 1),
		impression(t0+11000, 1, 11, 1000, 5, 1),
	}
	s, c, _ := replayAll(t, Config{}, evs, 10)
	sp := s.Spec()
	at := func(row int, name string) float32 { return c.user[row][slices.Index(sp.User, name)] }
	if at(0, "sess_log_secs") != 0 || at(0, "sess_log_pos") != 0 {
		t.Error("the first impression of a session has session history")
	}
	if got, want := at(1, "sess_log_secs"), log1p(11); got != want {
		t.Errorf("sess_log_secs = %v, want %v", got, want)
	}
	cat := s.reels.recs[s.reels.index.dense[10]-1].cat
	if at(1, "sess_last_cat_"+itoa(int(cat))) != 1 {
		t.Error("the last reel's category is not in the session features")
	}
	if at(1, "hist_log_weight") == 0 {
		t.Error("the watched reel is not in the history embedding")
	}
}

func itoa(i int) string { return string(rune('0'+i/10)) + string(rune('0'+i%10)) }

var _ = time.Second
