package gossip

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/meridian-gtm/meridian/zones"
)

// fence partitions test nodes: nodes on different sides cannot exchange a
// packet or open a stream (the transport drops them), while the sockets
// stay real.
type fence struct {
	mu   sync.Mutex
	side map[netip.Addr]int // absent: side 0
}

func (f *fence) blocker(self string) func(netip.Addr) bool {
	me := netip.MustParseAddr(self)
	return func(peer netip.Addr) bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.side[me] != f.side[peer]
	}
}

// cut puts ips on a side of their own.
func (f *fence) cut(ips ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.side = map[netip.Addr]int{}
	for _, ip := range ips {
		f.side[netip.MustParseAddr(ip)] = 1
	}
}

func (f *fence) heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.side = nil
}

// TestClusterVerdicts: three nodes share their verdicts; each serves the
// quorum. A target down for one node only stays up everywhere, one down for
// all is down everywhere, and a node that sees everything down while its
// peers do not distrusts itself.
func TestClusterVerdicts(t *testing.T) {
	t.Parallel()
	nodes := cluster(t, []string{"127.0.0.101", "127.0.0.102", "127.0.0.103"}, nil)
	const lonely, dead, fine = "http://192.0.2.1:80/#a", "http://192.0.2.2:80/#b", "http://192.0.2.3:80/#c"
	for i, n := range nodes {
		lonelyState := zones.Up
		if i == 0 {
			lonelyState = zones.Down
		}
		n.SetLocalVerdicts(map[string]zones.TargetVerdict{
			lonely: verdict(lonelyState, "probe"),
			dead:   verdict(zones.Down, "connection refused"),
			fine:   verdict(zones.Up, "ok"),
		})
	}
	waitFor(t, 5*time.Second, "every node folds all three observers of every target", func() bool {
		for _, n := range nodes {
			v := n.Verdicts()
			if !strings.Contains(v[lonely].Reason, "of 3 observers") || !strings.Contains(v[dead].Reason, "of 3 observers") ||
				!strings.Contains(v[fine].Reason, "of 3 observers") {
				return false
			}
		}
		return true
	})
	for _, n := range nodes {
		v := n.Verdicts()
		if v[lonely].State != zones.Up || v[dead].State != zones.Down || v[fine].State != zones.Up {
			t.Errorf("%s: lonely %s, dead %s, fine %s; want up, down, up", n.Name(), v[lonely].State, v[dead].State, v[fine].State)
		}
		if !strings.Contains(v[dead].Reason, "down by 3 of 3") || !strings.Contains(v[lonely].Reason, "1 down") {
			t.Errorf("%s: reasons %q and %q", n.Name(), v[dead].Reason, v[lonely].Reason)
		}
		select {
		case <-n.changes:
		default:
			t.Errorf("%s: OnChange was never called", n.Name())
		}
	}
	d := converged(t, nodes, 5*time.Second)

	// Unchanged verdicts cost nothing: calling again changes no digest.
	nodes[1].SetLocalVerdicts(map[string]zones.TargetVerdict{
		lonely: verdict(zones.Up, "probe"), dead: verdict(zones.Down, "connection refused"), fine: verdict(zones.Up, "ok")})
	if got := nodes[1].Digest(); got != d {
		t.Errorf("re-stating the same verdicts changed the digest")
	}

	// n1 now sees everything down; its peers do not: it distrusts itself
	// and its votes are left out, so "lonely" and "fine" stay up.
	nodes[0].SetLocalVerdicts(map[string]zones.TargetVerdict{
		lonely: verdict(zones.Down, "timeout"), dead: verdict(zones.Down, "timeout"), fine: verdict(zones.Down, "timeout")})
	waitFor(t, 5*time.Second, "n1 distrusts itself", func() bool { return nodes[0].Status().SelfDistrust })
	if s, _ := stateOf(nodes[0].Cluster, fine); s != zones.Up {
		t.Errorf("self-distrusting n1 serves %s for a target its peers see up", s)
	}
	if nodes[1].Status().SelfDistrust {
		t.Error("n2 distrusts itself")
	}
	waitFor(t, 5*time.Second, "n2 sees fine down by 1 of 3 and up", func() bool {
		v := nodes[1].Verdicts()[fine]
		return v.State == zones.Up && strings.Contains(v.Reason, "1 down")
	})

	// The peers come to see "dead" recover: a majority says up.
	for _, n := range nodes[1:] {
		n.SetLocalVerdicts(map[string]zones.TargetVerdict{lonely: verdict(zones.Up, "probe"), dead: verdict(zones.Up, "ok"), fine: verdict(zones.Up, "ok")})
	}
	waitFor(t, 5*time.Second, "dead is up again everywhere", func() bool {
		for _, n := range nodes {
			if s, _ := stateOf(n.Cluster, dead); s != zones.Up {
				return false
			}
		}
		return true
	})
	converged(t, nodes, 5*time.Second)

	// A retracted target goes from every node's view once no observer is
	// left.
	for _, n := range nodes {
		n.SetLocalVerdicts(map[string]zones.TargetVerdict{lonely: verdict(zones.Up, "probe"), dead: verdict(zones.Up, "ok")})
	}
	waitFor(t, 5*time.Second, "the retracted target leaves every view", func() bool {
		for _, n := range nodes {
			if _, ok := stateOf(n.Cluster, fine); ok {
				return false
			}
		}
		return true
	})
	converged(t, nodes, 5*time.Second)
}

