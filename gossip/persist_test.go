package gossip

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/zones"
)

// fileOverrides is how many overrides (tombstones included) a node's state
// file holds.
func fileOverrides(t testing.TB, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, stateFileName))
	if err != nil {
		return -1
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("state file: %v", err)
	}
	return len(f.Overrides)
}

// TestPersistRestart: every node of a cluster is killed (no leave, nothing
// persisted on the way out) and recreated from its state directory: before
// joining or running, each has the overrides back, and serves the verdicts
// it served (they are still fresh), frozen as it is alone. Running again,
// the nodes find each other and agree.
func TestPersistRestart(t *testing.T) {
	t.Parallel()
	ips := []string{"127.0.0.171", "127.0.0.172", "127.0.0.173"}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	i := 0
	nodes := cluster(t, ips, func(c *Config) {
		c.StateDir = dirs[i]
		c.RejoinInterval = 200 * time.Millisecond
		i++
	})
	drain := zones.Override{Action: zones.Drain, Pool: "www.gslb.example.com.", Region: "eu-west", Who: "alice", Why: "maintenance"}
	if err := nodes[0].SetOverride(drain); err != nil {
		t.Fatal(err)
	}
	if got := fileOverrides(t, dirs[0]); got != 1 {
		t.Errorf("SetOverride returned before its override was in the state file (%d there)", got)
	}
	pin := zones.Override{Action: zones.Pin, Pool: "api.gslb.example.com.", Region: "us-east", Who: "bob"}
	if err := nodes[1].SetOverride(pin); err != nil {
		t.Fatal(err)
	}
	const target = "http://127.0.0.31:8080/healthz#abc"
	for _, n := range nodes {
		n.SetLocalVerdicts(map[string]zones.TargetVerdict{target: verdict(zones.Down, "refused")})
	}
	waitFor(t, 5*time.Second, "every node persisted both overrides and sees the target down by three", func() bool {
		for k, n := range nodes {
			if fileOverrides(t, dirs[k]) != 2 || !strings.Contains(n.Verdicts()[target].Reason, "down by 3 of 3") {
				return false
			}
		}
		return true
	})
	// The verdicts reach the files within the debounce.
	waitFor(t, 5*time.Second, "every node persisted every verdict entry", func() bool {
		for _, d := range dirs {
			l, err := readStateFile(d)
			if err != nil || len(l.tab.entries()) != 3 {
				return false
			}
		}
		return true
	})
	want := nodes[0].Status().ViewDigest
	for _, n := range nodes {
		n.kill(t)
	}

	var again []*node
	for k, ip := range ips {
		cfg := testConfig(t, nodes[k].Name(), ip)
		cfg.StateDir = dirs[k]
		cfg.Bind = nodes[k].Addr()
		cfg.RejoinInterval = 200 * time.Millisecond
		for _, other := range nodes {
			if other != nodes[k] {
				cfg.Seeds = append(cfg.Seeds, other.Addr().String())
			}
		}
		c, err := New(cfg)
		if err != nil {
			t.Fatalf("recreate %s: %v", cfg.Name, err)
		}
		o := c.Overrides()
		if len(o) != 2 || o[0] != withWhen(drain, o[0].When) || o[1] != withWhen(pin, o[1].When) {
			t.Errorf("%s before joining: overrides %v", cfg.Name, o)
		}
		if s, _ := stateOf(c, target); s != zones.Down {
			t.Errorf("%s before joining: target %s, want the persisted down", cfg.Name, s)
		}
		st := c.Status()
		if !st.Isolated || st.ViewDigest != want {
			t.Errorf("%s before joining: isolated %v, view digest %s, want isolated and %s", cfg.Name, st.Isolated, st.ViewDigest, want)
		}
		n := &node{Cluster: c, changes: make(chan struct{}, 1)}
		n.run(t)
		again = append(again, n)
	}
	// No manual join: the rejoin loop finds the peers at their old
	// addresses.
	waitFor(t, 10*time.Second, "the restarted nodes find each other", func() bool {
		for _, n := range again {
			if aliveCount(n.Cluster) != 3 || n.Status().Isolated {
				return false
			}
		}
		return true
	})
	converged(t, again, 5*time.Second)
	for _, n := range again {
		if got := n.Status().ViewDigest; got != want {
			t.Errorf("%s: view digest %s after the restart, want %s", n.Name(), got, want)
		}
	}
}

