package gossip

import (
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/zones"
)

// TestObservations: every observer's verdict with whether it votes — a
// live fresh observer does, a dead or stale one does not, a lagging one
// still does until MaxAge, a retracted one is left out, and this node's
// own stop voting when it distrusts itself — and the view is the quorum
// of exactly the voting ones.
func TestObservations(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	c := bareCluster(t, "n1", clk.Now, nil)
	now := clk.Now()
	maxAge := c.cfg.MaxAge
	c.mu.Lock()
	for name, state := range map[string]string{"n2": stateAlive, "n3": stateDead, "n4": stateAlive} {
		c.members[name] = &memberRec{Member: Member{Name: name, State: state}, since: now}
	}
	c.mu.Unlock()
	const a, b = "http://192.0.2.1:80/#a", "http://192.0.2.2:80/#b"
	v := physical(now)
	entry := func(origin, target string, s zones.State, age time.Duration) Entry {
		v++
		return Entry{Origin: origin, Target: target, Version: v,
			Verdict: zones.TargetVerdict{State: s, Reason: origin, Since: now.Add(-time.Hour), Checked: now.Add(-age)}}
	}
	lagging := entry("n4", b, zones.Down, maxAge/2+time.Second)
	lagging.Lagging = true
	retracted := entry("n2", b, zones.Down, 0)
	retracted.Removed = true
	c.merge([]Entry{
		entry("n1", a, zones.Down, 0),               // self, fresh
		entry("n2", a, zones.Up, time.Second),       // live, fresh
		entry("n3", a, zones.Down, 0),               // dead
		entry("n4", a, zones.Down, maxAge+1),        // stale
		entry("n1", b, zones.Up, 0),                 // self, fresh
		lagging,                                     // lagging, still within MaxAge
		retracted,                                   // left out
		entry("n3", "http://192.0.2.3:80/#c", 0, 0), // a target only a dead node observes
	}, nil, nil, false)
	c.recompute()

	type want struct {
		target, origin  string
		lagging, voting bool
	}
	check := func(name string, ws []want) {
		t.Helper()
		got := c.Observations()
		if len(got) != len(ws) {
			t.Fatalf("%s: %d observations %+v, want %d", name, len(got), got, len(ws))
		}
		for i, w := range ws {
			g := got[i]
			if g.Target != w.target || g.Origin != w.origin || g.Lagging != w.lagging || g.Voting != w.voting {
				t.Errorf("%s: observation %d is %s by %s lagging %v voting %v, want %+v", name, i, g.Target, g.Origin, g.Lagging, g.Voting, w)
			}
		}
		// The view is the quorum of the voting observations, and of
		// nothing else.
		var votes []Entry
		for _, o := range got {
			if o.Voting {
				votes = append(votes, Entry{Origin: o.Origin, Target: o.Target, Verdict: o.Verdict, Version: 1})
			}
		}
		all := []string{"n1", "n2", "n3", "n4"}
		want, _ := Quorum("", all, votes, clk.Now(), 365*24*time.Hour, c.cfg.QuorumShare)
		view := c.Verdicts()
		if !sameView(view, want) {
			t.Errorf("%s: view %v, the voting observers' quorum %v", name, view, want)
		}
	}
	check("mixed", []want{
		{a, "n1", false, true},
		{a, "n2", false, true},
		{a, "n3", false, false},
		{a, "n4", false, false},
		{b, "n1", false, true},
		{b, "n4", true, true},
		{"http://192.0.2.3:80/#c", "n3", false, false},
	})
	if s := c.Verdicts()[a]; s.State != zones.Up { // one down, one up of two: no majority
		t.Errorf("a is %s by %q", s.State, s.Reason)
	}

	// The lagging entry stops voting MaxAge after its own Checked.
	clk.Add(maxAge / 2)
	c.recompute()
	obs := c.Observations()
	if o := obs[5]; o.Origin != "n4" || o.Voting {
		t.Errorf("a lagging entry past MaxAge: %+v", o)
	}

	// This node sees both of its targets down while n2 sees a up: it
	// distrusts itself, and its own observations stop voting.
	now = clk.Now()
	c.merge([]Entry{entry("n1", a, zones.Down, 0), entry("n1", b, zones.Down, 0), entry("n2", a, zones.Up, 0)}, nil, nil, false)
	c.recompute()
	if !c.Status().SelfDistrust {
		t.Fatal("n1 does not distrust itself")
	}
	check("self-distrust", []want{
		{a, "n1", false, false},
		{a, "n2", false, true},
		{a, "n3", false, false},
		{a, "n4", false, false},
		{b, "n1", false, false},
		{b, "n4", true, false},
		{"http://192.0.2.3:80/#c", "n3", false, false},
	})
}
