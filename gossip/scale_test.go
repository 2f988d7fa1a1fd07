package gossip

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/meridian-gtm/meridian/zones"
)

// targets names n targets of one region.
func targets(region string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("http://10.%d.0.%d:8080/healthz#%s%04d", len(region), i, region, i)
	}
	return out
}

// TestFiveNodesRegionFailure: five nodes observe 100 targets in five
// regions. Every node sees one region's 20 targets fail: every node moves
// them to down. One node alone sees another region's targets fail: that
// changes nothing anywhere (and it does not distrust itself: it still
// sees the rest up).
func TestFiveNodesRegionFailure(t *testing.T) {
	t.Parallel()
	nodes := cluster(t, []string{"127.0.0.211", "127.0.0.212", "127.0.0.213", "127.0.0.214", "127.0.0.215"}, nil)
	regions := map[string][]string{}
	for _, r := range []string{"us", "eu", "ap", "sa", "af"} {
		regions[r] = targets(r, 20)
	}
	report := func(n *node, down func(region string) bool) {
		v := map[string]zones.TargetVerdict{}
		for r, ts := range regions {
			for _, id := range ts {
				if down(r) {
					v[id] = verdict(zones.Down, "3 consecutive failures, last: connect: connection refused")
				} else {
					v[id] = verdict(zones.Up, "2 consecutive successes")
				}
			}
		}
		n.SetLocalVerdicts(v)
	}
	for _, n := range nodes {
		report(n, func(string) bool { return false })
	}
	converged(t, nodes, 10*time.Second)

	failed := time.Now()
	for i, n := range nodes {
		report(n, func(r string) bool { return r == "eu" || (i == 0 && r == "ap") })
	}
	waitFor(t, 10*time.Second, "every node has eu down and everything else up", func() bool {
		for _, n := range nodes {
			v := n.Verdicts()
			for r, ts := range regions {
				for _, id := range ts {
					if (v[id].State == zones.Down) != (r == "eu") {
						return false
					}
				}
			}
		}
		return true
	})
	t.Logf("a region of 20 targets failing for 5 nodes: every node down in %s", time.Since(failed).Round(time.Millisecond))
	converged(t, nodes, 10*time.Second)
	for _, n := range nodes {
		if n.Status().SelfDistrust {
			t.Errorf("%s distrusts itself", n.Name())
		}
	}
}

// TestTrafficFigure measures gossip bytes per second per node for 5 nodes
// and 100 targets with memberlist's real LAN timings, unchanged verdicts
// (heartbeats and push/pull only). It takes a minute, so it runs only with
// GOSSIP_TRAFFIC_SECONDS set (e.g. 60).
func TestTrafficFigure(t *testing.T) {
	secs, _ := strconv.Atoi(os.Getenv("GOSSIP_TRAFFIC_SECONDS"))
	if secs <= 0 {
		t.Skip("set GOSSIP_TRAFFIC_SECONDS to measure")
	}
	nodes := cluster(t, []string{"127.0.0.221", "127.0.0.222", "127.0.0.223", "127.0.0.224", "127.0.0.225"}, func(c *Config) {
		c.tune = nil
		c.MaxAge = 30 * time.Second
	})
	all := targets("all", 100)
	for _, n := range nodes {
		v := map[string]zones.TargetVerdict{}
		for _, id := range all {
			v[id] = verdict(zones.Up, "2 consecutive successes")
		}
		n.SetLocalVerdicts(v)
	}
	converged(t, nodes, 30*time.Second)
	bytes := func() (net, payload float64) {
		for _, n := range nodes {
			m := n.m
			net += counter(t, m.netSent.WithLabelValues("udp")) + counter(t, m.netSent.WithLabelValues("tcp"))
			for _, ty := range []string{"verdict", "override", "heartbeat", "state", "leave"} {
				payload += counter(t, m.payloadSent.WithLabelValues(ty))
			}
		}
		return net, payload
	}
	// GOSSIP_TRAFFIC_RUNS windows of GOSSIP_TRAFFIC_SECONDS each (default
	// one), for a median and max.
	runs, _ := strconv.Atoi(os.Getenv("GOSSIP_TRAFFIC_RUNS"))
	runs = max(runs, 1)
	var wire, payload []float64
	for range runs {
		n0, p0 := bytes()
		t0 := time.Now()
		// The prober keeps calling with fresh Checked times and the same
		// verdicts, as it would every second.
		for time.Since(t0) < time.Duration(secs)*time.Second {
			for _, n := range nodes {
				v := map[string]zones.TargetVerdict{}
				for _, id := range all {
					v[id] = verdict(zones.Up, "2 consecutive successes")
				}
				n.SetLocalVerdicts(v)
			}
			time.Sleep(time.Second) // the prober's pace, not a wait for a condition
		}
		n1, p1 := bytes()
		el := time.Since(t0).Seconds()
		wire = append(wire, (n1-n0)/el/5)
		payload = append(payload, (p1-p0)/el/5)
	}
	slices.Sort(wire)
	slices.Sort(payload)
	t.Logf("5 nodes, 100 targets, steady, %d windows of %d s: sent per node on the wire median %.0f B/s, max %.0f B/s (gossip payload median %.0f B/s, max %.0f B/s)",
		runs, secs, wire[len(wire)/2], wire[len(wire)-1], payload[len(payload)/2], payload[len(payload)-1])
	for _, n := range nodes {
		if len(n.Verdicts()) != 100 {
			t.Errorf("%s: %d verdicts fresh", n.Name(), len(n.Verdicts()))
		}
	}
}

