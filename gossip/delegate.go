package gossip

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate is the Cluster as memberlist's Delegate. memberlist calls it
// from its own goroutines, concurrently: every method takes Cluster.mu
// for a short copy or merge and never blocks on the network; what takes
// longer (recomputing the view, persisting, a sync) happens on Run's
// goroutine or one of its own.
type delegate struct{ c *Cluster }

var _ memberlist.Delegate = (*delegate)(nil)

// NodeMeta is this node's region, version and config hash; New and
// SetConfigHash keep it under limit.
func (d *delegate) NodeMeta(limit int) []byte {
	return *d.c.meta.Load()
}

// NotifyMsg handles one broadcast (or reliable) message. It decodes the
// message into fresh values (memberlist reuses buf), merges it and, if it
// was news, queues it again: memberlist hands a broadcast to a few nodes
// only, so each node that learns something passes it on (the epidemic
// half of gossip), and the version check ends the spread.
func (d *delegate) NotifyMsg(buf []byte) {
	c := d.c
	c.m.received(buf)
	msg, err := decodeMessage(buf)
	if err != nil {
		c.m.rejected.WithLabelValues(rejectMalformed).Inc()
		c.log.Debug("gossip message rejected", "err", err)
		return
	}
	switch msg.Type {
	case msgVerdict:
		c.merge([]Entry{msg.Verdict}, nil, nil, true)
	case msgOverride:
		c.merge(nil, []overrideEntry{msg.Override}, nil, true)
	case msgBeat:
		c.merge(nil, nil, []heartbeat{msg.Beat}, true)
	case msgLeave:
		c.leaving(msg.Leave)
	}
}

// GetBroadcasts hands memberlist the queued messages that fit.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	msgs := d.c.queue.GetBroadcasts(overhead, limit)
	for _, m := range msgs {
		d.c.m.sent(m)
	}
	return msgs
}

// LocalState is the whole replicated state, for a push/pull: broadcasts
// are lossy, and this is what repairs them.
func (d *delegate) LocalState(join bool) []byte {
	c := d.c
	c.mu.Lock()
	s := stateMsg{Verdicts: c.tab.entries(), Overrides: c.tab.overrideEntries(), Beats: c.tab.heartbeats()}
	c.mu.Unlock()
	b := encodeState(&s)
	if len(b) > maxStateBytes {
		c.log.Error("gossip state over the push/pull bound: peers will refuse it", "bytes", len(b), "bound", maxStateBytes)
	}
	c.m.sent(b)
	return b
}

// MergeRemoteState merges a peer's whole state (push/pull or join).
func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	c := d.c
	c.m.received(buf)
	s, err := decodeState(buf)
	if err != nil {
		c.m.rejected.WithLabelValues(rejectMalformed).Inc()
		c.log.Debug("gossip state rejected", "err", err)
		return
	}
	c.merge(s.Verdicts, s.Overrides, s.Beats, false)
}

// merge applies entries from a peer: a newer version replaces an older one,
// an older or equal one is ignored (a late or replayed message changes
// nothing). Verdicts and overrides first, then heartbeats, so a push/pull
// vouches for the entries it brought. With rebroadcast, what was news is
// queued again. A heartbeat that does not match this node's copy of its
// origin's entries means a version is missing: this node asks the origin
// for a push/pull (at most once per heartbeat period).
func (c *Cluster) merge(vs []Entry, os []overrideEntry, bs []heartbeat, rebroadcast bool) {
	now := c.cfg.Now()
	tombHorizon := now.Add(-c.cfg.TombstoneTTL)
	var fwd []*broadcast
	var syncWith []string
	future := 0
	changed, overrides, vouched := false, false, false
	c.mu.Lock()
	for i := range vs {
		e := &vs[i]
		if !c.clock.Observe(e.Version) {
			future++
			continue
		}
		if c.tab.mergeVerdict(*e) {
			changed = true
			if rebroadcast {
				fwd = append(fwd, &broadcast{name: verdictName(e), msg: encodeVerdict(e)})
			}
		}
	}
	for i := range os {
		o := &os[i]
		if !c.clock.Observe(o.Version) {
			future++
			continue
		}
		if c.tab.mergeOverride(*o, tombHorizon) {
			changed, overrides = true, true
			if rebroadcast {
				k := OverrideKey(o.O.Action, o.O.Pool, o.O.Region)
				fwd = append(fwd, &broadcast{name: overrideName(k), msg: encodeOverride(o)})
			}
		}
	}
	for i := range bs {
		b := &bs[i]
		if !c.clock.Observe(b.Version) {
			future++
			continue
		}
		kept, matched := c.tab.mergeBeat(*b)
		if !kept {
			continue
		}
		vouched = vouched || matched
		if rebroadcast {
			fwd = append(fwd, &broadcast{name: beatName(b.Origin), msg: encodeBeat(b)})
		}
		if !matched && b.Origin != c.cfg.Name && now.Sub(c.lastSync[b.Origin]) >= c.beatEvery() {
			if r, ok := c.members[b.Origin]; ok && r.State == stateAlive && r.Addr.IsValid() {
				c.lastSync[b.Origin] = now
				syncWith = append(syncWith, r.Addr.String())
			}
		}
	}
	if changed {
		c.gen++
		c.dirty = true
	}
	if vouched {
		c.beatsDirty = true
	}
	if overrides {
		c.urgent = true
	}
	c.mu.Unlock()
	if future > 0 {
		c.m.rejected.WithLabelValues(rejectFuture).Add(float64(future))
		// Every push/pull from a node with a wrong clock repeats this:
		// once a minute is enough to point at it.
		if last := c.warnedAt.Load(); time.Since(time.Unix(0, last)) > time.Minute && c.warnedAt.CompareAndSwap(last, time.Now().UnixNano()) {
			c.log.Warn("gossip entries versioned ahead of this node's clock refused: check the clocks", "entries", future, "skew_bound", maxClockSkew)
		}
	}
	for _, b := range fwd {
		c.queue.QueueBroadcast(b)
	}
	for _, addr := range syncWith {
		c.goTracked(func() {
			if _, err := c.ml.Join([]string{addr}); err != nil {
				c.log.Debug("gossip sync failed", "addr", addr, "err", err)
			}
		})
	}
	if changed || vouched {
		c.kickRecompute()
	}
}

