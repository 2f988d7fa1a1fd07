package zones

import (
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/meridian-gtm/meridian/geo"
	"github.com/miekg/dns"
)

// demoGeo is the demo GeoIP database: documentation prefixes in Virginia,
// Frankfurt and Singapore, plus a few more cities.
func demoGeo(t testing.TB) *geo.Table {
	t.Helper()
	g, err := geo.Open("../deploy/demo/demo-city.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func demoZone(t testing.TB) *Zone {
	t.Helper()
	data, err := os.ReadFile("../deploy/demo/zones/gslb.example.com.toml")
	if err != nil {
		t.Fatal(err)
	}
	z, err := ParseZone("gslb.example.com.toml", data)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func parseZone(t testing.TB, src string) *Zone {
	t.Helper()
	z, err := ParseZone("test.toml", []byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return z
}

func compile(t testing.TB, in Inputs) *Snapshot {
	t.Helper()
	s, err := Compile(in)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ask(s *Snapshot, name string, qtype uint16, client string) *Result {
	var r Result
	var a netip.Addr
	if client != "" {
		a = netip.MustParseAddr(client)
	}
	s.Answer(&r, name, qtype, a)
	return &r
}

func rrStrings(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = strings.ReplaceAll(rr.String(), "\t", " ")
	}
	return out
}

func TestAnswerDemo(t *testing.T) {
	cfg := &Config{Zones: []*Zone{demoZone(t)}}
	s := compile(t, Inputs{Config: cfg, Geo: demoGeo(t)})
	const www = "www.gslb.example.com."
	tests := []struct {
		name     string
		qname    string
		qtype    uint16
		client   string
		rcode    int
		aa       bool
		answer   []string
		ns       []string
		extra    int
		region   string
		scopeMin int // ScopeBits at least
		scopeMax int
	}{
		{name: "eu client gets eu-west", qname: www, qtype: dns.TypeA, client: "198.51.100.7", aa: true,
			answer: []string{"www.gslb.example.com. 30 IN A 198.51.100.10"}, region: "eu-west", scopeMin: 24, scopeMax: 24},
		{name: "sg client gets ap-southeast v6", qname: www, qtype: dns.TypeAAAA, client: "2001:db8:3::1", aa: true,
			answer: []string{"www.gslb.example.com. 30 IN AAAA 2001:db8:3::10"}, region: "ap-southeast", scopeMin: 48, scopeMax: 48},
		{name: "us client", qname: www, qtype: dns.TypeA, client: "192.0.2.99", aa: true,
			answer: []string{"www.gslb.example.com. 30 IN A 192.0.2.10"}, region: "us-east", scopeMin: 1, scopeMax: 32},
		{name: "tokyo is nearest to singapore", qname: www, qtype: dns.TypeA, client: "100.64.0.1", aa: true,
			answer: []string{"www.gslb.example.com. 30 IN A 203.0.113.10"}, region: "ap-southeast", scopeMin: 1, scopeMax: 32},
		{name: "paris is nearest to frankfurt", qname: www, qtype: dns.TypeA, client: "100.64.3.1", aa: true,
			answer: []string{"www.gslb.example.com. 30 IN A 198.51.100.10"}, region: "eu-west", scopeMin: 1, scopeMax: 32},
		{name: "unplaced client gets order[0]", qname: www, qtype: dns.TypeA, client: "10.0.0.1", aa: true,
			answer: []string{"www.gslb.example.com. 30 IN A 192.0.2.10"}, region: "us-east", scopeMin: 1, scopeMax: 32},
		{name: "no client address", qname: www, qtype: dns.TypeA, aa: true,
			answer: []string{"www.gslb.example.com. 30 IN A 192.0.2.10"}, region: "us-east"},
		{name: "pool nodata for TXT", qname: www, qtype: dns.TypeTXT, client: "198.51.100.7", aa: true,
			ns: []string{"gslb.example.com. 60 IN SOA ns1.gslb.example.com. hostmaster.example.com. 2026112501 3600 600 1209600 60"}, region: "eu-west", scopeMin: 24},
		{name: "nxdomain", qname: "nope.gslb.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true,
			ns: []string{"gslb.example.com. 60 IN SOA ns1.gslb.example.com. hostmaster.example.com. 2026112501 3600 600 1209600 60"}},
		{name: "refused outside zones", qname: "example.org.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "refused parent", qname: "example.com.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "apex soa", qname: "gslb.example.com.", qtype: dns.TypeSOA, aa: true,
			answer: []string{"gslb.example.com. 300 IN SOA ns1.gslb.example.com. hostmaster.example.com. 2026112501 3600 600 1209600 60"}},
		{name: "apex ns with glue", qname: "gslb.example.com.", qtype: dns.TypeNS, aa: true,
			answer: []string{"gslb.example.com. 300 IN NS ns1.gslb.example.com.", "gslb.example.com. 300 IN NS ns2.gslb.example.com."}, extra: 4},
		{name: "apex mx", qname: "gslb.example.com.", qtype: dns.TypeMX, aa: true,
			answer: []string{"gslb.example.com. 300 IN MX 10 mail.example.com."}},
		{name: "cname followed into pool", qname: "status.gslb.example.com.", qtype: dns.TypeA, client: "203.0.113.5", aa: true,
			answer: []string{"status.gslb.example.com. 300 IN CNAME www.gslb.example.com.", "www.gslb.example.com. 30 IN A 203.0.113.10"}, region: "ap-southeast", scopeMin: 24},
		{name: "cname chain ending in nodata carries the SOA", qname: "status.gslb.example.com.", qtype: dns.TypeTXT, client: "203.0.113.5", aa: true,
			answer: []string{"status.gslb.example.com. 300 IN CNAME www.gslb.example.com."},
			ns:     []string{"gslb.example.com. 60 IN SOA ns1.gslb.example.com. hostmaster.example.com. 2026112501 3600 600 1209600 60"}, region: "ap-southeast", scopeMin: 24},
		{name: "cname asked directly", qname: "status.gslb.example.com.", qtype: dns.TypeCNAME, aa: true,
			answer: []string{"status.gslb.example.com. 300 IN CNAME www.gslb.example.com."}},
		{name: "wildcard synthesized", qname: "foo.static.gslb.example.com.", qtype: dns.TypeA, aa: true,
			answer: []string{"foo.static.gslb.example.com. 600 IN A 192.0.2.80"}},
		{name: "wildcard deeper", qname: "a.b.static.gslb.example.com.", qtype: dns.TypeA, aa: true,
			answer: []string{"a.b.static.gslb.example.com. 600 IN A 192.0.2.80"}},
		{name: "empty non-terminal is nodata", qname: "static.gslb.example.com.", qtype: dns.TypeA, aa: true,
			ns: []string{"gslb.example.com. 60 IN SOA ns1.gslb.example.com. hostmaster.example.com. 2026112501 3600 600 1209600 60"}},
		{name: "failover primary", qname: "db.gslb.example.com.", qtype: dns.TypeA, client: "198.51.100.7", aa: true,
			answer: []string{"db.gslb.example.com. 15 IN A 192.0.2.30"}, region: "us-east", scopeMax: 0},
		{name: "any is minimal", qname: www, qtype: dns.TypeANY, client: "198.51.100.7", aa: true,
			answer: []string{"www.gslb.example.com. 30 IN A 198.51.100.10"}, region: "eu-west", scopeMin: 24},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ask(s, tc.qname, tc.qtype, tc.client)
			if r.Rcode != tc.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			if r.Authoritative != tc.aa {
				t.Errorf("aa = %v, want %v", r.Authoritative, tc.aa)
			}
			if got := rrStrings(r.Answer); !slices.Equal(got, tc.answer) && !(len(got) == 0 && len(tc.answer) == 0) {
				t.Errorf("answer = %q\nwant %q", got, tc.answer)
			}
			if got := rrStrings(r.Ns); !slices.Equal(got, tc.ns) && !(len(got) == 0 && len(tc.ns) == 0) {
				t.Errorf("authority = %q\nwant %q", got, tc.ns)
			}
			if len(r.Extra) != tc.extra {
				t.Errorf("additional has %d records, want %d", len(r.Extra), tc.extra)
			}
			if r.Region != tc.region {
				t.Errorf("region = %q, want %q", r.Region, tc.region)
			}
			if r.ScopeBits < tc.scopeMin || (tc.scopeMax > 0 || tc.scopeMin == 0) && r.ScopeBits > tc.scopeMax {
				t.Errorf("scope = %d, want %d..%d", r.ScopeBits, tc.scopeMin, tc.scopeMax)
			}
		})
	}
}

// A location-independent answer must say so with scope 0, so resolvers
// cache it once for everyone.
func TestScopeZeroWhenAnswerIgnoresLocation(t *testing.T) {
	s := compile(t, Inputs{Config: &Config{Zones: []*Zone{demoZone(t)}}, Geo: demoGeo(t)})
	for _, c := range []string{"198.51.100.7", "203.0.113.1", "10.1.1.1", "2001:db8:1::1"} {
		r := ask(s, "db.gslb.example.com.", dns.TypeA, c)
		if r.ScopeBits != 0 {
			t.Errorf("failover pool from %s: scope %d, want 0", c, r.ScopeBits)
		}
	}
	r := ask(s, "gslb.example.com.", dns.TypeMX, "198.51.100.7")
	if r.ScopeBits != 0 {
		t.Errorf("static MX: scope %d, want 0", r.ScopeBits)
	}
}

func down(pool string, regions ...string) HealthView {
	h := HealthView{}
	for _, r := range regions {
		h[MemberKey{Pool: pool, Region: r}] = MemberHealth{State: Down, Reason: "test"}
	}
	return h
}

func TestHealthAndOverrides(t *testing.T) {
	cfg := &Config{Zones: []*Zone{demoZone(t)}}
	g := demoGeo(t)
	const www, db = "www.gslb.example.com.", "db.gslb.example.com."
	tests := []struct {
		name      string
		health    HealthView
		overrides []Override
		qname     string
		client    string
		region    string
	}{
		{name: "eu down: german client goes to next nearest", health: down(www, "eu-west"), qname: www, client: "198.51.100.7", region: "us-east"},
		{name: "eu and us down", health: down(www, "eu-west", "us-east"), qname: www, client: "198.51.100.7", region: "ap-southeast"},
		{name: "all down fails open to the client's first choice", health: down(www, "eu-west", "us-east", "ap-southeast"), qname: www, client: "198.51.100.7", region: "eu-west"},
		{name: "all down, singapore client's own first choice", health: down(www, "eu-west", "us-east", "ap-southeast"), qname: www, client: "203.0.113.7", region: "ap-southeast"},
		{name: "other pool's health does not matter", health: down(db, "us-east"), qname: www, client: "192.0.2.1", region: "us-east"},
		{name: "failover to standby", health: down(db, "us-east"), qname: db, client: "192.0.2.1", region: "eu-west"},
		{name: "drain beats health", overrides: []Override{{Action: Drain, Region: "eu-west"}}, qname: www, client: "198.51.100.7", region: "us-east"},
		{name: "pool-scoped drain", overrides: []Override{{Action: Drain, Pool: db, Region: "eu-west"}}, qname: www, client: "198.51.100.7", region: "eu-west"},
		{name: "pin beats nearest", overrides: []Override{{Action: Pin, Pool: www, Region: "ap-southeast"}}, qname: www, client: "198.51.100.7", region: "ap-southeast"},
		{name: "pin beats failover order", overrides: []Override{{Action: Pin, Pool: db, Region: "eu-west"}}, qname: db, client: "192.0.2.1", region: "eu-west"},
		{name: "all down with one drained fails open to an undrained", health: down(www, "eu-west", "us-east", "ap-southeast"),
			overrides: []Override{{Action: Drain, Region: "eu-west"}}, qname: www, client: "198.51.100.7", region: "us-east"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := compile(t, Inputs{Config: cfg, Geo: g, Health: tc.health, Overrides: tc.overrides})
			r := ask(s, tc.qname, dns.TypeA, tc.client)
			if r.Region != tc.region || len(r.Answer) == 0 {
				t.Errorf("region = %q with %d answers, want %q", r.Region, len(r.Answer), tc.region)
			}
		})
	}
}

