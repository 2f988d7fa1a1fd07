package zones

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-gtm/meridian/geo"
)

// Store holds the current Snapshot and is its single writer. Readers call
// Load, which is one atomic load. Writers (a reload, a health change, an
// override) are serialized by mu; a health or override change only applies
// to the loaded Base (see Base), so it publishes in about a millisecond for
// a thousand pools, whatever the GeoIP table's size.
//
// Each change publishes at once with every pool's answers right and every
// ECS scope correct: a pool whose widest-scope map for its new answers is
// not built yet answers through the GeoIP table and its shape's class per
// location, whose ranges are a correct scope under any health. Run builds
// the missing maps in the background and publishes again when they are
// ready; since a map is keyed by which classes share an answer, not by the
// health that led there, it can never be stale.
type Store struct {
	cur atomic.Pointer[Snapshot]

	mu        sync.Mutex // held by writers; guards the fields below
	base      *Base
	health    HealthView
	overrides []Override
	scopes    scopeCache

	wake chan struct{} // cap 1: the last publish wants maps not built yet

	// onPublish, when set (before the Store is shared), is called under mu
	// after each publish; it must not block or call the Store.
	onPublish func(PublishInfo)
}

// PublishInfo describes one publish, for metrics and logs.
type PublishInfo struct {
	Snapshot *Snapshot
	// Took is how long applying the inputs took, or for a publish that
	// widens scopes, how long building the batch of maps took.
	Took time.Duration
	// Widened marks a publish that only swapped in widest-scope maps.
	Widened bool
}

// OnPublish sets a function called after every publish (under the
// writers' lock: it must not block or call the Store). Set it before the
// Store is shared.
func (s *Store) OnPublish(f func(PublishInfo)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onPublish = f
}

// NewStore compiles cfg with g and starts serving it. The config's policy
// tests must pass.
func NewStore(cfg *Config, g *geo.Table) (*Store, error) {
	b, err := Build(cfg, g)
	if err != nil {
		return nil, err
	}
	return NewStoreFrom(b)
}

// NewStoreFrom starts serving a compiled Base, every member healthy. Its
// policy tests must pass (they run here unless Base.Test already ran them).
func NewStoreFrom(b *Base) (*Store, error) {
	if err := b.Test(); err != nil {
		return nil, err
	}
	s := &Store{wake: make(chan struct{}, 1)}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setBase(b)
	return s, nil
}

// Load returns the current snapshot. It never blocks.
func (s *Store) Load() *Snapshot { return s.cur.Load() }

// SetBase replaces the config and GeoIP table with a newly loaded Base
// (a reload) and the health view with h, the health of the new config's
// members (nil: every member up), keeping the overrides. Its policy tests
// must pass; if they fail the running snapshot keeps serving. Compile the
// Base before calling SetBase: SetBase itself takes a millisecond, so
// health changes never wait for a reload's compile. The caller must not
// modify h later.
func (s *Store) SetBase(b *Base, h HealthView) error {
	if b == nil {
		return errors.New("set base: nil")
	}
	if err := b.Test(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.health = h
	b.adoptCounters(s.base)
	s.setBase(b)
	return nil
}

func (s *Store) setBase(b *Base) {
	s.base = b
	// The old maps belong to the old shapes. The policy tests built some
	// maps for every member healthy, the usual state after a load; Run
	// builds the rest.
	s.scopes = scopeCache{maps: make(map[scopeKey]scopeMap, len(b.testedScopes.maps))}
	for k, m := range b.testedScopes.maps {
		s.scopes.maps[k] = m
	}
	s.publish()
}

// SetHealth replaces the health view. The caller must not modify h later.
func (s *Store) SetHealth(h HealthView) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.health = h
	s.publish()
}

// SetHealthAndOverrides replaces both in one publish (a cluster's state
// arrives together). The caller must not modify h later.
func (s *Store) SetHealthAndOverrides(h HealthView, o []Override) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.health = h
	s.overrides = append([]Override(nil), o...)
	s.publish()
}

// SetOverrides replaces the operator overrides.
func (s *Store) SetOverrides(o []Override) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.overrides = append([]Override(nil), o...)
	s.publish()
}

// publish applies the inputs to the base and swaps the result in. Called
// under mu.
func (s *Store) publish() {
	s.publishAs(false, 0)
}

func (s *Store) publishAs(widened bool, took time.Duration) {
	start := time.Now()
	s.scopes.begin()
	snap := s.base.apply(s.health, s.overrides, &s.scopes)
	s.scopes.end()
	s.cur.Store(snap)
	if s.onPublish != nil {
		if !widened {
			took = time.Since(start)
		}
		s.onPublish(PublishInfo{Snapshot: snap, Took: took, Widened: widened})
	}
	if len(s.scopes.want) > 0 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Run builds the widest-scope maps that published snapshots are missing,
// one batch at a time, and publishes again when a batch is done, until ctx
// is done. Without Run, scopes stay those of the GeoIP table after the first
// change: correct, but narrower. Run never holds the writers' lock while
// it builds.
func (s *Store) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		s.mu.Lock()
		base := s.base
		jobs := make(map[scopeKey][]uint16, len(s.scopes.want))
		for k, part := range s.scopes.want {
			jobs[k] = part
		}
		s.mu.Unlock()

		start := time.Now()
		built := make(map[scopeKey]scopeMap, len(jobs))
		for k, part := range jobs {
			if ctx.Err() != nil {
				return
			}
			built[k] = scopeMap{m: k.sh.widest(part), part: part}
		}

		s.mu.Lock()
		if s.base == base {
			for k, m := range built {
				s.scopes.maps[k] = m
			}
			s.publishAs(true, time.Since(start))
		}
		s.mu.Unlock()
	}
}

// scopeCache holds the widest-scope maps of the partitions the last two
// snapshots used, so a flap back and forth costs no rebuild, and notes the
// ones the last snapshot wanted but did not have. Owned by Store, under its
// mu.
type scopeCache struct {
	maps map[scopeKey]scopeMap
	want map[scopeKey][]uint16 // wanted by the last publish, not built
	used map[scopeKey]bool     // used or wanted by the last publish
	prev map[scopeKey]bool     // used by the publish before
}

func (c *scopeCache) begin() {
	c.prev, c.used = c.used, make(map[scopeKey]bool)
	c.want = make(map[scopeKey][]uint16)
}

func (c *scopeCache) get(sh *shape, part []uint16) *geo.Map {
	k := keyOf(sh, part)
	if m, ok := c.maps[k]; ok {
		if slices.Equal(m.part, part) {
			c.used[k] = true
			return m.m
		}
		return nil // a hash collision: the GeoIP table serves, correctly
	}
	c.used[k] = true
	if _, ok := c.want[k]; !ok {
		c.want[k] = slices.Clone(part)
	}
	return nil
}

// end forgets the maps neither of the last two publishes used.
func (c *scopeCache) end() {
	for k := range c.maps {
		if !c.used[k] && !c.prev[k] {
			delete(c.maps, k)
		}
	}
}
