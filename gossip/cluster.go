package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/meridian-gtm/meridian/zones"
)

// Cluster is this node's membership in the gossip cluster and its copy of
// the replicated state. Its methods are safe for concurrent use. New
// creates it listening; Join joins the seeds; Run keeps it healthy until
// its context ends.
type Cluster struct {
	cfg     Config // defaulted and validated; read-only after New
	log     *slog.Logger
	m       *metrics
	clock   *hlc
	ml      *memberlist.Memberlist // set once in New
	tr      *transport
	keyring *memberlist.Keyring // nil without keys (Insecure)
	queue   *memberlist.TransmitLimitedQueue
	meta    atomic.Pointer[[]byte] // NodeMeta, encoded
	alive   atomic.Int32           // live members, for the queue's retransmit limit

	kick    chan struct{} // buffered 1: something changed, recompute
	rearm   chan struct{} // buffered 1: fold moved nextExpiry, Run re-arms its timer
	closed  chan struct{} // closed by Close: Run returns without leaving
	running atomic.Bool   // a Run is running

	stopping atomic.Bool    // leaving or shut down: start no more goroutines
	lifeMu   sync.Mutex     // orders leave and shutdown against new goroutines
	shut     bool           // under lifeMu: memberlist is shut down (or shutting)
	warnedAt atomic.Int64   // unix nanoseconds of the last clock-skew warning
	wg       sync.WaitGroup // Join, sync and leave goroutines; Add under lifeMu while !shut

	persistMu sync.Mutex // one state file write at a time; taken before mu
	viewMu    sync.Mutex // one recompute at a time

	mu sync.Mutex
	// Everything below is under mu.
	tab        *table
	members    map[string]*memberRec
	configHash string
	local      map[string]zones.TargetVerdict // the prober's latest verdicts, sanitized
	localSet   bool                           // SetLocalVerdicts was called: this node vouches for its entries
	lastSync   map[string]time.Time           // origin → last anti-entropy sync asked for
	view       map[string]zones.TargetVerdict // what Verdicts returns
	agreed     map[string]zones.TargetVerdict // the last view computed while not isolated
	isolated   bool
	distrust   bool
	agreement  bool
	disagreed  time.Time // since when members disagree on the config hash; zero: they agree
	warnedConf bool      // the disagreement was logged
	gen        uint64    // bumped by every change Status, Overrides or Digest may show
	seenGen    uint64    // gen at the last OnChange
	dirty      bool      // state to persist soon (debounced)
	beatsDirty bool      // only vouched times changed: persist at the heartbeat pace
	urgent     bool      // an override changed: persist now
	// nextExpiry is the earliest Expires of an override in force, as of
	// the last fold (zero: none expires). fold writes it and reports a
	// change once it has passed; Run's timer wakes fold when it does.
	nextExpiry time.Time
}

// memberRec is a member as this node tracks it.
type memberRec struct {
	Member
	since   time.Time // when State last changed
	leaving bool      // it said it leaves; its death is a leave
}

// Member states, as Status reports them. memberlist does not tell its
// users when it suspects a node, so stateSuspect is only ever read back
// from a state file written by a later version.
const (
	stateAlive   = "alive"
	stateSuspect = "suspect"
	stateDead    = "dead"
	stateLeft    = "left"
)

// New validates cfg, loads the persisted state from cfg.StateDir and
// starts listening on cfg.Bind. It does not join: call Join, then Run.
// Overrides and fresh verdicts from the state file apply at once.
func New(cfg Config) (*Cluster, error) {
	c, err := newCluster(cfg)
	if err != nil {
		return nil, err
	}
	if len(c.cfg.Keys) > 0 {
		kr, err := memberlist.NewKeyring(c.cfg.Keys[1:], c.cfg.Keys[0])
		if err != nil {
			return nil, fmt.Errorf("gossip keyring: %w", err)
		}
		c.keyring = kr
	}
	if err := c.createMemberlist(); err != nil {
		return nil, err
	}
	if c.cfg.Insecure && c.keyring == nil {
		c.log.Warn("gossip is not encrypted: no keys, insecure mode (development only)")
	}
	return c, nil
}

