package gossip

import (
	"strings"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/zones"
)

// TestQuorum: the fold over observers, as a table of observers' verdicts
// and the verdict each target gets.
func TestQuorum(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	const maxAge = 30 * time.Second
	type vote struct {
		origin, target string
		state          zones.State
		age            time.Duration // since Checked
		pending        bool
		removed        bool
	}
	type want struct {
		state   zones.State
		pending bool
		reason  string // a substring of the reason
	}
	tests := []struct {
		name     string
		self     string
		live     []string
		share    float64
		votes    []vote
		want     map[string]want // absent targets must be absent
		distrust bool
	}{{
		name:  "majority of three says down",
		self:  "a",
		live:  []string{"a", "b", "c"},
		votes: []vote{{"a", "t", zones.Down, 0, false, false}, {"b", "t", zones.Down, 0, false, false}, {"c", "t", zones.Up, 0, false, false}},
		want:  map[string]want{"t": {zones.Down, false, "down by 2 of 3 observers (need 2)"}},
	}, {
		name:  "one of three down stays up",
		self:  "a",
		live:  []string{"a", "b", "c"},
		votes: []vote{{"a", "t", zones.Down, 0, false, false}, {"b", "t", zones.Up, 0, false, false}, {"c", "t", zones.Up, 0, false, false}},
		want:  map[string]want{"t": {zones.Up, false, "1 down, 0 degraded, 2 up; a: "}},
	}, {
		name:  "two of four is not a majority",
		self:  "a",
		live:  []string{"a", "b", "c", "d"},
		votes: []vote{{"a", "t", zones.Down, 0, false, false}, {"b", "t", zones.Down, 0, false, false}, {"c", "t", zones.Up, 0, false, false}, {"d", "t", zones.Up, 0, false, false}},
		want:  map[string]want{"t": {zones.Up, false, "need 3"}},
	}, {
		name:  "share one half: two of four is enough",
		self:  "a",
		live:  []string{"a", "b", "c", "d"},
		share: 0.5,
		votes: []vote{{"a", "t", zones.Down, 0, false, false}, {"b", "t", zones.Down, 0, false, false}, {"c", "t", zones.Up, 0, false, false}, {"d", "t", zones.Up, 0, false, false}},
		want:  map[string]want{"t": {zones.Down, false, "need 2"}},
	}, {
		name:  "share one: all must say down",
		self:  "a",
		live:  []string{"a", "b", "c"},
		share: 1,
		votes: []vote{{"a", "t", zones.Down, 0, false, false}, {"b", "t", zones.Down, 0, false, false}, {"c", "t", zones.Up, 0, false, false}},
		want:  map[string]want{"t": {zones.Up, false, "need 3"}},
	}, {
		name:  "share 0.6 of five is three",
		self:  "a",
		live:  []string{"a", "b", "c", "d", "e"},
		share: 0.6,
		votes: []vote{{"a", "t", zones.Down, 0, false, false}, {"b", "t", zones.Down, 0, false, false}, {"c", "t", zones.Down, 0, false, false}, {"d", "t", zones.Up, 0, false, false}, {"e", "t", zones.Up, 0, false, false}},
		want:  map[string]want{"t": {zones.Down, false, "down by 3 of 5 observers (need 3)"}},
	}, {
		name: "stale observations do not vote",
		self: "a",
		live: []string{"a", "b", "c"},
		// b and c are stale: a alone observes, and one of one is a majority.
		votes: []vote{{"a", "t", zones.Down, 0, false, false}, {"b", "t", zones.Up, 31 * time.Second, false, false}, {"c", "t", zones.Up, time.Hour, false, false}},
		want:  map[string]want{"t": {zones.Down, false, "down by 1 of 1 observers"}},
	}, {
		name:  "an observation exactly MaxAge old still votes",
		self:  "a",
		live:  []string{"a", "b"},
		votes: []vote{{"a", "t", zones.Down, 0, false, false}, {"b", "t", zones.Up, maxAge, false, false}},
		want:  map[string]want{"t": {zones.Up, false, "of 2 observers"}},
	}, {
		name:  "dead members do not vote",
		self:  "a",
		live:  []string{"a"},
		votes: []vote{{"a", "t", zones.Up, 0, false, false}, {"b", "t", zones.Down, 0, false, false}, {"c", "t", zones.Down, 0, false, false}},
		want:  map[string]want{"t": {zones.Up, false, "up by 1 of 1"}},
	}, {
		name:  "self is live even if not listed",
		self:  "a",
		live:  []string{"b"},
		votes: []vote{{"a", "t", zones.Down, 0, false, false}, {"b", "t", zones.Down, 0, false, false}},
		want:  map[string]want{"t": {zones.Down, false, "down by 2 of 2"}},
	}, {
		name:  "retractions do not vote",
		self:  "a",
		live:  []string{"a", "b"},
		votes: []vote{{"a", "t", zones.Down, 0, false, true}, {"b", "t", zones.Down, 0, false, true}},
		want:  map[string]want{},
	}, {
		name:  "degraded when down and degraded make a quorum",
		self:  "a",
		live:  []string{"a", "b", "c"},
		votes: []vote{{"a", "t", zones.Down, 0, false, false}, {"b", "t", zones.Degraded, 0, false, false}, {"c", "t", zones.Up, 0, false, false}},
		want:  map[string]want{"t": {zones.Degraded, false, "degraded by 2 of 3 observers (need 2): 1 down, 1 degraded, 1 up"}},
	}, {
		name:  "one degraded of three stays up",
		self:  "a",
		live:  []string{"a", "b", "c"},
		votes: []vote{{"a", "t", zones.Degraded, 0, false, false}, {"b", "t", zones.Up, 0, false, false}, {"c", "t", zones.Up, 0, false, false}},
		want:  map[string]want{"t": {zones.Up, false, "1 degraded"}},
	}, {
		name:  "pending if any observer is pending",
		self:  "a",
		live:  []string{"a", "b", "c"},
		votes: []vote{{"a", "t", zones.Up, 0, false, false}, {"b", "t", zones.Up, 0, true, false}, {"c", "t", zones.Up, 0, false, false}},
		want:  map[string]want{"t": {zones.Up, true, "up by 3 of 3"}},
	}, {
		name:  "no observers: absent (cold start is up)",
		self:  "a",
		live:  []string{"a", "b"},
		votes: nil,
		want:  map[string]want{},
	}, {
		name:  "targets fold independently",
		self:  "a",
		live:  []string{"a", "b"},
		votes: []vote{{"a", "t1", zones.Down, 0, false, false}, {"b", "t1", zones.Down, 0, false, false}, {"a", "t2", zones.Up, 0, false, false}, {"b", "t3", zones.Down, time.Minute, false, false}},
		want:  map[string]want{"t1": {zones.Down, false, "down by 2 of 2"}, "t2": {zones.Up, false, "up by 1 of 1"}},
	}, {
		name: "self-distrust: all own down, peers up",
		self: "a",
		live: []string{"a", "b", "c"},
		votes: []vote{
			{"a", "t1", zones.Down, 0, false, false}, {"a", "t2", zones.Down, 0, false, false},
			{"b", "t1", zones.Up, 0, false, false}, {"b", "t2", zones.Up, 0, false, false},
			{"c", "t1", zones.Up, 0, false, false},
		},
		want:     map[string]want{"t1": {zones.Up, false, "up by 2 of 2"}, "t2": {zones.Up, false, "up by 1 of 1"}},
		distrust: true,
	}, {
		name: "self-distrust leaves targets only self observes absent",
		self: "a",
		live: []string{"a", "b"},
		votes: []vote{
			{"a", "t1", zones.Down, 0, false, false}, {"a", "t2", zones.Down, 0, false, false},
			{"b", "t1", zones.Up, 0, false, false},
		},
		want:     map[string]want{"t1": {zones.Up, false, "up by 1 of 1"}},
		distrust: true,
	}, {
		name: "no self-distrust when the peers agree everything is down",
		self: "a",
		live: []string{"a", "b", "c"},
		votes: []vote{
			{"a", "t1", zones.Down, 0, false, false}, {"a", "t2", zones.Down, 0, false, false},
			{"b", "t1", zones.Down, 0, false, false}, {"b", "t2", zones.Down, 0, false, false},
			{"c", "t1", zones.Down, 0, false, false}, {"c", "t2", zones.Down, 0, false, false},
		},
		want: map[string]want{"t1": {zones.Down, false, "down by 3 of 3"}, "t2": {zones.Down, false, "down by 3 of 3"}},
	}, {
		name: "no self-distrust over a single target",
		self: "a",
		live: []string{"a", "b"},
		votes: []vote{
			{"a", "t1", zones.Down, 0, false, false}, {"b", "t1", zones.Up, 0, false, false},
		},
		want: map[string]want{"t1": {zones.Up, false, "1 down, 0 degraded, 1 up"}},
	}, {
		name: "no self-distrust when one own target is up",
		self: "a",
		live: []string{"a", "b"},
		votes: []vote{
			{"a", "t1", zones.Down, 0, false, false}, {"a", "t2", zones.Up, 0, false, false},
			{"b", "t1", zones.Up, 0, false, false}, {"b", "t2", zones.Up, 0, false, false},
		},
		want: map[string]want{"t1": {zones.Up, false, "of 2 observers"}, "t2": {zones.Up, false, "up by 2 of 2"}},
	}, {
		name: "no self-distrust when no peer observes what self does",
		self: "a",
		live: []string{"a", "b"},
		votes: []vote{
			{"a", "t1", zones.Down, 0, false, false}, {"a", "t2", zones.Down, 0, false, false},
			{"b", "t3", zones.Up, 0, false, false},
		},
		want: map[string]want{"t1": {zones.Down, false, "down by 1 of 1"}, "t2": {zones.Down, false, "down by 1 of 1"}, "t3": {zones.Up, false, "up by 1 of 1"}},
	}, {
		name: "stale peer verdicts do not make self distrust",
		self: "a",
		live: []string{"a", "b"},
		votes: []vote{
			{"a", "t1", zones.Down, 0, false, false}, {"a", "t2", zones.Down, 0, false, false},
			{"b", "t1", zones.Up, time.Minute, false, false},
		},
		want: map[string]want{"t1": {zones.Down, false, "down by 1 of 1"}, "t2": {zones.Down, false, "down by 1 of 1"}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var entries []Entry
			for i, v := range tc.votes {
				entries = append(entries, Entry{Origin: v.origin, Target: v.target, Version: uint64(i + 1), Removed: v.removed,
					Verdict: zones.TargetVerdict{State: v.state, Pending: v.pending, Reason: "seen by " + v.origin,
						Since: now.Add(-time.Hour), Checked: now.Add(-v.age)}})
			}
			got, flags := Quorum(tc.self, tc.live, entries, now, maxAge, tc.share)
			if flags.SelfDistrust != tc.distrust {
				t.Errorf("self-distrust = %v, want %v", flags.SelfDistrust, tc.distrust)
			}
			if len(got) != len(tc.want) {
				t.Errorf("got %d targets %v, want %d", len(got), got, len(tc.want))
			}
			for target, w := range tc.want {
				v, ok := got[target]
				if !ok {
					t.Errorf("%s: absent, want %s", target, w.state)
					continue
				}
				if v.State != w.state || v.Pending != w.pending || !strings.Contains(v.Reason, w.reason) {
					t.Errorf("%s: %s pending=%v %q; want %s pending=%v reason containing %q", target, v.State, v.Pending, v.Reason, w.state, w.pending, w.reason)
				}
			}
		})
	}
}