const lastResortZone = `
zone = "lr.test"
ns = ["ns.example.net."]
[regions.a]
lat = 0
lon = 0
[regions.b]
lat = 10
lon = 10
[pools.open]
policy = "failover"
order = ["a", "b"]
[pools.open.members.a]
addresses = ["192.0.2.1"]
[pools.open.members.b]
addresses = ["192.0.2.2"]
[pools.closed]
policy = "failover"
order = ["a", "b"]
last_resort = "closed"
[pools.closed.members.a]
addresses = ["192.0.2.1"]
[pools.closed.members.b]
addresses = ["192.0.2.2"]
[pools.fallback]
policy = "failover"
order = ["a", "b"]
last_resort = "b"
[pools.fallback.members.a]
addresses = ["192.0.2.1"]
[pools.fallback.members.b]
addresses = ["192.0.2.2"]
[pools.static]
policy = "failover"
order = ["a", "b"]
last_resort = "static"
static_addresses = ["192.0.2.250"]
[pools.static.members.a]
addresses = ["192.0.2.1"]
[pools.static.members.b]
addresses = ["192.0.2.2"]
`

func TestLastResort(t *testing.T) {
	z := parseZone(t, lastResortZone)
	h := HealthView{}
	for _, p := range []string{"open", "closed", "fallback", "static"} {
		for _, r := range []string{"a", "b"} {
			h[MemberKey{Pool: p + ".lr.test.", Region: r}] = MemberHealth{State: Down}
		}
	}
	s := compile(t, Inputs{Config: &Config{Zones: []*Zone{z}}, Health: h})
	tests := []struct {
		pool   string
		answer []string
		rcode  int
	}{
		{"open", []string{"open.lr.test. 10 IN A 192.0.2.1"}, dns.RcodeSuccess},
		{"closed", nil, dns.RcodeSuccess},
		{"fallback", []string{"fallback.lr.test. 10 IN A 192.0.2.2"}, dns.RcodeSuccess},
		{"static", []string{"static.lr.test. 10 IN A 192.0.2.250"}, dns.RcodeSuccess},
	}
	for _, tc := range tests {
		r := ask(s, tc.pool+".lr.test.", dns.TypeA, "192.0.2.99")
		got := rrStrings(r.Answer)
		if r.Rcode != tc.rcode || !slices.Equal(got, tc.answer) && len(got)+len(tc.answer) > 0 {
			t.Errorf("%s: rcode %d answer %q, want %d %q", tc.pool, r.Rcode, got, tc.rcode, tc.answer)
		}
		if tc.answer == nil && len(r.Ns) != 1 {
			t.Errorf("%s: fail closed must be NODATA with the SOA, got authority %v", tc.pool, r.Ns)
		}
	}
}

