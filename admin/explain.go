package admin

import (
	"bytes"

	"github.com/meridian-gtm/meridian/zones"
	"github.com/miekg/dns"
)

// ExplainResult is the body of GET /api/v1/explain: a zones.Explanation
// in JSON, and as text the way `meridian explain` prints it.
type ExplainResult struct {
	Client    string       `json:"client"`
	Location  Location     `json:"location"`
	Network   string       `json:"network,omitempty"` // the GeoIP network around the client
	Name      string       `json:"name"`
	Type      string       `json:"type"`
	Rcode     string       `json:"rcode"`
	Zone      string       `json:"zone,omitempty"`
	Answer    []string     `json:"answer"`
	Authority []string     `json:"authority,omitempty"`
	Scope     int          `json:"scope"`
	ScopeWhy  string       `json:"scope_why"`
	Pool      *ExplainPool `json:"pool,omitempty"`
	Text      string       `json:"text"`
}

// Location is where the GeoIP database puts a client.
type Location struct {
	Continent   string   `json:"continent,omitempty"`
	Country     string   `json:"country,omitempty"`
	Subdivision string   `json:"subdivision,omitempty"`
	City        string   `json:"city,omitempty"`
	Lat         *float64 `json:"lat,omitempty"`
	Lon         *float64 `json:"lon,omitempty"`
	ASN         uint32   `json:"asn,omitempty"`
}

// ExplainPool is the pool part of an ExplainResult.
type ExplainPool struct {
	Owner      string          `json:"owner"`
	Policy     string          `json:"policy"`
	TTL        uint32          `json:"ttl"`
	Rule       string          `json:"rule,omitempty"`
	Regions    []ExplainRegion `json:"regions"`
	Chosen     string          `json:"chosen"`
	LastResort string          `json:"last_resort,omitempty"`
}

// ExplainRegion is one region's line, in the client's order.
type ExplainRegion struct {
	Name       string   `json:"name"`
	Rank       int      `json:"rank"`
	DistanceKM *float64 `json:"distance_km,omitempty"` // absent when the client has no coordinates
	State      string   `json:"state"`
	Reason     string   `json:"reason,omitempty"`
	Weight     uint32   `json:"weight"`
}

// NewExplainResult converts an explanation for the API.
func NewExplainResult(x *zones.Explanation) ExplainResult {
	var text bytes.Buffer
	x.Format(&text)
	out := ExplainResult{
		Client: x.Client.String(), Name: x.Name, Type: dns.Type(x.Type).String(),
		Rcode: dns.RcodeToString[x.Result.Rcode], Zone: x.Result.Zone, Answer: []string{},
		Scope: x.Scope, ScopeWhy: x.ScopeWhy, Text: text.String(),
		Location: Location{Continent: x.Location.Continent, Country: x.Location.Country,
			Subdivision: x.Location.Subdivision, City: x.Location.City, ASN: x.Location.ASN},
	}
	if x.Network.IsValid() {
		out.Network = x.Network.String()
	}
	if x.Location.HasCoords {
		lat, lon := x.Location.Lat, x.Location.Lon
		out.Location.Lat, out.Location.Lon = &lat, &lon
	}
	for _, rr := range x.Result.Answer {
		out.Answer = append(out.Answer, rr.String())
	}
	for _, rr := range x.Result.Ns {
		out.Authority = append(out.Authority, rr.String())
	}
	if p := x.Pool; p != nil {
		ep := &ExplainPool{Owner: p.Owner, Policy: p.Policy.String(), TTL: p.TTL, Rule: p.Rule,
			Chosen: p.Chosen, LastResort: p.LastResort, Regions: []ExplainRegion{}}
		for _, r := range p.Regions {
			er := ExplainRegion{Name: r.Name, Rank: r.Rank, State: r.State, Reason: r.Reason, Weight: r.Weight}
			if r.DistanceKM >= 0 {
				d := r.DistanceKM
				er.DistanceKM = &d
			}
			ep.Regions = append(ep.Regions, er)
		}
		out.Pool = ep
	}
	return out
}
