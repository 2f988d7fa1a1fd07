package gossip

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
	"github.com/meridian-gtm/meridian/zones"
)

// SetLocalVerdicts hands this node's own verdicts, by target ID, to the
// cluster: typically the prober's Verdicts after each probe round. Entries
// whose State, Pending or Reason changed, new ones, and ones absent from v
// (retracted) get a new version and are broadcast; an unchanged verdict
// costs nothing, however often this is called. Call it at least every
// MaxAge/2: a target whose Checked is older than that is marked lagging
// and stops being vouched for by this node's heartbeats (so a stuck prober
// loses its vote after MaxAge), and one older than 10×MaxAge is retracted.
//
// The first call starts this node's heartbeats. Until then its persisted
// entries age from their last vouched time, and are not retracted: call it
// once the prober has verdicts, not before (an empty map retracts them).
func (c *Cluster) SetLocalVerdicts(v map[string]zones.TargetVerdict) {
	now := c.cfg.Now()
	local := make(map[string]zones.TargetVerdict, len(v))
	for id, tv := range v {
		if id == "" || len(id) > maxTargetLen || !utf8.ValidString(id) || tv.State > zones.Down {
			c.log.Debug("gossip verdict not shared: target ID empty, over the bound or not UTF-8, or state unknown", "target_len", len(id))
			continue
		}
		tv.Reason = truncate(strings.ToValidUTF8(tv.Reason, "?"), maxReasonLen)
		local[id] = tv
	}
	c.mu.Lock()
	c.local, c.localSet = local, true
	out := c.reconcileLocked(now)
	if len(out) > 0 {
		c.gen++
		c.dirty = true
	}
	c.mu.Unlock()
	for i := range out {
		c.broadcast(verdictName(&out[i]), encodeVerdict(&out[i]))
	}
	if len(out) > 0 {
		c.kickRecompute()
	}
}

// reconcileLocked writes a new version of every own entry that no longer
// matches c.local (changed, new, lagging flipped, retracted) and returns
// them.
func (c *Cluster) reconcileLocked(now time.Time) []Entry {
	self := c.cfg.Name
	lagAfter, dropAfter := c.cfg.MaxAge/2, c.verdictTTL()
	var out []Entry
	for _, id := range slices.Sorted(maps.Keys(c.local)) {
		tv := c.local[id]
		age := now.Sub(tv.Checked)
		if tv.Checked.IsZero() || age > dropAfter {
			continue // retracted below
		}
		lagging := age > lagAfter
		if old, ok := c.tab.verdicts[self][id]; ok && !old.Removed && old.Lagging == lagging &&
			old.Verdict.State == tv.State && old.Verdict.Pending == tv.Pending && old.Verdict.Reason == tv.Reason {
			continue
		}
		e := Entry{Origin: self, Target: id, Verdict: tv, Version: c.clock.Now(), Lagging: lagging}
		c.tab.mergeVerdict(e)
		out = append(out, e)
	}
	own := c.tab.verdicts[self]
	for _, id := range slices.Sorted(maps.Keys(own)) {
		h := own[id]
		if h.Removed {
			continue
		}
		if tv, ok := c.local[id]; ok && !tv.Checked.IsZero() && now.Sub(tv.Checked) <= dropAfter {
			continue
		}
		e := h.Entry
		e.Removed, e.Lagging, e.Version = true, false, c.clock.Now()
		e.Verdict.Checked = now // when it was retracted: it ages (and is collected) from here
		c.tab.mergeVerdict(e)
		out = append(out, e)
	}
	return out
}

// heartbeat vouches for this node's entries: it first brings them in line
// with the prober's latest verdicts (a target that has not been probed for
// MaxAge/2 becomes lagging), then broadcasts one heartbeat naming their
// versions' hash.
func (c *Cluster) heartbeat() {
	now := c.cfg.Now()
	c.mu.Lock()
	if !c.localSet {
		c.mu.Unlock()
		return
	}
	out := c.reconcileLocked(now)
	if len(out) > 0 {
		c.gen++
		c.dirty = true
	}
	var beat *heartbeat
	if len(c.tab.verdicts[c.cfg.Name]) > 0 {
		b := heartbeat{Origin: c.cfg.Name, Version: c.clock.Now(), AsOf: now, Sum: c.tab.originSum(c.cfg.Name)}
		c.tab.mergeBeat(b)
		c.beatsDirty = true
		beat = &b
	}
	c.mu.Unlock()
	for i := range out {
		c.broadcast(verdictName(&out[i]), encodeVerdict(&out[i]))
	}
	if beat != nil {
		c.broadcast(beatName(beat.Origin), encodeBeat(beat))
	}
	if len(out) > 0 {
		c.kickRecompute()
	}
}