const weightedZone = `
zone = "w.test"
ns = ["ns.example.net."]
[regions.a]
lat = 0
lon = 0
[regions.b]
lat = 10
lon = 10
[regions.c]
lat = 20
lon = 20
[pools.api]
policy = "weighted"
[pools.api.members.a]
addresses = ["192.0.2.1"]
weight = 3
[pools.api.members.b]
addresses = ["192.0.2.2"]
weight = 1
[pools.api.members.c]
addresses = ["192.0.2.3"]
weight = 0
[pools.two]
policy = "weighted"
answers = 2
[pools.two.members.a]
addresses = ["192.0.2.1"]
[pools.two.members.b]
addresses = ["192.0.2.2"]
[pools.two.members.c]
addresses = ["192.0.2.3"]
`

func TestWeighted(t *testing.T) {
	z := parseZone(t, weightedZone)
	s := compile(t, Inputs{Config: &Config{Zones: []*Zone{z}}})
	counts := map[string]int{}
	const n = 20000
	for i := 0; i < n; i++ {
		r := ask(s, "api.w.test.", dns.TypeA, "192.0.2.99")
		if len(r.Answer) != 1 {
			t.Fatalf("answers = %d, want 1", len(r.Answer))
		}
		counts[r.Region]++
	}
	// 3:1:0. With 20000 draws the share of a is 0.75 ± 0.02 far beyond 5 sigma.
	if share := float64(counts["a"]) / n; share < 0.72 || share > 0.78 {
		t.Errorf("share of a = %.3f, want ≈ 0.75 (counts %v)", share, counts)
	}
	if counts["c"] != 0 {
		t.Errorf("weight-0 member answered %d times", counts["c"])
	}
	// A down member leaves the spread.
	s = compile(t, Inputs{Config: &Config{Zones: []*Zone{z}}, Health: down("api.w.test.", "a")})
	for i := 0; i < 100; i++ {
		if r := ask(s, "api.w.test.", dns.TypeA, ""); r.Region != "b" {
			t.Fatalf("with a down got %q, want b", r.Region)
		}
	}
	// answers = 2 gives two distinct addresses.
	for i := 0; i < 100; i++ {
		r := ask(s, "two.w.test.", dns.TypeA, "")
		if len(r.Answer) != 2 || r.Answer[0].String() == r.Answer[1].String() {
			t.Fatalf("two: answer %v, want 2 distinct", r.Answer)
		}
	}
}

