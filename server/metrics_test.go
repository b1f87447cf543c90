package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reelrank/reelrank/wire"
)

// scrape returns the server's metrics in the Prometheus text format.
func scrape(t testing.TB, s *Server) string {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Metrics().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: status %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// metricValue returns the value of the series written exactly as in the
// text format (labels in alphabetical order), or -1 when it is absent.
func metricValue(text, series string) float64 {
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return -1
		}
		return v
	}
	return -1
}

// counterValue scrapes one unlabelled series.
func counterValue(t testing.TB, s *Server, name string, _ map[string]string) float64 {
	return metricValue(scrape(t, s), name)
}

func TestMetricsScrape(t *testing.T) {
	h := &fakeHandler{}
	s, addr := startServer(t, Config{MaxInFlight: 7}, h)
	c := dial(t, addr)
	for id := range uint64(3) {
		c.call(id+1, &wire.RecommendRequest{User: 1, N: 2})
	}
	c.call(10, &wire.DeleteRequest{ID: 404})
	c.call(11, &wire.EventRequest{Events: []wire.Event{{Type: wire.EventLike}, {Type: wire.EventInvalid}}})
	c.write(frameOf([]byte("not a flatbuffer")))
	c.expectError(0, wire.BadRequest)
	c.call(12, &wire.StatsRequest{})

	text := scrape(t, s)
	want := map[string]float64{
		`reelrank_requests_total{code="ok",kind="recommend"}`:                        3,
		`reelrank_requests_total{code="not_found",kind="delete"}`:                    1,
		`reelrank_requests_total{code="bad_request",kind="invalid"}`:                 1,
		`reelrank_requests_total{code="ok",kind="stats"}`:                            1,
		`reelrank_requests_total{code="overloaded",kind="search"}`:                   0,
		`reelrank_errors_total{code="not_found"}`:                                    1,
		`reelrank_errors_total{code="bad_request"}`:                                  1,
		`reelrank_request_duration_seconds_count{kind="recommend"}`:                  3,
		`reelrank_request_duration_seconds_bucket{kind="recommend",le="+Inf"}`:       3,
		`reelrank_recommend_stage_duration_seconds_count{stage="ann"}`:               3,
		`reelrank_recommend_stage_duration_seconds_sum{stage="rank"}`:                3 * 400e-6,
		`reelrank_recommend_stage_duration_seconds_bucket{stage="ann",le="0.00064"}`: 3,
		`reelrank_recommend_stage_duration_seconds_bucket{stage="ann",le="0.00016"}`: 0,
		`reelrank_events_total{result="accepted"}`:                                   1,
		`reelrank_events_total{result="rejected"}`:                                   1,
		`reelrank_in_flight`:                  0,
		`reelrank_max_in_flight`:              7,
		`reelrank_connections`:                1,
		`reelrank_connections_accepted_total`: 1,
		`reelrank_index_size`:                 1000,
		`reelrank_model_info{version="m1"}`:   1,
	}
	for series, v := range want {
		got := metricValue(text, series)
		if got < v-1e-9 || got > v+1e-9 {
			t.Errorf("%s = %v, want %v", series, got, v)
		}
	}
	for _, typ := range []string{
		"# TYPE reelrank_request_duration_seconds histogram",
		"# TYPE reelrank_recommend_stage_duration_seconds histogram",
		"# TYPE go_goroutines gauge",
		"# TYPE process_resident_memory_bytes gauge",
	} {
		if !strings.Contains(text, typ) {
			t.Errorf("the scrape lacks %q", typ)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "# TYPE reelrank_") && strings.HasSuffix(line, " summary") {
			t.Errorf("%s: latencies must be histograms, which replicas can aggregate", line)
		}
	}
}

// ListenAndServe serves the protocol and /metrics on their own ports, and
// Shutdown stops both.
func TestListenAndServe(t *testing.T) {
	s, err := New(Config{Addr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", Logger: quietLogger()}, &fakeHandler{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe() }()
	deadline := time.Now().Add(5 * time.Second)
	for s.Addr() == nil || s.MetricsAddr() == nil {
		if time.Now().After(deadline) {
			t.Fatal("not listening")
		}
		time.Sleep(time.Millisecond)
	}
	c := dial(t, s.Addr().String())
	c.healthy(1)
	resp, err := http.Get("http://" + s.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := metricValue(string(body), `reelrank_requests_total{code="ok",kind="health"}`); got != 1 {
		t.Errorf("over HTTP, health requests = %v, want 1", got)
	}
	c.nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Errorf("ListenAndServe returned %v", err)
	}
	if _, err := net.Dial("tcp", s.MetricsAddr().String()); err == nil {
		t.Error("the metrics port still accepts after Shutdown")
	}
}
