package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
)

// Config is one node's cluster settings. The zero value of an optional
// field means its default (DefaultConfig); New validates it.
type Config struct {
	Name       string         // unique node name (memberlist node name)
	Region     string         // this node's region, shared as metadata
	Version    string         // build version, shared as metadata
	ConfigHash string         // hash of the loaded zone config, shared as metadata (agreement)
	Bind       netip.AddrPort // gossip address, UDP and TCP (port 0: pick one; see Addr())
	Advertise  netip.AddrPort // optional address others reach us at; zero: Bind
	Seeds      []string       // host:port of nodes to join; may include our own address (ignored)
	Profile    string         // "lan" (default: memberlist.DefaultLANConfig) or "wan" (DefaultWANConfig)
	Keys       [][]byte       // keyring, each 16, 24 or 32 bytes (AES-GCM); Keys[0] is the primary (used to encrypt)
	Insecure   bool           // allow no Keys (development only); New fails without Keys unless set
	Label      string         // memberlist Label: packets of another cluster label are rejected
	StateDir   string         // where overrides and the verdict table are persisted; "" : not persisted
	// QuorumShare is the share of fresh live observers that must say down;
	// 0: majority (more than half).
	QuorumShare float64
	// MaxAge: observations older than this do not vote; default 30s. Keep
	// it at three times the longest check interval or more: a target not
	// probed for MaxAge/2 is marked lagging (a new version, broadcast), so
	// an interval near MaxAge/2 would cost a message per probe, and one
	// over MaxAge would never have a fresh verdict.
	MaxAge time.Duration
	// RejoinInterval: re-join the seeds (and the last known address of
	// dead members) this often when any of them is not a live member;
	// default 15s. memberlist alone does not heal after a partition longer
	// than its dead-node gossip time: by then each side has forgotten the
	// other.
	RejoinInterval time.Duration
	// TombstoneTTL is how long a cleared override's tombstone is kept;
	// default 72h. A node away for longer than this may bring the cleared
	// override back (its copy outlived the tombstone); start such a node
	// with an empty StateDir.
	TombstoneTTL time.Duration
	Log          *slog.Logger
	Registerer   prometheus.Registerer // nil: metrics not registered
	// OnChange is called when anything that Verdicts, Overrides or Status
	// return may have changed (a remote verdict or override arrived, a member
	// joined/left/died, isolation changed, an override expired: Run calls it
	// when the Expires of one passes, by Now, with no message involved). It must not block (the caller
	// kicks a goroutine); it is never called with a lock of the Cluster held.
	// It may be called from several goroutines at once (Run's, Join's), and
	// not for the Since and Checked times of a verdict alone, which
	// heartbeats move all the time.
	OnChange func()
	Now      func() time.Time // default time.Now

	// AgreementGrace is how long members may disagree on ConfigHash (a
	// rolling reload) before it is logged and meridian_gossip_config_agreement
	// drops to 0; default 30s.
	AgreementGrace time.Duration
	// DeadMemberTTL is how long a dead or left member is remembered;
	// default 24h. A dead member still counts among the known members
	// when isolation is judged, so a node cut off from a cluster that it
	// cannot tell from a dead one freezes, until this passes.
	DeadMemberTTL time.Duration
	// LeaveTimeout bounds the goodbye on shutdown (telling the peers this
	// node leaves, then memberlist's leave broadcast); default 5s.
	LeaveTimeout time.Duration

	// Test hooks, set only by this package's tests.
	tune    func(*memberlist.Config) // shortens memberlist's intervals
	blockIP func(netip.Addr) bool    // drops traffic to and from an address (a partition)
}

