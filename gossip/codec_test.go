package gossip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/meridian-gtm/meridian/zones"
)

func sampleEntry() Entry {
	return Entry{Origin: "n1", Target: "http://192.0.2.1:80/healthz#0123456789ab", Version: 7 << logicalBits, Lagging: true,
		Verdict: zones.TargetVerdict{State: zones.Down, Pending: true, Reason: "3 consecutive failures, last: HTTP 503",
			Since: time.Unix(1700000000, 5), Checked: time.Unix(1700000010, 0)}}
}

func sampleOverride() overrideEntry {
	return overrideEntry{O: zones.Override{Action: zones.Pin, Pool: "www.gslb.example.com.", Region: "eu-west",
		Who: "alice", Why: "DR drill", When: time.Unix(1700000000, 0)}, Version: 9 << logicalBits, Node: "n2", Cleared: true}
}

// sampleExpiring is an override in force that expires.
func sampleExpiring() overrideEntry {
	return overrideEntry{O: zones.Override{Action: zones.Drain, Pool: "api.gslb.example.com.", Region: "us-east",
		Who: "bob", Why: "kernel upgrade", When: time.Unix(1700000000, 0), Expires: time.Unix(1700007200, 500)},
		Version: 10 << logicalBits, Node: "n1"}
}

func sampleBeat() heartbeat {
	return heartbeat{Origin: "n3", Version: 11 << logicalBits, AsOf: time.Unix(1700000020, 0), Sum: 0xdeadbeefcafef00d}
}

// same compares decoded values: times by instant, the rest exactly.
func same(a, b any) bool {
	return reflect.DeepEqual(normalize(a), normalize(b))
}

func normalize(v any) any {
	fix := func(t time.Time) time.Time {
		if t.IsZero() {
			return time.Time{}
		}
		return time.Unix(0, t.UnixNano()).UTC()
	}
	switch x := v.(type) {
	case Entry:
		x.Verdict.Since, x.Verdict.Checked = fix(x.Verdict.Since), fix(x.Verdict.Checked)
		return x
	case overrideEntry:
		x.O.When, x.O.Expires = fix(x.O.When), fix(x.O.Expires)
		return x
	case heartbeat:
		x.AsOf = fix(x.AsOf)
		return x
	case stateMsg:
		var out []any
		for _, e := range x.Verdicts {
			out = append(out, normalize(e))
		}
		for _, o := range x.Overrides {
			out = append(out, normalize(o))
		}
		for _, b := range x.Beats {
			out = append(out, normalize(b))
		}
		return out
	}
	return v
}

// TestCodecRoundTrip: every message type decodes to what was encoded.
func TestCodecRoundTrip(t *testing.T) {
	e, o, b, x := sampleEntry(), sampleOverride(), sampleBeat(), sampleExpiring()
	zero := Entry{Origin: "a", Target: "t", Version: 1} // zero times, up, no flags
	for _, tc := range []struct {
		name string
		msg  []byte
		want message
	}{
		{"verdict", encodeVerdict(&e), message{Type: msgVerdict, Verdict: e}},
		{"verdict with zero times", encodeVerdict(&zero), message{Type: msgVerdict, Verdict: zero}},
		{"override", encodeOverride(&o), message{Type: msgOverride, Override: o}},
		{"override that expires", encodeOverride(&x), message{Type: msgOverride, Override: x}},
		{"heartbeat", encodeBeat(&b), message{Type: msgBeat, Beat: b}},
		{"leave", encodeLeave(leaveIntent{Node: "n1", Version: 3}), message{Type: msgLeave, Leave: leaveIntent{Node: "n1", Version: 3}}},
	} {
		got, err := decodeMessage(tc.msg)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got.Type != tc.want.Type || !same(got.Verdict, tc.want.Verdict) || !same(got.Override, tc.want.Override) ||
			!same(got.Beat, tc.want.Beat) || got.Leave != tc.want.Leave {
			t.Errorf("%s: decoded %+v, want %+v", tc.name, got, tc.want)
		}
	}

	s := stateMsg{Verdicts: []Entry{e, zero}, Overrides: []overrideEntry{o, x}, Beats: []heartbeat{b}}
	got, err := decodeState(encodeState(&s))
	if err != nil {
		t.Fatalf("state: %v", err)
	}
	if !same(got, s) {
		t.Errorf("state decoded %+v, want %+v", got, s)
	}
	if got, err := decodeState(encodeState(&stateMsg{})); err != nil || len(got.Verdicts)+len(got.Overrides)+len(got.Beats) != 0 {
		t.Errorf("empty state: %+v, %v", got, err)
	}

	m := nodeMeta{Region: "eu-west", Version: "v1.2.3", ConfigHash: "abc123"}
	if got, err := decodeMeta(encodeMeta(m)); err != nil || got != m {
		t.Errorf("meta: %+v, %v", got, err)
	}
}

