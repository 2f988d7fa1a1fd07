package zones

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/meridian-gtm/meridian/geo"
	"github.com/meridian-gtm/meridian/geo/mmdbgen"
)

// routingGeo places one /24 per city: two in Europe, one in North
// America, three in Asia (one of them Japan, which the demo's www pool
// sends by a country rule).
func routingGeo(t *testing.T) *geo.Table {
	t.Helper()
	cities := []mmdbgen.Network{
		{Continent: "EU", Country: "DE", City: "Frankfurt", Lat: 50.11, Lon: 8.68, HasCoords: true},
		{Continent: "EU", Country: "FR", City: "Paris", Lat: 48.86, Lon: 2.35, HasCoords: true},
		{Continent: "NA", Country: "US", City: "Ashburn", Lat: 39.04, Lon: -77.49, HasCoords: true},
		{Continent: "AS", Country: "SG", City: "Singapore", Lat: 1.35, Lon: 103.82, HasCoords: true},
		{Continent: "AS", Country: "JP", City: "Tokyo", Lat: 35.68, Lon: 139.69, HasCoords: true},
		{Continent: "AS", Country: "IN", City: "Mumbai", Lat: 19.08, Lon: 72.88, HasCoords: true},
	}
	for i := range cities {
		cities[i].Prefix = netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64, byte(i), 0}), 24)
	}
	var buf bytes.Buffer
	if err := mmdbgen.Write(&buf, mmdbgen.City, cities); err != nil {
		t.Fatal(err)
	}
	g, err := geo.Load(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestRouting(t *testing.T) {
	cfg := &Config{Zones: []*Zone{demoZone(t)}}
	s := compile(t, Inputs{Config: cfg, Geo: routingGeo(t)})
	const www = "www.gslb.example.com."
	type want struct {
		continents, countries map[string]string
		unplaced              string
	}
	for _, tc := range []struct {
		name string
		h    HealthView
		o    []Override
		want want
	}{
		{"healthy", nil, nil, want{
			map[string]string{"EU": "eu-west", "NA": "us-east", "AS": "ap-southeast"},
			map[string]string{"DE": "eu-west", "FR": "eu-west", "US": "us-east", "SG": "ap-southeast", "JP": "ap-southeast", "IN": "ap-southeast"},
			"us-east"}},
		{"eu-west drained", nil, []Override{{Action: Drain, Pool: www, Region: "eu-west"}}, want{
			map[string]string{"EU": "us-east", "NA": "us-east", "AS": "ap-southeast"},
			map[string]string{"DE": "us-east", "FR": "us-east", "US": "us-east", "SG": "ap-southeast", "JP": "ap-southeast", "IN": "ap-southeast"},
			"us-east"}},
		{"ap-southeast down", HealthView{{Pool: www, Region: "ap-southeast"}: {State: Down}}, nil, want{
			// Japan's rule falls to us-east; Singapore and Mumbai to the
			// nearest left, which makes Asia's majority.
			map[string]string{"EU": "eu-west", "NA": "us-east", "AS": "eu-west"},
			map[string]string{"DE": "eu-west", "FR": "eu-west", "US": "us-east", "SG": "eu-west", "JP": "us-east", "IN": "eu-west"},
			"us-east"}},
		{"pinned", nil, []Override{{Action: Pin, Pool: www, Region: "ap-southeast"}}, want{
			map[string]string{"EU": "ap-southeast", "NA": "ap-southeast", "AS": "ap-southeast"},
			map[string]string{"DE": "ap-southeast", "FR": "ap-southeast", "US": "ap-southeast", "SG": "ap-southeast", "JP": "ap-southeast", "IN": "ap-southeast"},
			"ap-southeast"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, ok := s.With(tc.h, tc.o).Routing(www)
			if !ok {
				t.Fatal("no routing for www")
			}
			check := func(what string, got, want map[string]string) {
				t.Helper()
				if len(got) != len(want) {
					t.Errorf("%s: %v, want %v", what, got, want)
				}
				for k, v := range want {
					if got[k] != v {
						t.Errorf("%s %s: %q, want %q (all: %v)", what, k, got[k], v, got)
					}
				}
			}
			check("continent", rt.Continents, tc.want.continents)
			check("country", rt.Countries, tc.want.countries)
			if rt.Unplaced != tc.want.unplaced {
				t.Errorf("unplaced: %q, want %q", rt.Unplaced, tc.want.unplaced)
			}
		})
	}
	// With changes nothing in the snapshot it starts from.
	if rt, _ := s.Routing(www); rt.Continents["EU"] != "eu-west" {
		t.Errorf("the snapshot itself changed: EU → %q", rt.Continents["EU"])
	}
	api, ok := s.Routing("api.gslb.example.com.")
	if !ok || api.Continents["EU"] != "us-east+eu-west" && api.Continents["EU"] != "eu-west+us-east" {
		t.Errorf("weighted api: %+v, want both regions joined", api)
	}
	if _, ok := s.Routing("nope.gslb.example.com."); ok {
		t.Error("routing for a pool that does not exist")
	}
}
