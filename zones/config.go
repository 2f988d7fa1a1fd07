package zones

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// Config is every zone a node serves, validated and ready to compile.
// It is immutable once Load returns it.
type Config struct {
	Zones []*Zone // sorted by origin
}

// Zone is one zone-policy file.
type Zone struct {
	File    string
	Origin  string // lower-case FQDN, "gslb.example.com."
	TTL     uint32 // default TTL of static records
	SOA     *dns.SOA
	NS      []*dns.NS
	Records []*RRSet // static records, sorted by owner then type
	Regions map[string]*Region
	Pools   []*Pool // sorted by owner
	Tests   []*PolicyTest
}

// RRSet is a static set of records of one owner and type.
type RRSet struct {
	Pos   Pos
	Owner string // lower-case FQDN; may start with "*." (wildcard)
	Type  uint16
	RRs   []dns.RR
}

// Region is a place that can serve traffic.
type Region struct {
	Pos       Pos
	Name      string
	Lat, Lon  float64
	Country   string // optional hint (ISO 3166-1 alpha-2), used by explain
	Continent string // optional hint
}

// Policy says how a pool picks among its healthy members.
type Policy uint8

const (
	// Nearest answers with the healthy member closest to the client.
	Nearest Policy = iota + 1
	// Weighted spreads answers over healthy members in proportion to weight.
	Weighted
	// Failover answers with the first healthy member of Order.
	Failover
)

func (p Policy) String() string {
	switch p {
	case Nearest:
		return "nearest"
	case Weighted:
		return "weighted"
	case Failover:
		return "failover"
	}
	return "unknown"
}

// LastResortKind says what a pool answers when every member is down.
type LastResortKind uint8

const (
	// FailOpen answers with the client's first choice as if it were healthy.
	FailOpen LastResortKind = iota
	// FallbackMember answers with one named member.
	FallbackMember
	// FailClosed answers NODATA; it has to be asked for by name.
	FailClosed
	// FallbackStatic answers with fixed addresses (e.g. a maintenance page).
	FallbackStatic
)

// Pool steers one owner name over regions.
type Pool struct {
	Pos      Pos
	Owner    string // lower-case FQDN; may start with "*."
	Policy   Policy
	TTL      uint32
	Answers  int       // weighted: how many members per answer
	Members  []*Member // sorted by region name
	Order    []string  // failover order; nearest: order for clients we cannot place
	Geo      []GeoRule // sorted most specific first
	Fallback LastResortKind
	FallTo   string // region, when Fallback == FallbackMember
	// Static is the answer when Fallback == FallbackStatic.
	Static *Member
	// Health.
	HealthyShare  float64 // a member is down below this share of up endpoints; 0: down when none is up
	AvoidDegraded bool    // leave degraded members out like down ones
	UnstableTTL   uint32  // TTL while a member is degraded, a verdict is pending, or all are down
	// Observers is how many live nodes of a cluster probe each of the
	// pool's targets (chosen by rendezvous hashing); 0 means every node.
	Observers int
}

// Member is a region's answer for a pool.
type Member struct {
	Pos    Pos
	Region string
	A      []netip.Addr
	AAAA   []netip.Addr
	CNAME  string // lower-case FQDN, exclusive with A and AAAA
	Weight uint32
	// Check is nil when the member is not probed (it is then always up).
	Check     *Check
	Endpoints []Endpoint // where Check runs
	// targets holds the target ID of each endpoint, computed once at parse
	// so that folding verdicts does not hash checks on every change; nil
	// for a Member built by hand (see targetID).
	targets []string
}

// targetID returns the ID of the target that probes endpoint i.
func (m *Member) targetID(i int, ids targetIDs) string {
	if len(m.targets) == len(m.Endpoints) {
		return m.targets[i]
	}
	return ids.of(m.Check, m.Endpoints[i])
}

// Endpoint is one place a member's check runs.
type Endpoint struct {
	Addr netip.AddrPort
	Path string // from an http(s) URL endpoint; "" means the check's path
}

func (e Endpoint) String() string { return e.Addr.String() + e.Path }

// GeoRule sends clients of one place to an ordered list of regions.
type GeoRule struct {
	Pos     Pos
	Scope   GeoScope
	Code    string // "EU", "JP", "US-CA"
	Regions []string
}

// GeoScope is how specific a GeoRule is.
type GeoScope uint8

const (
	// Continent rules match a two-letter continent code.
	Continent GeoScope = iota + 1
	// Country rules match an ISO 3166-1 alpha-2 code.
	Country
	// Subdivision rules match "CC-SUB", e.g. "US-VA".
	Subdivision
)

func (s GeoScope) String() string {
	return [...]string{"", "continent", "country", "subdivision"}[s]
}

// PolicyTest is a test case carried by a zone file: a client asking a name
// must get a given region, answer or rcode.
type PolicyTest struct {
	Pos    Pos
	Client netip.Prefix // an address is a full-length prefix
	Name   string       // FQDN
	Type   uint16
	Region string   // expected region, if set
	Answer []string // expected answer data (RR data in presentation form), if set
	Rcode  int      // expected rcode; -1 when not checked
	// Scope is the expected ECS scope prefix length of the answer, as a
	// DNS reply to Client as an ECS source would carry it; -1 when not
	// checked.
	Scope int
}

// LoadDir loads every *.toml file in dir as a zone. All errors in all files
// are reported together.
func LoadDir(dir string) (*Config, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil {
		return nil, fmt.Errorf("list zone files: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("load zones: no *.toml files in %s: %w", dir, ErrInvalid)
	}
	return LoadFiles(files...)
}

// LoadFiles loads the named zone files.
func LoadFiles(files ...string) (*Config, error) {
	var c errs
	cfg := &Config{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("load zones: %w", err)
		}
		z, err := ParseZone(f, data)
		if err != nil {
			var l ErrorList
			if errors.As(err, &l) {
				c.merge(l)
				continue
			}
			return nil, err
		}
		cfg.Zones = append(cfg.Zones, z)
	}
	sort.Slice(cfg.Zones, func(i, j int) bool { return cfg.Zones[i].Origin < cfg.Zones[j].Origin })
	for i := 1; i < len(cfg.Zones); i++ {
		a, b := cfg.Zones[i-1], cfg.Zones[i]
		if a.Origin == b.Origin {
			c.add(Pos{File: b.File, Line: 1}, "zone %s is also defined in %s", b.Origin, a.File)
		}
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// fqdn makes name absolute and lower-case, relative to origin; "@" is the origin.
func fqdn(name, origin string) string {
	name = strings.ToLower(strings.TrimSpace(name))
	switch {
	case name == "@" || name == "":
		return origin
	case strings.HasSuffix(name, "."):
		return name
	}
	return name + "." + origin
}
