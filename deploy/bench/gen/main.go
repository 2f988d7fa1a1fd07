// Command gen is the helper of deploy/bench/run.sh, the dnsperf comparison
// of Meridian and gdnsd. It is bench tooling, not part of the server.
//
//	gen geodb   -out DIR/bench-city.mmdb [-csv DIR/bench-city.csv]
//	gen queries -out DIR/queries.bin -n 40000 -name www.bench.example.
//	gen verify  -server 127.0.0.1:PORT -name www.bench.example. [-n 400]
//
// Everything is derived from one fixed seed, so the database, the query
// file and the verification sample are the same on every run and both
// servers see exactly the same work.
//
// All addresses are private or shared space (10.0.0.0/8, 100.64.0.0/10,
// fd00::/8): they only ever travel as EDNS Client Subnet payloads to
// servers on loopback, nothing is contacted.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"time"

	"github.com/miekg/dns"

	"github.com/meridian-gtm/meridian/geo/mmdbgen"
)

// seed fixes every random choice of the bench.
const seed = 20260101

// Sizes of the generated GeoIP database.
const (
	numV4 = 4000 // IPv4 /24s
	numV6 = 1000 // IPv6 /48s
)

// region is one of the three data centres of the bench zone; run.sh writes
// the same names, coordinates and addresses into both servers' configs.
type region struct {
	name     string
	lat, lon float64
	a, aaaa  string
}

var regions = []region{
	{"us-east", 38.95, -77.45, "192.0.2.10", "2001:db8:1::10"},
	{"eu-west", 50.11, 8.68, "198.51.100.10", "2001:db8:2::10"},
	{"ap-southeast", 1.35, 103.82, "203.0.113.10", "2001:db8:3::10"},
}

// city is a real place; the generated networks are scattered around them.
type city struct {
	continent, country, name string
	lat, lon                 float64
}

// cities spreads the networks over every inhabited continent, with more
// weight (more entries) where there are more Internet users.
var cities = []city{
	{"NA", "US", "New York", 40.71, -74.01},
	{"NA", "US", "Chicago", 41.88, -87.63},
	{"NA", "US", "Dallas", 32.78, -96.80},
	{"NA", "US", "Denver", 39.74, -104.99},
	{"NA", "US", "Los Angeles", 34.05, -118.24},
	{"NA", "US", "Seattle", 47.61, -122.33},
	{"NA", "US", "Miami", 25.76, -80.19},
	{"NA", "US", "Atlanta", 33.75, -84.39},
	{"NA", "CA", "Toronto", 43.65, -79.38},
	{"NA", "CA", "Vancouver", 49.28, -123.12},
	{"NA", "MX", "Mexico City", 19.43, -99.13},
	{"NA", "GT", "Guatemala City", 14.63, -90.51},
	{"SA", "BR", "Sao Paulo", -23.55, -46.63},
	{"SA", "BR", "Rio de Janeiro", -22.91, -43.17},
	{"SA", "AR", "Buenos Aires", -34.60, -58.38},
	{"SA", "CL", "Santiago", -33.45, -70.67},
	{"SA", "CO", "Bogota", 4.71, -74.07},
	{"SA", "PE", "Lima", -12.05, -77.04},
	{"EU", "GB", "London", 51.51, -0.13},
	{"EU", "IE", "Dublin", 53.35, -6.26},
	{"EU", "FR", "Paris", 48.86, 2.35},
	{"EU", "DE", "Berlin", 52.52, 13.40},
	{"EU", "DE", "Munich", 48.14, 11.58},
	{"EU", "NL", "Amsterdam", 52.37, 4.90},
	{"EU", "ES", "Madrid", 40.42, -3.70},
	{"EU", "IT", "Milan", 45.46, 9.19},
	{"EU", "PL", "Warsaw", 52.23, 21.01},
	{"EU", "SE", "Stockholm", 59.33, 18.07},
	{"EU", "RO", "Bucharest", 44.43, 26.10},
	{"EU", "RU", "Moscow", 55.76, 37.62},
	{"AS", "TR", "Istanbul", 41.01, 28.98},
	{"AS", "AE", "Dubai", 25.20, 55.27},
	{"AS", "IN", "Mumbai", 19.08, 72.88},
	{"AS", "IN", "Delhi", 28.70, 77.10},
	{"AS", "IN", "Bangalore", 12.97, 77.59},
	{"AS", "PK", "Karachi", 24.86, 67.01},
	{"AS", "BD", "Dhaka", 23.81, 90.41},
	{"AS", "TH", "Bangkok", 13.76, 100.50},
	{"AS", "VN", "Ho Chi Minh City", 10.82, 106.63},
	{"AS", "ID", "Jakarta", -6.21, 106.85},
	{"AS", "PH", "Manila", 14.60, 120.98},
	{"AS", "CN", "Shanghai", 31.23, 121.47},
	{"AS", "CN", "Beijing", 39.90, 116.41},
	{"AS", "HK", "Hong Kong", 22.32, 114.17},
	{"AS", "KR", "Seoul", 37.57, 126.98},
	{"AS", "JP", "Tokyo", 35.68, 139.69},
	{"AS", "JP", "Osaka", 34.69, 135.50},
	{"AS", "KZ", "Almaty", 43.24, 76.89},
	{"AF", "EG", "Cairo", 30.04, 31.24},
	{"AF", "NG", "Lagos", 6.52, 3.38},
	{"AF", "KE", "Nairobi", -1.29, 36.82},
	{"AF", "ZA", "Johannesburg", -26.20, 28.05},
	{"AF", "ZA", "Cape Town", -33.92, 18.42},
	{"AF", "MA", "Casablanca", 33.57, -7.59},
	{"OC", "AU", "Sydney", -33.87, 151.21},
	{"OC", "AU", "Perth", -31.95, 115.86},
	{"OC", "NZ", "Auckland", -36.85, 174.76},
}