// newCluster is New up to the network: the config defaulted and
// validated, the persisted state loaded, the first view folded. Without
// memberlist the Cluster merges, folds and answers but sends nothing,
// which is what this package's tests of that logic need.
func newCluster(cfg Config) (*Cluster, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("gossip config: %w", err)
	}
	c := &Cluster{
		cfg:        cfg,
		log:        cfg.Log.With("node", cfg.Name),
		m:          newMetrics(cfg.Registerer),
		clock:      &hlc{now: cfg.Now},
		kick:       make(chan struct{}, 1),
		rearm:      make(chan struct{}, 1),
		closed:     make(chan struct{}),
		tab:        newTable(),
		members:    map[string]*memberRec{},
		configHash: cfg.ConfigHash,
		lastSync:   map[string]time.Time{},
		agreement:  true,
	}
	meta := encodeMeta(cfg.meta())
	c.meta.Store(&meta)
	c.queue = &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return int(max(1, c.alive.Load())) },
		RetransmitMult: 4, // replaced by the profile's below
	}
	now := cfg.Now()
	if cfg.StateDir != "" {
		if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
			return nil, fmt.Errorf("gossip state dir: %w", err)
		}
		l, err := readStateFile(cfg.StateDir)
		if err != nil {
			return nil, fmt.Errorf("gossip: %w", err)
		}
		c.tab = l.tab
		c.clock.last = l.clock
		for _, m := range l.members {
			if m.Name == cfg.Name {
				continue
			}
			if m.State != stateLeft {
				m.State = stateDead // unknown until memberlist says otherwise
			}
			c.members[m.Name] = &memberRec{Member: m, since: now}
		}
	}
	c.members[cfg.Name] = &memberRec{Member: Member{Name: cfg.Name, Region: cfg.Region, Version: cfg.Version,
		ConfigHash: cfg.ConfigHash, Addr: cfg.Advertise, State: stateAlive}, since: now}
	// The last agreed view before any peer is heard: the persisted entries
	// that are still fresh, counted over the members known when they were
	// saved. A node that comes back alone is isolated and serves it.
	var known []string
	for name, r := range c.members {
		if r.State != stateLeft {
			known = append(known, name)
		}
	}
	c.agreed, _ = Quorum(cfg.Name, known, c.tab.votes(), now, cfg.MaxAge, cfg.QuorumShare)
	c.view = c.agreed
	c.isolated = isolated(1, len(known))
	if c.isolated {
		c.m.isolated.Set(1)
		c.log.Warn("gossip isolated at start: serving the persisted view until peers answer", "known", len(known))
	}
	return c, nil
}

// createMemberlist starts the transport and memberlist.
func (c *Cluster) createMemberlist() error {
	cfg := &c.cfg
	mc := memberlist.DefaultLANConfig()
	if cfg.Profile == "wan" {
		mc = memberlist.DefaultWANConfig()
	}
	logger := memberlistLogger(c.log)
	var nt *memberlist.NetTransport
	var err error
	// With port 0 the kernel picks the TCP port and UDP may find it taken:
	// try again, as memberlist does for its own transport.
	for range 10 {
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{cfg.Bind.Addr().String()},
			BindPort:  int(cfg.Bind.Port()),
			Logger:    logger,
		})
		if err == nil || cfg.Bind.Port() != 0 {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("gossip listen on %s: %w", cfg.Bind, err)
	}
	port := uint16(nt.GetAutoBindPort())
	cfg.Bind = netip.AddrPortFrom(cfg.Bind.Addr(), port)
	c.tr = newTransport(nt, cfg.Bind.Addr(), c.m, cfg.blockIP)

	mc.Name = cfg.Name
	mc.BindAddr = cfg.Bind.Addr().String()
	mc.BindPort = int(port)
	mc.AdvertisePort = int(port)
	if cfg.Advertise.IsValid() {
		mc.AdvertiseAddr = cfg.Advertise.Addr().String()
		if cfg.Advertise.Port() != 0 {
			mc.AdvertisePort = int(cfg.Advertise.Port())
		}
	}
	mc.Transport = c.tr
	mc.Label = cfg.Label
	mc.Keyring = c.keyring
	mc.Delegate = &delegate{c}
	mc.Events = &events{c}
	mc.Logger = logger
	if cfg.tune != nil {
		cfg.tune(mc)
	}
	c.queue.RetransmitMult = mc.RetransmitMult
	ml, err := memberlist.Create(mc)
	if err != nil {
		c.tr.Shutdown()
		return fmt.Errorf("gossip start memberlist: %w", err)
	}
	c.ml = ml
	c.mu.Lock()
	self := c.members[cfg.Name]
	if self.Addr = cfg.Advertise; !self.Addr.IsValid() {
		ln := ml.LocalNode()
		if a, ok := netip.AddrFromSlice(ln.Addr); ok {
			self.Addr = netip.AddrPortFrom(a.Unmap(), ln.Port)
		}
	}
	c.mu.Unlock()
	return nil
}