// Verdicts is the quorum verdict per target (see Quorum) over the live
// members' fresh verdicts, ready for zones.FoldHealth. While this node is
// isolated it is the last view agreed before, frozen. The map is a copy.
func (c *Cluster) Verdicts() map[string]zones.TargetVerdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.view)
}

// SetOverride makes o the override under its OverrideKey, versioned with
// this node's clock (newer than anything it has seen), persisted (synced
// to disk) before it returns, then broadcast. o.Pool is canonicalized; a
// zero o.When becomes now. A non-zero o.Expires is when the override stops
// being in force on every node (see Overrides); it must be after now and
// not before o.When. If the state cannot be persisted, the override is
// undone and the error returned.
func (c *Cluster) SetOverride(o zones.Override) error {
	now := c.cfg.Now()
	o.Pool = canonicalPool(o.Pool)
	if o.When.IsZero() {
		o.When = now // before validating: Expires is checked against it
	}
	// Expires is compared by wall clock on every node: drop the monotonic
	// reading, which only this process has.
	o.Expires = o.Expires.Round(0)
	if err := validOverride(&o); err != nil {
		return fmt.Errorf("set override: %w", err)
	}
	if !o.Expires.IsZero() && !o.Expires.After(now) {
		// It would replace the override under its key and never be in
		// force: a clear without a tombstone, surely not what was meant.
		return fmt.Errorf("set %s override: expires %s, already past: %w", o.Action, o.Expires.Format(time.RFC3339), ErrInvalidOverride)
	}
	return c.writeOverride(overrideEntry{O: o, Version: c.clock.Now(), Node: c.cfg.Name})
}

// ClearOverride removes the override under (action, pool, region) with a
// tombstone: a versioned entry that spreads like an override and beats any
// older copy of it, kept for TombstoneTTL. For a pin, region is ignored (a
// pool has one pin). It returns ErrNoOverride if no such override is in
// force on this node (an expired one is not).
func (c *Cluster) ClearOverride(action zones.OverrideAction, pool, region string, who, why string) error {
	k := OverrideKey(action, pool, region)
	now := c.cfg.Now()
	c.mu.Lock()
	cur, ok := c.tab.overrides[k]
	c.mu.Unlock()
	if !ok || cur.Cleared || cur.expired(now) {
		return fmt.Errorf("clear %s override of pool %q region %q: %w", action, pool, region, ErrNoOverride)
	}
	o := cur.O
	// A tombstone says who cleared, why and when; when the cleared
	// override would have expired means nothing any more.
	o.Who, o.Why, o.When, o.Expires = who, why, now, time.Time{}
	if err := validOverride(&o); err != nil {
		return fmt.Errorf("clear override: %w", err)
	}
	return c.writeOverride(overrideEntry{O: o, Version: c.clock.Now(), Node: c.cfg.Name, Cleared: true})
}

// writeOverride applies a local override entry, persists it, then
// broadcasts it.
func (c *Cluster) writeOverride(e overrideEntry) error {
	k := OverrideKey(e.O.Action, e.O.Pool, e.O.Region)
	c.mu.Lock()
	prev, had := c.tab.overrides[k]
	kept := c.tab.mergeOverride(e, time.Time{})
	if kept {
		c.gen++
	}
	c.mu.Unlock()
	if !kept {
		return nil // a newer write for the key arrived meanwhile: it wins
	}
	if err := c.persist(); err != nil {
		c.mu.Lock()
		if cur := c.tab.overrides[k]; cur.Version == e.Version && cur.Node == e.Node {
			if had {
				c.tab.overrides[k] = prev
			} else {
				delete(c.tab.overrides, k)
			}
		}
		c.mu.Unlock()
		return fmt.Errorf("set %s override: %w", e.O.Action, err)
	}
	c.broadcast(overrideName(k), encodeOverride(&e))
	c.kickRecompute()
	return nil
}