// placed is a generated network and where the database puts it.
type placed struct {
	prefix   netip.Prefix
	lat, lon float64
}

// networks returns the bench database's networks, the same on every call.
func networks() []mmdbgen.Network {
	r := rand.New(rand.NewPCG(seed, 1))
	var nets []mmdbgen.Network
	add := func(p netip.Prefix) {
		c := cities[r.IntN(len(cities))]
		// Scatter around the city (±1.5°) so that networks are not all
		// on the same few points: distances then vary per network.
		lat := math.Max(-89, math.Min(89, c.lat+(r.Float64()*3-1.5)))
		lon := c.lon + (r.Float64()*3 - 1.5)
		nets = append(nets, mmdbgen.Network{
			Prefix: p, Continent: c.continent, Country: c.country, City: c.name,
			Lat: round2(lat), Lon: round2(lon), HasCoords: true,
		})
	}
	seen := map[netip.Prefix]bool{}
	for len(seen) < numV4 {
		var p netip.Prefix
		if r.IntN(4) == 0 { // a quarter in 100.64.0.0/10 (CGNAT space)
			v := uint32(100)<<24 | uint32(64+r.IntN(64))<<16 | uint32(r.IntN(256))<<8
			p = netip.PrefixFrom(v4(v), 24)
		} else {
			v := uint32(10)<<24 | uint32(r.IntN(1<<16))<<8
			p = netip.PrefixFrom(v4(v), 24)
		}
		if unplacedV4.Overlaps(p) || seen[p] {
			continue
		}
		seen[p] = true
		add(p)
	}
	for len(seen) < numV4+numV6 {
		var b [16]byte
		b[0] = 0xfd
		for i := 1; i < 6; i++ {
			b[i] = byte(r.IntN(256))
		}
		p := netip.PrefixFrom(netip.AddrFrom16(b), 48)
		if seen[p] || unplacedV6.Overlaps(p) {
			continue
		}
		seen[p] = true
		add(p)
	}
	return nets
}

// Client subnets inside these prefixes are in no generated network, so
// both servers fall back to their default order (us-east first).
var (
	unplacedV4 = netip.MustParsePrefix("10.255.0.0/16")
	unplacedV6 = netip.MustParsePrefix("fdff::/16")
)

