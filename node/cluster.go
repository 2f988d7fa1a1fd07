package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/meridian-gtm/meridian/gossip"
	"github.com/meridian-gtm/meridian/zones"
)

// joinTimeout bounds the join at start: a node whose seeds are all down
// starts alone (and keeps re-joining) rather than not at all.
const joinTimeout = 3 * time.Second

// newCluster builds this node's gossip member, or nil when it runs alone.
// It loads the persisted overrides and verdicts (warm start) but joins
// nobody yet: Run joins before the first probe round.
func (n *Node) newCluster(cfg Config, zoneHash string) (*gossip.Cluster, error) {
	c := cfg.Cluster
	if !c.Enabled() {
		return nil, nil
	}
	gc := gossip.DefaultConfig()
	gc.Name = c.Name
	if gc.Name == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("cluster.name is not set and the host name is unknown: %w", err)
		}
		gc.Name = host
	}
	gc.Region = c.Region
	gc.Version = cfg.Version
	gc.ConfigHash = zoneHash
	gc.Bind = netip.MustParseAddrPort(c.Listen) // validated by LoadConfig
	if c.Advertise != "" {
		gc.Advertise = netip.MustParseAddrPort(c.Advertise)
	}
	gc.Seeds = slices.Clone(c.Seeds)
	if c.Profile != "" {
		gc.Profile = c.Profile
	}
	if c.KeyFile != "" {
		keys, err := readKeys(c.KeyFile)
		if err != nil {
			return nil, err
		}
		gc.Keys = keys
	}
	gc.Insecure = c.InsecureNoEncryption
	gc.Label = c.Label
	gc.StateDir = c.StateDir
	gc.QuorumShare = c.QuorumShare
	if c.MaxAge.Duration > 0 {
		gc.MaxAge = c.MaxAge.Duration
	}
	gc.Log = n.log.With("subsystem", "gossip")
	gc.Registerer = n.reg
	gc.OnChange = n.kickHealth
	cl, err := gossip.New(gc)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return cl, nil
}

// closeCluster releases the cluster's sockets when New fails after making
// it (Run, which would otherwise leave and close, never starts).
func (n *Node) closeCluster() {
	if n.cluster != nil {
		n.cluster.Close()
	}
}

// joinCluster joins the seeds, bounded by joinTimeout, and folds what the
// peers sent, so the node answers from the cluster's view before its own
// first probe.
func (n *Node) joinCluster(ctx context.Context) {
	jctx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	if k, err := n.cluster.Join(jctx); err != nil {
		n.log.Warn("cluster join failed; serving alone and re-joining in the background", "err", err)
	} else {
		n.joined.Store(true)
		n.log.Info("cluster joined", "contacted", k)
	}
	n.healthChanged(0)
}

// restateInterval is how often a clustered node restates its own verdicts
// to the cluster: a verdict vouches for a target only while it is fresh
// (gossip.Config.MaxAge), and the prober signals changes, not probes.
const restateInterval = time.Second

// restateVerdicts restates this node's verdicts every restateInterval
// until ctx is done. Unchanged verdicts cost no gossip.
func (n *Node) restateVerdicts(ctx context.Context) {
	t := time.NewTicker(restateInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.shareVerdicts(n.prober.Verdicts())
	}
}

// assignTargets returns the targets this node probes: every target when it
// runs alone; in a cluster, those of pools without `observers` and those it
// is among the observers of (gossip.Assign over the live members), so the
// probe load on an endpoint does not grow with the cluster.
func (n *Node) assignTargets(cfg *zones.Config) []zones.Target {
	ts := cfg.Targets()
	if n.cluster == nil {
		return ts
	}
	alive := n.aliveMembers()
	self := n.cluster.Name()
	out := ts[:0]
	for _, t := range ts {
		if t.Observers == 0 || slices.Contains(gossip.Assign(t.ID, t.Observers, alive), self) {
			out = append(out, t)
		}
	}
	return out
}

// aliveMembers are the cluster's live members, this node always among them.
func (n *Node) aliveMembers() []gossip.Member {
	var alive []gossip.Member
	self := false
	for _, m := range n.cluster.Status().Members {
		if m.State == "alive" {
			alive = append(alive, m)
			self = self || m.Name == n.cluster.Name()
		}
	}
	if !self {
		alive = append(alive, gossip.Member{Name: n.cluster.Name(), Region: n.cfg.Cluster.Region})
	}
	return alive
}

// reassign gives the prober this node's share of the targets again when
// the live members changed. Called under healthMu.
func (n *Node) reassign(cfg *zones.Config) {
	if n.cluster == nil {
		return
	}
	var names []string
	for _, m := range n.aliveMembers() {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	key := strings.Join(names, ",")
	if key == n.assignedFor {
		return
	}
	n.assignedFor = key
	ts := n.assignTargets(cfg)
	n.setTargets(ts)
	n.log.Info("probe assignment", "members", len(names), "targets_probed", len(ts))
}

// shareVerdicts gives the cluster this node's own verdicts. Before its
// prober has judged anything, an empty map would withdraw the verdicts
// persisted before a restart, so it says nothing until then; after that an
// empty map is news (its share of the targets moved to other nodes) and
// withdraws its votes at once.
func (n *Node) shareVerdicts(v map[string]zones.TargetVerdict) {
	if len(v) == 0 && !n.sharedVerdicts.Load() {
		return
	}
	n.sharedVerdicts.Store(true)
	n.cluster.SetLocalVerdicts(v)
}

// Cluster is the node's gossip member, nil when it runs alone.
func (n *Node) Cluster() *gossip.Cluster { return n.cluster }

// zoneHash hashes the names and contents of the zone files, so nodes can
// tell whether they serve the same config.
func zoneHash(dir string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil {
		return "", err
	}
	slices.Sort(files)
	h := sha256.New()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("hash zones: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(f), len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)[:8]), nil
}

// foldInputs returns the verdicts and overrides to publish: this node's
// own when alone; when clustered, its own verdicts go to the cluster and
// the quorum of every live observer's come back, with the cluster's
// overrides.
func (n *Node) foldInputs(cfg *zones.Config) (zones.HealthView, []zones.Override) {
	verdicts := n.prober.Verdicts()
	var overrides []zones.Override
	if n.cluster != nil {
		n.shareVerdicts(verdicts)
		verdicts = n.cluster.Verdicts()
		overrides = n.cluster.Overrides()
	} else {
		for _, e := range n.local.entries(n.now()) {
			if e.live() {
				overrides = append(overrides, e.o)
			}
		}
		slices.SortFunc(overrides, func(a, b zones.Override) int {
			return strings.Compare(gossip.OverrideKey(a.Action, a.Pool, a.Region), gossip.OverrideKey(b.Action, b.Pool, b.Region))
		})
	}
	return zones.FoldHealth(cfg, verdicts), overrides
}