// Addr is the address the cluster listens on (the port chosen when Bind
// asked for 0).
func (c *Cluster) Addr() netip.AddrPort { return c.cfg.Bind }

// Name is this node's name.
func (c *Cluster) Name() string { return c.cfg.Name }

// Join contacts the seeds (all of them, not only the first that answers)
// and merges their state into this node's, bounded by ctx. It returns how
// many it reached; an error only when seeds were given and none was
// reached. A seed that is this node's own address is skipped. Verdicts
// reflects the peers' state when Join returns.
func (c *Cluster) Join(ctx context.Context) (int, error) {
	seeds := c.seeds()
	if len(seeds) == 0 {
		return 0, nil
	}
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	if !c.goTracked(func() {
		n, err := c.ml.Join(seeds)
		done <- result{n, err}
	}) {
		return 0, ErrClosed
	}
	select {
	case r := <-done:
		c.recompute()
		if r.err != nil {
			return r.n, fmt.Errorf("gossip join %v: %w", seeds, r.err)
		}
		return r.n, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("gossip join %v: %w", seeds, ctx.Err())
	}
}

// seeds is cfg.Seeds without this node's own address.
func (c *Cluster) seeds() []string {
	var out []string
	for _, s := range c.cfg.Seeds {
		if c.isSelf(s) {
			continue
		}
		out = append(out, s)
	}
	return out
}