// TestQuorumTimes: the folded verdict's Checked is the latest observer's,
// its Since the latest among those voting for the folded state, and the
// reason names the first down observer's reason.
func TestQuorumTimes(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	e := func(origin string, s zones.State, since, checked time.Duration, reason string) Entry {
		return Entry{Origin: origin, Target: "t", Version: 1, Verdict: zones.TargetVerdict{State: s, Reason: reason,
			Since: now.Add(-since), Checked: now.Add(-checked)}}
	}
	got, _ := Quorum("a", []string{"a", "b", "c"}, []Entry{
		e("c", zones.Down, 5*time.Second, 3*time.Second, "HTTP 503"),
		e("b", zones.Down, 10*time.Second, 1*time.Second, "timeout"),
		e("a", zones.Up, time.Second, 2*time.Second, "ok"),
	}, now, time.Minute, 0)
	v := got["t"]
	if !v.Checked.Equal(now.Add(-time.Second)) {
		t.Errorf("checked %v, want the latest observer's", v.Checked)
	}
	if !v.Since.Equal(now.Add(-5 * time.Second)) {
		t.Errorf("since %v, want the latest Since among the down voters", v.Since)
	}
	if want := "down by 2 of 3 observers (need 2): 2 down, 0 degraded, 1 up; b: timeout"; v.Reason != want {
		t.Errorf("reason %q, want %q", v.Reason, want)
	}
}

