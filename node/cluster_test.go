package node

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/zones"
	"github.com/miekg/dns"
)

// clusterEndpoint is a real HTTP server on loopback whose /healthz fails
// for the probes of some nodes: each node's prober names itself in its
// User-Agent, so one node alone can be made to see a region down.
type clusterEndpoint struct {
	addr string
	mu   sync.Mutex
	fail map[string]bool // node name, or "*" for every node
	hits map[string]int  // probes by node name since the last reset
}

func newClusterEndpoint(t *testing.T) *clusterEndpoint {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &clusterEndpoint{addr: l.Addr().String(), fail: map[string]bool{}, hits: map[string]int{}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		if _, name, ok := strings.Cut(r.UserAgent(), "("); ok {
			e.hits[strings.TrimSuffix(name, ")")]++
		}
		failed := e.fail["*"]
		for name := range e.fail {
			failed = failed || strings.Contains(r.UserAgent(), "("+name+")")
		}
		e.mu.Unlock()
		if failed {
			http.Error(w, "down for this test", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return e
}

// probers returns the names of the nodes that probed e since the last
// call, sorted.
func (e *clusterEndpoint) probers() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	names := slices.Sorted(maps.Keys(e.hits))
	e.hits = map[string]int{}
	return names
}

func (e *clusterEndpoint) failFor(names ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fail = map[string]bool{}
	for _, n := range names {
		e.fail[n] = true
	}
}

// testCluster is n nodes gossiping on 127.0.0.7x, sharing one zone whose
// www pool is probed at three clusterEndpoints.
type testCluster struct {
	t     *testing.T
	dir   string
	eps   map[string]*clusterEndpoint
	nodes []*clusterNode
	seed  string
}

type clusterNode struct {
	*Node
	name   string
	cfg    string
	cancel context.CancelFunc
	done   chan struct{}
}

var clusterRegions = []string{"us-east", "eu-west", "ap-southeast"}

func newTestCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	return newTestClusterWith(t, n, "200ms", 2, 1, 0)
}

// newTestClusterWith starts n nodes whose www checks run every interval
// with the given fall and rise, by observers nodes each (0: every node).
func newTestClusterWith(t *testing.T, n int, interval string, fall, rise, observers int) *testCluster {
	t.Helper()
	return newTestClusterExtra(t, n, interval, fall, rise, observers, nil)
}

// newTestClusterExtra is newTestClusterWith whose node configs end with
// extra(i, dir), when extra is not nil: more settings for node i, whose
// config file is in dir.
func newTestClusterExtra(t *testing.T, n int, interval string, fall, rise, observers int, extra func(i int, dir string) string) *testCluster {
	t.Helper()
	c := &testCluster{t: t, dir: t.TempDir(), eps: map[string]*clusterEndpoint{}}
	for _, r := range clusterRegions {
		c.eps[r] = newClusterEndpoint(t)
	}
	zone := fmt.Sprintf(`zone = "gslb.example.com"
ns = ["ns.example.net."]
[regions.us-east]
lat = 38.95
lon = -77.45
[regions.eu-west]
lat = 50.11
lon = 8.68
[regions.ap-southeast]
lat = 1.35
lon = 103.82
[pools.www]
order = ["us-east", "eu-west", "ap-southeast"]
%s
[pools.www.check]
type = "http"
path = "/healthz"
interval = %q
fall = %d
rise = %d
[pools.www.members.us-east]
addresses = ["192.0.2.10"]
endpoints = [%q]
[pools.www.members.eu-west]
addresses = ["198.51.100.10"]
endpoints = [%q]
[pools.www.members.ap-southeast]
addresses = ["203.0.113.10"]
endpoints = [%q]
`, observersLine(observers), interval, fall, rise, c.eps["us-east"].addr, c.eps["eu-west"].addr, c.eps["ap-southeast"].addr)
	must(t, os.MkdirAll(filepath.Join(c.dir, "zones"), 0o755))
	must(t, os.WriteFile(filepath.Join(c.dir, "zones", "gslb.toml"), []byte(zone), 0o644))
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	must(t, os.WriteFile(filepath.Join(c.dir, "gossip.key"), []byte("# test key\n"+key+"\n"), 0o600))
	geo, err := filepath.Abs("../deploy/demo/demo-city.mmdb")
	must(t, err)
	for i := range n {
		name := fmt.Sprintf("node%d", i+1)
		cfg := filepath.Join(c.dir, name+".toml")
		more := ""
		if extra != nil {
			more = extra(i, c.dir)
		}
		must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`zones = "zones"
geoip = %q
[dns]
listen = ["127.0.0.1:0"]
[cluster]
name = %q
region = %q
listen = "127.0.0.%d:0"
key_file = "gossip.key"
label = "meridian-test"
state_dir = "state/%s"
%s`, geo, name, clusterRegions[i%3], 71+i, name, more)), 0o644))
		c.nodes = append(c.nodes, &clusterNode{name: name, cfg: cfg})
	}
	for i := range c.nodes {
		c.start(i)
	}
	c.waitMembers(n)
	return c
}