// DefaultConfig is a Config with every default filled in.
func DefaultConfig() Config {
	host, _ := os.Hostname() // "" on error: New then asks for a Name
	return Config{
		Name:           host,                                              // the host name
		Bind:           netip.AddrPortFrom(netip.IPv4Unspecified(), 7946), // memberlist's port, every IPv4 address
		Profile:        "lan",                                             // memberlist.DefaultLANConfig timings
		QuorumShare:    0,                                                 // a majority of the fresh live observers
		MaxAge:         30 * time.Second,                                  // 6 intervals of the 5s default check
		RejoinInterval: 15 * time.Second,                                  // half the LAN dead-node gossip time
		TombstoneTTL:   72 * time.Hour,                                    // a long weekend away still sees the clear
		AgreementGrace: 30 * time.Second,                                  // a rolling reload of a few nodes
		DeadMemberTTL:  24 * time.Hour,                                    // a day to come back before being forgotten
		LeaveTimeout:   5 * time.Second,                                   // a LAN round trip many times over
		Log:            slog.New(slog.DiscardHandler),                     // silent unless given one
		Now:            time.Now,                                          // the wall clock
	}
}

// withDefaults fills the zero fields of c from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if !c.Bind.IsValid() {
		c.Bind = d.Bind
	}
	if c.Profile == "" {
		c.Profile = d.Profile
	}
	for _, f := range []struct{ v, d *time.Duration }{
		{&c.MaxAge, &d.MaxAge}, {&c.RejoinInterval, &d.RejoinInterval}, {&c.TombstoneTTL, &d.TombstoneTTL},
		{&c.AgreementGrace, &d.AgreementGrace}, {&c.DeadMemberTTL, &d.DeadMemberTTL}, {&c.LeaveTimeout, &d.LeaveTimeout},
	} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	if c.Log == nil {
		c.Log = d.Log
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.OnChange == nil {
		c.OnChange = func() {}
	}
	// Keys are copied: memberlist's keyring keeps the slices it is given.
	keys := make([][]byte, len(c.Keys))
	for i, k := range c.Keys {
		keys[i] = append([]byte(nil), k...)
	}
	c.Keys = keys
	c.Seeds = append([]string(nil), c.Seeds...)
	return c
}

// validate reports every problem of a defaulted config at once.
func (c *Config) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Name == "" || len(c.Name) > maxNameLen {
		bad("name: must be 1 to %d bytes, is %q", maxNameLen, c.Name)
	}
	if c.Profile != "lan" && c.Profile != "wan" {
		bad("profile: %q is not lan or wan", c.Profile)
	}
	if len(c.Keys) == 0 && !c.Insecure {
		errs = append(errs, fmt.Errorf("keys: %w", ErrNoKeys))
	}
	for i, k := range c.Keys {
		if err := memberlist.ValidateKey(k); err != nil {
			bad("keys[%d]: %d bytes: %w", i, len(k), err)
		}
	}
	if len(c.Label) > memberlist.LabelMaxSize {
		bad("label: %d bytes, over %d", len(c.Label), memberlist.LabelMaxSize)
	}
	if c.QuorumShare < 0 || c.QuorumShare > 1 || c.QuorumShare != c.QuorumShare {
		bad("quorum share: %v is not in 0..1", c.QuorumShare)
	}
	for name, d := range map[string]time.Duration{
		"max age": c.MaxAge, "rejoin interval": c.RejoinInterval, "tombstone ttl": c.TombstoneTTL,
		"agreement grace": c.AgreementGrace, "dead member ttl": c.DeadMemberTTL, "leave timeout": c.LeaveTimeout,
	} {
		if d < 0 {
			bad("%s: %s is negative", name, d)
		}
	}
	if m := encodeMeta(c.meta()); len(m) > memberlist.MetaMaxSize {
		bad("region, version and config hash: %d bytes of metadata, over memberlist's %d", len(m), memberlist.MetaMaxSize)
	}
	if c.Advertise.IsValid() && c.Advertise.Addr().IsUnspecified() {
		bad("advertise: %s is not an address others can reach", c.Advertise)
	}
	return errors.Join(errs...)
}

func (c *Config) meta() nodeMeta {
	return nodeMeta{Region: c.Region, Version: c.Version, ConfigHash: c.ConfigHash}
}
