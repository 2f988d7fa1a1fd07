package gossip

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meridian-gtm/meridian/zones"
)

// TestTableExpiry: an expired override is out of force but stays in the
// table, where its version still beats older copies, until TombstoneTTL
// after it expired; the next expiry is the earliest one still to come.
func TestTableExpiry(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const ttl = 72 * time.Hour
	drain := func(region string, ms int64, expires time.Time) overrideEntry {
		return overrideEntry{O: zones.Override{Action: zones.Drain, Pool: "p.", Region: region, When: now, Expires: expires},
			Version: physical(now.Add(time.Duration(ms) * time.Millisecond)), Node: "n1"}
	}
	tab := newTable()
	soon, later := now.Add(time.Minute), now.Add(time.Hour)
	for _, o := range []overrideEntry{drain("eu", 1, soon), drain("us", 2, later), drain("ap", 3, time.Time{})} {
		if !tab.mergeOverride(o, now.Add(-ttl)) {
			t.Fatalf("%s refused", o.O.Region)
		}
	}
	for _, tc := range []struct {
		at   time.Time
		live int
		next time.Time
	}{
		{now, 3, soon},
		{soon.Add(-time.Nanosecond), 3, soon},
		{soon, 2, later}, // Expires itself is out of force
		{later, 1, time.Time{}},
	} {
		if got := tab.live(tc.at); len(got) != tc.live {
			t.Errorf("at %s: %d in force (%v), want %d", tc.at.Sub(now), len(got), got, tc.live)
		}
		if got := tab.nextExpiry(tc.at); !got.Equal(tc.next) {
			t.Errorf("at %s: next expiry %v, want %v", tc.at.Sub(now), got, tc.next)
		}
	}
	if nv, no, nt, nx := tab.counts(soon); nv != 0 || no != 2 || nt != 0 || nx != 1 {
		t.Errorf("counts after the first expiry: %d %d %d %d, want 0 2 0 1", nv, no, nt, nx)
	}

	// The expired entry's version still wins: an older copy that never
	// expires does not come back.
	if tab.mergeOverride(drain("eu", 0, time.Time{}), soon.Add(-ttl)) {
		t.Error("an older copy beat the expired override")
	}
	if got := tab.live(soon); len(got) != 2 {
		t.Errorf("in force after the replay: %v", got)
	}

	// Collected TombstoneTTL after it expired, not before; an override
	// that never expires stays.
	if n := tab.gc(time.Time{}, soon); n != 0 { // the horizon TombstoneTTL after it expired
		t.Errorf("gc at the horizon dropped %d", n)
	}
	at := soon.Add(ttl).Add(time.Millisecond)
	if n := tab.gc(time.Time{}, at.Add(-ttl)); n != 1 || len(tab.overrides) != 2 {
		t.Errorf("gc past the horizon dropped %d, left %v", n, tab.overrides)
	}
	// And refused once collected, like a tombstone.
	if tab.mergeOverride(drain("eu", 1, soon), at.Add(-ttl)) {
		t.Error("an override that expired before the horizon was taken back")
	}
}