// TestClusterOverrides: an override set on one node reaches all, a replayed
// older one never wins, clearing spreads as a tombstone, and the digests
// agree.
func TestClusterOverrides(t *testing.T) {
	t.Parallel()
	nodes := cluster(t, []string{"127.0.0.111", "127.0.0.112", "127.0.0.113"}, nil)
	drain := zones.Override{Action: zones.Drain, Pool: "www.gslb.example.com", Region: "eu-west", Who: "alice", Why: "maintenance"}
	if err := nodes[0].SetOverride(drain); err != nil {
		t.Fatal(err)
	}
	everywhere := func(what string, want func([]zones.Override) bool) {
		t.Helper()
		waitFor(t, 5*time.Second, what, func() bool {
			for _, n := range nodes {
				if !want(n.Overrides()) {
					return false
				}
			}
			return true
		})
	}
	everywhere("the drain reaches every node", func(o []zones.Override) bool {
		return len(o) == 1 && o[0].Action == zones.Drain && o[0].Pool == "www.gslb.example.com." && o[0].Region == "eu-west" && o[0].Who == "alice"
	})

	pin := func(region string) zones.Override {
		return zones.Override{Action: zones.Pin, Pool: "www.gslb.example.com.", Region: region, Who: "bob"}
	}
	if err := nodes[1].SetOverride(pin("us-east")); err != nil {
		t.Fatal(err)
	}
	// Keep the encoding of this pin, to replay it later.
	nodes[1].mu.Lock()
	old := nodes[1].tab.overrides[OverrideKey(zones.Pin, "www.gslb.example.com.", "")]
	nodes[1].mu.Unlock()
	oldMsg := encodeOverride(&old)
	if err := nodes[2].SetOverride(pin("ap-southeast")); err != nil {
		t.Fatal(err)
	}
	hasPin := func(region string) func([]zones.Override) bool {
		return func(o []zones.Override) bool {
			for _, x := range o {
				if x.Action == zones.Pin {
					return x.Region == region
				}
			}
			return false
		}
	}
	everywhere("the later pin wins everywhere", hasPin("ap-southeast"))

	// Replay the older pin over the network, from a member (so it passes
	// encryption): nothing changes.
	d := converged(t, nodes, 5*time.Second)
	n1 := nodes[0].Status().Members[0]
	if err := nodes[1].ml.SendReliable(&memberlist.Node{Name: n1.Name, Addr: n1.Addr.Addr().AsSlice(), Port: n1.Addr.Port()}, oldMsg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "n1 received the replay", func() bool {
		return counter(t, nodes[0].m.msgReceived.WithLabelValues("override")) > 0
	})
	if !hasPin("ap-southeast")(nodes[0].Overrides()) || nodes[0].Digest() != d {
		t.Errorf("a replayed older pin changed n1: %v", nodes[0].Overrides())
	}

	// Clearing spreads as a tombstone; clearing what is not there says so.
	if err := nodes[2].ClearOverride(zones.Drain, "WWW.gslb.example.com.", "eu-west", "carol", "done"); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].ClearOverride(zones.Pin, "www.gslb.example.com.", "", "carol", "drill over"); err != nil {
		t.Fatal(err)
	}
	everywhere("both tombstones reach every node", func(o []zones.Override) bool { return len(o) == 0 })
	if err := nodes[0].ClearOverride(zones.Pin, "www.gslb.example.com.", "", "carol", "again"); !errorsIs(err, ErrNoOverride) {
		t.Errorf("clearing a cleared pin: %v, want ErrNoOverride", err)
	}
	d2 := converged(t, nodes, 5*time.Second)
	if d2 == d {
		t.Error("clearing did not change the digest")
	}
	// The replayed pin loses to its tombstone too.
	(&delegate{nodes[0].Cluster}).NotifyMsg(oldMsg)
	if len(nodes[0].Overrides()) != 0 {
		t.Errorf("a replayed pin beat its tombstone: %v", nodes[0].Overrides())
	}
	if err := nodes[0].SetOverride(zones.Override{Action: zones.Pin, Region: "eu"}); !errorsIs(err, ErrInvalidOverride) {
		t.Errorf("a pin without a pool: %v, want ErrInvalidOverride", err)
	}
}

