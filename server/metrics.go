package server

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/reelrank/reelrank/wire"
)

// The metrics, all in the server's own registry (see Registry):
//
//	reelrank_requests_total{kind,code}                 counter: responses by request kind and code ("ok" or the error);
//	                                                   frames with no readable kind count as kind "invalid", and
//	                                                   refusals of unauthenticated connections as kind "auth"
//	reelrank_request_duration_seconds{kind}            histogram: from frame read to response queued
//	reelrank_recommend_stage_duration_seconds{stage}   histogram: features, tower, ann, rank, postrank of Recommend
//	reelrank_errors_total{code}                        counter: error responses by code
//	reelrank_events_total{result}                      counter: events accepted and rejected
//	reelrank_in_flight                                 gauge: admitted requests being served
//	reelrank_max_in_flight                             gauge: the admission limit
//	reelrank_queued                                    gauge: requests waiting for a slot
//	reelrank_max_queue                                 gauge: the queue's bound
//	reelrank_shed_total{reason}                        counter: requests answered overloaded: queue_full,
//	                                                   connection_queue_full, predicted_wait
//	reelrank_service_time_estimate_seconds{kind}       gauge: admission's moving estimate of the service time
//	reelrank_reader_pauses_total                       counter: readers stopped over MaxUnsent bytes unsent
//	reelrank_connections                               gauge: open connections
//	reelrank_connections_accepted_total                counter
//	reelrank_connections_rejected_total                counter: turned away at MaxConns or MaxConnsPerAddr
//	reelrank_slow_clients_total                        counter: connections cut off at WriteTimeout
//	reelrank_index_size                                gauge: reels in the index (Handler.Info)
//	reelrank_model_info{version}                       gauge: 1, labelled with the serving model version
//	reelrank_arm_share{arm,role,version}               gauge: the share of users an arm serves (EngineHandler)
//	reelrank_arm_requests_total{arm,version}           counter: Recommend requests an arm answered
//	reelrank_arm_errors_total{arm,version,kind}        counter: kind error (failed) or degenerate (NaN or constant scores)
//	reelrank_arm_p99_seconds{arm,version}              gauge: p99 over the arm's last 2,048 requests
//	reelrank_arm_impressions_total{arm,version}        counter: impressions the events attribute to the arm
//	reelrank_arm_rate{arm,version,metric,bound}        gauge: watch_through, likes, comments, shares, follows,
//	                                                   watch_seconds per impression; bound value, lo, hi (95%)
//	reelrank_arm_distinct{arm,version,what}            gauge: distinct reels and authors served (estimates)
//	reelrank_drift_psi{version,series}                 gauge: PSI of each input feature and head of the control model
//	reelrank_drift_series{version,level}               gauge: how many series are ok, shift, drift
//
// and Go's runtime and process collectors (go_*, process_*).

// Kind labels. Frames whose kind could not be read count as "invalid".
const (
	kRecommend = iota
	kScore
	kSearch
	kUpsert
	kDelete
	kEvent
	kStats
	kHealth
	kAuth
	kAdmin
	kInvalid
	numKindLabels
)

var kindLabels = [numKindLabels]string{"recommend", "score", "search", "upsert", "delete", "event", "stats",
	"health", "auth", "admin", "invalid"}

func kindIndex(k wire.Kind) int {
	switch k {
	case wire.KindRecommendRequest:
		return kRecommend
	case wire.KindScoreRequest:
		return kScore
	case wire.KindSearchRequest:
		return kSearch
	case wire.KindUpsertRequest:
		return kUpsert
	case wire.KindDeleteRequest:
		return kDelete
	case wire.KindEventRequest:
		return kEvent
	case wire.KindStatsRequest:
		return kStats
	case wire.KindHealthRequest:
		return kHealth
	case wire.KindAuthRequest:
		return kAuth
	case wire.KindAdminRequest:
		return kAdmin
	}
	return kInvalid
}

// Code labels: "ok", the protocol's codes, and "unknown" for code 0 or a
// code this package does not know.
const (
	cOK            = 0
	cUnknown       = int(wire.WrongShard) + 1
	numCodeLabels  = cUnknown + 1
	numStageLabels = 5
)

var codeLabels = [numCodeLabels]string{"ok", "bad_request", "not_found", "deadline_exceeded", "overloaded",
	"unavailable", "unauthenticated", "internal", "wrong_shard", "unknown"}

func codeIndex(c wire.ErrorCode) int {
	if c == wire.UnknownCode || c > wire.WrongShard {
		return cUnknown
	}
	return int(c)
}

var stageLabels = [numStageLabels]string{"features", "tower", "ann", "rank", "postrank"}

