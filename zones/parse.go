package zones

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/meridian-gtm/meridian/geo"
	"github.com/miekg/dns"
)

// The raw* types mirror the TOML schema; ParseZone turns them into the model.
// See deploy/demo/zones/*.toml for a commented example of every key.

type rawZone struct {
	Zone    string               `toml:"zone"`
	TTL     *uint32              `toml:"ttl"`
	NS      []string             `toml:"ns"`
	SOA     rawSOA               `toml:"soa"`
	Records map[string]rawRecord `toml:"records"`
	Regions map[string]rawRegion `toml:"regions"`
	Pools   map[string]rawPool   `toml:"pools"`
	Tests   []rawTest            `toml:"test"`
}

type rawSOA struct {
	MName   string  `toml:"mname"`
	RName   string  `toml:"rname"`
	Serial  *uint32 `toml:"serial"`
	Refresh *uint32 `toml:"refresh"`
	Retry   *uint32 `toml:"retry"`
	Expire  *uint32 `toml:"expire"`
	Minimum *uint32 `toml:"minimum"`
}

// rawRecord holds the static records of one owner, one key per type; the
// values are RDATA in zone-file presentation form.
type rawRecord struct {
	TTL   *uint32  `toml:"ttl"`
	A     []string `toml:"A"`
	AAAA  []string `toml:"AAAA"`
	CNAME string   `toml:"CNAME"`
	MX    []string `toml:"MX"`
	TXT   []string `toml:"TXT"`
	SRV   []string `toml:"SRV"`
	CAA   []string `toml:"CAA"`
	NS    []string `toml:"NS"`
	PTR   []string `toml:"PTR"`
}

type rawRegion struct {
	Lat       *float64 `toml:"lat"`
	Lon       *float64 `toml:"lon"`
	Country   string   `toml:"country"`
	Continent string   `toml:"continent"`
}

type rawPool struct {
	Policy     string               `toml:"policy"`
	TTL        *uint32              `toml:"ttl"`
	Answers    *int                 `toml:"answers"`
	Order      []string             `toml:"order"`
	LastResort string               `toml:"last_resort"`
	Static     []string             `toml:"static_addresses"`
	Members    map[string]rawMember `toml:"members"`
	Geo        rawGeo               `toml:"geo"`
	// Health.
	Check        *rawCheck `toml:"check"`
	HealthyShare *float64  `toml:"healthy_share"`
	Degraded     string    `toml:"degraded"`
	TTLUnstable  *uint32   `toml:"ttl_unstable"`
	Observers    *int      `toml:"observers"`
}

type rawMember struct {
	Addresses []string  `toml:"addresses"`
	CNAME     string    `toml:"cname"`
	Weight    *uint32   `toml:"weight"`
	Endpoints []string  `toml:"endpoints"`
	Check     *rawCheck `toml:"check"`
}

type rawGeo struct {
	Continent   map[string][]string `toml:"continent"`
	Country     map[string][]string `toml:"country"`
	Subdivision map[string][]string `toml:"subdivision"`
}

type rawTest struct {
	Client string   `toml:"client"`
	Name   string   `toml:"name"`
	Type   string   `toml:"type"`
	Region string   `toml:"region"`
	Answer []string `toml:"answer"`
	Rcode  string   `toml:"rcode"`
	Scope  *int     `toml:"scope"`
}

// Defaults, chosen for a GSLB: short pool TTLs so a failover reaches clients
// quickly, ordinary TTLs for static data.
const (
	DefaultTTL         = 300
	DefaultPoolTTL     = 30
	DefaultSOARefresh  = 3600
	DefaultSOARetry    = 600
	DefaultSOAExpire   = 1209600
	DefaultNegativeTTL = 60
)

// ParseZone parses and validates one zone-policy file. Errors are an
// ErrorList wrapped with ErrInvalid, each with file:line:col.
func ParseZone(file string, data []byte) (*Zone, error) {
	var raw rawZone
	p, err := decodeTOML(file, data, &raw)
	if err != nil {
		return nil, fmt.Errorf("%w:\n%w", ErrInvalid, err)
	}
	v := &validator{p: p, ids: targetIDs{}}
	z := v.zone(file, &raw)
	if err := v.err(); err != nil {
		return nil, err
	}
	return z, nil
}

type validator struct {
	errs
	p   *positions
	ids targetIDs // settings hash per check, for the members' target IDs
}

