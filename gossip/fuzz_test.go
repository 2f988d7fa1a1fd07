package gossip

import (
	"testing"
	"time"
)

// The fuzz targets: every decoder of bytes that come from the network (a
// peer's broadcast, push/pull state or node metadata) or from disk (the
// state file). Each must return a value or an error, never panic, and what
// it accepts must survive encoding again. Seeds are in testdata/fuzz.

func FuzzDecodeMessage(f *testing.F) {
	e, o, b := sampleEntry(), sampleOverride(), sampleBeat()
	f.Add(encodeVerdict(&e))
	f.Add(encodeOverride(&o))
	x := sampleExpiring()
	f.Add(encodeOverride(&x))
	f.Add(encodeBeat(&b))
	f.Add(encodeLeave(leaveIntent{Node: "n1", Version: 1}))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := decodeMessage(in)
		if err != nil {
			return
		}
		var again []byte
		switch m.Type {
		case msgVerdict:
			again = encodeVerdict(&m.Verdict)
		case msgOverride:
			again = encodeOverride(&m.Override)
		case msgBeat:
			again = encodeBeat(&m.Beat)
		case msgLeave:
			again = encodeLeave(m.Leave)
		default:
			t.Fatalf("accepted a message of type %d", m.Type)
		}
		m2, err := decodeMessage(again)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if !same(m.Verdict, m2.Verdict) || !same(m.Override, m2.Override) || !same(m.Beat, m2.Beat) || m.Leave != m2.Leave {
			t.Fatalf("round trip changed %+v into %+v", m, m2)
		}
		// What decodes merges without trouble.
		tab := newTable()
		tab.mergeVerdict(m.Verdict)
		tab.mergeOverride(m.Override, time.Time{})
		tab.mergeBeat(m.Beat)
		_ = tab.digest()
	})
}

func FuzzDecodeState(f *testing.F) {
	e, o, b := sampleEntry(), sampleOverride(), sampleBeat()
	f.Add(encodeState(&stateMsg{}))
	f.Add(encodeState(&stateMsg{Verdicts: []Entry{e, e}, Overrides: []overrideEntry{o, sampleExpiring()}, Beats: []heartbeat{b}}))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := decodeState(in)
		if err != nil {
			return
		}
		s2, err := decodeState(encodeState(&s))
		if err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		if !same(s, s2) {
			t.Fatalf("round trip changed %+v into %+v", s, s2)
		}
	})
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(encodeMeta(nodeMeta{Region: "eu-west", Version: "v1", ConfigHash: "abc"}))
	f.Add(encodeMeta(nodeMeta{}))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := decodeMeta(in)
		if err != nil {
			return
		}
		if m2, err := decodeMeta(encodeMeta(m)); err != nil || m2 != m {
			t.Fatalf("round trip of %+v: %+v, %v", m, m2, err)
		}
	})
}

func FuzzDecodeStateFile(f *testing.F) {
	tab := newTable()
	tab.mergeVerdict(sampleEntry())
	tab.mergeOverride(sampleOverride(), time.Time{})
	tab.mergeOverride(sampleExpiring(), time.Time{})
	tab.mergeBeat(sampleBeat())
	good, err := encodeStateFile("n1", time.Unix(1700000000, 0), 42, tab, []Member{{Name: "n2", State: stateDead}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"format":1}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		l, err := decodeStateFile(in)
		if err != nil {
			return
		}
		again, err := encodeStateFile("n", time.Time{}, l.clock, l.tab, l.members)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		l2, err := decodeStateFile(again)
		if err != nil {
			t.Fatalf("re-encoded state file does not decode: %v", err)
		}
		if l.tab.digest() != l2.tab.digest() || len(l.members) != len(l2.members) {
			t.Fatal("round trip changed the state")
		}
		// The digest hashes versions, not contents: compare the overrides
		// whole, so that a field the file drops (Expires) shows.
		a, b := l.tab.overrideEntries(), l2.tab.overrideEntries()
		for i := range a {
			if !same(a[i], b[i]) {
				t.Fatalf("round trip changed override %+v into %+v", a[i], b[i])
			}
		}
	})
}
