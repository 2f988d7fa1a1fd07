package zones

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const okHead = `zone = "e.test"
ns = ["ns.example.net."]
[regions.a]
lat = 1
lon = 2
[regions.b]
lat = 3
lon = 4
`

// Each bad file must be rejected with every listed message, at file:line.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // substrings, each must appear
	}{
		{"syntax", "zone = \"x.test\"\nns = [\n", []string{"test.toml:2:7: unexpected EOF"}},
		{"unknown top key", "colour = 1\n" + okHead, []string{`test.toml:1:1: unknown key "colour"`}},
		{"unknown key in a table", okHead + "colour = 1\n", []string{`test.toml:9:1: unknown key "regions.b.colour"`}},
		{"unknown pool key", okHead + "[pools.www]\npolicy = \"nearest\"\norder = [\"a\"]\nwieght = 3\n[pools.www.members.a]\naddresses = [\"192.0.2.1\"]\n",
			[]string{`test.toml:12:1: unknown key "pools.www.wieght"`}},
		{"missing zone", "ns = [\"a.\"]\n", []string{`test.toml:1:1: missing key "zone"`}},
		{"missing ns", "zone = \"x.test\"\n", []string{`missing key "ns"`}},
		{"bad address and unknown region, all at once", okHead + `[pools.www]
policy = "nearest"
order = ["a"]
[pools.www.members.a]
addresses = ["192.0.2.300"]
[pools.www.members.zz]
addresses = ["192.0.2.1"]
`, []string{`test.toml:13:1: pool www.e.test. member a: "192.0.2.300" is not an IP address`, `test.toml:14:20: pool www.e.test.: member "zz" is not a region`}},
		{"bad policy", okHead + "[pools.www]\npolicy = \"roundrobin\"\n[pools.www.members.a]\naddresses = [\"192.0.2.1\"]\n",
			[]string{`test.toml:10:1: pool www: policy "roundrobin" is not one of nearest, weighted, failover`}},
		{"nearest without order", okHead + "[pools.www]\n[pools.www.members.a]\naddresses = [\"192.0.2.1\"]\n",
			[]string{"policy nearest needs order"}},
		{"failover member never used", okHead + "[pools.db]\npolicy = \"failover\"\norder = [\"a\"]\n[pools.db.members.a]\naddresses = [\"192.0.2.1\"]\n[pools.db.members.b]\naddresses = [\"192.0.2.2\"]\n",
			[]string{"member b is not in order, so it would never answer"}},
		{"family gap leaves clients without answer", okHead + "[pools.www]\norder = [\"a\"]\n[pools.www.members.a]\naddresses = [\"192.0.2.1\", \"2001:db8::1\"]\n[pools.www.members.b]\naddresses = [\"192.0.2.2\"]\n",
			[]string{"member b has no IPv6 address while other members do"}},
		{"weights all zero", okHead + "[pools.w]\npolicy = \"weighted\"\n[pools.w.members.a]\naddresses = [\"192.0.2.1\"]\nweight = 0\n",
			[]string{"every member has weight 0"}},
		{"record parse error", okHead + "[records.mail]\nMX = [\"ten mail.example.\"]\n",
			[]string{"test.toml:10:1: mail.e.test. MX"}},
		{"cname beside other data", okHead + "[records.x]\nCNAME = \"y\"\nA = [\"192.0.2.1\"]\n",
			[]string{"a CNAME cannot have other records beside it"}},
		{"pool collides with record", okHead + "[records.www]\nA = [\"192.0.2.1\"]\n[pools.www]\norder = [\"a\"]\n[pools.www.members.a]\naddresses = [\"192.0.2.1\"]\n",
			[]string{"pool www.e.test.: the name also has static records at test.toml:9:1"}},
		{"in-zone ns without glue", "zone = \"g.test\"\nns = [\"ns1\"]\n", []string{"ns ns1.g.test. is inside the zone, so it needs glue"}},
		{"outside zone", okHead + "[records.\"www.other.test.\"]\nA = [\"192.0.2.1\"]\n", []string{"www.other.test. is outside zone e.test."}},
		{"bad lat", "zone = \"x.test\"\nns = [\"n.example.\"]\n[regions.a]\nlat = 91\nlon = 0\n", []string{"test.toml:4:1: region a: lat 91 is outside -90..90"}},
		{"geo rule to non-member", okHead + "[pools.www]\norder = [\"a\"]\n[pools.www.members.a]\naddresses = [\"192.0.2.1\"]\n[pools.www.geo]\ncountry = { JP = [\"b\"] }\n",
			[]string{`geo country JP: "b" is not a member of the pool`}},
		{"bad test", okHead + "[[test]]\nclient = \"not-an-ip\"\nname = \"www\"\nregion = \"a\"\n", []string{`test.toml:10:1: test: client "not-an-ip" is not an address or prefix`}},
		{"glue below delegation only", okHead + "[records.sub]\nNS = [\"ns.sub\"]\n[records.\"ns.sub\"]\nA = [\"192.0.2.1\"]\n[records.\"x.sub\"]\nTXT = [\"hi\"]\n",
			[]string{"x.sub.e.test. is below the delegation sub.e.test."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseZone("test.toml", []byte(tc.src))
			if err == nil {
				t.Fatal("accepted a bad file")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestDemoZoneParses(t *testing.T) {
	z := demoZone(t)
	if z.Origin != "gslb.example.com." || len(z.Pools) != 3 || len(z.Regions) != 3 || len(z.Tests) == 0 {
		t.Fatalf("demo zone: origin %s, %d pools, %d regions, %d tests", z.Origin, len(z.Pools), len(z.Regions), len(z.Tests))
	}
}

// Every file's errors are reported in one go, each under its own name.
func TestLoadDirReportsEveryFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.toml"), []byte("zone = \"a.test\"\nns = [\"n.example.\"]\nbogus = 1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.toml"), []byte("zone = \"b.test\"\n"), 0o644)
	_, err := LoadDir(dir)
	for _, want := range []string{"a.toml:3:1: unknown key \"bogus\"", "b.toml:1:1: missing key \"ns\""} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