type metrics struct {
	reg *prometheus.Registry

	// Children resolved once, so that the hot path does no label lookups.
	requests      [numKindLabels][numCodeLabels]prometheus.Counter
	latency       [numKindLabels]prometheus.Observer
	stages        [numStageLabels]prometheus.Observer
	errors        [numCodeLabels]prometheus.Counter
	eventsOK      prometheus.Counter
	eventsBad     prometheus.Counter
	connsAccepted prometheus.Counter
	connsRejected prometheus.Counter
	slowClients   prometheus.Counter
	shed          [numShedLabels]prometheus.Counter
	readerPauses  prometheus.Counter
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reelrank_requests_total",
		Help: "Responses by request kind and code (ok or the error's)."}, []string{"kind", "code"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "reelrank_request_duration_seconds",
		Help:    "Time from a request's frame read to its response queued for writing, by request kind.",
		Buckets: prometheus.ExponentialBuckets(25e-6, 2, 18)}, []string{"kind"})
	stages := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "reelrank_recommend_stage_duration_seconds",
		Help:    "Time a successful Recommend spent in each stage, as its response reports.",
		Buckets: prometheus.ExponentialBuckets(10e-6, 2, 16)}, []string{"stage"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reelrank_errors_total",
		Help: "Error responses by code."}, []string{"code"})
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reelrank_events_total",
		Help: "Events of Event requests, accepted or rejected by the handler."}, []string{"result"})
	m.connsAccepted = prometheus.NewCounter(prometheus.CounterOpts{Name: "reelrank_connections_accepted_total",
		Help: "Connections accepted."})
	m.connsRejected = prometheus.NewCounter(prometheus.CounterOpts{Name: "reelrank_connections_rejected_total",
		Help: "Connections turned away at the connection limit."})
	m.slowClients = prometheus.NewCounter(prometheus.CounterOpts{Name: "reelrank_slow_clients_total",
		Help: "Connections cut off because a write of responses took longer than the write timeout."})
	m.readerPauses = prometheus.NewCounter(prometheus.CounterOpts{Name: "reelrank_reader_pauses_total",
		Help: "Times a connection's reader stopped because its unsent responses passed the bound."})
	shed := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reelrank_shed_total",
		Help: "Requests answered overloaded by admission, by reason."}, []string{"reason"})
	for i := range numShedLabels {
		m.shed[i] = shed.WithLabelValues(shedLabels[i])
	}
	for k := range numKindLabels {
		for c := range numCodeLabels {
			m.requests[k][c] = requests.WithLabelValues(kindLabels[k], codeLabels[c])
		}
		m.latency[k] = latency.WithLabelValues(kindLabels[k])
	}
	for i := range numStageLabels {
		m.stages[i] = stages.WithLabelValues(stageLabels[i])
	}
	for c := 1; c < numCodeLabels; c++ {
		m.errors[c] = errs.WithLabelValues(codeLabels[c])
	}
	m.eventsOK, m.eventsBad = events.WithLabelValues("accepted"), events.WithLabelValues("rejected")

	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(requests, latency, stages, errs, events, m.connsAccepted, m.connsRejected, m.slowClients,
		m.readerPauses, shed,
		gauge("reelrank_in_flight", "Admitted requests being served.",
			func() float64 { return float64(s.adm.inFlight.Load()) }),
		gauge("reelrank_max_in_flight", "The admission limit: requests beyond it wait in the queue or are answered overloaded.",
			func() float64 { return float64(s.cfg.MaxInFlight) }),
		gauge("reelrank_queued", "Requests waiting for an admission slot.",
			func() float64 { return float64(s.adm.inQueue.Load()) }),
		gauge("reelrank_max_queue", "The bound of the admission queue.",
			func() float64 { return float64(max(s.cfg.MaxQueue, 0)) }),
		estimateCollector{s.adm},
		gauge("reelrank_connections", "Open connections.",
			func() float64 { return float64(s.nconns.Load()) }),
		infoCollector{s},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if ar, ok := s.h.(armsReporter); ok {
		m.reg.MustRegister(armsCollector{ar})
	}
	return m
}

// observe counts one response of a request of kind k.
func (m *metrics) observe(k wire.Kind, code wire.ErrorCode, d time.Duration, body wire.Message) {
	ki := kindIndex(k)
	ci := cOK
	if _, isErr := body.(*wire.Error); isErr {
		ci = codeIndex(code)
		m.errors[ci].Inc()
	}
	m.requests[ki][ci].Inc()
	m.latency[ki].Observe(d.Seconds())
	switch b := body.(type) {
	case *wire.RecommendResponse:
		t := &b.Timings
		for i, v := range [numStageLabels]time.Duration{t.Features, t.Tower, t.ANN, t.Rank, t.Postrank} {
			m.stages[i].Observe(v.Seconds())
		}
	case *wire.EventResponse:
		m.eventsOK.Add(float64(b.Accepted))
		m.eventsBad.Add(float64(b.Rejected))
	}
}

// estimateCollector reports admission's service-time estimates.
type estimateCollector struct{ q *scheduler }

var estimateDesc = prometheus.NewDesc("reelrank_service_time_estimate_seconds",
	"Admission's moving estimate of the time a request of the kind spends in the handler.", []string{"kind"}, nil)

func (estimateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- estimateDesc }

func (ec estimateCollector) Collect(ch chan<- prometheus.Metric) {
	for _, k := range [...]int{kRecommend, kScore, kSearch, kUpsert, kDelete, kEvent} {
		ch <- prometheus.MustNewConstMetric(estimateDesc, prometheus.GaugeValue, ec.q.estimate(k).Seconds(), kindLabels[k])
	}
}

// infoCollector reports the handler's index size and model version on
// each scrape.
type infoCollector struct{ s *Server }

var (
	indexSizeDesc = prometheus.NewDesc("reelrank_index_size", "Reels in the index.", nil, nil)
	modelInfoDesc = prometheus.NewDesc("reelrank_model_info", "The model serving now: 1, labelled with its version.",
		[]string{"version"}, nil)
)

func (infoCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- indexSizeDesc
	ch <- modelInfoDesc
}

func (ic infoCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(ic.s.ctx, time.Second)
	defer cancel()
	info := ic.s.info(ctx)
	ch <- prometheus.MustNewConstMetric(indexSizeDesc, prometheus.GaugeValue, float64(info.IndexSize))
	// A version that is not valid UTF-8 cannot be a label value; the gauge
	// is left out rather than the scrape failing.
	if m, err := prometheus.NewConstMetric(modelInfoDesc, prometheus.GaugeValue, 1, info.ModelVersion); err == nil {
		ch <- m
	}
}

// Metrics returns the HTTP handler of the server's metrics in the
// Prometheus text format, as ServeMetrics serves at /metrics.
func (s *Server) Metrics() http.Handler {
	return promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{Registry: s.m.reg})
}