// TestOverrideExpiry: with an injected clock, an override leaves
// Overrides, the view digest and the metrics when its Expires passes,
// and the fold reports it (so OnChange is called) exactly once; the
// next expiry is watched after it. Setting an override already expired,
// or one that expires before it was set, is refused.
func TestOverrideExpiry(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	var changes atomic.Int32
	c := bareCluster(t, "n1", clk.Now, func() { changes.Add(1) })
	start := clk.Now()
	short := zones.Override{Action: zones.Drain, Pool: "www.example.com.", Region: "eu", Who: "alice", Expires: start.Add(10 * time.Second)}
	long := zones.Override{Action: zones.Pin, Pool: "api.example.com.", Region: "us", Who: "bob", Expires: start.Add(time.Hour)}
	forever := zones.Override{Action: zones.Drain, Region: "ap", Who: "carol"}
	for _, o := range []zones.Override{short, long, forever} {
		if err := c.SetOverride(o); err != nil {
			t.Fatal(err)
		}
	}
	c.recompute()
	if changes.Load() != 1 {
		t.Fatalf("%d OnChange calls after setting overrides, want 1", changes.Load())
	}
	next := func() time.Time {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.nextExpiry
	}
	if !next().Equal(short.Expires) {
		t.Errorf("next expiry %v, want the short one's %v", next(), short.Expires)
	}
	digest := c.Status().ViewDigest

	clk.Add(10*time.Second - time.Nanosecond)
	c.recompute()
	if len(c.Overrides()) != 3 || changes.Load() != 1 {
		t.Errorf("a nanosecond before it expires: %d overrides, %d OnChange calls; want 3, 1", len(c.Overrides()), changes.Load())
	}
	clk.Add(time.Nanosecond)
	if got := c.Overrides(); len(got) != 2 || got[0].Region != "ap" || got[1].Region != "us" {
		t.Errorf("when it expires: %v, want the drain of ap and the pin to us", got)
	}
	c.recompute()
	if changes.Load() != 2 {
		t.Errorf("%d OnChange calls once it expired, want 2", changes.Load())
	}
	if c.Status().ViewDigest == digest {
		t.Error("the view digest still counts the expired override")
	}
	if got := gauge(t, c.m.entries.WithLabelValues("expired")); got != 1 {
		t.Errorf("expired entries gauge %v, want 1", got)
	}
	if got := gauge(t, c.m.overrides); got != 2 {
		t.Errorf("overrides gauge %v, want 2", got)
	}
	c.recompute()
	if changes.Load() != 2 {
		t.Errorf("an expiry reported twice: %d OnChange calls", changes.Load())
	}
	if !next().Equal(long.Expires) {
		t.Errorf("next expiry %v, want the long one's %v", next(), long.Expires)
	}

	// Not in force: nothing to clear, and the digest of the state (which
	// still holds it) did not move.
	if err := c.ClearOverride(zones.Drain, "www.example.com.", "eu", "dave", "late"); !errorsIs(err, ErrNoOverride) {
		t.Errorf("clearing an expired override: %v, want ErrNoOverride", err)
	}
	now := clk.Now()
	for name, o := range map[string]zones.Override{
		"already expired": {Action: zones.Drain, Region: "eu", Expires: now},
		"before its When": {Action: zones.Drain, Region: "eu", When: now.Add(2 * time.Hour), Expires: now.Add(time.Hour)},
	} {
		if err := c.SetOverride(o); !errorsIs(err, ErrInvalidOverride) {
			t.Errorf("%s: %v, want ErrInvalidOverride", name, err)
		}
	}

	// Collected TombstoneTTL after it expired.
	c.maintain()
	if len(c.tab.overrides) != 3 {
		t.Fatalf("collected before TombstoneTTL: %d entries", len(c.tab.overrides))
	}
	clk.Add(c.cfg.TombstoneTTL + time.Millisecond)
	c.maintain()
	if len(c.tab.overrides) != 2 {
		t.Errorf("%d entries TombstoneTTL after the first expiry, want 2 (the pin expired later, the drain of ap)", len(c.tab.overrides))
	}
}

// TestExpiryTimer: Run's timer is set for the next expiry fold found,
// fires at that moment, follows it when it moves, stops when there is
// none, and never spins on a clock that lags the timers.
func TestExpiryTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bareCluster(t, "n1", time.Now, nil)
		setNext := func(at time.Time) {
			c.mu.Lock()
			c.nextExpiry = at
			c.mu.Unlock()
		}
		tm := time.NewTimer(time.Hour)
		tm.Stop()
		start := time.Now()
		fired := func() (time.Time, bool) {
			synctest.Wait()
			select {
			case at := <-tm.C:
				return at, true
			default:
				return time.Time{}, false
			}
		}

		var armed time.Time
		armed = c.armExpiry(tm, armed)
		time.Sleep(time.Hour)
		if _, ok := fired(); ok {
			t.Fatal("fired with nothing to expire")
		}

		start = time.Now()
		setNext(start.Add(5 * time.Second))
		armed = c.armExpiry(tm, armed)
		setNext(start.Add(2 * time.Second)) // an earlier one arrived
		armed = c.armExpiry(tm, armed)
		if again := c.armExpiry(tm, armed); !again.Equal(armed) {
			t.Errorf("re-armed for %v when already set for it", again)
		}
		time.Sleep(2*time.Second - time.Nanosecond)
		if _, ok := fired(); ok {
			t.Fatal("fired early")
		}
		time.Sleep(time.Nanosecond)
		if at, ok := fired(); !ok || at.Sub(start) != 2*time.Second {
			t.Fatalf("fired %v (%v) after arming, want at 2s", at.Sub(start), ok)
		}

		// None left: stopped.
		setNext(time.Time{})
		armed = c.armExpiry(tm, armed)
		time.Sleep(time.Hour)
		if _, ok := fired(); ok {
			t.Error("fired after the expiries were gone")
		}

		// A clock that says the expiry has not come when the timer fires
		// (Run then re-arms): the timer waits a millisecond, not zero.
		frozen := time.Now()
		c.cfg.Now = func() time.Time { return frozen }
		setNext(frozen)
		start = time.Now()
		c.armExpiry(tm, time.Time{})
		if at, ok := fired(); ok {
			t.Fatalf("fired at once (%v) on a lagging clock", at.Sub(start))
		}
		time.Sleep(time.Millisecond)
		if at, ok := fired(); !ok || at.Sub(start) != time.Millisecond {
			t.Errorf("on a lagging clock fired after %v (%v), want 1ms", at.Sub(start), ok)
		}
	})
}

