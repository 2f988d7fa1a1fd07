package node

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"time"

	"github.com/meridian-gtm/meridian/probes"
	"github.com/meridian-gtm/meridian/zones"
	"github.com/prometheus/client_golang/prometheus"
)

// healthWindow is how long the health goroutine waits after the first
// kick before folding: verdicts that flip together (a region failing flips
// every target in it within a probe round) then make one publish, not one
// each. It is short against a probe interval, so it adds little to a
// failover.
const healthWindow = 2 * time.Millisecond

type healthMetrics struct {
	publishes    prometheus.Counter
	publishDelay prometheus.Histogram

	snapshots  *prometheus.CounterVec // by cause: change, widen
	applyTime  prometheus.Histogram
	widenTime  prometheus.Histogram
	widest     prometheus.Gauge
	loadShapes prometheus.Gauge
	geoBuild   prometheus.Gauge
}

func (n *Node) newHealthMetrics() {
	n.healthMetrics = healthMetrics{
		publishes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meridian_health_publishes_total",
			Help: "Snapshots published because member health changed.",
		}),
		publishDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "meridian_health_publish_delay_seconds",
			Help:    "Time from a verdict change to the snapshot with it being served, coalescing window included.",
			Buckets: []float64{.0005, .001, .002, .003, .005, .0075, .01, .025, .05, .1, .25, 1},
		}),
	}
	n.snapshots = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_snapshot_publishes_total",
		Help: "Snapshots published, by cause: change (config, health or overrides) or widen (widest-scope maps built in the background).",
	}, []string{"cause"})
	n.applyTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "meridian_snapshot_apply_seconds",
		Help:    "Time to apply a change to every pool and publish it.",
		Buckets: []float64{.0001, .0003, .001, .003, .01, .03, .1},
	})
	n.widenTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "meridian_scope_maps_build_seconds",
		Help:    "Time to build one batch of widest-scope maps after a change, in the background.",
		Buckets: []float64{.001, .003, .01, .03, .1, .3, 1, 3, 10, 30},
	})
	n.widest = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meridian_snapshot_widest_scopes",
		Help: "1 when every ECS scope served is the widest for the current answers; 0 while maps are being built (scopes are then correct but may be narrower).",
	})
	n.loadShapes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meridian_config_pool_shapes",
		Help: "Distinct pool shapes in the loaded config: each costs one widest-scope map over the GeoIP table.",
	})
	n.geoBuild = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meridian_geoip_build_timestamp_seconds",
		Help: "When the loaded GeoIP database was built (its build_epoch); 0 without a database. Alert when it grows old: GeoIP data decays.",
	})
	n.reg.MustRegister(n.publishes, n.publishDelay, n.snapshots, n.applyTime, n.widenTime, n.widest, n.loadShapes, n.geoBuild)
}

// setGeoBuild records the build time of b's GeoIP database.
func (n *Node) setGeoBuild(b *zones.Base) {
	if t := b.Geo().Info().BuildTime; !t.IsZero() {
		n.geoBuild.Set(float64(t.Unix()))
	} else {
		n.geoBuild.Set(0)
	}
}

// published observes every snapshot the store publishes.
func (n *Node) observePublish(p zones.PublishInfo) {
	if p.Widened {
		n.snapshots.WithLabelValues("widen").Inc()
		n.widenTime.Observe(p.Took.Seconds())
	} else {
		n.snapshots.WithLabelValues("change").Inc()
		n.applyTime.Observe(p.Took.Seconds())
	}
	if p.Snapshot.WidestScopes() {
		n.widest.Set(1)
	} else {
		n.widest.Set(0)
	}
}

// kickHealth tells the health goroutine to fold the verdicts again. It
// never blocks, so the prober never waits for a publish.
func (n *Node) kickHealth() {
	n.kickedAt.CompareAndSwap(0, time.Now().UnixNano())
	select {
	case n.healthKick <- struct{}{}:
	default: // one is pending; it will see this change too
	}
}

// runHealth folds verdicts into member health and publishes it, once per
// burst of kicks, until ctx is done.
func (n *Node) runHealth(ctx context.Context) {
	timer := time.NewTimer(0)
	<-timer.C
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.healthKick:
		}
		timer.Reset(healthWindow)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		// Kicks that arrived in the window are folded now.
		select {
		case <-n.healthKick:
		default:
		}
		n.healthChanged(n.kickedAt.Swap(0))
	}
}