// TestCodecV1: messages of codec version 1, as a node of the previous
// release writes them (bytes fixed here, not produced by this encoder),
// still decode, with a zero Expires: a cluster upgrades node by node.
func TestCodecV1(t *testing.T) {
	when := time.Unix(1750000000, 0)
	version := physical(when) + 1
	// A pin of www to us-east by bob, written by us-east-1.
	pinV1 := []byte("\x01\x02\x02\x15www.gslb.example.com.\aus-east\x03bob\x02DR\x80\x80\xf8\xce\xcc\xee\x9f\xc90" +
		"\x81\x80\x80\xe0\x8d\x84\xdd\xcb\x01\tus-east-1\x00")
	want := overrideEntry{O: zones.Override{Action: zones.Pin, Pool: "www.gslb.example.com.", Region: "us-east", Who: "bob",
		Why: "DR", When: when}, Version: version, Node: "us-east-1"}
	m, err := decodeMessage(pinV1)
	if err != nil {
		t.Fatalf("v1 override: %v", err)
	}
	if m.Type != msgOverride || !same(m.Override, want) || !m.Override.O.Expires.IsZero() {
		t.Errorf("v1 override decoded %+v, want %+v", m.Override, want)
	}

	// The same override in a v1 state, behind one verdict-less header.
	stateV1 := append([]byte{1, byte(msgState), 0, 1}, pinV1[2:]...)
	stateV1 = append(stateV1, 0)
	s, err := decodeState(stateV1)
	if err != nil {
		t.Fatalf("v1 state: %v", err)
	}
	if len(s.Overrides) != 1 || !same(s.Overrides[0], want) {
		t.Errorf("v1 state decoded %+v, want one %+v", s.Overrides, want)
	}

	// Re-encoded, it is a v2 message that says the same.
	again := encodeOverride(&m.Override)
	if again[0] != codecVersion {
		t.Errorf("re-encoded with codec version %d, want %d", again[0], codecVersion)
	}
	if m2, err := decodeMessage(again); err != nil || !same(m2.Override, want) {
		t.Errorf("v1 override re-encoded as v2: %+v, %v", m2.Override, err)
	}
}

