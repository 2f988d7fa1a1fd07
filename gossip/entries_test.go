package gossip

import (
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/zones"
)

// TestOverrideEntries: every entry held, in Overrides' order, with the
// node that wrote it and its version's time — a local set, one received
// by gossip, a clear and an expiry — as package node diffs them to audit.
func TestOverrideEntries(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	c := bareCluster(t, "n1", clk.Now, nil)
	start := clk.Now()
	pin := zones.Override{Action: zones.Pin, Pool: "www.example.com.", Region: "eu", Who: "alice", Expires: start.Add(time.Minute)}
	drain := zones.Override{Action: zones.Drain, Region: "us", Who: "bob"}
	for _, o := range []zones.Override{pin, drain} {
		if err := c.SetOverride(o); err != nil {
			t.Fatal(err)
		}
	}
	// One from n2, by gossip, written a second later by its clock.
	remote := overrideEntry{O: zones.Override{Action: zones.Drain, Pool: "api.example.com.", Region: "ap", Who: "carol",
		When: start.Add(time.Second)}, Version: physical(start.Add(time.Second)), Node: "n2"}
	c.merge(nil, []overrideEntry{remote}, nil, false)
	before := c.OverrideEntries()

	clk.Add(2 * time.Second)
	if err := c.ClearOverride(zones.Drain, "", "us", "dave", "done"); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute) // the pin expires
	got := c.OverrideEntries()

	type want struct {
		region, who, node string
		version           time.Time
		cleared, expired  bool
	}
	check := func(name string, got []OverrideEntry, ws []want) {
		t.Helper()
		if len(got) != len(ws) {
			t.Fatalf("%s: %d entries %+v, want %d", name, len(got), got, len(ws))
		}
		for i, w := range ws {
			g := got[i]
			if g.Override.Region != w.region || g.Override.Who != w.who || g.Node != w.node || !g.Version.Equal(w.version) ||
				g.Cleared != w.cleared || g.Expired != w.expired {
				t.Errorf("%s: entry %d is %+v, want %+v", name, i, g, w)
			}
		}
	}
	// Drains (pool "" before api.) then the pin.
	check("before", before, []want{
		{"us", "bob", "n1", start, false, false},
		{"ap", "carol", "n2", start.Add(time.Second), false, false},
		{"eu", "alice", "n1", start, false, false},
	})
	check("after", got, []want{
		{"us", "dave", "n1", start.Add(2 * time.Second), true, false},
		{"ap", "carol", "n2", start.Add(time.Second), false, false},
		{"eu", "alice", "n1", start, false, true},
	})
	if !got[2].Override.Expires.Equal(pin.Expires) || !got[0].Override.Expires.IsZero() {
		t.Errorf("expires: the pin's %v, the tombstone's %v", got[2].Override.Expires, got[0].Override.Expires)
	}
	// Overrides is OverrideEntries in force, in the same order.
	var inForce []zones.Override
	for _, e := range got {
		if !e.Cleared && !e.Expired {
			inForce = append(inForce, e.Override)
		}
	}
	if o := c.Overrides(); len(o) != len(inForce) || o[0] != inForce[0] {
		t.Errorf("Overrides %v, want the entries in force %v", o, inForce)
	}
	// Collected entries leave.
	clk.Add(c.cfg.TombstoneTTL)
	c.maintain()
	if got := c.OverrideEntries(); len(got) != 1 || got[0].Node != "n2" {
		t.Errorf("after TombstoneTTL: %+v, want only n2's drain", got)
	}
}
