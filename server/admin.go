package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reelrank/reelrank/engine"
	"github.com/reelrank/reelrank/wire"
)

// EngineOptions extend EngineHandler.
type EngineOptions struct {
	// Load opens the model folder dir (a path on the server's machine) as
	// a Model, for AdminRequests "load"; nil refuses them.
	Load func(ctx context.Context, dir string) (*engine.Model, error)
}

// EngineHandlerWith is EngineHandler taking AdminRequests: it loads
// models with opt.Load and changes the engine's arms.
func EngineHandlerWith(e *engine.Engine, opt EngineOptions) Handler {
	return &engineHandler{e: e, load: opt.Load}
}

// adminErr maps an admin operation's error: a refusal is the request's
// fault (BadRequest), with its reason.
func adminErr(err error) error {
	if errors.Is(err, engine.ErrUnavailable) {
		return &wire.Error{Code: wire.Unavailable, Message: err.Error()}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &wire.Error{Code: wire.BadRequest, Message: err.Error()}
}

// Admin serves the AdminRequests of package wire.
func (h *engineHandler) Admin(ctx context.Context, req *wire.AdminRequest) (*wire.AdminResponse, error) {
	e := h.e
	var err error
	switch req.Op {
	case wire.AdminLoad:
		err = h.adminLoad(ctx, req)
	case wire.AdminPromote:
		err = e.Promote(req.Reason)
	case wire.AdminRollback:
		err = e.Rollback(req.Reason)
	case wire.AdminShares:
		err = e.SetShares(req.Share, req.Holdout)
	case wire.AdminStatus, wire.AdminDrift:
	default:
		err = fmt.Errorf("server: admin: unknown op %q", req.Op)
	}
	if err != nil {
		return nil, adminErr(err)
	}
	doc, err := json.Marshal(e.ArmsStatus(req.Op == wire.AdminDrift))
	if err != nil {
		return nil, fmt.Errorf("server: admin: %w", err)
	}
	if len(doc) > wire.MaxAdminJSON {
		return nil, &wire.Error{Code: wire.Internal, Message: fmt.Sprintf("server: admin: a status of %d bytes, over the protocol's %d", len(doc), wire.MaxAdminJSON)}
	}
	return &wire.AdminResponse{JSON: doc}, nil
}

func (h *engineHandler) adminLoad(ctx context.Context, req *wire.AdminRequest) error {
	if h.load == nil {
		return errors.New("server: admin: this server cannot load models")
	}
	if req.Bundle == "" {
		return errors.New("server: admin: load: no bundle folder given")
	}
	var settings engine.ArmSettings
	if req.Weights != "" {
		if err := json.Unmarshal([]byte(req.Weights), &settings.Weights); err != nil {
			return fmt.Errorf("server: admin: load: weights %q: want a JSON object of head weights: %w", req.Weights, err)
		}
	}
	m, err := h.load(ctx, req.Bundle)
	if err != nil {
		return fmt.Errorf("server: admin: load %s: %w", req.Bundle, err)
	}
	share := req.Share
	if share < 0 {
		share = 0
	}
	return h.e.LoadCanary(m, engine.LoadOptions{Share: share, Settings: settings, NoProbe: req.Force})
}

// ArmsStatus returns the engine's arms, for the metrics.
func (h *engineHandler) ArmsStatus() engine.Status { return h.e.ArmsStatus(true) }

// armsReporter is a Handler whose arms the metrics report.
type armsReporter interface{ ArmsStatus() engine.Status }

// armsCollector reports the arms' metrics and the drift of the control
// model on each scrape.
type armsCollector struct{ h armsReporter }

var (
	armShareDesc = prometheus.NewDesc("reelrank_arm_share", "The share of users an arm serves.", []string{"arm", "role", "version"}, nil)
	armReqDesc   = prometheus.NewDesc("reelrank_arm_requests_total", "Recommend requests an arm answered.", []string{"arm", "version"}, nil)
	armErrDesc   = prometheus.NewDesc("reelrank_arm_errors_total",
		"Recommend requests of an arm that failed (kind error) or scored NaN or the same for every candidate (kind degenerate).",
		[]string{"arm", "version", "kind"}, nil)
	armP99Desc = prometheus.NewDesc("reelrank_arm_p99_seconds", "An arm's p99 Recommend latency over its last 2,048 requests.",
		[]string{"arm", "version"}, nil)
	armImpDesc = prometheus.NewDesc("reelrank_arm_impressions_total", "Impressions attributed to an arm by the events that came back.",
		[]string{"arm", "version"}, nil)
	armRateDesc = prometheus.NewDesc("reelrank_arm_rate",
		"An arm's rate per impression (watch_through, likes, comments, shares, follows, watch_seconds) with its 95% interval (bound value, lo, hi).",
		[]string{"arm", "version", "metric", "bound"}, nil)
	armDistinctDesc = prometheus.NewDesc("reelrank_arm_distinct", "Distinct reels and authors an arm served (HyperLogLog estimates).",
		[]string{"arm", "version", "what"}, nil)
	driftPSIDesc = prometheus.NewDesc("reelrank_drift_psi",
		"Population stability index of an input feature or head of the control model, over the sliding window against its training reference.",
		[]string{"version", "series"}, nil)
	driftLevelDesc = prometheus.NewDesc("reelrank_drift_series", "Series of the control model at each drift level (ok, shift, drift).",
		[]string{"version", "level"}, nil)
)

func (armsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{armShareDesc, armReqDesc, armErrDesc, armP99Desc, armImpDesc, armRateDesc, armDistinctDesc,
		driftPSIDesc, driftLevelDesc} {
		ch <- d
	}
}

func (ac armsCollector) Collect(ch chan<- prometheus.Metric) {
	st := ac.h.ArmsStatus()
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	c := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	for _, a := range st.Arms {
		m := &a.Metrics
		g(armShareDesc, a.Share, a.Name, a.Role, a.Version)
		c(armReqDesc, float64(m.Requests), a.Name, a.Version)
		c(armErrDesc, float64(m.Errors), a.Name, a.Version, "error")
		c(armErrDesc, float64(m.Degenerate), a.Name, a.Version, "degenerate")
		g(armP99Desc, m.P99ms/1000, a.Name, a.Version)
		c(armImpDesc, float64(m.Impressions), a.Name, a.Version)
		for _, r := range []struct {
			name string
			r    engine.Rate
		}{{"watch_through", m.WatchThrough}, {"likes", m.Likes}, {"comments", m.Comments}, {"shares", m.Shares},
			{"follows", m.Follows}, {"watch_seconds", m.WatchSeconds}} {
			g(armRateDesc, r.r.Value, a.Name, a.Version, r.name, "value")
			g(armRateDesc, r.r.Lo, a.Name, a.Version, r.name, "lo")
			g(armRateDesc, r.r.Hi, a.Name, a.Version, r.name, "hi")
		}
		g(armDistinctDesc, float64(m.DistinctReels), a.Name, a.Version, "reels")
		g(armDistinctDesc, float64(m.DistinctAuthors), a.Name, a.Version, "authors")
	}
	if d := st.Drift; d != nil {
		ok := 0
		for _, s := range d.Series {
			if s.Level != "" {
				g(driftPSIDesc, s.PSI, d.Version, s.Name)
				if s.Level == "ok" {
					ok++
				}
			}
		}
		g(driftLevelDesc, float64(ok), d.Version, "ok")
		g(driftLevelDesc, float64(d.Shifted), d.Version, "shift")
		g(driftLevelDesc, float64(d.Drifted), d.Version, "drift")
	}
}