// healthChanged recomputes member health from the prober's verdicts and
// publishes it when it differs from what is serving; it reports whether it
// published. kicked is when the first change it folds was signalled
// (UnixNano; 0 if unknown), for the publish delay metric. It never runs per
// query.
func (n *Node) healthChanged(kicked int64) bool {
	n.healthMu.Lock()
	defer n.healthMu.Unlock()
	cfg := n.store.Load().Inputs.Config
	n.reassign(cfg)
	h, overrides := n.foldInputs(cfg)
	old := n.published
	sameH := sameHealth(old, h)
	sameO := slices.EqualFunc(overrides, n.publishedOverrides, sameOverride)
	if sameH && sameO {
		n.notice() // membership or isolation may have changed
		return false
	}
	// Publish first: the log lines and events are for people, the answers
	// for everyone.
	n.store.SetHealthAndOverrides(h, overrides)
	if kicked != 0 {
		n.publishDelay.Observe(time.Since(time.Unix(0, kicked)).Seconds())
	}
	n.published = h
	n.publishes.Inc()
	changes := healthChanges(old, h)
	n.logHealthChanges(changes)
	n.publishHealthEvents(changes)
	if !sameO {
		n.logOverrideChanges(n.publishedOverrides, overrides)
		n.publishedOverrides = overrides
	}
	n.notice()
	return true
}

// logOverrideChanges logs each override that came into force or ended.
func (n *Node) logOverrideChanges(old, cur []zones.Override) {
	for _, o := range cur {
		if !slices.ContainsFunc(old, func(x zones.Override) bool { return sameOverride(x, o) }) {
			n.log.Warn("override in force", "action", o.Action.String(), "pool", o.Pool, "region", o.Region, "who", o.Who, "why", o.Why, "when", o.When)
		}
	}
	for _, o := range old {
		if !slices.ContainsFunc(cur, func(x zones.Override) bool { return sameOverride(x, o) }) {
			n.log.Warn("override ended", "action", o.Action.String(), "pool", o.Pool, "region", o.Region, "who", o.Who)
		}
	}
}

func sameOverride(a, b zones.Override) bool {
	return a.Action == b.Action && a.Pool == b.Pool && a.Region == b.Region && a.Who == b.Who && a.Why == b.Why &&
		a.When.Equal(b.When) && a.Expires.Equal(b.Expires)
}

// regionChange is one region's verdict flip, with the pools it moved.
type regionChange struct {
	region, from, to, reason string
	pools                    []string // sorted
}

// healthChanges lists what changed between two health views, one entry
// per region, state change and reason, however many pools share it: an
// endpoint that a hundred pools use going down is one change naming a
// hundred pools, not a hundred changes.
func healthChanges(old, h zones.HealthView) []regionChange {
	type key struct{ region, from, to, reason string }
	pools := map[key][]string{}
	for k, v := range h {
		if ov := old[k]; ov.State != v.State {
			c := key{k.Region, ov.State.String(), v.State.String(), v.Reason}
			pools[c] = append(pools[c], k.Pool)
		}
	}
	for k, ov := range old {
		if _, ok := h[k]; !ok && ov.State != zones.Up {
			c := key{k.Region, ov.State.String(), "up", "recovered"}
			pools[c] = append(pools[c], k.Pool)
		}
	}
	keys := slices.SortedFunc(maps.Keys(pools), func(a, b key) int {
		return cmp.Or(cmp.Compare(a.region, b.region), cmp.Compare(a.to, b.to), cmp.Compare(a.reason, b.reason))
	})
	out := make([]regionChange, 0, len(keys))
	for _, k := range keys {
		ps := pools[k]
		slices.Sort(ps)
		out = append(out, regionChange{k.region, k.from, k.to, k.reason, ps})
	}
	return out
}

// logHealthChanges logs each change, one line per region.
func (n *Node) logHealthChanges(changes []regionChange) {
	for _, c := range changes {
		n.log.Warn("member health changed", "region", c.region, "from", c.from, "to", c.to, "reason", c.reason, "pools", len(c.pools), "pool_names", poolList(c.pools))
	}
}

func sameHealth(a, b zones.HealthView) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// ProbeOnce probes every endpoint of zc once from this machine and folds
// the results into member health, for `meridian explain -probe`.
func ProbeOnce(ctx context.Context, zc *zones.Config) zones.HealthView {
	return zones.FoldHealth(zc, probes.Once(ctx, zc.Targets(), 0))
}