const delegationZone = `
zone = "d.test"
ns = ["ns1"]
[records.ns1]
A = ["192.0.2.53"]
[records.sub]
NS = ["ns.sub", "ns.elsewhere.example."]
[records."ns.sub"]
A = ["192.0.2.54"]
[records.alias]
CNAME = "loop"
[records.loop]
CNAME = "alias"
`

func TestDelegationAndLoops(t *testing.T) {
	s := compile(t, Inputs{Config: &Config{Zones: []*Zone{parseZone(t, delegationZone)}}})
	for _, q := range []string{"sub.d.test.", "www.sub.d.test.", "ns.sub.d.test."} {
		r := ask(s, q, dns.TypeA, "")
		if r.Authoritative || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) != 2 || len(r.Extra) != 1 {
			t.Errorf("%s: want a referral (no AA, 2 NS, 1 glue), got aa=%v rcode=%d an=%v ns=%v extra=%v", q, r.Authoritative, r.Rcode, r.Answer, r.Ns, r.Extra)
		}
	}
	r := ask(s, "alias.d.test.", dns.TypeA, "")
	if len(r.Answer) > maxChain {
		t.Errorf("CNAME loop gave %d records; chains must be bounded", len(r.Answer))
	}
}

func TestPolicyTestsRefuseBadConfig(t *testing.T) {
	src := lastResortZone + `
[[test]]
client = "192.0.2.1"
name = "open"
region = "b"
`
	z := parseZone(t, src)
	err := RunTests(&Config{Zones: []*Zone{z}}, nil)
	if err == nil || !strings.Contains(err.Error(), "test.toml:") || !strings.Contains(err.Error(), "got region a, want b") {
		t.Fatalf("err = %v, want a failed policy test naming test.toml:line", err)
	}
}

