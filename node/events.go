package node

import (
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/meridian-gtm/meridian/admin"
)

// newAdmin builds the admin API and binds its listener when admin.listen
// is set, so a taken port fails the start, not the first request.
func (n *Node) newAdmin(cfg admin.Config) error {
	if cfg.Listen == "" {
		return nil
	}
	srv, err := admin.NewServer(cfg, adminBackend{n}, n.log.With("subsystem", "admin"), n.now)
	if err != nil {
		return err
	}
	if cfg.AuditFile != "" {
		// The audit log's directory may be the cluster's state directory,
		// which gossip only makes later.
		if err := os.MkdirAll(filepath.Dir(cfg.AuditFile), 0o750); err != nil {
			return fmt.Errorf("admin audit directory: %w", err)
		}
	}
	nt, err := admin.NewNotifier(n.cfg.Notify, n.log.With("subsystem", "notify"), nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	n.reg.MustRegister(srv.Collectors()...)
	n.reg.MustRegister(nt.Collectors()...)
	n.admin, n.adminLn, n.notifier = srv, ln, nt
	return nil
}

// AdminAddr is the bound admin API address, or "" when it is off.
func (n *Node) AdminAddr() string {
	if n.adminLn == nil {
		return ""
	}
	return n.adminLn.Addr().String()
}

// name is this node's name, as New settled it.
func (n *Node) name() string { return n.self }

// nodeName is this node's name: its cluster name, else the host name.
// New calls it once, after making the cluster.
func (n *Node) nodeName() string {
	if n.cluster != nil {
		return n.cluster.Name()
	}
	if n.cfg.Cluster.Name != "" {
		return n.cfg.Cluster.Name
	}
	h, err := os.Hostname()
	if err != nil {
		return "meridian"
	}
	return h
}

// configHash hashes the zone files loaded last.
func (n *Node) configHash() string {
	if p := n.hash.Load(); p != nil {
		return *p
	}
	return ""
}

// ready says whether the node should get traffic: its config and GeoIP
// database are loaded (New succeeded), it joined its cluster or runs alone
// by configuration, and it has judged every target it probes once or has
// verdicts restored from disk or the cluster.
func (n *Node) ready() (bool, string) {
	if !n.joined.Load() {
		return false, "not joined to the cluster yet (no seed answered)"
	}
	if n.firstRound.Load() {
		return true, ""
	}
	if n.cluster != nil && len(n.cluster.Verdicts()) > 0 {
		n.firstRound.Store(true) // restored or taken from the peers
		return true, ""
	}
	if got, want := len(n.prober.Verdicts()), int(n.assigned.Load()); got < want {
		return false, fmt.Sprintf("first health round not done: %d of %d targets judged", got, want)
	}
	n.firstRound.Store(true)
	return true, ""
}

// publishEvent hands ev to the admin API's events stream (and through it
// to the notification hooks); nothing when the API is off.
func (n *Node) publishEvent(ev admin.Event) {
	if n.admin == nil {
		return
	}
	ev.Node = n.name()
	n.admin.Events().Publish(ev)
}

// seenState is what notice saw last, to report what changed since.
type seenState struct {
	overrides map[string]overrideEntry // by ID
	members   map[string]string        // name → state
	isolated  bool
	distrust  bool
}

// notice reports what changed in the overrides and the cluster since it
// last ran: an event for each, and an audit line for each override change
// this node did not make through its own API (one received by gossip, with
// its origin, and every expiry). Called under healthMu, after each fold,
// and once at start (which reports nothing: what was in force before is
// not news).
func (n *Node) notice() {
	first := n.noticed.overrides == nil
	cur := map[string]overrideEntry{}
	for _, e := range n.overrideEntries() {
		cur[e.id()] = e
	}
	self := n.name()
	if !first {
		for _, id := range slices.Sorted(maps.Keys(cur)) {
			e, p := cur[id], n.noticed.overrides[id]
			ao := admin.OverrideFrom(e.o, e.node)
			switch {
			case e.live() && (!p.live() || !p.version.Equal(e.version)):
				n.publishEvent(admin.Event{Type: admin.EventOverrideSet, Pool: ao.Pool, Region: ao.Region, Override: &ao, Who: e.o.Who, Why: e.o.Why})
				if e.node != self {
					n.auditNode("override.gossip", id, e, fmt.Sprintf("%s set on node %s by %s", e.o.Action, e.node, e.o.Who))
				}
			case !e.live() && p.live() && e.expired && !e.cleared:
				n.publishEvent(admin.Event{Type: admin.EventOverrideExpired, Pool: ao.Pool, Region: ao.Region, Override: &ao, Who: e.o.Who, Why: e.o.Why})
				n.auditNode("override.expire", id, e, fmt.Sprintf("expired at %s; set on node %s by %s", e.o.Expires.UTC().Format("2006-01-02T15:04:05Z"), e.node, e.o.Who))
			case !e.live() && p.live():
				n.publishEvent(admin.Event{Type: admin.EventOverrideCleared, Pool: ao.Pool, Region: ao.Region, Override: &ao, Who: e.o.Who, Why: e.o.Why})
				if e.node != self {
					n.auditNode("override.gossip", id, e, fmt.Sprintf("cleared on node %s by %s", e.node, e.o.Who))
				}
			}
		}
		for _, id := range slices.Sorted(maps.Keys(n.noticed.overrides)) {
			if p := n.noticed.overrides[id]; p.live() && cur[id].o.Action == 0 {
				ao := admin.OverrideFrom(p.o, p.node)
				n.publishEvent(admin.Event{Type: admin.EventOverrideCleared, Pool: ao.Pool, Region: ao.Region, Override: &ao, Detail: "no longer known to this node"})
			}
		}
	}
	n.noticed.overrides = cur
	if n.cluster == nil {
		return
	}
	cs := n.cluster.Status()
	members := map[string]string{}
	alive := 0
	for _, m := range cs.Members {
		members[m.Name] = m.State
		if m.State == "alive" {
			alive++
		}
	}
	if alive > 1 {
		n.joined.Store(true) // a re-join in the background succeeded
	}
	if !first {
		for _, name := range slices.Sorted(maps.Keys(members)) {
			if was := n.noticed.members[name]; was != members[name] && name != self {
				n.publishEvent(admin.Event{Type: admin.EventMember, Member: name, From: was, To: members[name]})
			}
		}
		if cs.Isolated != n.noticed.isolated {
			n.publishEvent(admin.Event{Type: admin.EventIsolation, To: pick(cs.Isolated, "isolated", "joined")})
		}
		if cs.SelfDistrust != n.noticed.distrust {
			n.publishEvent(admin.Event{Type: admin.EventSelfDistrust, To: pick(cs.SelfDistrust, "distrusted", "trusted")})
		}
	}
	n.noticed.members, n.noticed.isolated, n.noticed.distrust = members, cs.Isolated, cs.SelfDistrust
}

// auditNode records an override change this node applied without an API
// call. The change is already in force (gossip or the clock made it), so
// a failed write is logged, not refused.
func (n *Node) auditNode(action, id string, e overrideEntry, msg string) {
	if n.admin == nil {
		return
	}
	err := n.admin.Audit().Record(admin.Entry{Phase: admin.PhaseResult, Source: "gossip", Origin: e.node, TokenID: e.o.Who,
		Action: action, Target: id, Reason: e.o.Why, Result: &admin.Result{Status: 200, Message: msg}, After: adminBackend{n}.Overrides()})
	if err != nil {
		n.log.Error("audit of an override change failed", "action", action, "override", id, "err", err)
	}
}

// publishHealthEvents reports each region whose verdict flipped, one event
// per region, change and reason however many pools share it.
func (n *Node) publishHealthEvents(changes []regionChange) {
	for _, c := range changes {
		ev := admin.Event{Type: admin.EventVerdict, Region: c.region, From: c.from, To: c.to, Reason: c.reason}
		if len(c.pools) == 1 {
			ev.Pool = c.pools[0]
		} else {
			ev.Detail = fmt.Sprintf("%d pools: %s", len(c.pools), poolList(c.pools))
		}
		n.publishEvent(ev)
	}
}

// poolList names at most five pools.
func poolList(ps []string) string {
	const shown = 5
	list := strings.Join(ps[:min(len(ps), shown)], " ")
	if len(ps) > shown {
		list += fmt.Sprintf(" and %d more", len(ps)-shown)
	}
	return list
}

// pick is yes when b, else no.
func pick(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}