func (v *validator) at(path string) Pos { return v.p.at(path) }

func (v *validator) zone(file string, raw *rawZone) *Zone {
	z := &Zone{File: file, TTL: DefaultTTL, Regions: map[string]*Region{}}
	if raw.TTL != nil {
		z.TTL = *raw.TTL
	}
	if raw.Zone == "" {
		v.add(Pos{File: file, Line: 1, Col: 1}, `missing key "zone" (the zone's apex, e.g. "gslb.example.com")`)
		return z
	}
	if _, ok := dns.IsDomainName(raw.Zone); !ok || raw.Zone == "." {
		v.add(v.at("zone"), "zone %q is not a domain name", raw.Zone)
		return z
	}
	z.Origin = dns.CanonicalName(raw.Zone)

	v.regions(z, raw)
	names := v.records(z, raw)
	v.nameservers(z, raw, names)
	v.soa(z, raw)
	v.pools(z, raw, names)
	v.tests(z, raw)
	return z
}

func (v *validator) regions(z *Zone, raw *rawZone) {
	for name, r := range raw.Regions {
		path := "regions." + name
		reg := &Region{Pos: v.at(path), Name: name, Country: strings.ToUpper(r.Country), Continent: strings.ToUpper(r.Continent)}
		if !validLabel(name) {
			v.add(reg.Pos, "region name %q: use letters, digits, '-' and '_'", name)
		}
		switch {
		case r.Lat == nil || r.Lon == nil:
			v.add(reg.Pos, "region %s: lat and lon are required", name)
		case *r.Lat < -90 || *r.Lat > 90:
			v.add(v.at(path+".lat"), "region %s: lat %v is outside -90..90", name, *r.Lat)
		case *r.Lon < -180 || *r.Lon > 180:
			v.add(v.at(path+".lon"), "region %s: lon %v is outside -180..180", name, *r.Lon)
		default:
			reg.Lat, reg.Lon = *r.Lat, *r.Lon
		}
		if reg.Country != "" && !isCode(reg.Country, 2) {
			v.add(v.at(path+".country"), "region %s: country %q is not an ISO 3166-1 alpha-2 code", name, r.Country)
		}
		if reg.Continent != "" && !isContinent(reg.Continent) {
			v.add(v.at(path+".continent"), "region %s: continent %q is not one of AF AN AS EU NA OC SA", name, r.Continent)
		}
		z.Regions[name] = reg
	}
}

func validLabel(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isBare(s[i]) {
			return false
		}
	}
	return true
}