// Overrides is the overrides in force (tombstones left out, and those
// whose Expires has come by Config.Now), sorted by action, pool and
// region. An override leaves it when it expires with no message from
// anyone: Run calls OnChange at that moment (see Config.OnChange).
func (c *Cluster) Overrides() []zones.Override {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tab.live(now)
}

// Observation is one observer's latest verdict on one target, as this
// node holds it, and whether it counts in the quorum.
type Observation struct {
	Target string // the target ID
	Origin string // the observer node
	// Verdict is the observer's latest verdict. Its Checked is when the
	// verdict was last known to hold: the observer's last change, or the
	// latest of its heartbeats that vouched for it, whichever is later —
	// what freshness is judged on.
	Verdict zones.TargetVerdict
	// Lagging: the observer no longer vouches for it with heartbeats (it
	// has not probed the target for MaxAge/2), so it ages from its own
	// Checked and stops voting MaxAge after it.
	Lagging bool
	// Voting: it counts in the quorum now — its origin is a live member,
	// it is fresh (checked within MaxAge), and it is not this node's own
	// while this node distrusts itself. This is Quorum's own choice of
	// voters, not a copy of its rules.
	Voting bool
}

// Observations is every observer's latest verdict on every target this
// node holds, retracted ones left out, sorted by target then origin.
// Voting is judged now, as the next fold of the view will: while this node
// is isolated, Verdicts serves the frozen view of before, not the one the
// voting observers make.
func (c *Cluster) Observations() []Observation {
	now := c.cfg.Now()
	c.mu.Lock()
	live, _ := c.liveLocked()
	votes := c.tab.votes()
	c.mu.Unlock()
	byTarget, _ := voters(c.cfg.Name, live, votes, now, c.cfg.MaxAge)
	voting := make(map[*Entry]bool, len(votes))
	for _, es := range byTarget {
		for _, e := range es {
			voting[e] = true
		}
	}
	out := make([]Observation, 0, len(votes))
	for i := range votes {
		e := &votes[i]
		if e.Removed {
			continue
		}
		out = append(out, Observation{Target: e.Target, Origin: e.Origin, Verdict: e.Verdict, Lagging: e.Lagging, Voting: voting[e]})
	}
	slices.SortFunc(out, func(a, b Observation) int {
		return cmp.Or(cmp.Compare(a.Target, b.Target), cmp.Compare(a.Origin, b.Origin))
	})
	return out
}

// OverrideEntry is an override entry as this node holds it: in force,
// expired or cleared, with the write that made it.
type OverrideEntry struct {
	// Override is the override as last written; for a tombstone, who
	// cleared it, why and when (its Expires is zero).
	Override zones.Override
	// Node wrote this version: the node the set or clear was made on,
	// whichever node it reached this one from.
	Node string
	// Version is the wall-clock part of the write's version (hybrid
	// logical clock, millisecond precision). With Node it names the
	// write: equal on every node that holds it.
	Version time.Time
	Cleared bool // a tombstone: the override was cleared
	// Expired: not cleared, and its Expires has come by this node's
	// clock (Config.Now), so it is not in force. A tombstone is never
	// Expired.
	Expired bool
}

// OverrideEntries is every override entry this node holds, sorted like
// Overrides: those in force, those expired and the tombstones, until they
// are collected (TombstoneTTL after they expired or were cleared).
//
// It is there for auditing: package node diffs successive results (say,
// on each OnChange) by OverrideKey. An entry that is new or whose
// (Version, Node) changed is a write — a set, or a clear if Cleared —
// made on Node, which is another node's name when it arrived by gossip;
// one whose Expired turned true has expired; one that is gone was
// collected, which is not an operator's act.
func (c *Cluster) OverrideEntries() []OverrideEntry {
	now := c.cfg.Now()
	c.mu.Lock()
	out := make([]OverrideEntry, 0, len(c.tab.overrides))
	for _, o := range c.tab.overrides {
		out = append(out, OverrideEntry{Override: o.O, Node: o.Node, Version: versionTime(o.Version),
			Cleared: o.Cleared, Expired: o.expired(now)})
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b OverrideEntry) int { return compareOverrides(a.Override, b.Override) })
	return out
}

