package node

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/meridian-gtm/meridian/admin"
	"github.com/meridian-gtm/meridian/gossip"
	"github.com/meridian-gtm/meridian/zones"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminBackend is the admin API's view of a node: it reads the serving
// snapshot and the cluster, and changes overrides through the cluster (or
// the node's own overrides when it runs alone).
type adminBackend struct{ n *Node }

var _ admin.Backend = adminBackend{}

func (b adminBackend) Metrics() http.Handler {
	return promhttp.HandlerFor(b.n.reg, promhttp.HandlerOpts{})
}

func (b adminBackend) Ready() (bool, string) { return b.n.ready() }

func (b adminBackend) Reload(context.Context) error {
	if err := b.n.Reload(); err != nil {
		return fmt.Errorf("%w: %w", admin.ErrInvalid, err)
	}
	return nil
}

func (b adminBackend) Explain(_ context.Context, client netip.Prefix, name string, qtype uint16) (*zones.Explanation, error) {
	return b.n.store.Load().Explain(client, name, qtype), nil
}

func (b adminBackend) Overrides() []admin.Override {
	var out []admin.Override
	for _, e := range b.n.overrideEntries() {
		if e.live() {
			out = append(out, admin.OverrideFrom(e.o, e.node))
		}
	}
	slices.SortFunc(out, func(a, b admin.Override) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (b adminBackend) SetOverride(_ context.Context, o admin.Override) error {
	n := b.n
	n.overrideMu.Lock()
	defer n.overrideMu.Unlock()
	snap := n.store.Load()
	pools, err := validateOverride(snap, o)
	if err != nil {
		return err
	}
	if !o.Force {
		if why := railConflict(snap, o, pools, b.liveOverrides()); why != "" {
			return fmt.Errorf("%w: %s; to do it anyway, repeat with force and a reason", admin.ErrConflict, why)
		}
	}
	zo := o.Zones()
	if n.cluster != nil {
		if err := n.cluster.SetOverride(zo); err != nil {
			return err
		}
	} else {
		n.local.set(zo, n.now())
	}
	// Publish on this node before answering, so the caller's next query
	// to it sees the change; gossip carries it to the others.
	n.healthChanged(0)
	return nil
}

func (b adminBackend) ClearOverride(_ context.Context, id, who, why string) error {
	n := b.n
	n.overrideMu.Lock()
	defer n.overrideMu.Unlock()
	var found *admin.Override
	for _, o := range b.Overrides() {
		if o.ID == id {
			found = &o
			break
		}
	}
	if found == nil {
		return fmt.Errorf("%w: no override %q is in force (GET /api/v1/overrides lists them)", admin.ErrNotFound, id)
	}
	zo := found.Zones()
	if n.cluster != nil {
		if err := n.cluster.ClearOverride(zo.Action, zo.Pool, zo.Region, who, why); err != nil {
			if errors.Is(err, gossip.ErrNoOverride) {
				return fmt.Errorf("%w: %w", admin.ErrNotFound, err)
			}
			return err
		}
	} else if !n.local.clear(zo, who, why, n.now()) {
		return fmt.Errorf("%w: no override %q is in force", admin.ErrNotFound, id)
	}
	n.healthChanged(0)
	return nil
}

func (b adminBackend) Preview(_ context.Context, o admin.Override) (admin.Preview, error) {
	snap := b.n.store.Load()
	pools, err := validateOverride(snap, o)
	if err != nil {
		return admin.Preview{}, err
	}
	cur := b.liveOverrides()
	p := admin.Preview{Override: o, Moves: []admin.Move{}, Conflict: railConflict(snap, o, pools, cur)}
	after := snap.With(snap.Inputs.Health, withOverride(cur, o.Zones()))
	for _, pl := range pools {
		was, _ := snap.Routing(pl.Owner)
		will, _ := after.Routing(pl.Owner)
		p.Moves = append(p.Moves, moves(pl.Owner, "continent", was.Continents, will.Continents, nil)...)
		// Countries only where a geo rule names them, as the API promises:
		// elsewhere the continent's line says where most clients go.
		ruled := []string{}
		for _, r := range pl.Geo {
			if r.Scope == zones.Country {
				ruled = append(ruled, r.Code)
			}
		}
		p.Moves = append(p.Moves, moves(pl.Owner, "country", was.Countries, will.Countries, ruled)...)
		if was.Unplaced != will.Unplaced {
			p.Moves = append(p.Moves, admin.Move{Pool: pl.Owner, Scope: "unplaced", From: label(was.Unplaced), To: label(will.Unplaced)})
		}
	}
	return p, nil
}

// moves lists the places whose answer differs, in code order; only is the
// codes to look at (nil: all).
func moves(pool, scope string, was, will map[string]string, only []string) []admin.Move {
	var out []admin.Move
	for _, code := range slices.Sorted(maps.Keys(was)) {
		if only != nil && !slices.Contains(only, code) {
			continue
		}
		if was[code] != will[code] {
			out = append(out, admin.Move{Pool: pool, Scope: scope, Code: code, From: label(was[code]), To: label(will[code])})
		}
	}
	return out
}

// label shows a routing answer; "" is a pool that answers nothing.
func label(s string) string {
	if s == "" {
		return "(no answer)"
	}
	return s
}

// liveOverrides are the overrides in force now, as zones takes them.
func (b adminBackend) liveOverrides() []zones.Override {
	var out []zones.Override
	for _, e := range b.n.overrideEntries() {
		if e.live() {
			out = append(out, e.o)
		}
	}
	return out
}

// withOverride is cur with o in force: it replaces the override of the
// same key (a pool's pin; a drain of the same pool and region).
func withOverride(cur []zones.Override, o zones.Override) []zones.Override {
	k := gossip.OverrideKey(o.Action, o.Pool, o.Region)
	out := slices.DeleteFunc(slices.Clone(cur), func(x zones.Override) bool {
		return gossip.OverrideKey(x.Action, x.Pool, x.Region) == k
	})
	return append(out, o)
}

// validateOverride checks that o names a pool and one of its regions (for
// a drain of every pool, a region some pool has) and returns the pools it
// touches.
func validateOverride(snap *zones.Snapshot, o admin.Override) ([]*zones.Pool, error) {
	var pools, withRegion []*zones.Pool
	var names []string
	for _, z := range snap.Inputs.Config.Zones {
		for _, p := range z.Pools {
			names = append(names, p.Owner)
			has := slices.ContainsFunc(p.Members, func(m *zones.Member) bool { return m.Region == o.Region })
			if has {
				withRegion = append(withRegion, p)
			}
			if p.Owner == o.Pool {
				pools = append(pools, p)
			}
		}
	}
	if o.Pool == admin.AllPools {
		if len(withRegion) == 0 {
			return nil, fmt.Errorf("%w: no pool has a member in region %q", admin.ErrInvalid, o.Region)
		}
		return withRegion, nil
	}
	if len(pools) == 0 {
		const shown = 8
		list := strings.Join(names[:min(len(names), shown)], ", ")
		if len(names) > shown {
			list += fmt.Sprintf(" and %d more", len(names)-shown)
		}
		return nil, fmt.Errorf("%w: no pool %q is served here (pools: %s)", admin.ErrInvalid, o.Pool, list)
	}
	p := pools[0]
	if !slices.Contains(withRegion, p) {
		var regions []string
		for _, m := range p.Members {
			regions = append(regions, m.Region)
		}
		return nil, fmt.Errorf("%w: pool %s has no member in region %q (its regions: %s)", admin.ErrInvalid, p.Owner, o.Region, strings.Join(regions, ", "))
	}
	return pools, nil
}

// railConflict says which safety rail o, touching pools (validateOverride's
// answer), would break, or "" when none: a pin to a region whose quorum
// verdict is down; a drain that leaves a pool no region to answer from, or
// only regions that are down.
func railConflict(snap *zones.Snapshot, o admin.Override, pools []*zones.Pool, cur []zones.Override) string {
	h := snap.Inputs.Health
	zo := o.Zones()
	if zo.Action == zones.Pin {
		if mh := h[zones.MemberKey{Pool: zo.Pool, Region: zo.Region}]; mh.State == zones.Down {
			return fmt.Sprintf("pinning %s to %s would send every client to a region whose quorum verdict is down (%s)", zo.Pool, zo.Region, mh.Reason)
		}
		return ""
	}
	after := withOverride(cur, zo)
	for _, p := range pools {
		if pinnedTo(after, p.Owner) != "" {
			continue // a pin decides the pool whatever is drained
		}
		var left, healthy []string
		for _, m := range p.Members {
			if drained(after, p.Owner, m.Region) {
				continue
			}
			left = append(left, m.Region)
			if h[zones.MemberKey{Pool: p.Owner, Region: m.Region}].State != zones.Down {
				healthy = append(healthy, m.Region)
			}
		}
		switch {
		case len(left) == 0:
			return fmt.Sprintf("draining %s would leave pool %s with no eligible region: every region of it would be drained", zo.Region, p.Owner)
		case len(healthy) == 0 && !drained(cur, p.Owner, zo.Region) && h[zones.MemberKey{Pool: p.Owner, Region: zo.Region}].State != zones.Down:
			return fmt.Sprintf("draining %s would drain the last healthy region of pool %s: the regions left (%s) are down by quorum", zo.Region, p.Owner, strings.Join(left, ", "))
		}
	}
	return ""
}

func drained(os []zones.Override, pool, region string) bool {
	return slices.ContainsFunc(os, func(o zones.Override) bool {
		return o.Action == zones.Drain && o.Region == region && (o.Pool == "" || o.Pool == pool)
	})
}

func pinnedTo(os []zones.Override, pool string) string {
	for _, o := range os {
		if o.Action == zones.Pin && o.Pool == pool {
			return o.Region
		}
	}
	return ""
}
