package node

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/meridian-gtm/meridian/admin"
	"github.com/meridian-gtm/meridian/gossip"
	"github.com/meridian-gtm/meridian/zones"
)

// overrideEntry is one override as this node knows it, in force or not:
// from the cluster's replicated table, or the node's own when it runs
// alone.
type overrideEntry struct {
	o       zones.Override
	node    string // the node that wrote this version
	version time.Time
	cleared bool
	expired bool
}

func (e overrideEntry) live() bool { return !e.cleared && !e.expired }

// id is the admin API's ID of the override's key.
func (e overrideEntry) id() string {
	return admin.OverrideID(admin.Action(e.o.Action.String()), e.o.Pool, e.o.Region)
}

// overrideEntries are the overrides this node knows, sorted by ID.
func (n *Node) overrideEntries() []overrideEntry {
	var out []overrideEntry
	if n.cluster != nil {
		for _, e := range n.cluster.OverrideEntries() {
			out = append(out, overrideEntry{o: e.Override, node: e.Node, version: e.Version, cleared: e.Cleared, expired: e.Expired})
		}
	} else {
		out = n.local.entries(n.now())
	}
	slices.SortFunc(out, func(a, b overrideEntry) int { return cmp.Compare(a.id(), b.id()) })
	return out
}

// localOverrides are the overrides of a node that runs alone: kept in
// memory (a lone node has no gossip state to persist them in, so they end
// with the process), keyed like the cluster's, expiring by themselves.
type localOverrides struct {
	mu    sync.Mutex
	m     map[string]overrideEntry // by gossip.OverrideKey
	timer *time.Timer              // fires at the next expiry
	kick  func()                   // tells the node to fold again
	self  string
}

func (l *localOverrides) set(o zones.Override, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]overrideEntry{}
	}
	if o.When.IsZero() {
		o.When = now
	}
	l.m[gossip.OverrideKey(o.Action, o.Pool, o.Region)] = overrideEntry{o: o, node: l.self, version: now}
	l.armLocked(now)
}

// clear ends the override under o's key; false when none is in force.
func (l *localOverrides) clear(o zones.Override, who, why string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := gossip.OverrideKey(o.Action, o.Pool, o.Region)
	e, ok := l.m[k]
	if !ok || !e.live() || e.expiredAt(now) {
		return false
	}
	e.o.Who, e.o.Why, e.o.When = who, why, now
	e.cleared, e.version = true, now
	l.m[k] = e
	l.armLocked(now)
	return true
}

func (e overrideEntry) expiredAt(now time.Time) bool {
	return !e.o.Expires.IsZero() && !now.Before(e.o.Expires)
}

// localKeep is how long an ended override stays listed, so the node's
// change detection sees how it ended.
const localKeep = time.Hour

// entries lists every override, marking the expired, and forgets those
// ended more than localKeep ago. It runs on every health fold, so it only
// reads the clock: the timer is armed when overrides change and when it
// fires.
func (l *localOverrides) entries(now time.Time) []overrideEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]overrideEntry, 0, len(l.m))
	for k, e := range l.m {
		e.expired = e.expiredAt(now)
		end := e.version
		if e.expired && !e.cleared {
			end = e.o.Expires
		}
		if !e.live() && now.Sub(end) > localKeep {
			delete(l.m, k)
			continue
		}
		out = append(out, e)
	}
	return out
}

// armLocked sets the timer for the next expiry of an override in force.
func (l *localOverrides) armLocked(now time.Time) {
	var next time.Time
	for _, e := range l.m {
		if e.live() && !e.o.Expires.IsZero() && e.o.Expires.After(now) && (next.IsZero() || e.o.Expires.Before(next)) {
			next = e.o.Expires
		}
	}
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	if !next.IsZero() && l.kick != nil {
		l.timer = time.AfterFunc(next.Sub(now), l.expired)
	}
}

// expired runs when the earliest expiry passes: the node folds again (and
// sees the override end), and the timer is set for the next one.
func (l *localOverrides) expired() {
	l.kick()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.armLocked(time.Now())
}

// stop releases the expiry timer.
func (l *localOverrides) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer != nil {
		l.timer.Stop()
	}
}