// TestPartition: a node cut off from the other two is isolated and serves
// its last agreed view, frozen, whatever it sees alone; conflicting pins
// made on the two sides converge to the newer everywhere once the
// partition heals, and it heals with no manual join even though it lasted
// longer than memberlist's dead-node gossip time.
func TestPartition(t *testing.T) {
	t.Parallel()
	ips := []string{"127.0.0.121", "127.0.0.122", "127.0.0.123"}
	f := &fence{}
	nodes := cluster(t, ips, func(c *Config) {
		c.blockIP = f.blocker(c.Bind.Addr().String())
		c.RejoinInterval = 200 * time.Millisecond
	})
	const target = "tcp://192.0.2.9:443#x"
	for _, n := range nodes {
		n.SetLocalVerdicts(map[string]zones.TargetVerdict{target: verdict(zones.Up, "ok")})
	}
	waitFor(t, 5*time.Second, "n3 folds three observers", func() bool {
		return strings.Contains(nodes[2].Verdicts()[target].Reason, "up by 3 of 3")
	})

	f.cut(ips[2])
	waitFor(t, 10*time.Second, "n3 is isolated and n1 is not", func() bool {
		return nodes[2].Status().Isolated && aliveCount(nodes[0].Cluster) == 2
	})
	if nodes[0].Status().Isolated {
		t.Error("n1, with two of three members, is isolated")
	}
	// Alone, n3 sees the target down: it keeps serving the agreed view.
	nodes[2].SetLocalVerdicts(map[string]zones.TargetVerdict{target: verdict(zones.Down, "unreachable")})
	if err := nodes[1].SetOverride(zones.Override{Action: zones.Pin, Pool: "p.", Region: "us-east"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "n1 has n2's pin", func() bool { return len(nodes[0].Overrides()) == 1 })
	if err := nodes[2].SetOverride(zones.Override{Action: zones.Pin, Pool: "p.", Region: "ap-southeast"}); err != nil {
		t.Fatal(err)
	}
	// Outlast the dead-node gossip time: the sides forget each other.
	waitFor(t, 10*time.Second, "n1 has forgotten n3 in memberlist", func() bool {
		for _, m := range nodes[0].ml.Members() {
			if m.Name == "n3" {
				return false
			}
		}
		return true
	})
	if v := nodes[2].Verdicts()[target]; v.State != zones.Up {
		t.Errorf("isolated n3 serves %s (%s), want its frozen up", v.State, v.Reason)
	}
	if s, _ := stateOf(nodes[0].Cluster, target); s != zones.Up {
		t.Errorf("n1 serves %s", s)
	}

	f.heal()
	waitFor(t, 10*time.Second, "the cluster is whole again without a manual join", func() bool {
		for _, n := range nodes {
			if aliveCount(n.Cluster) != 3 || n.Status().Isolated {
				return false
			}
		}
		return true
	})
	converged(t, nodes, 5*time.Second)
	for _, n := range nodes {
		o := n.Overrides()
		if len(o) != 1 || o[0].Region != "ap-southeast" {
			t.Errorf("%s: overrides %v, want the newer pin to ap-southeast", n.Name(), o)
		}
	}
	// n3's lone down vote is one of three now: up everywhere.
	waitFor(t, 5*time.Second, "every node folds n3's down vote as one of three", func() bool {
		for _, n := range nodes {
			v := n.Verdicts()[target]
			if v.State != zones.Up || !strings.Contains(v.Reason, "1 down") {
				return false
			}
		}
		return true
	})
}

// TestConfigAgreement: a member with another config hash shows in Status at
// once, and in the log and metric once the grace period has passed; a
// reload that brings it in line heals it.
func TestConfigAgreement(t *testing.T) {
	t.Parallel()
	log, lines := logged(t)
	nodes := cluster(t, []string{"127.0.0.131", "127.0.0.132"}, func(c *Config) {
		c.AgreementGrace = 200 * time.Millisecond
		if c.Name == "n1" {
			c.Log = log
		}
		if c.Name == "n2" {
			c.ConfigHash = "hash-2"
		}
	})
	if nodes[0].Status().ConfigAgreement {
		t.Error("n1 agrees with a member of another hash")
	}
	waitFor(t, 5*time.Second, "the disagreement is logged and shown", func() bool {
		return strings.Contains(lines(), "disagree on the zone config") && gauge(t, nodes[0].m.configAgreement) == 0
	})
	if n := strings.Count(lines(), "disagree on the zone config"); n != 1 {
		t.Errorf("the disagreement was logged %d times, want once", n)
	}
	if err := nodes[1].SetConfigHash("hash-1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "agreement is back", func() bool {
		return nodes[0].Status().ConfigAgreement && gauge(t, nodes[0].m.configAgreement) == 1
	})
	for _, m := range nodes[0].Status().Members {
		if m.Region != "region-"+m.Name || m.Version != "test" || !m.Addr.IsValid() {
			t.Errorf("member metadata %+v", m)
		}
	}
}