func isCode(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < n; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

func isContinent(s string) bool {
	_, _, ok := geo.ContinentCentroid(s) // the table has exactly the seven codes
	return ok
}

// ownerName validates a record or pool key and returns its FQDN.
func (v *validator) ownerName(z *Zone, name string, pos Pos) (string, bool) {
	owner := fqdn(name, z.Origin)
	if _, ok := dns.IsDomainName(owner); !ok {
		v.add(pos, "%q is not a domain name", name)
		return "", false
	}
	if !dns.IsSubDomain(z.Origin, owner) {
		v.add(pos, "%s is outside zone %s", owner, z.Origin)
		return "", false
	}
	if i := strings.Index(owner, "*"); i >= 0 && (i != 0 || !strings.HasPrefix(owner, "*.")) {
		v.add(pos, "%q: a wildcard must be the whole leftmost label", name)
		return "", false
	}
	return owner, true
}

// records parses the static records and returns the set of owners that
// have records, to check collisions with pools.
func (v *validator) records(z *Zone, raw *rawZone) map[string]Pos {
	owners := map[string]Pos{}
	for _, name := range slices.Sorted(maps.Keys(raw.Records)) {
		r := raw.Records[name]
		path := "records." + name
		pos := v.at(path)
		owner, ok := v.ownerName(z, name, pos)
		if !ok {
			continue
		}
		if prev, dup := owners[owner]; dup {
			v.add(pos, "%s is already defined at %s", owner, prev)
			continue
		}
		owners[owner] = pos
		ttl := z.TTL
		if r.TTL != nil {
			ttl = *r.TTL
		}
		add := func(typ uint16, field string, values []string) {
			if len(values) == 0 {
				return
			}
			set := &RRSet{Pos: v.at(path + "." + field), Owner: owner, Type: typ}
			seen := map[string]bool{}
			for _, val := range values {
				rr, err := parseRR(fmt.Sprintf("%s %d IN %s %s", owner, ttl, dns.TypeToString[typ], val), z.Origin)
				if err != nil || rr == nil {
					msg := "empty value"
					if err != nil {
						msg = err.Error()
						if pe, ok := err.(*dns.ParseError); ok {
							msg = pe.Error()
						}
					}
					v.add(set.Pos, "%s %s %q: %s", owner, dns.TypeToString[typ], val, msg)
					continue
				}
				key := rr.String()
				if seen[key] {
					v.add(set.Pos, "%s %s %q is listed twice", owner, dns.TypeToString[typ], val)
					continue
				}
				seen[key] = true
				set.RRs = append(set.RRs, rr)
			}
			if len(set.RRs) > 0 {
				z.Records = append(z.Records, set)
			}
		}
		add(dns.TypeA, "A", r.A)
		add(dns.TypeAAAA, "AAAA", r.AAAA)
		if r.CNAME != "" {
			add(dns.TypeCNAME, "CNAME", []string{r.CNAME})
			if len(r.A)+len(r.AAAA)+len(r.MX)+len(r.TXT)+len(r.SRV)+len(r.CAA)+len(r.NS)+len(r.PTR) > 0 {
				v.add(v.at(path+".CNAME"), "%s: a CNAME cannot have other records beside it", owner)
			}
			if owner == z.Origin {
				v.add(v.at(path+".CNAME"), "%s: the zone apex cannot be a CNAME", owner)
			}
		}
		add(dns.TypeMX, "MX", r.MX)
		add(dns.TypeTXT, "TXT", r.TXT)
		add(dns.TypeSRV, "SRV", r.SRV)
		add(dns.TypeCAA, "CAA", r.CAA)
		add(dns.TypePTR, "PTR", r.PTR)
		if len(r.NS) > 0 {
			if owner == z.Origin {
				v.add(v.at(path+".NS"), "the apex NS set is the top-level key ns, not a record")
			} else if strings.HasPrefix(owner, "*.") {
				v.add(v.at(path+".NS"), "%s: a wildcard cannot be a delegation", owner)
			} else {
				add(dns.TypeNS, "NS", r.NS)
				if len(r.A)+len(r.AAAA)+len(r.MX)+len(r.TXT)+len(r.SRV)+len(r.CAA)+len(r.PTR) > 0 || r.CNAME != "" {
					v.add(v.at(path+".NS"), "%s is a delegation (NS): only NS records belong at a zone cut", owner)
				}
			}
		}
	}
	// Records below a delegation are only glue: addresses of name servers.
	for _, cut := range z.Records {
		if cut.Type != dns.TypeNS {
			continue
		}
		for _, s := range z.Records { // quadratic only in the (few) delegations
			if s.Owner != cut.Owner && dns.IsSubDomain(cut.Owner, s.Owner) && s.Type != dns.TypeA && s.Type != dns.TypeAAAA {
				v.add(s.Pos, "%s is below the delegation %s: only glue (A, AAAA) may be there", s.Owner, cut.Owner)
			}
		}
	}
	sort.SliceStable(z.Records, func(i, j int) bool {
		if z.Records[i].Owner != z.Records[j].Owner {
			return z.Records[i].Owner < z.Records[j].Owner
		}
		return z.Records[i].Type < z.Records[j].Type
	})
	return owners
}

func (v *validator) nameservers(z *Zone, raw *rawZone, names map[string]Pos) {
	if len(raw.NS) == 0 {
		v.add(Pos{File: z.File, Line: 1, Col: 1}, `missing key "ns": the zone's name servers, e.g. ns = ["ns1", "ns2"]`)
		return
	}
	pos := v.at("ns")
	seen := map[string]bool{}
	for _, n := range raw.NS {
		host := fqdn(n, z.Origin)
		if _, ok := dns.IsDomainName(host); !ok {
			v.add(pos, "ns %q is not a domain name", n)
			continue
		}
		if seen[host] {
			v.add(pos, "ns %s is listed twice", host)
			continue
		}
		seen[host] = true
		z.NS = append(z.NS, &dns.NS{Hdr: dns.RR_Header{Name: z.Origin, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: z.TTL}, Ns: host})
		if dns.IsSubDomain(z.Origin, host) && !hasAddress(z, host) {
			v.add(pos, "ns %s is inside the zone, so it needs glue: add [records.%s] with A and/or AAAA", host, strings.TrimSuffix(strings.TrimSuffix(host, z.Origin), "."))
		}
	}
}

func hasAddress(z *Zone, host string) bool {
	for _, s := range z.Records {
		if s.Owner == host && (s.Type == dns.TypeA || s.Type == dns.TypeAAAA) {
			return true
		}
	}
	return false
}

func (v *validator) soa(z *Zone, raw *rawZone) {
	s := raw.SOA
	val := func(p *uint32, def uint32) uint32 {
		if p != nil {
			return *p
		}
		return def
	}
	mname := s.MName
	if mname == "" && len(z.NS) > 0 {
		mname = z.NS[0].Ns
	}
	mname = fqdn(mname, z.Origin)
	rname := s.RName
	if rname == "" {
		rname = "hostmaster." + z.Origin
	}
	// An email address is written with its '@' as the first dot.
	if strings.Contains(rname, "@") {
		rname = dns.Fqdn(strings.Replace(rname, "@", ".", 1))
	}
	rname = fqdn(rname, z.Origin)
	for field, n := range map[string]string{"mname": mname, "rname": rname} {
		if _, ok := dns.IsDomainName(n); !ok {
			v.add(v.at("soa."+field), "soa %s %q is not a domain name", field, n)
		}
	}
	z.SOA = &dns.SOA{
		Hdr:     dns.RR_Header{Name: z.Origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: z.TTL},
		Ns:      mname,
		Mbox:    rname,
		Serial:  val(s.Serial, 1),
		Refresh: val(s.Refresh, DefaultSOARefresh),
		Retry:   val(s.Retry, DefaultSOARetry),
		Expire:  val(s.Expire, DefaultSOAExpire),
		Minttl:  val(s.Minimum, DefaultNegativeTTL),
	}
}

func (v *validator) pools(z *Zone, raw *rawZone, records map[string]Pos) {
	var cuts []string
	for _, s := range z.Records {
		if s.Type == dns.TypeNS {
			cuts = append(cuts, s.Owner)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(raw.Pools)) {
		r := raw.Pools[name]
		path := "pools." + name
		p := &Pool{Pos: v.at(path), TTL: DefaultPoolTTL, Answers: 1}
		owner, ok := v.ownerName(z, name, p.Pos)
		if !ok {
			continue
		}
		p.Owner = owner
		if prev, dup := records[owner]; dup {
			v.add(p.Pos, "pool %s: the name also has static records at %s", owner, prev)
		}
		for _, cut := range cuts {
			if owner != cut && dns.IsSubDomain(cut, owner) {
				v.add(p.Pos, "pool %s is below the delegation %s", owner, cut)
			}
		}
		if r.TTL != nil {
			p.TTL = *r.TTL
		}
		switch r.Policy {
		case "nearest", "":
			p.Policy = Nearest
		case "weighted":
			p.Policy = Weighted
		case "failover":
			p.Policy = Failover
		default:
			v.add(v.at(path+".policy"), "pool %s: policy %q is not one of nearest, weighted, failover", name, r.Policy)
		}
		v.members(z, p, path, r)
		v.order(z, p, path, r)
		v.geoRules(z, p, path, r)
		v.lastResort(p, path, r)
		v.health(p, path, r)
		z.Pools = append(z.Pools, p)
	}
}

func (v *validator) members(z *Zone, p *Pool, path string, r rawPool) {
	if len(r.Members) == 0 {
		v.add(p.Pos, "pool %s has no members: add [%s.members.<region>]", p.Owner, path)
		return
	}
	var anyA, anyAAAA, badAddr bool
	for region, m := range r.Members {
		mpath := path + ".members." + region
		mem := &Member{Pos: v.at(mpath), Region: region, Weight: 1}
		if _, ok := z.Regions[region]; !ok {
			v.add(mem.Pos, "pool %s: member %q is not a region: define [regions.%s]", p.Owner, region, region)
		}
		if m.Weight != nil {
			mem.Weight = *m.Weight
		}
		for _, a := range m.Addresses {
			ip, err := netip.ParseAddr(a)
			if err != nil || ip.Zone() != "" {
				v.add(v.at(mpath+".addresses"), "pool %s member %s: %q is not an IP address", p.Owner, region, a)
				badAddr = true
				continue
			}
			ip = ip.Unmap()
			if ip.Is4() {
				mem.A = append(mem.A, ip)
			} else {
				mem.AAAA = append(mem.AAAA, ip)
			}
		}
		if m.CNAME != "" {
			if len(m.Addresses) > 0 {
				v.add(v.at(mpath+".cname"), "pool %s member %s: use either addresses or cname, not both", p.Owner, region)
			}
			if _, ok := dns.IsDomainName(m.CNAME); !ok {
				v.add(v.at(mpath+".cname"), "pool %s member %s: cname %q is not a domain name", p.Owner, region, m.CNAME)
			}
			if p.Owner == z.Origin {
				v.add(v.at(mpath+".cname"), "pool %s is the zone apex, which cannot be a CNAME", p.Owner)
			}
			mem.CNAME = dns.CanonicalName(m.CNAME)
		} else if len(m.Addresses) == 0 {
			v.add(mem.Pos, "pool %s member %s: needs addresses or a cname", p.Owner, region)
		}
		anyA = anyA || len(mem.A) > 0
		anyAAAA = anyAAAA || len(mem.AAAA) > 0
		p.Members = append(p.Members, mem)
	}
	sort.Slice(p.Members, func(i, j int) bool { return p.Members[i].Region < p.Members[j].Region })
	// A client steered to a member that lacks the family it asked for would
	// get an empty answer, so every address member must serve the same families.
	for _, m := range p.Members {
		if m.CNAME != "" || badAddr {
			continue
		}
		if anyA && len(m.A) == 0 {
			v.add(m.Pos, "pool %s member %s has no IPv4 address while other members do: clients sent here would get no A answer", p.Owner, m.Region)
		}
		if anyAAAA && len(m.AAAA) == 0 {
			v.add(m.Pos, "pool %s member %s has no IPv6 address while other members do: clients sent here would get no AAAA answer", p.Owner, m.Region)
		}
	}
	if p.Policy == Weighted {
		var total uint64
		for _, m := range p.Members {
			total += uint64(m.Weight)
		}
		if total == 0 {
			v.add(p.Pos, "pool %s: every member has weight 0, so no member would ever answer", p.Owner)
		}
	}
	if r.Answers != nil {
		switch {
		case p.Policy != Weighted:
			v.add(v.at(path+".answers"), "pool %s: answers applies to policy weighted only", p.Owner)
		case *r.Answers < 1 || *r.Answers > len(p.Members):
			v.add(v.at(path+".answers"), "pool %s: answers must be between 1 and the number of members (%d)", p.Owner, len(p.Members))
		default:
			p.Answers = *r.Answers
		}
		for _, m := range p.Members {
			if p.Answers > 1 && m.CNAME != "" {
				v.add(m.Pos, "pool %s: member %s is a CNAME, which cannot share an answer with other members (answers = %d)", p.Owner, m.Region, p.Answers)
			}
		}
	}
}

func (p *Pool) member(region string) *Member {
	if region == staticRegion {
		return p.Static
	}
	for _, m := range p.Members {
		if m.Region == region {
			return m
		}
	}
	return nil
}

func (v *validator) regionList(p *Pool, pos Pos, what string, list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range list {
		switch {
		case p.member(r) == nil:
			v.add(pos, "pool %s %s: %q is not a member of the pool", p.Owner, what, r)
		case seen[r]:
			v.add(pos, "pool %s %s: %q is listed twice", p.Owner, what, r)
		default:
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}

func (v *validator) order(z *Zone, p *Pool, path string, r rawPool) {
	pos := v.at(path + ".order")
	p.Order = v.regionList(p, pos, "order", r.Order)
	switch p.Policy {
	case Failover:
		if len(r.Order) == 0 {
			v.add(p.Pos, "pool %s: policy failover needs order = [...], the regions from primary to last standby", p.Owner)
			return
		}
		for _, m := range p.Members {
			if !contains(p.Order, m.Region) {
				v.add(m.Pos, "pool %s: member %s is not in order, so it would never answer", p.Owner, m.Region)
			}
		}
	case Nearest:
		if len(r.Order) == 0 {
			v.add(p.Pos, "pool %s: policy nearest needs order = [...], the regions for clients the GeoIP database cannot place", p.Owner)
		}
	case Weighted:
		if len(r.Order) > 0 {
			v.add(pos, "pool %s: order has no meaning for policy weighted", p.Owner)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (v *validator) geoRules(z *Zone, p *Pool, path string, r rawPool) {
	add := func(scope GeoScope, field string, rules map[string][]string) {
		for code, regions := range rules {
			pos := v.at(path + ".geo." + field + "." + code)
			c := strings.ToUpper(code)
			ok := false
			switch scope {
			case Continent:
				ok = isContinent(c)
			case Country:
				ok = isCode(c, 2)
			case Subdivision:
				cc, sub, found := strings.Cut(c, "-")
				ok = found && isCode(cc, 2) && len(sub) >= 1 && len(sub) <= 3
			}
			if !ok {
				v.add(pos, "pool %s geo %s %q is not a valid code", p.Owner, field, code)
				continue
			}
			list := v.regionList(p, pos, "geo "+field+" "+code, regions)
			if len(regions) == 0 {
				v.add(pos, "pool %s geo %s %s lists no regions", p.Owner, field, code)
			}
			p.Geo = append(p.Geo, GeoRule{Pos: pos, Scope: scope, Code: c, Regions: list})
		}
	}
	add(Continent, "continent", r.Geo.Continent)
	add(Country, "country", r.Geo.Country)
	add(Subdivision, "subdivision", r.Geo.Subdivision)
	sort.Slice(p.Geo, func(i, j int) bool {
		if p.Geo[i].Scope != p.Geo[j].Scope {
			return p.Geo[i].Scope > p.Geo[j].Scope
		}
		return p.Geo[i].Code < p.Geo[j].Code
	})
}

func (v *validator) lastResort(p *Pool, path string, r rawPool) {
	if len(r.Static) > 0 && r.LastResort != "static" {
		v.add(v.at(path+".static_addresses"), `pool %s: static_addresses needs last_resort = "static"`, p.Owner)
	}
	switch r.LastResort {
	case "", "open":
		p.Fallback = FailOpen
	case "closed":
		p.Fallback = FailClosed
	case "static":
		p.Fallback = FallbackStatic
		p.Static = &Member{Pos: v.at(path + ".static_addresses"), Region: "static"}
		for _, a := range r.Static {
			ip, err := netip.ParseAddr(a)
			if err != nil || ip.Zone() != "" {
				v.add(p.Static.Pos, "pool %s: static address %q is not an IP address", p.Owner, a)
				continue
			}
			if ip = ip.Unmap(); ip.Is4() {
				p.Static.A = append(p.Static.A, ip)
			} else {
				p.Static.AAAA = append(p.Static.AAAA, ip)
			}
		}
		if len(r.Static) == 0 {
			v.add(v.at(path+".last_resort"), `pool %s: last_resort = "static" needs static_addresses = [...]`, p.Owner)
		}
		for _, m := range p.Members {
			if len(m.A) > 0 && len(p.Static.A) == 0 || len(m.AAAA) > 0 && len(p.Static.AAAA) == 0 {
				v.add(p.Static.Pos, "pool %s: static_addresses must cover every address family the members answer (member %s has one they lack)", p.Owner, m.Region)
				break
			}
		}
	default:
		if p.member(r.LastResort) == nil {
			v.add(v.at(path+".last_resort"), `pool %s: last_resort %q must be "open", "closed", "static" or a member region`, p.Owner, r.LastResort)
			return
		}
		p.Fallback = FallbackMember
		p.FallTo = r.LastResort
	}
}

func (v *validator) tests(z *Zone, raw *rawZone) {
	for i, t := range raw.Tests {
		path := fmt.Sprintf("test[%d]", i)
		pt := &PolicyTest{Pos: v.at(path + ".client"), Type: dns.TypeA, Rcode: -1, Scope: -1, Region: t.Region, Answer: t.Answer}
		if pt.Pos.Line == 0 {
			pt.Pos = v.at(path)
		}
		pfx, err := ParseClient(t.Client)
		if err != nil {
			v.add(pt.Pos, "test: %v", err)
		}
		pt.Client = pfx
		if t.Name == "" {
			v.add(pt.Pos, "test: name is required")
		}
		pt.Name = fqdn(t.Name, z.Origin)
		if t.Type != "" {
			typ, ok := dns.StringToType[strings.ToUpper(t.Type)]
			if !ok {
				v.add(v.at(path+".type"), "test: type %q is not a DNS type", t.Type)
			}
			pt.Type = typ
		}
		if t.Rcode != "" {
			rc, ok := dns.StringToRcode[strings.ToUpper(t.Rcode)]
			if !ok {
				v.add(v.at(path+".rcode"), "test: rcode %q is not a DNS rcode", t.Rcode)
			}
			pt.Rcode = rc
		}
		if t.Region != "" {
			if _, ok := z.Regions[t.Region]; !ok {
				v.add(v.at(path+".region"), "test: region %q is not defined", t.Region)
			}
		}
		if t.Scope != nil {
			pt.Scope = *t.Scope
			limit := 128
			if pfx.Addr().Is4() {
				limit = 32
			}
			if pt.Scope < 0 || pt.Scope > limit {
				v.add(v.at(path+".scope"), "test: scope %d is not a prefix length of the client's family (0-%d)", pt.Scope, limit)
			}
		}
		if t.Region == "" && len(t.Answer) == 0 && t.Rcode == "" && t.Scope == nil {
			v.add(pt.Pos, "test: expect something: region, answer, rcode or scope")
		}
		z.Tests = append(z.Tests, pt)
	}
}

// ParseClient parses a client address or prefix, as given to explain and
// to policy tests. An address is a full-length prefix.
func ParseClient(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("client %q is not an address or prefix", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("client %q is not an address or prefix", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// parseRR parses one record in zone-file form, with relative names in the
// RDATA taken relative to origin (as $ORIGIN would).
func parseRR(s, origin string) (dns.RR, error) {
	zp := dns.NewZoneParser(strings.NewReader(s), origin, "")
	rr, _ := zp.Next()
	if err := zp.Err(); err != nil {
		return nil, err
	}
	return rr, nil
}

// health reads a pool's checks and health options.
func (v *validator) health(p *Pool, path string, r rawPool) {
	p.UnstableTTL = min(p.TTL, DefaultUnstableTTL)
	if r.TTLUnstable != nil {
		p.UnstableTTL = min(*r.TTLUnstable, p.TTL)
	}
	switch r.Degraded {
	case "", "use":
	case "avoid":
		p.AvoidDegraded = true
	default:
		v.add(v.at(path+".degraded"), `pool %s: degraded %q must be "use" or "avoid"`, p.Owner, r.Degraded)
	}
	if r.HealthyShare != nil {
		p.HealthyShare = *r.HealthyShare
		if p.HealthyShare <= 0 || p.HealthyShare > 1 {
			v.add(v.at(path+".healthy_share"), "pool %s: healthy_share must be above 0 and at most 1", p.Owner)
		}
	}
	if r.Observers != nil {
		p.Observers = *r.Observers
		if p.Observers < 1 {
			v.add(v.at(path+".observers"), "pool %s: observers must be at least 1 (leave it out for every node)", p.Owner)
		}
	}
	var poolCheck *Check
	poolPort := 0
	if r.Check != nil {
		poolCheck, poolPort = v.check(*r.Check, path+".check", p.Owner)
	}
	for _, m := range p.Members {
		rm := r.Members[m.Region]
		mpath := path + ".members." + m.Region
		c, port := poolCheck, poolPort
		if rm.Check != nil {
			base := rawCheck{}
			if r.Check != nil {
				base = *r.Check
				if rm.Check.Type != nil && (base.Type == nil || *base.Type != *rm.Check.Type) {
					// Another kind of check: inherit only the schedule.
					base = rawCheck{Interval: base.Interval, Timeout: base.Timeout, Rise: base.Rise, Fall: base.Fall, LatencyBudget: base.LatencyBudget}
				}
			}
			c, port = v.check(base.over(rm.Check), mpath+".check", p.Owner)
		}
		if c == nil {
			if len(rm.Endpoints) > 0 {
				v.add(v.at(mpath+".endpoints"), "pool %s member %s: endpoints need a check: add [%s.check]", p.Owner, m.Region, path)
			}
			continue
		}
		m.Check = c
		m.Endpoints = v.endpoints(m, c, rm.Endpoints, port, v.at(mpath+".endpoints"), p.Owner)
		m.targets = make([]string, len(m.Endpoints))
		for i, ep := range m.Endpoints {
			m.targets[i] = v.ids.of(c, ep)
		}
	}
}
