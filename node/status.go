package node

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"time"

	"github.com/meridian-gtm/meridian/admin"
	"github.com/meridian-gtm/meridian/zones"
)

// Status is the cluster as this node sees it: members, each pool's
// regions with the quorum verdict and every observer's, where each
// continent's clients go, and the overrides in force.
func (b adminBackend) Status(context.Context) (admin.Status, error) {
	n := b.n
	snap := n.store.Load()
	cfg := snap.Inputs.Config
	st := admin.Status{Node: n.name(), Time: n.now(), Overrides: b.Overrides(), ConfigAgreement: true, Members: []admin.Member{},
		Pools: []admin.PoolStatus{}, Regions: []admin.RegionInfo{}, Answers: map[string]uint64{}}
	seen := map[string]bool{}
	for _, z := range cfg.Zones {
		for _, name := range slices.Sorted(maps.Keys(z.Regions)) {
			if r := z.Regions[name]; !seen[name] {
				seen[name] = true
				st.Regions = append(st.Regions, admin.RegionInfo{Name: name, Lat: r.Lat, Lon: r.Lon, Country: r.Country, Continent: r.Continent})
			}
		}
	}
	slices.SortFunc(st.Regions, func(a, b admin.RegionInfo) int { return cmp.Compare(a.Name, b.Name) })
	snap.AnswerCounts(func(string, uint64) {}, func(_, region string, n uint64) { st.Answers[region] += n })
	if st.Overrides == nil {
		st.Overrides = []admin.Override{}
	}
	// observer → target → its verdict, and whether it votes now.
	byObserver := map[string]map[string]observed{}
	if n.cluster != nil {
		cs := n.cluster.Status()
		st.Isolated, st.SelfDistrust, st.ConfigAgreement = cs.Isolated, cs.SelfDistrust, cs.ConfigAgreement
		for _, m := range cs.Members {
			am := admin.Member{Name: m.Name, Region: m.Region, State: m.State, Version: m.Version, ConfigHash: m.ConfigHash}
			if m.Addr.IsValid() {
				am.Addr = m.Addr.String()
			}
			st.Members = append(st.Members, am)
		}
		for _, o := range n.cluster.Observations() {
			if byObserver[o.Origin] == nil {
				byObserver[o.Origin] = map[string]observed{}
			}
			byObserver[o.Origin][o.Target] = observed{o.Verdict, o.Lagging, o.Voting}
		}
	} else {
		st.Members = append(st.Members, admin.Member{Name: n.name(), State: "alive", Version: n.cfg.Version, ConfigHash: n.configHash()})
		own := map[string]observed{}
		for id, v := range n.prober.Verdicts() {
			own[id] = observed{v: v, votes: true}
		}
		byObserver[n.name()] = own
	}
	// Each observer's verdicts folded alone give its view of each member.
	views := map[string]zones.HealthView{}
	for name, ts := range byObserver {
		vs := make(map[string]zones.TargetVerdict, len(ts))
		for id, o := range ts {
			vs[id] = o.v
		}
		views[name] = zones.FoldHealth(cfg, vs)
	}
	targetsOf := map[zones.MemberKey][]string{}
	for _, t := range cfg.Targets() {
		for _, k := range t.Members {
			targetsOf[k] = append(targetsOf[k], t.ID)
		}
	}
	observers := slices.Sorted(maps.Keys(byObserver))
	live := b.liveOverrides()
	for _, z := range cfg.Zones {
		for _, p := range z.Pools {
			ps := admin.PoolStatus{Pool: p.Owner, Policy: p.Policy.String(), Answering: map[string]string{}}
			if rt, ok := snap.Routing(p.Owner); ok {
				for code, region := range rt.Continents {
					ps.Answering[code] = label(region)
				}
			}
			for _, m := range p.Members {
				k := zones.MemberKey{Pool: p.Owner, Region: m.Region}
				mh := snap.Inputs.Health[k]
				rs := admin.RegionStatus{Region: m.Region, Verdict: mh.State.String(), Pending: mh.Pending, Reason: mh.Reason, Observers: []admin.ObserverVerdict{}}
				switch {
				case pinnedTo(live, p.Owner) == m.Region:
					rs.Override = "pinned"
				case drained(live, p.Owner, m.Region):
					rs.Override = "drained"
				}
				for _, name := range observers {
					checked, votes, ok := observerVerdict(byObserver[name], targetsOf[k])
					if !ok {
						continue // it does not probe this member
					}
					mv := views[name][k]
					rs.Observers = append(rs.Observers, admin.ObserverVerdict{Node: name, Verdict: mv.State.String(), Reason: mv.Reason,
						Checked: checked, Lagging: !votes})
				}
				ps.Regions = append(ps.Regions, rs)
			}
			st.Pools = append(st.Pools, ps)
		}
	}
	slices.SortFunc(st.Pools, func(a, b admin.PoolStatus) int { return cmp.Compare(a.Pool, b.Pool) })
	return st, nil
}

// observed is one observer's latest verdict on one target.
type observed struct {
	v              zones.TargetVerdict
	lagging, votes bool
}

// observerVerdict summarises an observer's verdicts on a member's
// targets: the latest check, and whether every one of them votes now. ok
// is false when it has none (it does not probe the member).
func observerVerdict(ts map[string]observed, targets []string) (checked time.Time, votes, ok bool) {
	votes = true
	for _, id := range targets {
		o, has := ts[id]
		if !has {
			continue
		}
		ok = true
		votes = votes && o.votes && !o.lagging
		if o.v.Checked.After(checked) {
			checked = o.v.Checked
		}
	}
	return checked, votes, ok
}
