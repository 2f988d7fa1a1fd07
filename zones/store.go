package zones

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/meridian-gtm/meridian/geo"
)

// Store holds the current Snapshot and is its single writer. Readers call
// Load, which is one atomic load; writers (reload, health, overrides) are
// serialized by mu and each builds a whole new Snapshot before publishing.
type Store struct {
	cur atomic.Pointer[Snapshot]

	mu sync.Mutex // held by writers; guards in
	in Inputs
}

// NewStore compiles the first snapshot. The config's policy tests must pass.
func NewStore(cfg *Config, g *geo.Table) (*Store, error) {
	if g == nil {
		g = geo.Empty()
	}
	if err := RunTests(cfg, g); err != nil {
		return nil, err
	}
	s := &Store{in: Inputs{Config: cfg, Geo: g}}
	snap, err := Compile(s.in)
	if err != nil {
		return nil, err
	}
	s.cur.Store(snap)
	return s, nil
}

// Load returns the current snapshot. It never blocks.
func (s *Store) Load() *Snapshot { return s.cur.Load() }

// SetConfig replaces the zones. A config whose policy tests fail is refused
// and the running snapshot keeps serving.
func (s *Store) SetConfig(cfg *Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := RunTests(cfg, s.in.Geo); err != nil {
		return err
	}
	in := s.in
	in.Config = cfg
	return s.publish(in)
}

// SetConfigGeo replaces the zones and the GeoIP table together (a reload):
// the policy tests must pass with both new.
func (s *Store) SetConfigGeo(cfg *Config, g *geo.Table) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := RunTests(cfg, g); err != nil {
		return err
	}
	in := s.in
	in.Config, in.Geo = cfg, g
	return s.publish(in)
}

// SetGeo replaces the GeoIP table. The policy tests must still pass.
func (s *Store) SetGeo(g *geo.Table) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := RunTests(s.in.Config, g); err != nil {
		return err
	}
	in := s.in
	in.Geo = g
	return s.publish(in)
}

// SetHealth replaces the health view. The caller must not modify h later.
func (s *Store) SetHealth(h HealthView) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.in
	in.Health = h
	return s.publish(in)
}

// SetOverrides replaces the operator overrides.
func (s *Store) SetOverrides(o []Override) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.in
	in.Overrides = append([]Override(nil), o...)
	return s.publish(in)
}

func (s *Store) publish(in Inputs) error {
	snap, err := Compile(in)
	if err != nil {
		return fmt.Errorf("publish snapshot: %w", err)
	}
	s.in = in
	s.cur.Store(snap)
	return nil
}
