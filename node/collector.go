package node

import (
	"runtime"

	"github.com/meridian-gtm/meridian/zones"
	"github.com/prometheus/client_golang/prometheus"
)

// snapshotCollector exports what the serving snapshot knows, read at
// scrape time: answers per zone and per pool member (counted on the
// answer path with one atomic add each), each member's quorum verdict,
// and the overrides in force. Labels are config names only, a bounded
// set: never a query name or a client address.
type snapshotCollector struct {
	store *zones.Store
}

var (
	zoneQueriesDesc = prometheus.NewDesc("meridian_dns_zone_queries_total",
		"Queries answered from each zone (refused queries, for no zone of ours, are in meridian_dns_responses_total).", []string{"zone"}, nil)
	answersDesc = prometheus.NewDesc("meridian_dns_answers_total",
		"Answers steered by each pool, by the region answering.", []string{"pool", "region"}, nil)
	verdictDesc = prometheus.NewDesc("meridian_member_verdict",
		"1 for each pool member's current verdict (the quorum's in a cluster): up, degraded or down.", []string{"pool", "region", "verdict"}, nil)
	overridesDesc = prometheus.NewDesc("meridian_overrides_active",
		"Overrides in force on this node, by action (pin, drain).", []string{"action"}, nil)
)

func (c snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- zoneQueriesDesc
	ch <- answersDesc
	ch <- verdictDesc
	ch <- overridesDesc
}

func (c snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.store.Load()
	snap.AnswerCounts(func(zone string, n uint64) {
		ch <- prometheus.MustNewConstMetric(zoneQueriesDesc, prometheus.CounterValue, float64(n), zone)
	}, func(pool, region string, n uint64) {
		ch <- prometheus.MustNewConstMetric(answersDesc, prometheus.CounterValue, float64(n), pool, region)
	})
	h := snap.Inputs.Health
	for _, z := range snap.Inputs.Config.Zones {
		for _, p := range z.Pools {
			for _, m := range p.Members {
				state := h[zones.MemberKey{Pool: p.Owner, Region: m.Region}].State
				for _, s := range []zones.State{zones.Up, zones.Degraded, zones.Down} {
					v := 0.0
					if s == state {
						v = 1
					}
					ch <- prometheus.MustNewConstMetric(verdictDesc, prometheus.GaugeValue, v, p.Owner, m.Region, s.String())
				}
			}
		}
	}
	counts := map[zones.OverrideAction]int{zones.Pin: 0, zones.Drain: 0}
	for _, o := range snap.Inputs.Overrides {
		counts[o.Action]++
	}
	for a, n := range counts {
		ch <- prometheus.MustNewConstMetric(overridesDesc, prometheus.GaugeValue, float64(n), a.String())
	}
}

// buildInfo is the constant build information metric.
func buildInfo(version string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "meridian_build_info",
		Help:        "Always 1; the labels name the build.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}