func observersLine(k int) string {
	if k == 0 {
		return ""
	}
	return fmt.Sprintf("observers = %d", k)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// start (re)starts node i, seeded with the first node's gossip address.
func (c *testCluster) start(i int) *clusterNode {
	c.t.Helper()
	cn := c.nodes[i]
	cfg, err := LoadConfig(cn.cfg)
	must(c.t, err)
	if c.seed != "" {
		cfg.Cluster.Seeds = []string{c.seed}
	}
	if i == 0 && c.seed != "" {
		cfg.Cluster.Listen = c.seed // the seed keeps its address across restarts
	}
	log := slog.New(slog.NewTextHandler(logWriter{c.t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n, err := New(log.With("node", cn.name), cfg)
	must(c.t, err)
	if c.seed == "" {
		c.seed = n.Cluster().Addr().String()
	}
	cn.Node = n
	ctx, cancel := context.WithCancel(context.Background())
	cn.cancel, cn.done = cancel, make(chan struct{})
	go func() {
		defer close(cn.done)
		n.Run(ctx)
	}()
	c.t.Cleanup(cn.stop)
	return cn
}

func (cn *clusterNode) stop() {
	if cn.cancel != nil {
		cn.cancel()
		<-cn.done
		cn.cancel = nil
	}
}

// logWriter sends a node's log lines to the test log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (c *testCluster) waitMembers(n int) {
	c.t.Helper()
	waitFor(c.t, 10*time.Second, func() error {
		for _, cn := range c.nodes {
			alive := 0
			for _, m := range cn.Cluster().Status().Members {
				if m.State == "alive" {
					alive++
				}
			}
			if alive != n {
				return fmt.Errorf("%s sees %d alive members, want %d", cn.name, alive, n)
			}
		}
		return nil
	})
}

// waitConverged waits until every node holds the same replicated state.
func (c *testCluster) waitConverged() {
	c.t.Helper()
	waitFor(c.t, 10*time.Second, func() error {
		d := c.nodes[0].Cluster().Digest()
		for _, cn := range c.nodes[1:] {
			if got := cn.Cluster().Digest(); got != d {
				return fmt.Errorf("%s digest %s, %s has %s", cn.name, got, c.nodes[0].name, d)
			}
		}
		return nil
	})
}

// waitFor polls f until it returns nil, failing the test with f's last
// error after timeout.
func waitFor(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// askAll asks every node for the German client's answer.
func (c *testCluster) waitAll(want string) {
	c.t.Helper()
	for _, cn := range c.nodes {
		waitAnswer(c.t, cn.Node, want, 10*time.Second)
	}
}

// ownDown waits until node cn's own prober judges region's endpoint down.
func (c *testCluster) ownDown(cn *clusterNode, region string) {
	c.t.Helper()
	waitFor(c.t, 10*time.Second, func() error {
		for id, v := range cn.prober.Verdicts() {
			if strings.Contains(id, c.eps[region].addr) && v.State == zones.Down {
				return nil
			}
		}
		return fmt.Errorf("%s does not see %s down yet", cn.name, region)
	})
}

func TestClusterQuorum(t *testing.T) {
	c := newTestCluster(t, 3)
	c.waitAll("198.51.100.10")

	// eu-west fails for node2 alone: it votes down, the others up, so no
	// node moves its clients.
	c.eps["eu-west"].failFor("node2")
	c.ownDown(c.nodes[1], "eu-west")
	c.waitConverged()
	for _, cn := range c.nodes {
		if got, _ := askEU(t, cn.Node); got != "198.51.100.10" {
			t.Fatalf("%s answers %s after eu-west failed for node2 alone, want eu-west still", cn.name, got)
		}
	}

	// eu-west fails for every node: every node moves its clients.
	c.eps["eu-west"].failFor("*")
	c.waitAll("192.0.2.10")
	c.eps["eu-west"].failFor()
	c.waitAll("198.51.100.10")

	// An override made on one node reaches every node.
	www := "www.gslb.example.com."
	must(t, c.nodes[2].Cluster().SetOverride(zones.Override{Action: zones.Pin, Pool: www, Region: "ap-southeast", Who: "test", Why: "drill", When: time.Now()}))
	c.waitAll("203.0.113.10")

	// Every node stops (as a crash would) and comes back: the override is
	// in force before any probe or gossip.
	for _, cn := range c.nodes {
		cn.stop()
	}
	cfg, err := LoadConfig(c.nodes[1].cfg)
	must(t, err)
	cfg.Cluster.Seeds = nil
	n, err := New(slog.New(slog.DiscardHandler), cfg)
	must(t, err)
	var r zones.Result
	n.Store().Load().Answer(&r, www, dns.TypeA, netip.MustParseAddr("198.51.100.7"))
	if r.Region != "ap-southeast" {
		t.Fatalf("restarted node answers %s before any probe, want the persisted pin to ap-southeast", r.Region)
	}
	// Run with an ended context only releases the node's sockets.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n.Run(ctx)
}

// TestMeasureCluster measures, over 10 runs each, the time from a region
// failing for every node to the last node answering elsewhere, and from
// an override made on one node to the last node answering by it (LAN
// profile, interval 1 s, fall 3, rise 2, as in deploy/cluster). Run by
// hand: MERIDIAN_MEASURE=1 go test ./node -run MeasureCluster -v
func TestMeasureCluster(t *testing.T) {
	if os.Getenv("MERIDIAN_MEASURE") == "" {
		t.Skip("set MERIDIAN_MEASURE=1 to measure")
	}
	const runs = 10
	c := newTestClusterWith(t, 3, "1s", 3, 2, 0)
	c.waitAll("198.51.100.10")
	lastMoved := func(want string) time.Duration {
		start := time.Now()
		for _, cn := range c.nodes {
			waitAnswer(t, cn.Node, want, 30*time.Second)
		}
		return time.Since(start)
	}
	var fail, over []time.Duration
	for range runs {
		c.eps["eu-west"].failFor("*")
		fail = append(fail, lastMoved("192.0.2.10"))
		c.eps["eu-west"].failFor()
		c.waitAll("198.51.100.10")
	}
	www := "www.gslb.example.com."
	for i := range runs {
		start := time.Now()
		must(t, c.nodes[i%3].Cluster().SetOverride(zones.Override{Action: zones.Pin, Pool: www, Region: "ap-southeast", Who: "measure", When: time.Now()}))
		lastMoved("203.0.113.10")
		over = append(over, time.Since(start))
		must(t, c.nodes[(i+1)%3].Cluster().ClearOverride(zones.Pin, www, "", "measure", "done"))
		c.waitAll("198.51.100.10")
	}
	t.Logf("region failing for every node -> last node answering elsewhere: %s", medianMax(fail))
	t.Logf("override on one node -> last node answering by it: %s", medianMax(over))
}

func medianMax(d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	return fmt.Sprintf("median %s, max %s over %d runs", s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond), len(s))
}

// With observers = 2 in a five-node cluster, each target is probed by
// exactly two nodes, spread over regions; when one of them stops, only the
// targets it observed move to another node, and the quorum over the
// observers still fails a region over.
func TestClusterObservers(t *testing.T) {
	c := newTestClusterWith(t, 5, "200ms", 2, 1, 2)
	// steady waits until two probe windows in a row see the same probers,
	// two per endpoint, and returns them.
	steady := func() map[string][]string {
		t.Helper()
		var last map[string][]string
		for _, e := range c.eps {
			e.probers() // start a fresh window
		}
		var got map[string][]string
		waitFor(t, 20*time.Second, func() error {
			time.Sleep(700 * time.Millisecond) // one window: about three probe intervals
			got = map[string][]string{}
			for r, e := range c.eps {
				got[r] = e.probers()
			}
			defer func() { last = got }()
			for r, p := range got {
				if len(p) != 2 {
					return fmt.Errorf("%s probed by %v, want two nodes", r, p)
				}
				if !slices.Equal(p, last[r]) {
					return fmt.Errorf("%s probed by %v, the window before by %v", r, p, last[r])
				}
			}
			return nil
		})
		return got
	}
	before := steady()
	t.Logf("observers: %v", before)

	// The quorum is over the two observers: eu-west failing for both moves
	// every node's answer.
	c.waitAll("198.51.100.10")
	c.eps["eu-west"].failFor("*")
	c.waitAll("192.0.2.10")
	c.eps["eu-west"].failFor()
	c.waitAll("198.51.100.10")

	// Stop one of eu-west's observers: eu-west gets another, and every
	// target it did not observe keeps its two.
	gone := before["eu-west"][0]
	for _, cn := range c.nodes {
		if cn.name == gone {
			cn.stop()
		}
	}
	after := steady()
	t.Logf("after %s stopped: %v", gone, after)
	for r, p := range after {
		if slices.Contains(p, gone) {
			t.Errorf("%s still probed by the stopped %s: %v", r, gone, p)
		}
		if !slices.Contains(before[r], gone) && !slices.Equal(p, before[r]) {
			t.Errorf("%s moved from %v to %v though %s did not observe it", r, before[r], p, gone)
		}
	}
}
