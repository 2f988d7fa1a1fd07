package gossip

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/meridian-gtm/meridian/zones"
)

// testKey is the cluster key of the test clusters.
var testKey = []byte("meridian-test-key-0123456789abcd") // 32 bytes: AES-256

// fastMemberlist shortens memberlist's LAN timings so that a loopback test
// cluster converges in well under a second, and notices a death in about
// half a second.
func fastMemberlist(mc *memberlist.Config) {
	mc.ProbeInterval = 100 * time.Millisecond
	mc.ProbeTimeout = 50 * time.Millisecond
	mc.GossipInterval = 20 * time.Millisecond
	mc.PushPullInterval = 300 * time.Millisecond
	mc.TCPTimeout = 500 * time.Millisecond
	mc.SuspicionMult = 2
	mc.SuspicionMaxTimeoutMult = 2
	mc.GossipToTheDeadTime = 500 * time.Millisecond
	mc.IndirectChecks = 1
}

// testLog is a log that writes to t until the test ends (memberlist's
// goroutines may outlive a node by a moment, and t.Log after the end
// panics). GOSSIP_TEST_LOG=debug shows memberlist's debug lines too.
func testLog(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	level := slog.LevelInfo
	if os.Getenv("GOSSIP_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
	buf  bytes.Buffer // everything logged, for tests that look for a line
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// logged is a log and what it has written, for tests that look for a line.
func logged(t testing.TB) (*slog.Logger, func() string) {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, nil)), func() string {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.buf.String()
	}
}

// testConfig is a node on ip (any port) with the test key and label,
// memberlist sped up, and a long rejoin interval (tests that rejoin set
// their own).
func testConfig(t testing.TB, name, ip string) Config {
	return Config{
		Name:           name,
		Region:         "region-" + name,
		Version:        "test",
		ConfigHash:     "hash-1",
		Bind:           netip.AddrPortFrom(netip.MustParseAddr(ip), 0),
		Keys:           [][]byte{testKey},
		Label:          "meridian-test",
		MaxAge:         5 * time.Second,
		RejoinInterval: time.Hour,
		LeaveTimeout:   time.Second,
		Log:            testLog(t),
		tune:           fastMemberlist,
	}
}

// node is a running test node.
type node struct {
	*Cluster
	cancel  context.CancelFunc
	done    chan error // Run's result
	changes chan struct{}
}

// start creates a node and runs it until the test ends (or stop or kill).
// Its OnChange signals n.changes, after calling cfg.OnChange if set.
func start(t testing.TB, cfg Config) *node {
	t.Helper()
	n := &node{changes: make(chan struct{}, 1)}
	also := cfg.OnChange // a test's own, called first
	cfg.OnChange = func() {
		if also != nil {
			also()
		}
		select {
		case n.changes <- struct{}{}:
		default:
		}
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("new %s: %v", cfg.Name, err)
	}
	n.Cluster = c
	n.run(t)
	return n
}

func (n *node) run(t testing.TB) {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.done = make(chan error, 1)
	go func() { n.done <- n.Run(ctx) }()
	t.Cleanup(func() { n.stop(t) })
}

// stop ends Run (a graceful leave) and waits for it.
func (n *node) stop(t testing.TB) {
	t.Helper()
	n.cancel()
	select {
	case err, ok := <-n.done:
		if ok && err != nil {
			t.Errorf("%s: run: %v", n.Name(), err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("%s: run did not return within 10s of its context ending", n.Name())
	}
	n.done = closedErr
}

// kill drops the node as kill -9 would: no leave, nothing more persisted.
func (n *node) kill(t testing.TB) {
	t.Helper()
	if err := n.Close(); err != nil {
		t.Errorf("%s: close: %v", n.Name(), err)
	}
	n.stop(t)
}

var closedErr = func() chan error { c := make(chan error); close(c); return c }()

// cluster starts one node per IP, names n1..nN, each with the nodes
// started before it as seeds, and joins them.
func cluster(t testing.TB, ips []string, edit func(*Config)) []*node {
	t.Helper()
	var nodes []*node
	for i, ip := range ips {
		cfg := testConfig(t, fmt.Sprintf("n%d", i+1), ip)
		for _, n := range nodes {
			cfg.Seeds = append(cfg.Seeds, n.Addr().String())
		}
		if edit != nil {
			edit(&cfg)
		}
		nodes = append(nodes, start(t, cfg))
	}
	for _, n := range nodes[1:] {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := n.Join(ctx); err != nil {
			t.Fatalf("%s join: %v", n.Name(), err)
		}
		cancel()
	}
	waitFor(t, 5*time.Second, "every node sees every node alive", func() bool {
		for _, n := range nodes {
			if aliveCount(n.Cluster) != len(nodes) {
				return false
			}
		}
		return true
	})
	return nodes
}

func aliveCount(c *Cluster) int {
	n := 0
	for _, m := range c.Status().Members {
		if m.State == stateAlive {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes, then fails
// the test with what it waited for.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// converged waits until every node has the same digest.
func converged(t testing.TB, nodes []*node, timeout time.Duration) string {
	t.Helper()
	var d string
	waitFor(t, timeout, "every node holds the same state digest", func() bool {
		d = nodes[0].Digest()
		for _, n := range nodes[1:] {
			if n.Digest() != d {
				return false
			}
		}
		return true
	})
	return d
}

// verdict is a verdict checked now.
func verdict(s zones.State, reason string) zones.TargetVerdict {
	now := time.Now()
	return zones.TargetVerdict{State: s, Reason: reason, Since: now.Add(-time.Minute), Checked: now}
}

// stateOf is a target's state in a node's view, and whether it has one.
func stateOf(c *Cluster, target string) (zones.State, bool) {
	v, ok := c.Verdicts()[target]
	return v.State, ok
}

// fakeClock is an injected clock (Config.Now) that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Add(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

// bareCluster is a Cluster without memberlist (newCluster): it merges,
// folds and answers, sends nothing, and must not Run.
func bareCluster(t testing.TB, name string, now func() time.Time, onChange func()) *Cluster {
	t.Helper()
	c, err := newCluster(Config{Name: name, Insecure: true, MaxAge: 30 * time.Second, Now: now, OnChange: onChange, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// changeTimes records when OnChange is called.
type changeTimes struct {
	mu    sync.Mutex
	times []time.Time
}

func (r *changeTimes) record() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.times = append(r.times, time.Now())
}

// firstSince is the first call at or after t, if any.
func (r *changeTimes) firstSince(t time.Time) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range r.times {
		if !x.Before(t) {
			return x, true
		}
	}
	return time.Time{}, false
}
