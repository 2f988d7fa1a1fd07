package probes

import (
	"github.com/meridian-gtm/meridian/zones"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the prober's series. Every label comes from the config (the
// target ID) or from a fixed set (check kind, result, state), never from
// anything a remote end sends. They are labelled by target, not by pool
// or region: a target is probed once for every member that shares it, so
// there is one attempt and one flip to count, and the number of series
// grows with the distinct endpoints and checks, not with the pools that
// reuse them. A target's series go when it does (forget), so a reload that
// edits a check, and so renames its target, leaves no stale series.
type metrics struct {
	attempts *prometheus.CounterVec   // target, kind, result
	duration *prometheus.HistogramVec // kind
	up       *prometheus.GaugeVec     // target
	flips    *prometheus.CounterVec   // target, to
}

// Values of the result label.
const (
	resultSuccess  = "success"
	resultFailure  = "failure"
	resultDegraded = "degraded"
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_probe_attempts_total",
			Help: "Probe attempts, by target, check kind and result (success, failure, degraded: passed over the latency budget).",
		}, []string{"target", "kind", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "meridian_probe_duration_seconds",
			Help:    "Time one probe attempt took, successful or not, by check kind.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"kind"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meridian_probe_target_up",
			Help: "Whether a probe target (an endpoint and check, shared by every pool member that uses both) is up (1: up or degraded, also before its first verdict) or down (0).",
		}, []string{"target"}),
		flips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_probe_verdict_flips_total",
			Help: "Changes of a target's verdict, by target and the state it changed to.",
		}, []string{"target", "to"}),
	}
	if reg != nil {
		reg.MustRegister(m.attempts, m.duration, m.up, m.flips)
	}
	return m
}

func (m *metrics) setUp(t *zones.Target, s zones.State) {
	v := 1.0
	if s == zones.Down {
		v = 0
	}
	m.up.WithLabelValues(t.ID).Set(v)
}

// forget deletes every series of a removed target.
func (m *metrics) forget(t *zones.Target) {
	m.up.DeleteLabelValues(t.ID)
	m.attempts.DeletePartialMatch(prometheus.Labels{"target": t.ID})
	m.flips.DeletePartialMatch(prometheus.Labels{"target": t.ID})
}