// TestCodecRejects: bad inputs give a clear error, never a panic or a
// partial value.
func TestCodecRejects(t *testing.T) {
	e := sampleEntry()
	good := encodeVerdict(&e)
	long := func(n int) string { return strings.Repeat("x", n) }
	over := e
	over.Target = long(maxTargetLen + 1)
	unversioned := e
	unversioned.Version = 0
	badState := append([]byte(nil), good...)
	// The flags byte follows origin, target and version.
	flagsAt := 2 + 1 + len(e.Origin) + 1 + len(e.Target) + len(binary.AppendUvarint(nil, e.Version))
	badState[flagsAt] = 3 // state 3 is no state
	badFlags := append([]byte(nil), good...)
	badFlags[flagsAt] |= 0x80
	notUTF8 := encodeVerdict(&Entry{Origin: "\xff", Target: "t", Version: 1})
	pinNoPool := overrideEntry{O: zones.Override{Action: zones.Pin, Region: "eu"}, Version: 1, Node: "n"}
	drainNoRegion := overrideEntry{O: zones.Override{Action: zones.Drain}, Version: 1, Node: "n"}
	badAction := overrideEntry{O: zones.Override{Action: 9, Region: "eu"}, Version: 1, Node: "n"}
	backwards := sampleExpiring()
	backwards.O.Expires = backwards.O.When.Add(-time.Second)
	for _, tc := range []struct {
		name string
		msg  []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"version only", []byte{codecVersion}, ErrMalformed},
		{"future codec version", append([]byte{codecVersion + 1}, good[1:]...), ErrVersion},
		{"codec version 0", append([]byte{0}, good[1:]...), ErrVersion},
		{"unknown type", []byte{codecVersion, 99}, ErrMalformed},
		{"state where a message is expected", encodeState(&stateMsg{}), ErrMalformed},
		{"truncated", good[:len(good)-1], ErrMalformed},
		{"trailing bytes", append(append([]byte(nil), good...), 0), ErrMalformed},
		{"oversize message", append(append([]byte(nil), good...), make([]byte, maxMessageBytes)...), ErrTooLarge},
		{"target over its bound", encodeVerdict(&over), ErrTooLarge},
		{"no version", encodeVerdict(&unversioned), ErrMalformed},
		{"state 3", badState, ErrMalformed},
		{"unknown flag", badFlags, ErrMalformed},
		{"not UTF-8", notUTF8, ErrMalformed},
		{"string length past the end", []byte{codecVersion, byte(msgVerdict), 100, 'a'}, ErrMalformed},
		{"varint overflow", append([]byte{codecVersion, byte(msgLeave), 1, 'n'}, bytes.Repeat([]byte{0xff}, 11)...), ErrMalformed},
		{"pin without pool", encodeOverride(&pinNoPool), ErrInvalidOverride},
		{"drain without region", encodeOverride(&drainNoRegion), ErrInvalidOverride},
		{"unknown action", encodeOverride(&badAction), ErrInvalidOverride},
		{"expires before it was set", encodeOverride(&backwards), ErrInvalidOverride},
	} {
		m, err := decodeMessage(tc.msg)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
		if err != nil && m.Type != 0 {
			t.Errorf("%s: a partial message %+v came with the error", tc.name, m)
		}
	}

	// Counts are checked before allocation: a tiny state claiming a
	// million entries, or more than the bound, is refused at once.
	huge := binary.AppendUvarint([]byte{codecVersion, byte(msgState)}, maxStateEntries+1)
	if _, err := decodeState(huge); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over-count state: %v, want ErrTooLarge", err)
	}
	lying := binary.AppendUvarint([]byte{codecVersion, byte(msgState)}, 1000)
	if _, err := decodeState(append(lying, make([]byte, 100)...)); !errors.Is(err, ErrMalformed) {
		t.Errorf("count past the input: %v, want ErrMalformed", err)
	}
	if _, err := decodeState(make([]byte, maxStateBytes+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversize state: %v, want ErrTooLarge", err)
	}
	if _, err := decodeMeta(make([]byte, memberlist.MetaMaxSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversize meta: %v, want ErrTooLarge", err)
	}
	if _, err := decodeMeta([]byte{2, 0, 0, 0}); !errors.Is(err, ErrVersion) {
		t.Errorf("meta of a later version: %v, want ErrVersion", err)
	}
}

// TestCodecSizes: the largest valid verdict and override fit one gossip
// packet, and a verdict is small.
func TestCodecSizes(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	e := Entry{Origin: long(maxNameLen), Target: long(maxTargetLen), Version: ^uint64(0),
		Verdict: zones.TargetVerdict{State: zones.Down, Reason: long(maxReasonLen), Since: time.Now(), Checked: time.Now()}}
	o := overrideEntry{O: zones.Override{Action: zones.Drain, Pool: long(maxPoolLen), Region: long(maxRegionLen),
		Who: long(maxWhoLen), Why: long(maxWhyLen), When: time.Now()}, Version: ^uint64(0), Node: long(maxNameLen)}
	for name, n := range map[string]int{"verdict": len(encodeVerdict(&e)), "override": len(encodeOverride(&o))} {
		if n > 1000 {
			t.Errorf("largest %s is %d bytes: over a gossip packet's room", name, n)
		}
	}
	typical := sampleEntry()
	if n := len(encodeVerdict(&typical)); n > 130 {
		t.Errorf("a typical verdict is %d bytes", n)
	}
}

// TestTruncate cuts on rune boundaries.
func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{{"abc", 5, "abc"}, {"abcdef", 3, "abc"}, {"aé", 2, "a"}, {"aé", 3, "aé"}, {"€€", 4, "€"}} {
		if got := truncate(tc.s, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

// TestHLC: versions increase, track the wall clock, move past what is
// observed, and refuse what comes from too far ahead.
func TestHLC(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	h := &hlc{now: func() time.Time { return now }}
	a := h.Now()
	b := h.Now()
	if b <= a {
		t.Fatalf("second reading %d not after first %d", b, a)
	}
	if !versionTime(a).Equal(now) {
		t.Errorf("version time %v, want %v", versionTime(a), now)
	}
	remote := physical(now.Add(10*time.Second)) + 5
	if !h.Observe(remote) {
		t.Fatal("a version 10s ahead refused")
	}
	if c := h.Now(); c <= remote {
		t.Errorf("reading %d after observing %d is not newer", c, remote)
	}
	if h.Observe(physical(now.Add(maxClockSkew + time.Second))) {
		t.Error("a version beyond the skew bound was observed")
	}
	// The wall clock going back does not make versions go back.
	now = now.Add(-time.Hour)
	if d := h.Now(); d <= remote {
		t.Errorf("reading %d after the clock went back is not newer than %d", d, remote)
	}
}

// TestTableMerge: last-writer-wins on verdicts and overrides; replays and
// older versions change nothing; tombstones expire; heartbeats vouch only
// for the entries they name.
func TestTableMerge(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	v := func(ms int64) uint64 { return physical(now.Add(time.Duration(ms) * time.Millisecond)) }
	tab := newTable()
	e := Entry{Origin: "a", Target: "t", Version: v(0), Verdict: zones.TargetVerdict{State: zones.Down, Checked: now}}
	if !tab.mergeVerdict(e) {
		t.Fatal("first entry refused")
	}
	if tab.mergeVerdict(e) {
		t.Error("the same version merged twice")
	}
	older := e
	older.Version, older.Verdict.State = v(-1), zones.Up
	if tab.mergeVerdict(older) || tab.verdicts["a"]["t"].Verdict.State != zones.Down {
		t.Error("an older version replaced a newer one")
	}
	newer := e
	newer.Version, newer.Verdict.State = v(1), zones.Up
	if !tab.mergeVerdict(newer) || tab.verdicts["a"]["t"].Verdict.State != zones.Up {
		t.Error("a newer version did not replace")
	}

	pin := func(region string, ms int64, node string) overrideEntry {
		return overrideEntry{O: zones.Override{Action: zones.Pin, Pool: "p.", Region: region}, Version: v(ms), Node: node}
	}
	tab.mergeOverride(pin("eu", 10, "n1"), time.Time{})
	if !tab.mergeOverride(pin("us", 20, "n2"), time.Time{}) {
		t.Error("a newer pin of the same pool did not replace")
	}
	if tab.mergeOverride(pin("eu", 10, "n1"), time.Time{}) {
		t.Error("a replayed older pin won")
	}
	if !tab.mergeOverride(pin("ap", 20, "n3"), time.Time{}) {
		t.Error("an equal version from a higher node name did not win the tie")
	}
	if tab.mergeOverride(pin("eu", 20, "n1"), time.Time{}) {
		t.Error("an equal version from a lower node name won the tie")
	}
	if got := tab.live(now); len(got) != 1 || got[0].Region != "ap" {
		t.Errorf("live overrides %v, want the pin to ap", got)
	}
	tomb := pin("ap", 30, "n1")
	tomb.Cleared = true
	tab.mergeOverride(tomb, time.Time{})
	if got := tab.live(now); len(got) != 0 {
		t.Errorf("live overrides after the tombstone: %v", got)
	}
	if tab.mergeOverride(pin("ap", 20, "n3"), time.Time{}) {
		t.Error("a replayed pin beat its tombstone")
	}
	// The tombstone expires; a tombstone older than the horizon is refused.
	if n := tab.gc(time.Time{}, now.Add(time.Second)); n != 1 || len(tab.overrides) != 0 {
		t.Errorf("gc dropped %d, left %v", n, tab.overrides)
	}
	if tab.mergeOverride(tomb, now.Add(time.Second)) {
		t.Error("an expired tombstone was taken back")
	}

	// Heartbeats: a matching one vouches for the covered entries, one for
	// another set of versions vouches for nothing until the set matches.
	tab = newTable()
	e1 := Entry{Origin: "a", Target: "t1", Version: v(1), Verdict: zones.TargetVerdict{Checked: now}}
	e2 := Entry{Origin: "a", Target: "t2", Version: v(2), Verdict: zones.TargetVerdict{Checked: now}}
	lag := Entry{Origin: "a", Target: "t3", Version: v(3), Lagging: true, Verdict: zones.TargetVerdict{Checked: now}}
	for _, e := range []Entry{e1, e2, lag} {
		tab.mergeVerdict(e)
	}
	full := tab.originSum("a")
	tab2 := newTable()
	tab2.mergeVerdict(e1)
	tab2.mergeVerdict(lag)
	later := now.Add(time.Minute)
	if kept, matched := tab2.mergeBeat(heartbeat{Origin: "a", Version: v(10), AsOf: later, Sum: full}); !kept || matched {
		t.Errorf("heartbeat over a copy missing t2: kept %v matched %v, want kept, unmatched", kept, matched)
	}
	if !tab2.verdicts["a"]["t1"].checked().Equal(now) {
		t.Error("an unmatched heartbeat vouched")
	}
	tab2.mergeVerdict(e2) // the missing version arrives: the kept heartbeat now matches
	for target, want := range map[string]time.Time{"t1": later, "t2": later, "t3": now} {
		if got := tab2.verdicts["a"][target].checked(); !got.Equal(want) {
			t.Errorf("%s checked %v, want %v", target, got, want)
		}
	}
	if kept, _ := tab2.mergeBeat(heartbeat{Origin: "a", Version: v(9), AsOf: later.Add(time.Hour), Sum: full}); kept {
		t.Error("an older heartbeat was kept")
	}
	if tab.digest() != tab2.digest() {
		t.Error("equal entries, different digests")
	}
	// Collection: verdicts last known to hold before the horizon go.
	if n := tab2.gc(later.Add(time.Second), time.Time{}); n != 3 || len(tab2.verdicts) != 0 || len(tab2.beats) != 0 {
		t.Errorf("gc dropped %d, left %v and beats %v", n, tab2.verdicts, tab2.beats)
	}
}

// TestOverrideKey: the identity of drains and pins.
func TestOverrideKey(t *testing.T) {
	k := OverrideKey
	if k(zones.Pin, "www.example.com", "eu") != k(zones.Pin, "WWW.example.com.", "us") {
		t.Error("two pins of one pool have different keys")
	}
	if k(zones.Drain, "p.", "eu") == k(zones.Drain, "p.", "us") {
		t.Error("drains of two regions share a key")
	}
	if k(zones.Drain, "", "eu") == k(zones.Drain, "p.", "eu") {
		t.Error("a drain of every pool shares a key with a drain of one")
	}
	if k(zones.Drain, "p.", "eu") == k(zones.Pin, "p.", "eu") {
		t.Error("a drain and a pin share a key")
	}
}
