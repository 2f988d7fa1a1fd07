package gossip

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/zones"
)

// TestFreshness: an unchanged verdict stays fresh through heartbeats alone,
// with no verdict traffic, for as long as its observer keeps probing; an
// observer whose prober stops loses its vote after MaxAge.
func TestFreshness(t *testing.T) {
	t.Parallel()
	const maxAge = time.Second
	nodes := cluster(t, []string{"127.0.0.201", "127.0.0.202"}, func(c *Config) { c.MaxAge = maxAge })
	const target = "dns://192.0.2.53:53#q"
	start := time.Now()
	for _, n := range nodes {
		n.SetLocalVerdicts(map[string]zones.TargetVerdict{target: verdict(zones.Down, "SERVFAIL")})
	}
	waitFor(t, 5*time.Second, "both nodes fold two observers", func() bool {
		for _, n := range nodes {
			if !strings.Contains(n.Verdicts()[target].Reason, "down by 2 of 2") {
				return false
			}
		}
		return true
	})
	converged(t, nodes, 5*time.Second)

	// n1's prober keeps probing (Checked advances, the verdict does not);
	// n2's has stopped.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				v := verdict(zones.Down, "SERVFAIL")
				v.Since = start
				nodes[0].SetLocalVerdicts(map[string]zones.TargetVerdict{target: v})
			}
		}
	}()
	ownVersion := func() uint64 {
		nodes[0].mu.Lock()
		defer nodes[0].mu.Unlock()
		return nodes[0].tab.verdicts["n1"][target].Version
	}
	version := ownVersion()
	beats := counter(t, nodes[0].m.msgSent.WithLabelValues("heartbeat"))
	digest := nodes[0].Digest()

	waitFor(t, 10*time.Second, "n2's verdict stops voting on n1 (lagging, then stale)", func() bool {
		return strings.Contains(nodes[0].Verdicts()[target].Reason, "down by 1 of 1")
	})
	if time.Since(start) < maxAge {
		t.Errorf("n2's verdict stopped voting after %s, before MaxAge", time.Since(start))
	}
	// Well past MaxAge, n1's unchanged verdict still votes on n2, vouched
	// by heartbeats.
	waitFor(t, 10*time.Second, "n1's verdict is vouched for past MaxAge", func() bool {
		v, ok := nodes[1].Verdicts()[target]
		return ok && time.Since(start) > 2*maxAge && time.Since(v.Checked) < maxAge && v.State == zones.Down
	})
	cancel()
	<-probed
	if ownVersion() != version {
		t.Error("n1 wrote a new version of a verdict that did not change: probes would cost traffic")
	}
	if got := counter(t, nodes[0].m.msgSent.WithLabelValues("heartbeat")); got < beats+3 {
		t.Errorf("n1 sent %v heartbeats over %s", got-beats, time.Since(start))
	}
	if nodes[0].Digest() == digest {
		t.Error("n2's entry did not change when it started lagging")
	}
	nodes[0].mu.Lock()
	lagging := nodes[0].tab.verdicts["n2"][target].Lagging
	nodes[0].mu.Unlock()
	if !lagging {
		t.Error("n2's entry is not marked lagging on n1")
	}
}
