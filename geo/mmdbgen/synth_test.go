package mmdbgen

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/meridian-gtm/meridian/geo"
)

// smallSynth is big enough to have every country, registry and prefix
// length in it, and small enough for -race.
var smallSynth = SynthOptions{V4: 20000, V6: 5000, Locations: 2000, Seed: 1}

func writeSynth(t testing.TB, opts SynthOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteSynth(&buf, opts); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Networks no synthetic network may touch: reserved IPv4 space, and IPv6
// outside 2000::/3 or where MaxMind aliases IPv6 to IPv4.
var synthExcluded = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/3",
		"::/3", "4000::/2", "8000::/1", "2001::/32", "2001:db8::/32", "2002::/16",
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

// TestSynthReadBack writes a small database and reads every network back
// with maxminddb-golang and geoip2-golang.
func TestSynthReadBack(t *testing.T) {
	opts := smallSynth
	db := writeSynth(t, opts)
	r, err := maxminddb.OpenBytes(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if md := r.Metadata; md.DatabaseType != City || md.IPVersion != 6 || md.RecordSize != 28 || md.BuildEpoch != BuildEpoch {
		t.Errorf("metadata %+v", md)
	}

	var (
		n4, n6        int
		pairs, sameCC int // neighbouring IPv4 networks, and those in one country
		sameLoc       int // and those at one location (one record)
		cityless      int
		prev          netip.Prefix
		prevCC        string
		prevOff       uintptr
		records       = make(map[uintptr]bool)
	)
	for res := range r.Networks() {
		if err := res.Err(); err != nil {
			t.Fatal(err)
		}
		p := res.Prefix()
		if p.Addr().Is4() {
			n4++
			if p.Bits() < 20 || p.Bits() > 29 {
				t.Errorf("%s: want /20 to /29", p)
			}
		} else {
			n6++
			if p.Bits() < 32 || p.Bits() > 64 {
				t.Errorf("%s: want /32 to /64", p)
			}
		}
		for _, x := range synthExcluded {
			if p.Overlaps(x) {
				t.Errorf("%s overlaps %s", p, x)
			}
		}
		var c geoip2.City
		if err := res.Decode(&c); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if !strings.Contains("AF AN AS EU NA OC SA", c.Continent.Code) || len(c.Continent.Code) != 2 ||
			!isAlpha2(c.Country.ISOCode) || c.Location.Latitude == nil || c.Location.Longitude == nil ||
			math.Abs(*c.Location.Latitude) > 90 || math.Abs(*c.Location.Longitude) > 180 {
			t.Fatalf("%s: record %+v", p, c)
		}
		if c.City.Names.English == "" {
			cityless++
			if len(c.Subdivisions) != 0 {
				t.Errorf("%s: a country-level record with subdivisions %+v", p, c.Subdivisions)
			}
		} else if len(c.Subdivisions) != 1 || c.Subdivisions[0].ISOCode == "" {
			t.Errorf("%s: a city without one subdivision: %+v", p, c.Subdivisions)
		}
		records[res.Offset()] = true
		if p.Addr().Is4() && prev.IsValid() {
			pairs++
			if c.Country.ISOCode == prevCC {
				sameCC++
			}
			if res.Offset() == prevOff {
				sameLoc++
			}
		}
		prev, prevCC, prevOff = p, c.Country.ISOCode, res.Offset()
	}
	if n4 != opts.V4 || n6 != opts.V6 {
		t.Errorf("%d IPv4 and %d IPv6 networks, want %d and %d", n4, n6, opts.V4, opts.V6)
	}
	if len(records) != opts.Locations {
		t.Errorf("%d distinct records, want %d", len(records), opts.Locations)
	}
	if cityless == 0 || cityless > (n4+n6)/5 {
		t.Errorf("%d of %d networks are country-level only", cityless, n4+n6)
	}
	// Clustering: neighbours mostly share a country and often a city.
	country, city := float64(sameCC)/float64(pairs), float64(sameLoc)/float64(pairs)
	t.Logf("neighbouring IPv4 networks: %.1f%% in one country, %.1f%% at one location", 100*country, 100*city)
	if country < 0.9 || city < 0.35 {
		t.Errorf("neighbouring IPv4 networks: %.3f share a country, %.3f a location; want >= 0.9 and >= 0.35", country, city)
	}

	// The aliases MaxMind's writers make lead to the IPv4 record.
	gr, err := geoip2.OpenBytes(db)
	if err != nil {
		t.Fatal(err)
	}
	var first netip.Prefix
	for res := range r.Networks() {
		first = res.Prefix()
		break
	}
	a4 := first.Addr().As4()
	want, err := gr.City(first.Addr())
	if err != nil || !want.HasData() {
		t.Fatalf("city of %s: %+v, %v", first.Addr(), want, err)
	}
	for _, alias := range []netip.Addr{
		netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: a4[0], 13: a4[1], 14: a4[2], 15: a4[3]}), // ::ffff:a.b.c.d
		netip.AddrFrom16([16]byte{0: 0x20, 1: 0x02, 2: a4[0], 3: a4[1], 4: a4[2], 5: a4[3]}),       // 6to4
		netip.AddrFrom16([16]byte{0: 0x20, 1: 0x01, 4: a4[0], 5: a4[1], 6: a4[2], 7: a4[3]}),       // Teredo
	} {
		got, err := gr.City(alias)
		if err != nil || got.Country.ISOCode != want.Country.ISOCode || got.City.Names.English != want.City.Names.English {
			t.Errorf("city of %s: %+v, %v; want that of %s", alias, got, err, first.Addr())
		}
	}
}

