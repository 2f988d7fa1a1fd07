package gossip

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"maps"
	"slices"
	"time"

	"github.com/meridian-gtm/meridian/zones"
)

// table is the replicated state: every origin's verdict entries, the
// newest heartbeat of every origin, and every override entry, tombstones
// included. Its methods apply the merge rules and do no locking:
// Cluster.mu guards it.
//
// Freshness. An entry is written only when its verdict changes, so its own
// Checked dates the change, not the last probe. Between changes the
// origin vouches for all of its entries at once with a heartbeat (every
// MaxAge/4): "as of T my entries are these versions" (a hash of its
// (target, version) list). A node whose copy of the origin's entries
// hashes the same takes T as their Checked (held.vouched); one whose copy
// differs is missing a version and takes nothing until it has caught up.
// The origin does not vouch for an entry whose last probe is over MaxAge/2
// old (Entry.Lagging): such an entry ages from its own Checked. So
// keeping a cluster's verdicts fresh costs one small message per node per
// heartbeat, not one per target.
type table struct {
	verdicts  map[string]map[string]*held // origin → target → entry
	sums      map[string]uint64           // origin → originSum, cached; deleted when the origin's entries change
	beats     map[string]heartbeat        // origin → its newest heartbeat
	overrides map[string]overrideEntry    // OverrideKey → entry
}

// held is an entry as this node holds it.
type held struct {
	Entry
	// vouched is the latest heartbeat time of the entry's origin that
	// vouched for this version. It is local (a heartbeat that reached this
	// node), not replicated.
	vouched time.Time
}

// checked is when the entry's verdict was last known to hold.
func (h *held) checked() time.Time {
	if h.vouched.After(h.Verdict.Checked) {
		return h.vouched
	}
	return h.Verdict.Checked
}

// heartbeat is an origin vouching for its entries.
type heartbeat struct {
	Origin  string
	Version uint64    // the origin's clock: a newer heartbeat replaces an older one
	AsOf    time.Time // the origin's time of vouching
	Sum     uint64    // originSum of the entries vouched for
}

func newTable() *table {
	return &table{
		verdicts:  map[string]map[string]*held{},
		sums:      map[string]uint64{},
		beats:     map[string]heartbeat{},
		overrides: map[string]overrideEntry{},
	}
}

// mergeVerdict keeps e if it is newer than the entry it would replace,
// then applies the origin's newest heartbeat if e completed the set it
// vouched for. It reports whether e was kept.
func (t *table) mergeVerdict(e Entry) bool {
	byTarget := t.verdicts[e.Origin]
	if old, ok := byTarget[e.Target]; ok && old.Version >= e.Version {
		return false
	}
	if byTarget == nil {
		byTarget = map[string]*held{}
		t.verdicts[e.Origin] = byTarget
	}
	byTarget[e.Target] = &held{Entry: e}
	delete(t.sums, e.Origin)
	if b, ok := t.beats[e.Origin]; ok {
		t.vouch(b)
	}
	return true
}

// mergeBeat keeps b if it is newer than the origin's last heartbeat and
// vouches with it if this node's copy of the origin's entries is the one
// it speaks for. It reports whether b was kept and whether it matched.
func (t *table) mergeBeat(b heartbeat) (kept, matched bool) {
	if old, ok := t.beats[b.Origin]; ok && old.Version >= b.Version {
		return false, false
	}
	t.beats[b.Origin] = b
	return true, t.vouch(b)
}

// vouch takes b's time as the Checked of the origin's entries that it
// covers (not removed, not lagging) if the origin's entries hash to b.Sum.
func (t *table) vouch(b heartbeat) bool {
	if t.originSum(b.Origin) != b.Sum {
		return false
	}
	for _, h := range t.verdicts[b.Origin] {
		if !h.Removed && !h.Lagging && b.AsOf.After(h.vouched) {
			h.vouched = b.AsOf
		}
	}
	return true
}

// originSum hashes the (target, version) list of one origin's entries,
// removed ones included: equal sums, equal copies.
func (t *table) originSum(origin string) uint64 {
	if s, ok := t.sums[origin]; ok {
		return s
	}
	byTarget := t.verdicts[origin]
	h := sha256.New()
	var buf []byte
	for _, target := range slices.Sorted(maps.Keys(byTarget)) {
		buf = appendString(buf[:0], target)
		buf = binary.AppendUvarint(buf, byTarget[target].Version)
		h.Write(buf)
	}
	s := binary.BigEndian.Uint64(h.Sum(nil))
	t.sums[origin] = s
	return s
}

// expired reports whether o is an override (not a tombstone) whose
// Expires has come at now: it is no longer in force, though its entry
// stays, so that its version still beats older copies under its key.
func (o *overrideEntry) expired(now time.Time) bool {
	return !o.Cleared && !o.O.Expires.IsZero() && !now.Before(o.O.Expires)
}

// retired is when o went out of force for good, which TombstoneTTL counts
// from: its version's time for a tombstone, its Expires for an override
// that expires, zero for one in force until cleared.
func (o *overrideEntry) retired() time.Time {
	if o.Cleared {
		return versionTime(o.Version)
	}
	return o.O.Expires
}

// mergeOverride keeps o if it is newer (by version, then writer) than the
// entry under its key. A tombstone, or an override that expired, retired
// before tombHorizon is refused: every node has collected it, or will. It
// reports whether o was kept.
func (t *table) mergeOverride(o overrideEntry, tombHorizon time.Time) bool {
	if r := o.retired(); !r.IsZero() && r.Before(tombHorizon) {
		return false
	}
	k := OverrideKey(o.O.Action, o.O.Pool, o.O.Region)
	if old, ok := t.overrides[k]; ok && !o.newer(old) {
		return false
	}
	t.overrides[k] = o
	return true
}