// A parent and its delegated child served by the same node: the child's
// names are answered from the child zone, not referred.
func TestNestedZones(t *testing.T) {
	parent := parseZone(t, `zone = "example.test"
ns = ["ns.example.net."]
[records.sub]
NS = ["ns.example.net."]
[records.www]
A = ["192.0.2.1"]
`)
	child := parseZone(t, `zone = "sub.example.test"
ns = ["ns.example.net."]
[records.www]
A = ["192.0.2.2"]
`)
	s := compile(t, Inputs{Config: &Config{Zones: []*Zone{parent, child}}})
	for _, tc := range []struct{ q, want string }{
		{"www.example.test.", "192.0.2.1"},
		{"www.sub.example.test.", "192.0.2.2"},
	} {
		r := ask(s, tc.q, dns.TypeA, "")
		if !r.Authoritative || len(r.Answer) != 1 || zonesData(r) != tc.want {
			t.Errorf("%s: aa=%v answer %v, want %s", tc.q, r.Authoritative, r.Answer, tc.want)
		}
	}
	if r := ask(s, "sub.example.test.", dns.TypeSOA, ""); !r.Authoritative || len(r.Answer) != 1 {
		t.Errorf("child apex SOA: aa=%v answer %v", r.Authoritative, r.Answer)
	}
}

func zonesData(r *Result) string { return AnswerData(r.Answer)[0] }

// A wildcard's synthesized records take the query name; records a
// followed CNAME adds keep their own.
func TestWildcardCNAMEKeepsTargetOwner(t *testing.T) {
	z := parseZone(t, `zone = "wc.test"
ns = ["ns.example.net."]
[regions.a]
lat = 0
lon = 0
[records.target]
A = ["192.0.2.7"]
[records."*.s"]
CNAME = "target"
[pools."*.p"]
policy = "failover"
order = ["a"]
[pools."*.p".members.a]
cname = "target.wc.test."
`)
	s := compile(t, Inputs{Config: &Config{Zones: []*Zone{z}}})
	for _, q := range []string{"x.s.wc.test.", "x.p.wc.test."} {
		r := ask(s, q, dns.TypeA, "")
		got := rrStrings(r.Answer)
		if len(got) != 2 || !strings.HasPrefix(got[0], q+" ") || !strings.HasPrefix(got[1], "target.wc.test. ") {
			t.Errorf("%s: answer %q, want the CNAME at %s then target's A", q, got, q)
		}
	}
}