func v4(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

// client is one query of the bench: an ECS subnet, a type, and the region
// the nearest policy must pick for it.
type client struct {
	ecs    netip.Prefix
	qtype  uint16
	region int
}

// clients draws n queries over the database's networks: 95% from placed
// networks (various hosts' /24 or /48 and /56), 5% unplaced; A and AAAA
// half each, independently of the ECS family (a resolver asks for AAAA on
// behalf of IPv4 clients too).
func clients(nets []mmdbgen.Network, n int, stream uint64) []client {
	r := rand.New(rand.NewPCG(seed, stream))
	out := make([]client, 0, n)
	for range n {
		var c client
		c.qtype = dns.TypeA
		if r.IntN(2) == 0 {
			c.qtype = dns.TypeAAAA
		}
		if r.IntN(20) == 0 {
			c.region = 0 // first of both servers' default order
			if r.IntN(2) == 0 {
				b := unplacedV4.Addr().As4()
				b[2] = byte(r.IntN(256))
				c.ecs = netip.PrefixFrom(netip.AddrFrom4(b), 24)
			} else {
				b := unplacedV6.Addr().As16()
				b[2], b[3], b[4], b[5] = byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))
				c.ecs = netip.PrefixFrom(netip.AddrFrom16(b), 48)
			}
			out = append(out, c)
			continue
		}
		nw := nets[r.IntN(len(nets))]
		c.region = nearest(nw.Lat, nw.Lon)
		b := nw.Prefix.Addr().AsSlice()
		bits := nw.Prefix.Bits()
		if nw.Prefix.Addr().Is6() && r.IntN(2) == 0 {
			b[6] = byte(r.IntN(256)) // a /56 inside the /48
			bits = 56
		}
		a, _ := netip.AddrFromSlice(b)
		c.ecs = netip.PrefixFrom(a, bits)
		out = append(out, c)
	}
	return out
}

// nearest is the index of the region closest to (lat, lon) by great-circle
// distance: what both servers' nearest policy must answer.
func nearest(lat, lon float64) int {
	best, bestD := 0, math.Inf(1)
	for i, rg := range regions {
		if d := haversine(lat, lon, rg.lat, rg.lon); d < bestD {
			best, bestD = i, d
		}
	}
	return best
}

func haversine(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	dlat, dlon := (lat2-lat1)*rad, (lon2-lon1)*rad
	h := math.Sin(dlat/2)*math.Sin(dlat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dlon/2)*math.Sin(dlon/2)
	return 2 * 6371 * math.Asin(math.Sqrt(h))
}

