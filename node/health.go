package node

import (
	"context"

	"github.com/meridian-gtm/meridian/probes"
	"github.com/meridian-gtm/meridian/zones"
)

// healthChanged recomputes member health from the prober's verdicts and
// publishes it when it differs from what is serving. It runs on the
// prober's goroutine (OnChange), never per query.
func (n *Node) healthChanged() {
	n.healthMu.Lock()
	defer n.healthMu.Unlock()
	snap := n.store.Load()
	h := zones.FoldHealth(snap.Inputs.Config, n.prober.Verdicts())
	old := snap.Inputs.Health
	if sameHealth(old, h) {
		return
	}
	for k, v := range h {
		if ov := old[k]; ov.State != v.State {
			n.log.Warn("member health changed", "pool", k.Pool, "region", k.Region, "from", ov.State.String(), "to", v.State.String(), "reason", v.Reason)
		}
	}
	for k, ov := range old {
		if _, ok := h[k]; !ok && ov.State != zones.Up {
			n.log.Warn("member health changed", "pool", k.Pool, "region", k.Region, "from", ov.State.String(), "to", "up", "reason", "recovered")
		}
	}
	if err := n.store.SetHealth(h); err != nil {
		n.log.Error("publish health", "err", err)
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