// leaving records a peer's leave intent.
func (c *Cluster) leaving(l leaveIntent) {
	c.clock.Observe(l.Version)
	c.mu.Lock()
	r, ok := c.members[l.Node]
	if ok && l.Node != c.cfg.Name {
		r.leaving = true
		if r.State == stateDead {
			r.State, r.since = stateLeft, c.cfg.Now()
			c.gen++
			c.dirty = true
		}
	}
	c.mu.Unlock()
	c.kickRecompute()
}

// events is the Cluster as memberlist's EventDelegate: it keeps the member
// table. memberlist calls it with its own locks held, so it must not call
// memberlist back.
type events struct{ c *Cluster }

var _ memberlist.EventDelegate = (*events)(nil)

func (ev *events) NotifyJoin(n *memberlist.Node)   { ev.c.memberUpdate(n, stateAlive) }
func (ev *events) NotifyUpdate(n *memberlist.Node) { ev.c.memberUpdate(n, stateAlive) }
func (ev *events) NotifyLeave(n *memberlist.Node)  { ev.c.memberUpdate(n, stateDead) }

// memberUpdate records a member's state, address and metadata. A dead
// member that said it leaves is left.
func (c *Cluster) memberUpdate(n *memberlist.Node, state string) {
	meta, err := decodeMeta(n.Meta)
	if err != nil {
		c.m.rejected.WithLabelValues(rejectMalformed).Inc()
		c.log.Debug("gossip member metadata rejected", "member", n.Name, "err", err)
	}
	var addr netip.AddrPort
	if a, ok := netip.AddrFromSlice(n.Addr); ok {
		addr = netip.AddrPortFrom(a.Unmap(), n.Port)
	}
	now := c.cfg.Now()
	c.mu.Lock()
	r, ok := c.members[n.Name]
	if !ok {
		r = &memberRec{Member: Member{Name: n.Name}}
		c.members[n.Name] = r
	}
	if n.Name != c.cfg.Name {
		r.Region, r.Version, r.ConfigHash = meta.Region, meta.Version, meta.ConfigHash
	}
	if addr.IsValid() {
		r.Addr = addr
	}
	switch {
	case state == stateAlive:
		r.leaving = false
	case r.leaving:
		state = stateLeft
	}
	if r.State != state {
		r.State, r.since = state, now
	}
	c.gen++
	c.dirty = true
	c.mu.Unlock()
	c.kickRecompute()
}

// rejoinLoop re-joins every RejoinInterval while a seed (or a member known
// dead) is not a live member. memberlist forgets a dead node after
// GossipToTheDeadTime and never contacts it again, so two sides of a
// partition that outlasted it stay apart without this.
func (c *Cluster) rejoinLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.RejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		targets := c.rejoinTargets(ctx)
		if len(targets) == 0 {
			continue
		}
		n, err := c.ml.Join(targets)
		if err != nil {
			c.log.Debug("gossip rejoin reached no one", "targets", targets, "err", err)
			continue
		}
		c.log.Info("gossip rejoined", "targets", targets, "reached", n)
		c.recompute()
	}
}

// rejoinTargets is the seeds whose address is no live member's, and the
// last addresses of members known dead (not left).
func (c *Cluster) rejoinTargets(ctx context.Context) []string {
	type seed struct {
		s     string
		addrs []netip.AddrPort
	}
	var seeds []seed
	for _, s := range c.seeds() {
		sd := seed{s: s}
		if ap, err := netip.ParseAddrPort(s); err == nil {
			sd.addrs = []netip.AddrPort{netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}
		} else if host, port, err := net.SplitHostPort(s); err == nil {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			ips, _ := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
			cancel()
			p, _ := net.LookupPort("tcp", port)
			for _, ip := range ips {
				sd.addrs = append(sd.addrs, netip.AddrPortFrom(ip.Unmap(), uint16(p)))
			}
		}
		seeds = append(seeds, sd)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	live := map[netip.AddrPort]bool{}
	var out []string
	for name, r := range c.members {
		switch {
		case r.State == stateAlive:
			live[r.Addr] = true
		case r.State == stateDead && name != c.cfg.Name && r.Addr.IsValid():
			out = append(out, r.Addr.String())
		}
	}
	for _, sd := range seeds {
		up := false
		for _, a := range sd.addrs {
			up = up || live[a]
		}
		if !up && !slices.Contains(out, sd.s) {
			out = append(out, sd.s)
		}
	}
	slices.Sort(out)
	return out
}