func (c *Cluster) isSelf(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return false
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if ap == c.cfg.Bind {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return ap == c.members[c.cfg.Name].Addr
}

// goTracked runs f on a goroutine that shutdown waits for, unless the
// cluster is leaving or shutting down. It does not wait for a leave in
// progress (memberlist's handlers call it).
func (c *Cluster) goTracked(f func()) bool {
	if c.stopping.Load() {
		return false
	}
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.shut {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

// Run keeps the cluster healthy until ctx ends: it recomputes the view when
// anything changes (and as verdicts age), vouches for this node's verdicts
// every MaxAge/4, re-joins the seeds every RejoinInterval when one of them
// is not a live member, expires tombstones and forgotten members, and
// persists the state. When ctx ends it tells its peers it leaves (bounded
// by LeaveTimeout), shuts memberlist down, persists a last time and
// returns. It returns ErrRunning if another Run is running.
func (c *Cluster) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer c.running.Store(false)
	select {
	case <-c.closed:
		return ErrClosed
	default:
	}
	rctx, cancel := context.WithCancel(ctx)
	var loops sync.WaitGroup
	loops.Add(1)
	go func() {
		defer loops.Done()
		c.rejoinLoop(rctx)
	}()
	tick := time.NewTicker(c.tickEvery())
	defer tick.Stop()
	beat := time.NewTicker(c.beatEvery())
	defer beat.Stop()
	// expiry fires when the earliest override in force expires, so that
	// every node drops it from Overrides and calls OnChange at that
	// moment, with no message and no polling (the tick would catch it, but
	// up to a second late).
	expiry := time.NewTimer(time.Hour)
	expiry.Stop()
	defer expiry.Stop()
	var armed time.Time // the expiry the timer is set for; zero: stopped
	c.recompute()
	lastWrite, lastBeatWrite := time.Now(), time.Now()
	killed := false
loop:
	for {
		armed = c.armExpiry(expiry, armed)
		select {
		case <-ctx.Done():
			break loop
		case <-c.closed:
			killed = true
			break loop
		case <-c.kick:
			c.recompute()
		case <-c.rearm:
			// Another goroutine's fold moved the next expiry: re-armed
			// at the top of the loop.
		case <-expiry.C:
			armed = time.Time{} // re-armed even if the clock says it has not come yet
			c.recompute()
		case <-tick.C:
			c.maintain()
			c.recompute()
		case <-beat.C:
			c.heartbeat()
		}
		c.mu.Lock()
		write := c.urgent || (c.dirty && time.Since(lastWrite) >= persistDelay) ||
			(c.beatsDirty && time.Since(lastBeatWrite) >= c.beatEvery())
		c.mu.Unlock()
		if write {
			if err := c.persist(); err != nil {
				c.log.Error("gossip state not persisted", "err", err)
			}
			lastWrite, lastBeatWrite = time.Now(), time.Now()
		}
	}
	cancel()
	loops.Wait()
	if killed {
		return nil
	}
	var errs []error
	if err := c.leave(); err != nil {
		errs = append(errs, err)
	}
	if err := c.shutdown(); err != nil {
		errs = append(errs, err)
	}
	if err := c.persist(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// armExpiry sets t to fire at the next expiry fold found, unless it is
// already set for it (armed), and returns what it is now set for.
func (c *Cluster) armExpiry(t *time.Timer, armed time.Time) time.Time {
	c.mu.Lock()
	next := c.nextExpiry
	c.mu.Unlock()
	if next.Equal(armed) {
		return armed
	}
	t.Stop()
	if !next.IsZero() {
		// At least a millisecond: an injected clock that lags the timers
		// must not make this loop spin.
		t.Reset(max(next.Sub(c.cfg.Now()), time.Millisecond))
	}
	return next
}

// persistDelay debounces state writes caused by verdicts and membership;
// override changes are written at once.
const persistDelay = time.Second

// tickEvery is how often Run ages verdicts and expires entries: a tenth of
// MaxAge, within 50ms..1s.
func (c *Cluster) tickEvery() time.Duration {
	return min(max(c.cfg.MaxAge/10, 50*time.Millisecond), time.Second)
}

// beatEvery is the heartbeat period: four heartbeats per MaxAge, so a
// verdict stays fresh through three lost ones.
func (c *Cluster) beatEvery() time.Duration { return max(c.cfg.MaxAge/4, 10*time.Millisecond) }

// verdictTTL is how long after it was last known to hold an entry is kept:
// ten times MaxAge (five minutes by default), long past voting, so that a
// node briefly away still finds it.
func (c *Cluster) verdictTTL() time.Duration { return 10 * c.cfg.MaxAge }

// Close stops the cluster without leaving: peers see this node die, as
// after a crash, and nothing more is persisted. Run, if running, returns.
// Use it when Run was never started; otherwise end Run's context, which
// leaves gracefully.
func (c *Cluster) Close() error {
	select {
	case <-c.closed:
		return nil
	default:
		close(c.closed)
	}
	return c.shutdown()
}

// shutdown stops memberlist and waits for this package's goroutines.
func (c *Cluster) shutdown() error {
	c.stopping.Store(true)
	c.lifeMu.Lock()
	already := c.shut
	c.shut = true
	c.lifeMu.Unlock()
	if already {
		return nil
	}
	err := c.ml.Shutdown()
	c.wg.Wait()
	if err != nil {
		return fmt.Errorf("gossip shutdown: %w", err)
	}
	return nil
}

// leave tells the live peers this node leaves, so they record it as left
// rather than dead, then has memberlist broadcast its leave, all within
// LeaveTimeout.
func (c *Cluster) leave() error {
	c.stopping.Store(true)
	deadline := time.Now().Add(c.cfg.LeaveTimeout)
	msg := encodeLeave(leaveIntent{Node: c.cfg.Name, Version: c.clock.Now()})
	var peers []*memberlist.Node
	c.mu.Lock()
	for name, r := range c.members {
		if name != c.cfg.Name && r.State == stateAlive && r.Addr.IsValid() {
			peers = append(peers, &memberlist.Node{Name: name, Addr: r.Addr.Addr().AsSlice(), Port: r.Addr.Port()})
		}
	}
	c.mu.Unlock()
	// The lock is held through memberlist's Leave so that a concurrent
	// Close cannot shut memberlist down under it (Leave after Shutdown
	// panics); goTracked does not wait for it (stopping is set).
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.shut {
		return nil
	}
	allSent := make(chan struct{})
	var sent sync.WaitGroup
	for _, p := range peers {
		sent.Add(1)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer sent.Done()
			if err := c.ml.SendReliable(p, msg); err == nil {
				c.m.sent(msg)
			}
		}()
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		sent.Wait()
		close(allSent)
	}()
	select {
	case <-allSent:
	case <-time.After(time.Until(deadline)):
	}
	if err := c.ml.Leave(max(time.Until(deadline), 10*time.Millisecond)); err != nil {
		// Not a failed shutdown: with no peer to hear it (all gone, or
		// this node cut off) the leave cannot be acknowledged, and the
		// peers will mark this node dead instead, as after a crash.
		c.log.Warn("gossip leave not acknowledged in time; peers will mark this node dead", "err", err)
	}
	return nil
}

// SetConfigHash changes the config hash this node announces, after a
// reload, and spreads it (bounded by LeaveTimeout).
func (c *Cluster) SetConfigHash(hash string) error {
	c.mu.Lock()
	c.configHash = hash
	self := c.members[c.cfg.Name]
	self.ConfigHash = hash
	meta := encodeMeta(nodeMeta{Region: self.Region, Version: self.Version, ConfigHash: hash})
	c.gen++
	c.mu.Unlock()
	if len(meta) > memberlist.MetaMaxSize {
		return fmt.Errorf("gossip config hash: %d bytes of metadata, over %d: %w", len(meta), memberlist.MetaMaxSize, ErrTooLarge)
	}
	c.meta.Store(&meta)
	c.kickRecompute()
	if err := c.ml.UpdateNode(c.cfg.LeaveTimeout); err != nil {
		return fmt.Errorf("gossip config hash: %w", err)
	}
	return nil
}

// kickRecompute asks Run to recompute; it never blocks.
func (c *Cluster) kickRecompute() {
	select {
	case c.kick <- struct{}{}:
	default: // one is pending; it will see this change too
	}
}

// recompute folds the verdicts again, judges isolation, self-distrust and
// config agreement, notices overrides that expired, updates the metrics,
// logs what changed and calls OnChange when anything a caller can read
// changed.
func (c *Cluster) recompute() {
	if c.fold() {
		c.cfg.OnChange() // no lock held
	}
}

// fold does recompute's work under viewMu and reports whether OnChange is
// due.
func (c *Cluster) fold() bool {
	c.viewMu.Lock()
	defer c.viewMu.Unlock()
	now := c.cfg.Now()
	c.mu.Lock()
	live, known := c.liveLocked()
	votes := c.tab.votes()
	c.mu.Unlock()

	computed, flags := Quorum(c.cfg.Name, live, votes, now, c.cfg.MaxAge, c.cfg.QuorumShare)
	iso := isolated(len(live), known)

	c.mu.Lock()
	agree := c.agreeLocked()
	changed := c.gen != c.seenGen || iso != c.isolated || flags.SelfDistrust != c.distrust || agree != c.agreement
	wasIso, wasDistrust := c.isolated, c.distrust
	old := c.view
	c.view, c.agreed = nextView(c.agreed, computed, iso)
	changed = changed || !sameView(old, c.view)
	c.seenGen, c.isolated, c.distrust, c.agreement = c.gen, iso, flags.SelfDistrust, agree
	// An override whose Expires passed since the last fold left
	// Overrides: a change, though no entry changed. nextExpiry is the
	// earliest, so it is enough to watch it.
	if !c.nextExpiry.IsZero() && !now.Before(c.nextExpiry) {
		changed = true
	}
	next := c.tab.nextExpiry(now)
	moved := !next.Equal(c.nextExpiry)
	c.nextExpiry = next
	var warnConf, healedConf bool
	switch {
	case agree && c.warnedConf:
		healedConf, c.warnedConf, c.disagreed = true, false, time.Time{}
	case agree:
		c.disagreed = time.Time{}
	case c.disagreed.IsZero():
		c.disagreed = now
	case !c.warnedConf && now.Sub(c.disagreed) >= c.cfg.AgreementGrace:
		warnConf, c.warnedConf = true, true
	}
	hashes := c.hashesLocked()
	nv, no, nt, nx := c.tab.counts(now)
	states := map[string]int{stateAlive: 0, stateDead: 0, stateLeft: 0}
	for _, r := range c.members {
		states[r.State]++
	}
	c.mu.Unlock()

	if moved {
		select {
		case c.rearm <- struct{}{}:
		default: // one is pending; Run reads nextExpiry afresh
		}
	}

	c.alive.Store(int32(len(live)))
	for s, n := range states {
		c.m.members.WithLabelValues(s).Set(float64(n))
	}
	c.m.entries.WithLabelValues("verdict").Set(float64(nv))
	c.m.entries.WithLabelValues("override").Set(float64(no))
	c.m.entries.WithLabelValues("tombstone").Set(float64(nt))
	c.m.entries.WithLabelValues("expired").Set(float64(nx))
	c.m.overrides.Set(float64(no))
	c.m.isolated.Set(b2f(iso))
	c.m.selfDistrust.Set(b2f(flags.SelfDistrust))
	if iso != wasIso {
		if iso {
			c.log.Warn("gossip isolated: serving the last agreed health view", "live", len(live), "known", known)
		} else {
			c.log.Info("gossip no longer isolated", "live", len(live), "known", known)
		}
	}
	if flags.SelfDistrust != wasDistrust {
		if flags.SelfDistrust {
			c.log.Warn("gossip self-distrust: this node sees every target down and its peers do not; its votes are left out")
		} else {
			c.log.Info("gossip self-distrust over")
		}
	}
	if warnConf {
		c.m.configAgreement.Set(0)
		c.log.Warn("gossip members disagree on the zone config", "grace", c.cfg.AgreementGrace, "hashes", hashes)
	}
	if healedConf {
		c.m.configAgreement.Set(1)
		c.log.Info("gossip members agree on the zone config again")
	}
	return changed
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// sameView compares two views on what zones.FoldHealth reads (state,
// pending, reason), not on the times that move with every heartbeat.
func sameView(a, b map[string]zones.TargetVerdict) bool {
	return maps.EqualFunc(a, b, func(x, y zones.TargetVerdict) bool {
		return x.State == y.State && x.Pending == y.Pending && x.Reason == y.Reason
	})
}

// liveLocked is the names of the live members (self included) and how many
// members are known not to have left.
func (c *Cluster) liveLocked() (live []string, known int) {
	for name, r := range c.members {
		switch r.State {
		case stateAlive, stateSuspect:
			live = append(live, name)
			known++
		case stateDead:
			known++
		}
	}
	return live, known
}

// agreeLocked reports whether every live member announces this node's
// config hash.
func (c *Cluster) agreeLocked() bool {
	for _, r := range c.members {
		if r.State == stateAlive && r.ConfigHash != c.configHash {
			return false
		}
	}
	return true
}

// hashesLocked maps each config hash announced by a live member to one
// member announcing it, for the disagreement log line.
func (c *Cluster) hashesLocked() map[string]string {
	h := map[string]string{}
	for name, r := range c.members {
		if r.State == stateAlive {
			if _, ok := h[r.ConfigHash]; !ok || name < h[r.ConfigHash] {
				h[r.ConfigHash] = name
			}
		}
	}
	return h
}

// maintain drops expired entries and forgotten members.
func (c *Cluster) maintain() {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.tab.gc(now.Add(-c.verdictTTL()), now.Add(-c.cfg.TombstoneTTL))
	for name, r := range c.members {
		if name != c.cfg.Name && (r.State == stateDead || r.State == stateLeft) && now.Sub(r.since) > c.cfg.DeadMemberTTL {
			delete(c.members, name)
			delete(c.lastSync, name)
			n++
		}
	}
	if n > 0 {
		c.gen++
		c.dirty = true
	}
}

// persist writes the state file now, if there is a StateDir.
func (c *Cluster) persist() error {
	if c.cfg.StateDir == "" {
		return nil
	}
	c.persistMu.Lock()
	defer c.persistMu.Unlock()
	c.mu.Lock()
	members := make([]Member, 0, len(c.members))
	for _, r := range c.members {
		members = append(members, r.Member)
	}
	data, err := encodeStateFile(c.cfg.Name, c.cfg.Now(), c.clock.Last(), c.tab, members)
	c.dirty, c.beatsDirty, c.urgent = false, false, false
	c.mu.Unlock()
	if err == nil {
		err = writeFileAtomic(c.cfg.StateDir, stateFileName, data)
	}
	if err != nil {
		c.mu.Lock()
		c.dirty = true
		c.mu.Unlock()
		return fmt.Errorf("gossip persist: %w", err)
	}
	return nil
}