// query builds the wire query of c: no RD (we are asking an authority),
// EDNS0 with a 1232-byte buffer and the client subnet.
func query(name string, c client) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, c.qtype)
	m.RecursionDesired = false
	opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	opt.SetUDPSize(1232)
	ecs := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, SourceNetmask: uint8(c.ecs.Bits()), Address: c.ecs.Addr().AsSlice()}
	ecs.Family = 1
	if c.ecs.Addr().Is6() {
		ecs.Family = 2
	}
	opt.Option = append(opt.Option, ecs)
	m.Extra = append(m.Extra, opt)
	return m
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gen geodb|queries|verify [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "geodb":
		err = cmdGeodb(os.Args[2:])
	case "queries":
		err = cmdQueries(os.Args[2:])
	case "verify":
		err = cmdVerify(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func cmdGeodb(args []string) error {
	fs := flag.NewFlagSet("geodb", flag.ExitOnError)
	out := fs.String("out", "", "database to write")
	csvOut := fs.String("csv", "", "also write the networks as CSV (for reading, or for meridian-geodb)")
	_ = fs.Parse(args)
	if *out == "" {
		return errors.New("geodb: need -out")
	}
	nets := networks()
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := mmdbgen.Write(w, mmdbgen.City, nets); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if *csvOut != "" {
		c, err := os.Create(*csvOut)
		if err != nil {
			return err
		}
		cw := bufio.NewWriter(c)
		fmt.Fprintln(cw, "prefix,continent,country,subdivision,city,lat,lon")
		for _, n := range nets {
			fmt.Fprintf(cw, "%s,%s,%s,,%s,%g,%g\n", n.Prefix, n.Continent, n.Country, n.City, n.Lat, n.Lon)
		}
		if err := cw.Flush(); err != nil {
			c.Close()
			return err
		}
		if err := c.Close(); err != nil {
			return err
		}
	}
	var per [3]int
	for _, n := range nets {
		per[nearest(n.Lat, n.Lon)]++
	}
	fmt.Printf("geodb: %d networks (%d IPv4 /24, %d IPv6 /48) over %d cities; nearest us-east %d, eu-west %d, ap-southeast %d\n",
		len(nets), numV4, numV6, len(cities), per[0], per[1], per[2])
	return nil
}

// cmdQueries writes a dnsperf -B file: each query as on a TCP stream (two
// length bytes, then the message). dnsperf overwrites only the ID, so each
// query keeps its own ECS option — which dnsperf's text format (-E sets one
// option for every query) cannot do.
func cmdQueries(args []string) error {
	fs := flag.NewFlagSet("queries", flag.ExitOnError)
	out := fs.String("out", "", "dnsperf -B file to write")
	n := fs.Int("n", 40000, "number of queries")
	name := fs.String("name", "www.bench.example.", "name to query")
	_ = fs.Parse(args)
	if *out == "" {
		return errors.New("queries: need -out")
	}
	cs := clients(networks(), *n, 2)
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	subnets := map[netip.Prefix]bool{}
	var nA, nV6 int
	for _, c := range cs {
		wire, err := query(*name, c).Pack()
		if err != nil {
			f.Close()
			return err
		}
		var l [2]byte
		binary.BigEndian.PutUint16(l[:], uint16(len(wire)))
		w.Write(l[:])
		w.Write(wire)
		subnets[c.ecs] = true
		if c.qtype == dns.TypeA {
			nA++
		}
		if c.ecs.Addr().Is6() {
			nV6++
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Printf("queries: %d (%d A, %d AAAA), %d distinct ECS subnets (%d queries with IPv6 ECS)\n",
		len(cs), nA, len(cs)-nA, len(subnets), nV6)
	return nil
}

// cmdVerify checks that a server steers by the ECS subnet: each answer is
// the address of the nearest region, and the ECS option comes back with the
// same family, source prefix and address and a non-zero scope. It fails
// unless at least 99% of the answers are right (the margin is for networks
// almost equidistant from two regions) and every answer echoes ECS.
func cmdVerify(args []string) error {
	fs := flag.NewFlagSet("verify", flag.ExitOnError)
	server := fs.String("server", "", "host:port of the server")
	name := fs.String("name", "www.bench.example.", "name to query")
	n := fs.Int("n", 400, "number of queries")
	_ = fs.Parse(args)
	if *server == "" {
		return errors.New("verify: need -server")
	}
	cl := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	var right, echoed, scoped, failed int
	var size int
	var firstBad string
	for _, c := range clients(networks(), *n, 3) {
		q := query(*name, c)
		resp, _, err := cl.Exchange(q, *server)
		if err != nil {
			failed++
			if firstBad == "" {
				firstBad = fmt.Sprintf("%s %s: %v", c.ecs, dns.TypeToString[c.qtype], err)
			}
			continue
		}
		if size == 0 {
			size = resp.Len()
		}
		want := regions[c.region].a
		if c.qtype == dns.TypeAAAA {
			want = regions[c.region].aaaa
		}
		got := ""
		if resp.Rcode == dns.RcodeSuccess && resp.Authoritative && len(resp.Answer) == 1 {
			switch rr := resp.Answer[0].(type) {
			case *dns.A:
				got = rr.A.String()
			case *dns.AAAA:
				got = rr.AAAA.String()
			}
		}
		if got == want {
			right++
		} else if firstBad == "" {
			firstBad = fmt.Sprintf("%s %s: want %s (%s), got rcode %s answer %v",
				c.ecs, dns.TypeToString[c.qtype], want, regions[c.region].name, dns.RcodeToString[resp.Rcode], resp.Answer)
		}
		if opt := resp.IsEdns0(); opt != nil {
			for _, o := range opt.Option {
				e, ok := o.(*dns.EDNS0_SUBNET)
				if !ok {
					continue
				}
				a, _ := netip.AddrFromSlice(e.Address)
				if int(e.SourceNetmask) == c.ecs.Bits() && a.Unmap() == c.ecs.Addr() {
					echoed++
					if e.SourceScope > 0 {
						scoped++
					}
				}
			}
		}
	}
	fmt.Printf("verify %s: %d queries, %d right region, %d ECS echoed (%d with scope > 0), %d timeouts; first response %d bytes\n",
		*server, *n, right, echoed, scoped, failed, size)
	if right*100 < *n*99 || echoed != *n {
		if firstBad != "" {
			fmt.Println("  first wrong answer:", firstBad)
		}
		return fmt.Errorf("verify %s: not geo-steering by ECS", *server)
	}
	return nil
}
