package zones_test

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/meridian-gtm/meridian/zones"
	"github.com/miekg/dns"
)

const fuzzDemoZone = "../deploy/demo/zones/gslb.example.com.toml"

// fuzzMinimalZone is the smallest zone ParseZone accepts.
const fuzzMinimalZone = `zone = "e.test"
ns = ["ns1.example.net."]
`

// fuzzZoneErrors collects every *zones.Error in err's tree.
func fuzzZoneErrors(err error) []*zones.Error {
	var out []*zones.Error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if e, ok := err.(*zones.Error); ok {
			out = append(out, e)
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return out
}

// FuzzParseZone feeds arbitrary bytes to ParseZone. It must never panic.
// A rejected file is rejected with ErrInvalid and *zones.Error values that
// all name the file and a position inside it (a line it has, a column on
// that line or just past its end). An accepted zone must compile,
// answer its apex SOA authoritatively, answer every name it defines
// without panicking, with records that pack into a message, and run its
// policy tests.
func FuzzParseZone(f *testing.F) {
	demo, err := os.ReadFile(fuzzDemoZone)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(demo)
	f.Add([]byte(fuzzMinimalZone))
	for _, variant := range []struct{ old, new string }{
		{`[regions.us-east]`, `[regions.us-east] x`},                 // text after a table header
		{`lat = 38.95`, `lat = "38.95`},                              // unterminated string
		{`ttl = 30`, `ttl = = 30`},                                   // no value
		{`ttl = 30`, `ttl = -30`},                                    // out of range for uint32
		{`zone = "gslb.example.com"`, `zone = "gslb..example"`},      // not a domain name
		{`zone = "gslb.example.com"`, ``},                            // no zone
		{`lat = 50.11`, `lat = 150.11`},                              // out of range
		{`policy = "nearest"`, `policy = "closest"`},                 // unknown policy
		{`order = ["us-east", "eu-west"]`, `order = []`},             // failover without order
		{`CNAME = "www"`, `CNAME = "www"` + "\nA = [\"192.0.2.1\"]"}, // CNAME and other data
		{`MX = ["10 mail.example.com."]`, `MX = ["mail.example.com."]`},
		{`country = { JP = ["ap-southeast", "us-east"] }`, `country = { JPN = ["mars"] }`},
		{`region = "eu-west"`, `region = "us-east"`}, // a policy test that fails (parse still succeeds)
		{`[records."*.static"]`, `[records."a.*.static"]`},
		{`weight = 3`, `weight = 3` + "\ncolour = \"blue\""}, // unknown key
		{`rname = "hostmaster@example.com"`, `rname = "host master@example.com"`},
		{"[[test]]\nclient = \"192.0.2.1\"\nname = \"nope\"", "[[test]]\nclient = \"192.0.2.1/33\"\nname = \"nope\""},
	} {
		// A variant the demo no longer allows is skipped: the files in
		// testdata/fuzz/FuzzParseZone keep the corpus from shrinking to nothing.
		if bytes.Contains(demo, []byte(variant.old)) {
			f.Add(bytes.Replace(demo, []byte(variant.old), []byte(variant.new), 1))
		}
	}
	f.Add([]byte(fuzzMinimalZone + "[records.sub]\nNS = [\"ns.sub\"]\n[records.\"ns.sub\"]\nA = [\"192.0.2.9\"]\n"))
	f.Add([]byte(fuzzMinimalZone + "[records.\"@\"]\nTXT = [\"" + strings.Repeat("x", 300) + "\"]\n"))
	f.Add([]byte(fuzzMinimalZone + "[records.a]\nCNAME = \"b\"\n[records.b]\nCNAME = \"a\"\n"))
	f.Add([]byte(fuzzMinimalZone + "[regions.r]\nlat = 0\nlon = 0\n[pools.\"*.w\"]\norder = [\"r\"]\n[pools.\"*.w\".members.r]\ncname = \"x.e.test.\"\n"))
	f.Add([]byte(""))
	f.Add([]byte("zone = \"e.test\"\nns = [\"ns1\"]\n\"\\u0000\" = 1\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		z, err := zones.ParseZone("fuzz.toml", data)
		if err != nil {
			if z != nil {
				t.Errorf("ParseZone returned a zone and an error")
			}
			if !errors.Is(err, zones.ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			list := fuzzZoneErrors(err)
			if len(list) == 0 {
				t.Fatalf("error holds no *zones.Error: %v", err)
			}
			lines := bytes.Split(data, []byte("\n"))
			for _, e := range list {
				if e.Pos.File != "fuzz.toml" || e.Pos.Line < 0 || e.Pos.Line > len(lines) || e.Pos.Col < 0 {
					t.Errorf("error at %q line %d col %d, want fuzz.toml within its %d lines: %v", e.Pos.File, e.Pos.Line, e.Pos.Col, len(lines), e)
					continue
				}
				// A column is on its line, or just past its end (a
				// missing closing bracket is reported where the line ends).
				if e.Pos.Line > 0 && e.Pos.Col > len(lines[e.Pos.Line-1])+1 {
					t.Errorf("error at line %d col %d, but line %d is %q (%d bytes): %v", e.Pos.Line, e.Pos.Col, e.Pos.Line, lines[e.Pos.Line-1], len(lines[e.Pos.Line-1]), e)
				}
			}
			return
		}
		if z == nil {
			t.Fatal("ParseZone returned neither a zone nor an error")
		}
		cfg := &zones.Config{Zones: []*zones.Zone{z}}
		snap, err := zones.Compile(zones.Inputs{Config: cfg})
		if err != nil {
			t.Fatalf("Compile refused a zone ParseZone accepted: %v", err)
		}
		var r zones.Result
		snap.Answer(&r, z.Origin, dns.TypeSOA, netip.Addr{})
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != dns.TypeSOA {
			t.Fatalf("apex SOA of %s: rcode %s aa=%v answer %v", z.Origin, dns.RcodeToString[r.Rcode], r.Authoritative, r.Answer)
		}

		// Every name the zone defines answers every common type, for
		// clients of each family and for none, and the records pack.
		var names []string
		for _, s := range z.Records {
			names = append(names, s.Owner, "x."+strings.TrimPrefix(s.Owner, "*."))
		}
		for _, p := range z.Pools {
			names = append(names, p.Owner, "x."+strings.TrimPrefix(p.Owner, "*."))
		}
		clients := []netip.Addr{{}, netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("2001:db8:3::1")}
		for _, name := range names {
			if _, ok := dns.IsDomainName(name); !ok {
				continue
			}
			for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeNS, dns.TypeTXT, dns.TypeANY} {
				for _, c := range clients {
					r.Reset()
					snap.Answer(&r, name, qt, c)
					m := new(dns.Msg)
					m.SetQuestion(name, qt)
					m.Response, m.Rcode = true, r.Rcode
					m.Answer, m.Ns, m.Extra = r.Answer, r.Ns, r.Extra
					if _, err := m.Pack(); err != nil {
						t.Fatalf("answer to %s %s does not pack: %v\n%v", name, dns.TypeToString[qt], err, m)
					}
				}
			}
		}
		_ = zones.RunTests(cfg, nil) // may fail; must not panic
	})
}