// Status is the cluster as this node sees it.
type Status struct {
	Members         []Member // by name, this node included
	Isolated        bool     // serving the last agreed view, frozen (see Verdicts)
	SelfDistrust    bool     // this node's own votes are left out (see Flags)
	ConfigAgreement bool     // every live member announces this node's config hash
	Digest          string   // see Digest
	// ViewDigest hashes what this node answers from: the served verdicts'
	// states and the overrides in force. Nodes with equal view digests and
	// config hashes give the same answers.
	ViewDigest string
}

// Member is a cluster member as this node knows it.
type Member struct {
	Name, Region, Version, ConfigHash string
	Addr                              netip.AddrPort
	State                             string // alive, suspect, dead, left
}

// Status reports the members, isolation, self-distrust, config agreement
// and digests.
func (c *Cluster) Status() Status {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Status{Isolated: c.isolated, SelfDistrust: c.distrust, ConfigAgreement: c.agreeLocked(), Digest: c.tab.digest()}
	for _, r := range c.members {
		s.Members = append(s.Members, r.Member)
	}
	slices.SortFunc(s.Members, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
	h := sha256.New()
	for _, id := range slices.Sorted(maps.Keys(c.view)) {
		v := c.view[id]
		fmt.Fprintf(h, "v %q %d %t\n", id, v.State, v.Pending)
	}
	for _, o := range c.tab.live(now) {
		fmt.Fprintf(h, "o %d %q %q\n", o.Action, o.Pool, o.Region)
	}
	s.ViewDigest = hex.EncodeToString(h.Sum(nil)[:16])
	return s
}

// Digest hashes the replicated state: every origin's verdict entries
// (target and version) and every override entry, tombstones included. It
// is equal on every node once the cluster has converged, and stays put
// while nothing changes (heartbeats do not move it).
func (c *Cluster) Digest() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tab.digest()
}

// InstallKey adds a key to this node's keyring: it decrypts with it from
// now on and still encrypts with the primary. See the package doc for
// rotating keys.
func (c *Cluster) InstallKey(k []byte) error {
	if c.keyring == nil {
		return ErrNoKeyring
	}
	if err := c.keyring.AddKey(append([]byte(nil), k...)); err != nil {
		return fmt.Errorf("gossip install key: %w", err)
	}
	return nil
}

// UseKey makes an installed key the primary: this node encrypts with it
// from now on.
func (c *Cluster) UseKey(k []byte) error {
	if c.keyring == nil {
		return ErrNoKeyring
	}
	if err := c.keyring.UseKey(k); err != nil {
		return fmt.Errorf("gossip use key: %w", err)
	}
	return nil
}

// RemoveKey removes a key that is not the primary from the keyring.
func (c *Cluster) RemoveKey(k []byte) error {
	if c.keyring == nil {
		return ErrNoKeyring
	}
	if err := c.keyring.RemoveKey(k); err != nil {
		return fmt.Errorf("gossip remove key: %w", err)
	}
	return nil
}

// broadcast queues a message for gossip; a newer message of the same name
// replaces a queued older one.
func (c *Cluster) broadcast(name string, msg []byte) {
	c.queue.QueueBroadcast(&broadcast{name: name, msg: msg})
}

func verdictName(e *Entry) string    { return "v\x00" + e.Origin + "\x00" + e.Target }
func overrideName(key string) string { return "o\x00" + key }
func beatName(origin string) string  { return "h\x00" + origin }

// broadcast is one queued gossip message. It is a NamedBroadcast: the
// queue drops a queued message when one of the same name is queued (a
// newer version of the same entry), so a flapping target costs one
// message in flight, not one per flap.
type broadcast struct {
	name string
	msg  []byte
}

var _ memberlist.NamedBroadcast = (*broadcast)(nil)

func (b *broadcast) Invalidates(o memberlist.Broadcast) bool {
	ob, ok := o.(*broadcast)
	return ok && ob.name == b.name
}
func (b *broadcast) Name() string    { return b.name }
func (b *broadcast) Message() []byte { return b.msg }
func (b *broadcast) Finished()       {}