// TestExpiryInjectedClock: a running node judges expiry by Config.Now,
// not the machine's clock, and calls OnChange when it passes, well before
// the next tick would.
func TestExpiryInjectedClock(t *testing.T) {
	t.Parallel()
	const behind = 365 * 24 * time.Hour
	now := func() time.Time { return time.Now().Add(-behind) }
	var rec changeTimes
	n := cluster(t, []string{"127.0.0.241"}, func(c *Config) {
		c.Now = now
		c.MaxAge = 30 * time.Second // a tick every second
		c.OnChange = rec.record
	})[0]
	expires := now().Add(300 * time.Millisecond)
	// By the machine's clock this expired a year ago.
	if err := n.SetOverride(zones.Override{Action: zones.Drain, Region: "eu", Who: "alice", Expires: expires}); err != nil {
		t.Fatal(err)
	}
	if len(n.Overrides()) != 1 {
		t.Fatalf("an override a year before its expiry by the injected clock is not in force: %v", n.Overrides())
	}
	realExpiry := expires.Add(behind)
	waitFor(t, 5*time.Second, "the override expires", func() bool { return len(n.Overrides()) == 0 })
	waitFor(t, 5*time.Second, "OnChange is called at the expiry", func() bool {
		_, ok := rec.firstSince(realExpiry)
		return ok
	})
	at, _ := rec.firstSince(realExpiry)
	t.Logf("OnChange %v after the expiry", at.Sub(realExpiry))
	if lag := at.Sub(realExpiry); lag > 300*time.Millisecond {
		t.Errorf("OnChange %v after the expiry: the timer did not fire, a tick did", lag)
	}
}

// TestOverrideExpiresEverywhere: an override set with a short expiry on
// one node of three is in force on all of them, then, at its expiry and
// with no message, gone from every node's Overrides, each calling
// OnChange; the entry stays (the digests still agree).
func TestOverrideExpiresEverywhere(t *testing.T) {
	t.Parallel()
	recs := make([]*changeTimes, 3)
	i := 0
	nodes := cluster(t, []string{"127.0.0.231", "127.0.0.232", "127.0.0.233"}, func(c *Config) {
		recs[i] = &changeTimes{}
		c.OnChange = recs[i].record
		c.MaxAge = 30 * time.Second // a tick every second: only the timer is on time
		i++
	})
	expires := time.Now().Add(500 * time.Millisecond)
	drain := zones.Override{Action: zones.Drain, Pool: "www.gslb.example.com.", Region: "eu-west", Who: "alice", Why: "patching", Expires: expires}
	if err := nodes[0].SetOverride(drain); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Until(expires), "the drain is in force on every node before it expires", func() bool {
		for _, n := range nodes {
			o := n.Overrides()
			if len(o) != 1 || o[0].Region != "eu-west" || !o[0].Expires.Equal(expires) {
				return false
			}
		}
		return true
	})
	waitFor(t, 5*time.Second, "the drain is gone from every node", func() bool {
		for _, n := range nodes {
			if len(n.Overrides()) != 0 {
				return false
			}
		}
		return true
	})
	if time.Now().Before(expires) {
		t.Fatal("the drain left before it expired")
	}
	waitFor(t, 5*time.Second, "every node calls OnChange at the expiry", func() bool {
		for _, r := range recs {
			if _, ok := r.firstSince(expires); !ok {
				return false
			}
		}
		return true
	})
	for k, r := range recs {
		at, _ := r.firstSince(expires)
		t.Logf("%s: OnChange %v after the expiry", nodes[k].Name(), at.Sub(expires))
		if lag := at.Sub(expires); lag > 300*time.Millisecond {
			t.Errorf("%s: OnChange %v after the expiry", nodes[k].Name(), lag)
		}
	}
	converged(t, nodes, 5*time.Second)
	for _, n := range nodes {
		if e := n.OverrideEntries(); len(e) != 1 || !e[0].Expired || e[0].Cleared || e[0].Node != "n1" {
			t.Errorf("%s holds %+v, want the expired drain written by n1", n.Name(), e)
		}
	}
}