// TestJoinSelfAndNothing: joining only one's own address, or nothing, is
// no error; joining a seed where nothing listens is.
func TestJoinSelfAndNothing(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "solo", "127.0.0.141")
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// No goroutine reads cfg before Run: a test may set the seeds now that
	// the address is known.
	for _, tc := range []struct {
		seeds []string
		ok    bool
	}{{nil, true}, {[]string{c.Addr().String()}, true}, {[]string{"127.0.0.141:1"}, false}} {
		c.cfg.Seeds = tc.seeds
		k, err := c.Join(context.Background())
		if (err == nil) != tc.ok || (tc.ok && k != 0) {
			t.Errorf("join %v: %d, %v", tc.seeds, k, err)
		}
	}
}

// TestRunLifecycle: one Run at a time; Close ends Run without leaving; no
// Run after Close.
func TestRunLifecycle(t *testing.T) {
	t.Parallel()
	c, err := New(testConfig(t, "life", "127.0.0.143"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background()) }()
	waitFor(t, 5*time.Second, "Run is running", c.running.Load)
	if err := c.Run(context.Background()); !errorsIs(err, ErrRunning) {
		t.Errorf("a second Run: %v, want ErrRunning", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if err := c.Run(context.Background()); !errorsIs(err, ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}
	if _, err := c.Join(context.Background()); err != nil {
		t.Errorf("Join without seeds after Close: %v", err)
	}
}