// TestMeasureHeal measures, with memberlist's real LAN timings and the
// default rejoin interval, the time from a partition healing to every node
// being alive to every other and holding the same state digest: after a
// short partition (3 s, within memberlist's suspicion) and after a long one
// (until the majority side has forgotten the cut node, past the dead-node
// gossip time, which only the rejoin loop heals: up to RejoinInterval).
// 10 runs each; run by
// hand: GOSSIP_MEASURE=1 go test ./gossip -run MeasureHeal -v -timeout 30m
func TestMeasureHeal(t *testing.T) {
	if os.Getenv("GOSSIP_MEASURE") == "" {
		t.Skip("set GOSSIP_MEASURE=1 to measure")
	}
	ips := []string{"127.0.0.131", "127.0.0.132", "127.0.0.133"}
	f := &fence{}
	nodes := cluster(t, ips, func(c *Config) {
		c.blockIP = f.blocker(c.Bind.Addr().String())
		c.tune = nil // memberlist's own LAN timings
		c.RejoinInterval = DefaultConfig().RejoinInterval
	})
	whole := func() bool {
		d := nodes[0].Digest()
		for _, n := range nodes {
			if aliveCount(n.Cluster) != len(nodes) || n.Status().Isolated || n.Digest() != d {
				return false
			}
		}
		return true
	}
	for _, long := range []bool{false, true} {
		var heals []time.Duration
		for i := range 10 {
			f.cut(ips[2])
			if long {
				waitFor(t, 2*time.Minute, "n1 marks n3 dead", func() bool {
					for _, m := range nodes[0].ml.Members() {
						if m.Name == "n3" {
							return false
						}
					}
					return true
				})
				// Then outlast memberlist's dead-node gossip time, after
				// which neither side contacts the other on its own: only
				// the rejoin loop heals this.
				time.Sleep(memberlist.DefaultLANConfig().GossipToTheDeadTime + time.Second)
			} else {
				time.Sleep(3 * time.Second) // the partition's length, not a wait for a condition
			}
			// A change on each side while apart, so the state must merge.
			pool := fmt.Sprintf("p%d.", i)
			if err := nodes[0].SetOverride(zones.Override{Action: zones.Drain, Pool: pool, Region: "us-east"}); err != nil {
				t.Fatal(err)
			}
			if err := nodes[2].SetOverride(zones.Override{Action: zones.Drain, Pool: pool, Region: "eu-west"}); err != nil {
				t.Fatal(err)
			}
			f.heal()
			start := time.Now()
			waitFor(t, 2*time.Minute, "the cluster is whole and agrees", whole)
			heals = append(heals, time.Since(start))
		}
		slices.Sort(heals)
		t.Logf("heal after a %s partition: median %s, max %s over %d runs", map[bool]string{false: "3 s", true: "long (past the dead-node gossip time)"}[long],
			heals[len(heals)/2].Round(10*time.Millisecond), heals[len(heals)-1].Round(10*time.Millisecond), len(heals))
	}
}
