package bench

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reelrank/reelrank/client"
	"github.com/reelrank/reelrank/client/clienttest"
	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/wire"
)

func startFake(t *testing.T, h clienttest.Handler) *clienttest.Server {
	t.Helper()
	s, err := clienttest.Start(h, clienttest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// delayed answers as clienttest.Static after d.
func delayed(d time.Duration) clienttest.Handler {
	return func(ctx context.Context, req *wire.Envelope) wire.Message {
		clienttest.Sleep(ctx, d)
		return clienttest.StaticAnswer("v1", req.Body)
	}
}

// A server that answers in 2 ms keeps up with the offered rates: the
// achieved rate matches, every request succeeds, and the latency is at
// least the server's delay.
func TestLoadAchievesOfferedRate(t *testing.T) {
	s := startFake(t, delayed(2*time.Millisecond))
	dur := 600 * time.Millisecond
	if testing.Short() {
		dur = 200 * time.Millisecond
	}
	var reported []LoadStep
	steps, err := Load(context.Background(), LoadConfig{Addr: s.Addr, Rates: []float64{200, 500}, Duration: dur,
		Warmup: 50 * time.Millisecond, Seed: 1}, func(st LoadStep) { reported = append(reported, st) })
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 || len(reported) != 2 {
		t.Fatalf("%d steps, %d reported, want 2", len(steps), len(reported))
	}
	for _, st := range steps {
		want := st.Offered * dur.Seconds()
		if math.Abs(float64(st.Sent)-want) > 2 || st.OK != st.Sent || st.Errors != 0 {
			t.Errorf("offered %v/s: sent %d (want %v), %d ok, %d errors", st.Offered, st.Sent, want, st.OK, st.Errors)
		}
		if math.Abs(st.Achieved-st.Offered) > 0.1*st.Offered || st.Goodput != st.Achieved {
			t.Errorf("offered %v/s: achieved %.1f/s, goodput %.1f/s", st.Offered, st.Achieved, st.Goodput)
		}
		if st.P50us < 2000 || st.P50us > st.P99us || st.P99us > st.P999us || st.P999us > st.MaxUs {
			t.Errorf("offered %v/s: p50 %v p99 %v p999 %v max %v µs", st.Offered, st.P50us, st.P99us, st.P999us, st.MaxUs)
		}
		// clienttest.Static reports stages of 1..6 ms.
		if g := st.Stages; g == nil || g.FeaturesUs != 1000 || g.TotalUs != 6000 || g.ANN != 1000 || g.Ranked != 20 {
			t.Errorf("offered %v/s: stages %+v", st.Offered, st.Stages)
		}
		if st.Recommends != st.Sent {
			t.Errorf("offered %v/s: %d recommends of %d", st.Offered, st.Recommends, st.Sent)
		}
	}
}

// The server stalls once for 200 ms while the client may have one request
// in flight: the requests meant to go out during the stall wait behind
// it. A closed-loop or send-time measurement would see one slow request
// and p99 near zero; measured from the intended send times, a fifth of
// the step is late and p99 is about the stall.
func TestLoadCorrectsCoordinatedOmission(t *testing.T) {
	var n atomic.Int64
	var stall sync.Once
	s := startFake(t, func(ctx context.Context, req *wire.Envelope) wire.Message {
		if n.Add(1) == 50 {
			stall.Do(func() { clienttest.Sleep(ctx, 200*time.Millisecond) })
		}
		return clienttest.StaticAnswer("v1", req.Body)
	})
	c, err := client.Dial(context.Background(), s.Addr, client.Options{PoolSize: 1, MaxInFlight: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dur, want := time.Second, int64(200)
	if testing.Short() {
		dur, want = 500*time.Millisecond, 100
	}
	steps, err := Load(context.Background(), LoadConfig{Client: c, Rates: []float64{200}, Duration: dur}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := steps[0]
	if st.OK != want || st.Errors != 0 {
		t.Fatalf("%d ok, %d errors, want %d and 0", st.OK, st.Errors, want)
	}
	if st.P99us < 100_000 || st.MaxUs < 150_000 || st.P50us > 50_000 {
		t.Errorf("p50 %s, p99 %s, max %s: want p99 ≥ 100ms, max ≥ 150ms, p50 small", ms(st.P50us), ms(st.P99us), ms(st.MaxUs))
	}
	if got := s.Requests(); got != want {
		t.Errorf("server saw %d requests, want %d", got, want)
	}
}

// Errors are counted by code and by kind, and the counts match what the
// server did.
func TestLoadCountsErrors(t *testing.T) {
	var counts [5]atomic.Int64 // by user % 5
	s := startFake(t, func(ctx context.Context, req *wire.Envelope) wire.Message {
		r := req.Body.(*wire.RecommendRequest)
		counts[r.User%5].Add(1)
		switch r.User % 5 {
		case 0:
			return &wire.Error{Code: wire.Overloaded, Message: "shed"}
		case 1:
			return &wire.Error{Code: wire.DeadlineExceeded}
		case 2:
			return &wire.Error{Code: wire.Internal, Message: "boom"}
		case 3:
			return nil // never answered: the client times out
		}
		return clienttest.StaticAnswer("v1", r)
	})
	steps, err := Load(context.Background(), LoadConfig{Addr: s.Addr, Rates: []float64{300}, Duration: 300 * time.Millisecond,
		Timeout: 30 * time.Millisecond, Users: 100, Seed: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := steps[0]
	c := func(i int) int64 { return counts[i].Load() }
	if st.Sent != 90 || st.Sent != c(0)+c(1)+c(2)+c(3)+c(4) {
		t.Fatalf("sent %d, server saw %d, %d, %d, %d, %d", st.Sent, c(0), c(1), c(2), c(3), c(4))
	}
	if st.Overloaded != c(0) || st.Deadline != c(1)+c(3) || st.Other != c(2) || st.OK != c(4) ||
		st.Errors != st.Sent-st.OK {
		t.Errorf("overloaded %d, deadline %d, other %d, ok %d; server: %d, %d+%d, %d, %d",
			st.Overloaded, st.Deadline, st.Other, st.OK, c(0), c(1), c(3), c(2), c(4))
	}
	want := map[string]int64{"overloaded": c(0), "deadline exceeded": c(1), "internal": c(2), "timeout": c(3)}
	for k, v := range want {
		if st.ByCode[k] != v {
			t.Errorf("ByCode[%q] = %d, want %d (all: %v)", k, st.ByCode[k], v, st.ByCode)
		}
	}
	if st.ErrP99us <= 0 || st.ErrP99us >= 30_000 {
		t.Errorf("error p99 %v µs, want answered errors under the timeout", st.ErrP99us)
	}
	line := st.String()
	if !strings.Contains(line, "overloaded") || !strings.Contains(line, "timeout") {
		t.Errorf("String() = %q lacks the error codes", line)
	}
	var back map[string]any
	b, _ := json.Marshal(st)
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"offered_qps", "achieved_qps", "goodput_qps", "p99_us", "p999_us", "errors_by_code", "overloaded"} {
		if _, ok := back[k]; !ok {
			t.Errorf("JSON %s lacks %q", b, k)
		}
	}
}

// The mix: shares of Score and Event, plausible contexts, valid events,
// users and reels in range, Poisson gaps that keep the mean rate.
func TestLoadMix(t *testing.T) {
	clock := time.UnixMilli(1_700_000_000_000)
	var mu sync.Mutex
	kinds := map[wire.Kind]int{}
	var bad []string
	s := startFake(t, func(ctx context.Context, req *wire.Envelope) wire.Message {
		mu.Lock()
		defer mu.Unlock()
		kinds[req.Body.Kind()]++
		check := func(user int64, c *wire.Context) {
			if user < 1 || user > 50 || c.Time != clock.UnixMilli() || len(c.Recent) != 4 {
				bad = append(bad, "context")
			}
			for _, r := range c.Recent {
				if r < 1 || r > 300 {
					bad = append(bad, "recent reel")
				}
			}
		}
		switch m := req.Body.(type) {
		case *wire.RecommendRequest:
			check(m.User, &m.Context)
			if m.N != 7 {
				bad = append(bad, "n")
			}
		case *wire.ScoreRequest:
			check(m.User, &m.Context)
			if len(m.Reels) != 10 {
				bad = append(bad, "score reels")
			}
		case *wire.EventRequest:
			for _, e := range m.Events {
				ev := eventlog.Event{Type: eventlog.Type(e.Type), Has: eventlog.Field(e.Has), Time: e.Time, User: e.User,
					Reel: e.Reel, Author: e.Author, Session: e.Session, Position: e.Position,
					Propensity: e.Propensity, Arm: e.Arm, Seconds: e.Seconds, Fraction: e.Fraction}
				if err := ev.Validate(); err != nil {
					bad = append(bad, err.Error())
				}
			}
			return &wire.EventResponse{Accepted: 1, Rejected: 1, Reason: "one refused"}
		}
		return clienttest.StaticAnswer("v1", req.Body)
	})
	dur := 400 * time.Millisecond
	if testing.Short() {
		dur = 250 * time.Millisecond
	}
	steps, err := Load(context.Background(), LoadConfig{Addr: s.Addr, Rates: []float64{1000}, Duration: dur,
		Poisson: true, Users: 50, Reels: 300, N: 7, Recent: 4, ScoreFrac: 0.2, ScoreReels: 10, EventFrac: 0.2,
		Clock: func() time.Time { return clock }, Seed: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := steps[0]
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("implausible requests: %v", bad[:min(len(bad), 5)])
	}
	if want := 1000 * dur.Seconds(); float64(st.Sent) < 0.75*want || float64(st.Sent) > 1.25*want {
		t.Errorf("Poisson at 1000/s for %v sent %d", dur, st.Sent)
	}
	n := float64(st.Sent)
	if f := float64(st.Scores) / n; f < 0.12 || f > 0.28 {
		t.Errorf("score share %.2f, want 0.2", f)
	}
	if f := float64(st.Events) / n; f < 0.12 || f > 0.28 {
		t.Errorf("event share %.2f, want 0.2", f)
	}
	if st.EventsRejected != st.Events || st.EventReason != "one refused" || !strings.Contains(st.String(), "events refused") {
		t.Errorf("%d events refused of %d batches, reason %q", st.EventsRejected, st.Events, st.EventReason)
	}
	if st.Recommends+st.Scores+st.Events != st.Sent || int64(kinds[wire.KindScoreRequest]) != st.Scores {
		t.Errorf("kinds %v, step %d/%d/%d", kinds, st.Recommends, st.Scores, st.Events)
	}
}

func TestLoadRefusesBadConfig(t *testing.T) {
	for _, cfg := range []LoadConfig{
		{Addr: "x"},
		{Addr: "x", Rates: []float64{0}},
		{Addr: "x", Rates: []float64{math.NaN()}},
		{Rates: []float64{1}},
		{Addr: "x", Rates: []float64{1}, N: wire.MaxN + 1},
		{Addr: "x", Rates: []float64{1}, ScoreFrac: 0.6, EventFrac: 0.6},
		{Addr: "x", Rates: []float64{1}, Duration: -1},
	} {
		if _, err := Load(context.Background(), cfg, nil); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

func TestLoadStopsWithContext(t *testing.T) {
	s := startFake(t, delayed(0))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	steps, err := Load(ctx, LoadConfig{Addr: s.Addr, Rates: []float64{100, 100}, Duration: 10 * time.Second}, nil)
	if err == nil || len(steps) != 0 {
		t.Fatalf("%d steps, err %v; want none and the context's error", len(steps), err)
	}
}

// Against shards: one answers, one refuses every request. Every request
// succeeds from the shard that answered and counts as partial, and the
// merge overhead is measured for each.
func TestLoadShards(t *testing.T) {
	up := startFake(t, delayed(time.Millisecond))
	down := startFake(t, func(context.Context, *wire.Envelope) wire.Message {
		return &wire.Error{Code: wire.Unavailable, Message: "down"}
	})
	steps, err := Load(context.Background(), LoadConfig{Shards: [][]string{{up.Addr}, {down.Addr}}, Rates: []float64{100},
		Duration: 200 * time.Millisecond, Warmup: 20 * time.Millisecond, Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := steps[0]
	if st.Sent == 0 || st.OK != st.Sent || st.Partial != st.Sent || st.MissingShards != st.Sent || st.Errors != 0 {
		t.Fatalf("sent %d, ok %d, partial %d, missing %d, errors %d: want every request a partial success",
			st.Sent, st.OK, st.Partial, st.MissingShards, st.Errors)
	}
	if st.MergeSamples == 0 || st.MergeSamples > st.Sent || !(st.MergeP50us > 0) || st.MergeP50us > st.MergeP99us || st.MergeP99us > st.MergeMaxUs {
		t.Errorf("merge: %d samples of %d, p50 %v p99 %v max %v µs", st.MergeSamples, st.Sent, st.MergeP50us, st.MergeP99us, st.MergeMaxUs)
	}
	if s := st.String(); !strings.Contains(s, "merge p50") || !strings.Contains(s, "partial") {
		t.Errorf("String() = %q", s)
	}
	b, err := json.Marshal(st)
	if err != nil || !strings.Contains(string(b), `"merge_p99_us"`) || !strings.Contains(string(b), `"partial"`) {
		t.Errorf("JSON %s, %v", b, err)
	}
	if _, err := Load(context.Background(), LoadConfig{Shards: [][]string{{}}, Rates: []float64{1}}, nil); err == nil {
		t.Error("a shard with no address was taken")
	}
}