// TestIsolationFreeze: a node reaching fewer than half of its known members
// serves the last view it computed while not isolated, and picks up the
// computed one again once it is reconnected.
func TestIsolationFreeze(t *testing.T) {
	isolatedTests := []struct {
		live, known int
		want        bool
	}{{1, 1, false}, {1, 2, false}, {1, 3, true}, {2, 3, false}, {2, 4, false}, {2, 5, true}, {3, 5, false}, {0, 1, true}}
	for _, tc := range isolatedTests {
		if got := isolated(tc.live, tc.known); got != tc.want {
			t.Errorf("isolated(live %d, known %d) = %v, want %v", tc.live, tc.known, got, tc.want)
		}
	}

	up := map[string]zones.TargetVerdict{"t": {State: zones.Up}}
	down := map[string]zones.TargetVerdict{"t": {State: zones.Down}}
	steps := []struct {
		computed map[string]zones.TargetVerdict
		isolated bool
		want     zones.State
	}{
		{up, false, zones.Up},     // agreed: up
		{down, true, zones.Up},    // cut off, sees down alone: keeps serving up
		{down, true, zones.Up},    // still
		{down, false, zones.Down}, // reconnected, the cluster agrees: down
		{up, true, zones.Down},    // cut off again: frozen at down
		{up, false, zones.Up},
	}
	var agreed map[string]zones.TargetVerdict
	for i, s := range steps {
		var serve map[string]zones.TargetVerdict
		serve, agreed = nextView(agreed, s.computed, s.isolated)
		if serve["t"].State != s.want {
			t.Errorf("step %d: serving %s, want %s", i, serve["t"].State, s.want)
		}
	}
}