func withWhen(o zones.Override, when time.Time) zones.Override {
	o.When = when
	return o
}

// TestPersistGracefulLeave: a node stopped through Run's context leaves
// (its peers record it as left, not dead, so it does not count towards
// isolation) and persists on the way out.
func TestPersistGracefulLeave(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	nodes := cluster(t, []string{"127.0.0.174", "127.0.0.175"}, func(c *Config) {
		if c.Name == "n2" {
			c.StateDir = dir
		}
	})
	if err := nodes[0].SetOverride(zones.Override{Action: zones.Drain, Region: "ap"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "n2 has the drain", func() bool { return len(nodes[1].Overrides()) == 1 })
	nodes[1].stop(t)
	if got := fileOverrides(t, dir); got != 1 {
		t.Errorf("n2 left with %d overrides in its state file, want 1", got)
	}
	waitFor(t, 5*time.Second, "n1 records n2 as left", func() bool {
		for _, m := range nodes[0].Status().Members {
			if m.Name == "n2" {
				return m.State == stateLeft
			}
		}
		return false
	})
	if nodes[0].Status().Isolated {
		t.Error("n1 is isolated after its only peer left")
	}
	cfg := testConfig(t, "n2", "127.0.0.175")
	cfg.StateDir = dir
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if o := c.Overrides(); len(o) != 1 || o[0].Region != "ap" {
		t.Errorf("n2 recreated: overrides %v", o)
	}
}

// TestPersistFailure: an override that cannot be persisted is not set.
func TestPersistFailure(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state")
	cfg := testConfig(t, "n1", "127.0.0.177")
	cfg.StateDir = dir
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetOverride(zones.Override{Action: zones.Drain, Region: "eu"}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil { // even root cannot create a file in it now
		t.Fatal(err)
	}
	err = c.SetOverride(zones.Override{Action: zones.Drain, Region: "us"})
	if err == nil {
		t.Fatal("an override that could not be persisted was set")
	}
	if o := c.Overrides(); len(o) != 1 || o[0].Region != "eu" {
		t.Errorf("overrides after the failed write: %v, want only the first", o)
	}
	if err := c.ClearOverride(zones.Drain, "", "eu", "x", "y"); err == nil {
		t.Error("a clear that could not be persisted succeeded")
	}
	if o := c.Overrides(); len(o) != 1 {
		t.Errorf("the failed clear took effect: %v", o)
	}
}

// TestStateFile: the file is written whole (no temporary files left), read
// back equal, and a corrupt one stops New with a clear error instead of
// starting without the overrides it held.
func TestStateFile(t *testing.T) {
	dir := t.TempDir()
	tab := newTable()
	tab.mergeVerdict(sampleEntry())
	tab.mergeOverride(sampleOverride(), time.Time{})
	tab.mergeBeat(sampleBeat())
	members := []Member{{Name: "n2", Region: "eu", State: stateDead}}
	data, err := encodeStateFile("n1", time.Now(), 99, tab, members)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(dir, stateFileName, data); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(dir, stateFileName, data); err != nil { // over an existing one
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("%d files in the state dir, want only the state file", len(ents))
	}
	l, err := readStateFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if l.tab.digest() != tab.digest() || l.clock < 99 || len(l.members) != 1 || l.members[0] != members[0] {
		t.Errorf("read back %+v", l)
	}
	if l, err := readStateFile(t.TempDir()); err != nil || len(l.tab.overrides) != 0 {
		t.Errorf("a missing file: %+v, %v", l, err)
	}

	if err := os.WriteFile(filepath.Join(dir, stateFileName), data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, "n1", "127.0.0.176")
	cfg.StateDir = dir
	if _, err := New(cfg); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), stateFileName) {
		t.Errorf("New over a corrupt state file: %v, want ErrMalformed naming the file", err)
	}
}

