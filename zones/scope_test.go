package zones

import (
	"bytes"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/meridian-gtm/meridian/geo"
	"github.com/meridian-gtm/meridian/geo/mmdbgen"
	"github.com/miekg/dns"
)

// The ECS scope is the decision boundary around the address as sent: wider,
// narrower or equal to the source prefix, in both families; 0 when the
// answer ignores location or the source is 0. Explain says which case
// applies.
func TestExplainScope(t *testing.T) {
	s := compile(t, Inputs{Config: &Config{Zones: []*Zone{demoZone(t)}}, Geo: demoGeo(t)})
	for _, tc := range []struct {
		client, name string
		qtype        uint16
		region       string
		scope        int
		why          string
	}{
		// 198.51.0.0/16 holds us-east (the address as sent) and eu-west
		// (198.51.100.0/24): the scope is longer than the source.
		{"198.51.0.0/16", "www", dns.TypeA, "us-east", 18, "the source 198.51.0.0/16 holds other answers; this one holds for 198.51.0.0/18"},
		{"198.51.100.16/28", "www", dns.TypeA, "eu-west", 24, "every client in 198.51.100.0/24 gets this answer"},
		{"198.51.100.0/24", "www", dns.TypeA, "eu-west", 24, "every client in 198.51.100.0/24 gets this answer"},
		{"198.51.100.7", "www", dns.TypeA, "eu-west", 24, "every client in 198.51.100.0/24 gets this answer"},
		{"2001:db8::/32", "www", dns.TypeAAAA, "us-east", 47, "the source 2001:db8::/32 holds other answers; this one holds for 2001:db8::/47"},
		{"2001:db8:2:ff00::/56", "www", dns.TypeAAAA, "eu-west", 48, "every client in 2001:db8:2::/48 gets this answer"},
		{"2001:db8:3::/48", "www", dns.TypeAAAA, "ap-southeast", 48, "every client in 2001:db8:3::/48 gets this answer"},
		{"::ffff:198.51.100.0/120", "www", dns.TypeA, "eu-west", 120, "every client in ::ffff:198.51.100.0/120 gets this answer"},
		{"198.51.100.0/24", "db", dns.TypeA, "us-east", 0, "the answer does not depend on where the client is"},
		{"0.0.0.0/0", "www", dns.TypeA, "us-east", 0, "source prefix 0"},
	} {
		t.Run(tc.client+" "+tc.name, func(t *testing.T) {
			client, err := ParseClient(tc.client)
			if err != nil {
				t.Fatal(err)
			}
			e := s.Explain(client, tc.name+".gslb.example.com.", tc.qtype)
			if e.Result.Region != tc.region || e.Scope != tc.scope || !strings.HasPrefix(e.ScopeWhy, tc.why) {
				t.Errorf("region %s, scope /%d (%s); want %s, /%d (%s)", e.Result.Region, e.Scope, e.ScopeWhy, tc.region, tc.scope, tc.why)
			}
		})
	}
}

// A policy test may state the scope a prefix client's answer carries, and
// fails with both scopes when it is wrong.
func TestPolicyTestScope(t *testing.T) {
	data, err := os.ReadFile("../deploy/demo/zones/gslb.example.com.toml")
	if err != nil {
		t.Fatal(err)
	}
	src := string(data)
	ok := src + `
[[test]]
client = "198.51.0.0/16"
name = "www"
region = "us-east"
scope = 18
`
	if err := RunTests(&Config{Zones: []*Zone{parseZone(t, ok)}}, demoGeo(t)); err != nil {
		t.Fatalf("right scope refused: %v", err)
	}
	bad := src + `
[[test]]
client = "198.51.0.0/16"
name = "www"
scope = 16
`
	err = RunTests(&Config{Zones: []*Zone{parseZone(t, bad)}}, demoGeo(t))
	if err == nil || !strings.Contains(err.Error(), "got ecs scope /18") || !strings.Contains(err.Error(), "want /16") {
		t.Fatalf("wrong scope: err %v", err)
	}
	_, err = ParseZone("test.toml", []byte(src+"\n[[test]]\nclient = \"192.0.2.0/24\"\nname = \"www\"\nscope = 33\n"))
	if err == nil || !strings.Contains(err.Error(), "scope 33 is not a prefix length") {
		t.Fatalf("scope 33 for IPv4: err %v", err)
	}
}

// A /56 source inside a table of /64s that hold different answers gets the
// longer scope, /64, as an IPv4 /16 over /24s does.
func TestScopeLongerThanSourceIPv6(t *testing.T) {
	fra := mmdbgen.Network{Continent: "EU", Country: "DE", City: "Frankfurt", Lat: 50.11, Lon: 8.68, HasCoords: true}
	ash := mmdbgen.Network{Continent: "NA", Country: "US", City: "Ashburn", Lat: 39.04, Lon: -77.49, HasCoords: true}
	var nets []mmdbgen.Network
	for i, n := range []mmdbgen.Network{fra, ash, fra, fra} {
		n.Prefix = netip.PrefixFrom(netip.AddrFrom16([16]byte{0x24, 0x00, 0, 5, 0, 0, 0, byte(i)}), 64)
		nets = append(nets, n)
	}
	var buf bytes.Buffer
	if err := mmdbgen.Write(&buf, mmdbgen.City, nets); err != nil {
		t.Fatal(err)
	}
	g, err := geo.Load(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	s := compile(t, Inputs{Config: &Config{Zones: []*Zone{demoZone(t)}}, Geo: g})
	for _, tc := range []struct {
		client string
		region string
		scope  int
	}{
		{"2400:5::/56", "eu-west", 64},     // the source holds Ashburn's /64 too
		{"2400:5:0:1::/56", "eu-west", 64}, // masked: the address as sent is 2400:5::, Frankfurt
		{"2400:5:0:2::/63", "eu-west", 63}, // two Frankfurt /64s: the source's own length
		{"2400:5:0:1::/64", "us-east", 64},
		{"2400:5:0:2::/64", "eu-west", 63},
	} {
		client, err := ParseClient(tc.client)
		if err != nil {
			t.Fatal(err)
		}
		e := s.Explain(client, "www.gslb.example.com.", dns.TypeAAAA)
		if e.Result.Region != tc.region || e.Scope != tc.scope {
			t.Errorf("%s: %s /%d (%s), want %s /%d", tc.client, e.Result.Region, e.Scope, e.ScopeWhy, tc.region, tc.scope)
		}
	}
}