// TestSynthMatchesWrite checks the hand-written format against mmdbwriter:
// WriteSynth and Write(City, Synth()) hold the same networks and records.
// mmdbwriter merges sibling networks with equal records, so equal counts
// also show that Synth never makes any.
func TestSynthMatchesWrite(t *testing.T) {
	opts := SynthOptions{V4: 4000, V6: 1500, Locations: 400, Seed: 7}
	nets, err := Synth(opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(nets) != opts.V4+opts.V6 {
		t.Fatalf("Synth made %d networks, want %d", len(nets), opts.V4+opts.V6)
	}
	var viaWriter bytes.Buffer
	if err := Write(&viaWriter, City, nets); err != nil {
		t.Fatal(err)
	}
	direct := writeSynth(t, opts)
	rw, err := maxminddb.OpenBytes(viaWriter.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	rd, err := maxminddb.OpenBytes(direct)
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		prefix netip.Prefix
		rec    geoRecord
	}
	read := func(r *maxminddb.Reader) []entry {
		var es []entry
		for res := range r.Networks() {
			var e entry
			e.prefix = res.Prefix()
			if err := res.Decode(&e.rec); err != nil {
				t.Fatal(err)
			}
			es = append(es, e)
		}
		return es
	}
	w, d := read(rw), read(rd)
	if len(w) != len(nets) || len(d) != len(nets) {
		t.Fatalf("networks: %d via mmdbwriter, %d written directly, want %d", len(w), len(d), len(nets))
	}
	for i, n := range nets {
		want := geoRecord{}
		want.Continent.Code, want.Country.ISOCode = n.Continent, n.Country
		if n.Subdivision != "" {
			want.Subdivisions = append(want.Subdivisions, struct {
				ISOCode string `maxminddb:"iso_code"`
			}{n.Subdivision})
		}
		if n.City != "" {
			want.City.Names = map[string]string{"en": n.City}
		}
		for _, e := range [...]entry{w[i], d[i]} {
			if e.prefix != n.Prefix || !sameRecord(e.rec, want, n) {
				t.Fatalf("network %d: %s %+v, want %s %+v", i, e.prefix, e.rec, n.Prefix, n)
			}
		}
	}
}

func sameRecord(got, want geoRecord, n Network) bool {
	if got.Continent != want.Continent || got.Country != want.Country || got.ASN != 0 ||
		len(got.Subdivisions) != len(want.Subdivisions) || got.City.Names["en"] != want.City.Names["en"] ||
		got.Location == nil || got.Location.Latitude != n.Lat || got.Location.Longitude != n.Lon {
		return false
	}
	return len(got.Subdivisions) == 0 || got.Subdivisions[0] == want.Subdivisions[0]
}

// TestSynthGeoLoad compiles a synthetic database the way the server does.
func TestSynthGeoLoad(t *testing.T) {
	opts := smallSynth
	tab, err := geo.Load(writeSynth(t, opts))
	if err != nil {
		t.Fatal(err)
	}
	info := tab.Info()
	// Locations() holds the unknown location too.
	if info.Networks != opts.V4+opts.V6 || info.Locations != opts.Locations+1 {
		t.Errorf("info %+v, want %d networks and %d locations", info, opts.V4+opts.V6, opts.Locations+1)
	}
	t.Logf("%+v", info)
}

func TestSynthDeterministic(t *testing.T) {
	opts := SynthOptions{V4: 3000, V6: 1000, Locations: 300, Seed: 42}
	a, b := writeSynth(t, opts), writeSynth(t, opts)
	if !bytes.Equal(a, b) {
		t.Error("the same options gave different bytes")
	}
	opts.Seed++
	if bytes.Equal(a, writeSynth(t, opts)) {
		t.Error("another seed gave the same bytes")
	}
}

// TestSynthSizes checks exact counts at the edges of the options.
func TestSynthSizes(t *testing.T) {
	for _, tc := range []struct {
		opts SynthOptions
		locs int // distinct locations expected
	}{
		{SynthOptions{V4: 1, Locations: 2}, 1},
		{SynthOptions{V6: 1, Locations: 2}, 1},
		{SynthOptions{V4: 500, Locations: 2}, 2},
		{SynthOptions{V4: 500, V6: 500, Locations: 3}, 3},
		{SynthOptions{V4: 2000, Locations: 40}, 40},
		{SynthOptions{V6: 2000, Locations: 1000, Seed: 3}, -1}, // more locations than runs: fewer
		{SynthOptions{}, 0},
	} {
		nets, err := Synth(tc.opts)
		if err != nil {
			t.Errorf("%+v: %v", tc.opts, err)
			continue
		}
		var n4, n6 int
		locs := make(map[Network]bool)
		for _, n := range nets {
			if n.Prefix.Addr().Is4() {
				n4++
			} else {
				n6++
			}
			n.Prefix = netip.Prefix{}
			locs[n] = true
		}
		if n4 != tc.opts.V4 || n6 != tc.opts.V6 {
			t.Errorf("%+v: %d IPv4 and %d IPv6 networks", tc.opts, n4, n6)
		}
		if tc.locs >= 0 && len(locs) != tc.locs || tc.locs < 0 && (len(locs) >= tc.opts.Locations || len(locs) < tc.opts.Locations/10) {
			t.Errorf("%+v: %d locations, want %d", tc.opts, len(locs), tc.locs)
		}
	}
}

func TestSynthOptionErrors(t *testing.T) {
	for _, opts := range []SynthOptions{
		{V4: -1, Locations: 10},
		{V4: 10, Locations: 1},
		{V4: 8_000_000, Locations: 100}, // more than the model's IPv4 space holds
		{V6: 100_000_000, Locations: 100},
		{V4: math.MaxInt, V6: math.MaxInt, Locations: 100},
	} {
		_, err := Synth(opts)
		if !errors.Is(err, ErrSynth) {
			t.Errorf("Synth(%+v): %v, want ErrSynth", opts, err)
		}
		if err := WriteSynth(io.Discard, opts); !errors.Is(err, ErrSynth) {
			t.Errorf("WriteSynth(%+v): %v, want ErrSynth", opts, err)
		}
	}
}

// TestSynthTables checks the model's static tables against each other and
// against geo's centroids.
func TestSynthTables(t *testing.T) {
	seen := make(map[string]bool)
	for _, c := range synthCountries {
		lat, lon, ok := geo.CountryCentroid(c.code)
		switch {
		case seen[c.code]:
			t.Errorf("%s twice", c.code)
		case !ok || math.Abs(lat-c.lat) > 0.05 || math.Abs(lon-c.lon) > 0.05:
			t.Errorf("%s: centroid %v %v, geo has %v %v", c.code, c.lat, c.lon, lat, lon)
		case !isContinent(c.continent) || c.rir >= numRIRs || c.radius <= 0 || c.weight <= 0:
			t.Errorf("%+v", c)
		}
		seen[c.code] = true
	}
	for i, r := range ipv4RIRs {
		if r.from > r.to || i > 0 && r.from <= ipv4RIRs[i-1].to || r.to >= 224 ||
			r.from <= 10 && 10 <= r.to || r.from <= 127 && 127 <= r.to || r.from == 0 {
			t.Errorf("ipv4RIRs[%d] = %+v", i, r)
		}
	}
}

func TestApportion(t *testing.T) {
	for _, tc := range []struct {
		total   int
		weights []float64
		lo, hi  []int
		want    []int
	}{
		{10, []float64{1, 1, 1}, nil, nil, []int{4, 3, 3}},
		{10, []float64{1, 0, 3}, nil, nil, []int{3, 0, 7}},
		{10, []float64{1, 1}, nil, []int{2, 100}, []int{2, 8}},
		{10, []float64{100, 1, 1}, []int{0, 2, 2}, nil, []int{6, 2, 2}},
		{10, []float64{1, 1}, nil, []int{3, 3}, []int{3, 3}}, // not enough room
		{0, []float64{1, 1}, nil, nil, []int{0, 0}},
	} {
		got := apportion(tc.total, tc.weights, tc.lo, tc.hi)
		if !slices.Equal(got, tc.want) {
			t.Errorf("apportion(%d, %v, %v, %v) = %v, want %v", tc.total, tc.weights, tc.lo, tc.hi, got, tc.want)
		}
	}
}

// BenchmarkWriteSynth writes a CI-sized database (300k networks). A
// full-size one (4M) is a by-hand run of cmd/meridian-geodb -synth -v.
func BenchmarkWriteSynth(b *testing.B) {
	opts := SynthOptions{V4: 225000, V6: 75000, Locations: 30000, Seed: 1}
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := WriteSynth(&buf, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len()), "bytes/db")
}

func BenchmarkSynth(b *testing.B) {
	opts := SynthOptions{V4: 225000, V6: 75000, Locations: 30000, Seed: 1}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Synth(opts); err != nil {
			b.Fatal(err)
		}
	}
}