// TestStateFileExpires: an override's Expires survives the state file,
// and a file written before overrides could expire (no expires field)
// still reads, its overrides never expiring.
func TestStateFileExpires(t *testing.T) {
	tab := newTable()
	x := sampleExpiring()
	tab.mergeOverride(x, time.Time{})
	data, err := encodeStateFile("n1", time.Now(), 1, tab, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"expires": "2023-11-15T00:13:20.0000005Z"`) {
		t.Errorf("the file does not say when the override expires:\n%s", data)
	}
	l, err := decodeStateFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.tab.overrideEntries(); len(got) != 1 || !same(got[0], x) {
		t.Errorf("read back %+v, want %+v", got, x)
	}

	old := `{"format": 1, "node": "n1", "saved": "2025-06-15T15:06:40Z", "clock": 114688000000000003,
	  "overrides": [{"action": "drain", "region": "eu-west", "who": "alice", "when": "2025-06-15T15:06:40Z",
	    "version": 114688000000000002, "node": "n1"}],
	  "verdicts": [], "heartbeats": [], "members": []}`
	l, err = decodeStateFile([]byte(old))
	if err != nil {
		t.Fatalf("a file without expires: %v", err)
	}
	if got := l.tab.overrideEntries(); len(got) != 1 || !got[0].O.Expires.IsZero() || got[0].O.Region != "eu-west" {
		t.Errorf("a file without expires read back %+v", got)
	}

	bad := strings.Replace(string(data), `"expires": "2023-11-15T00:13:20.0000005Z"`, `"expires": "2023-11-14T00:00:00Z"`, 1)
	if _, err := decodeStateFile([]byte(bad)); !errors.Is(err, ErrInvalidOverride) {
		t.Errorf("a file with an override that expires before it was set: %v, want ErrInvalidOverride", err)
	}
}

// TestRejoinAfterPeersRestart: a node whose peers all died and came back
// (new memberlist instances on the same addresses, which join no one)
// rejoins them by itself.
func TestRejoinAfterPeersRestart(t *testing.T) {
	t.Parallel()
	ips := []string{"127.0.0.181", "127.0.0.182", "127.0.0.183"}
	nodes := cluster(t, ips, func(c *Config) { c.RejoinInterval = 200 * time.Millisecond })
	if err := nodes[2].SetOverride(zones.Override{Action: zones.Drain, Region: "eu"}); err != nil {
		t.Fatal(err)
	}
	converged(t, nodes, 5*time.Second)
	nodes[0].kill(t)
	nodes[1].kill(t)
	waitFor(t, 10*time.Second, "n3 sees its peers dead and is isolated", func() bool {
		return aliveCount(nodes[2].Cluster) == 1 && nodes[2].Status().Isolated
	})
	var back []*node
	for k := range 2 {
		cfg := testConfig(t, nodes[k].Name(), ips[k])
		cfg.Bind = nodes[k].Addr() // the same address; no seeds, no Join
		back = append(back, start(t, cfg))
	}
	all := append(back, nodes[2])
	waitFor(t, 10*time.Second, "all three are alive on every node without a manual join", func() bool {
		for _, n := range all {
			if aliveCount(n.Cluster) != 3 {
				return false
			}
		}
		return true
	})
	converged(t, all, 5*time.Second)
	for _, n := range back {
		if len(n.Overrides()) != 1 {
			t.Errorf("%s came back empty and did not get the drain: %v", n.Name(), n.Overrides())
		}
	}
	if nodes[2].Status().Isolated {
		t.Error("n3 is still isolated")
	}
}
