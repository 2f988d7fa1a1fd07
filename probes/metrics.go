package probes

import (
	"github.com/meridian-gtm/meridian/zones"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the prober's series. Every label comes from the config
// (pool owner, region, target ID) or from a fixed set (check kind, result,
// state), never from anything a remote end sends.
type metrics struct {
	attempts *prometheus.CounterVec   // pool, region, kind, result
	duration *prometheus.HistogramVec // kind
	up       *prometheus.GaugeVec     // pool, region, target
	flips    *prometheus.CounterVec   // pool, region, to
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
			Help: "Probe attempts, by pool, region, check kind and result (success, failure, degraded: passed over the latency budget).",
		}, []string{"pool", "region", "kind", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "meridian_probe_duration_seconds",
			Help:    "Time one probe attempt took, successful or not, by check kind.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"kind"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meridian_probe_target_up",
			Help: "Whether a probe target is up (1: up or degraded, also before its first verdict) or down (0).",
		}, []string{"pool", "region", "target"}),
		flips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_probe_verdict_flips_total",
			Help: "Changes of a target's verdict, by pool, region and the state it changed to.",
		}, []string{"pool", "region", "to"}),
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
	m.up.WithLabelValues(t.Member.Pool, t.Member.Region, t.ID).Set(v)
}

func (m *metrics) forget(t *zones.Target) {
	m.up.DeleteLabelValues(t.Member.Pool, t.Member.Region, t.ID)
}