// gc drops verdict entries last known to hold before verdictHorizon (those
// of origins long gone, retractions, verdicts nobody vouched for since),
// heartbeats of origins without entries, and tombstones and expired
// overrides retired before tombHorizon (an expired override is kept as
// long as a tombstone would be, so that it beats a late older copy the
// same way). Overrides in force are never collected. It returns how many
// entries it dropped.
func (t *table) gc(verdictHorizon, tombHorizon time.Time) int {
	n := 0
	for origin, byTarget := range t.verdicts {
		for target, h := range byTarget {
			if h.checked().Before(verdictHorizon) {
				delete(byTarget, target)
				delete(t.sums, origin)
				n++
			}
		}
		if len(byTarget) == 0 {
			delete(t.verdicts, origin)
		}
	}
	for origin, b := range t.beats {
		if _, ok := t.verdicts[origin]; !ok && b.AsOf.Before(verdictHorizon) {
			delete(t.beats, origin)
		}
	}
	for k, o := range t.overrides {
		if r := o.retired(); !r.IsZero() && r.Before(tombHorizon) {
			delete(t.overrides, k)
			n++
		}
	}
	return n
}

// held is every verdict entry, sorted by origin then target.
func (t *table) held() []held {
	var out []held
	for _, origin := range slices.Sorted(maps.Keys(t.verdicts)) {
		byTarget := t.verdicts[origin]
		for _, target := range slices.Sorted(maps.Keys(byTarget)) {
			out = append(out, *byTarget[target])
		}
	}
	return out
}

// entries is every verdict entry as replicated, sorted by origin then
// target.
func (t *table) entries() []Entry {
	hs := t.held()
	out := make([]Entry, len(hs))
	for i := range hs {
		out[i] = hs[i].Entry
	}
	return out
}

// votes is every verdict entry with Checked set to when it was last known
// to hold: Quorum's input.
func (t *table) votes() []Entry {
	hs := t.held()
	out := make([]Entry, len(hs))
	for i := range hs {
		out[i] = hs[i].Entry
		out[i].Verdict.Checked = hs[i].checked()
	}
	return out
}

// heartbeats is every origin's newest heartbeat, sorted by origin.
func (t *table) heartbeats() []heartbeat {
	out := make([]heartbeat, 0, len(t.beats))
	for _, o := range slices.Sorted(maps.Keys(t.beats)) {
		out = append(out, t.beats[o])
	}
	return out
}

// overrideEntries is every override entry, tombstones included, sorted by
// key.
func (t *table) overrideEntries() []overrideEntry {
	out := make([]overrideEntry, 0, len(t.overrides))
	for _, k := range slices.Sorted(maps.Keys(t.overrides)) {
		out = append(out, t.overrides[k])
	}
	return out
}

// live is the overrides in force at now (no tombstones, none expired),
// sorted by action, pool and region.
func (t *table) live(now time.Time) []zones.Override {
	var out []zones.Override
	for _, o := range t.overrides {
		if !o.Cleared && !o.expired(now) {
			out = append(out, o.O)
		}
	}
	slices.SortFunc(out, compareOverrides)
	return out
}

// compareOverrides orders overrides by action, pool and region: the order
// of Overrides, in which no two overrides compare equal (a key names one).
func compareOverrides(a, b zones.Override) int {
	return cmp.Or(cmp.Compare(a.Action, b.Action), cmp.Compare(a.Pool, b.Pool), cmp.Compare(a.Region, b.Region))
}

// nextExpiry is the earliest Expires after now of an override in force;
// zero if none expires.
func (t *table) nextExpiry(now time.Time) time.Time {
	var next time.Time
	for _, o := range t.overrides {
		if e := o.O.Expires; !o.Cleared && e.After(now) && (next.IsZero() || e.Before(next)) {
			next = e
		}
	}
	return next
}

// counts is how many verdict entries, overrides in force, tombstones and
// expired overrides the table holds at now.
func (t *table) counts(now time.Time) (verdicts, overrides, tombstones, expired int) {
	for _, byTarget := range t.verdicts {
		verdicts += len(byTarget)
	}
	for _, o := range t.overrides {
		switch {
		case o.Cleared:
			tombstones++
		case o.expired(now):
			expired++
		default:
			overrides++
		}
	}
	return verdicts, overrides, tombstones, expired
}

// digest hashes the identity and version of every entry (verdicts of all
// origins, overrides with their tombstones): two nodes that hold the same
// versions of the same entries have the same digest. Heartbeats are left
// out: they date entries, they do not change them, so a converged
// cluster's digest stays put while nothing changes.
func (t *table) digest() string {
	h := sha256.New()
	var buf []byte
	for _, origin := range slices.Sorted(maps.Keys(t.verdicts)) {
		buf = append(buf[:0], 'v')
		buf = appendString(buf, origin)
		buf = binary.BigEndian.AppendUint64(buf, t.originSum(origin))
		h.Write(buf)
	}
	for _, o := range t.overrideEntries() {
		buf = append(buf[:0], 'o')
		buf = appendString(buf, OverrideKey(o.O.Action, o.O.Pool, o.O.Region))
		buf = binary.AppendUvarint(buf, o.Version)
		buf = appendString(buf, o.Node)
		if o.Cleared {
			buf = append(buf, 1)
		} else {
			buf = append(buf, 0)
		}
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
