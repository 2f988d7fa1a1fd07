package zones

import (
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Duration is a time.Duration written as "5s" in TOML; a bad one is
// reported at its line.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. \"5s\")", b)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", b)
	}
	d.Duration = v
	return nil
}

// rawCheck is a [pools.X.check] or [pools.X.members.Y.check] table. A
// member's table refines its pool's: set keys win.
type rawCheck struct {
	Type          *string           `toml:"type"`
	Port          *int              `toml:"port"`
	Interval      *Duration         `toml:"interval"`
	Timeout       *Duration         `toml:"timeout"`
	Rise          *int              `toml:"rise"`
	Fall          *int              `toml:"fall"`
	LatencyBudget *Duration         `toml:"latency_budget"`
	Method        *string           `toml:"method"`
	Path          *string           `toml:"path"`
	Host          *string           `toml:"host"`
	Headers       map[string]string `toml:"headers"`
	Body          *string           `toml:"body"`
	ExpectStatus  []int             `toml:"expect_status"`
	ExpectBody    *string           `toml:"expect_body"`
	ExpectRegexp  *string           `toml:"expect_regexp"`
	TLSServerName *string           `toml:"tls_server_name"`
	TLSCA         *string           `toml:"tls_ca"`
	TLSSkipVerify *bool             `toml:"tls_skip_verify"`
	DNSName       *string           `toml:"dns_name"`
	DNSType       *string           `toml:"dns_type"`
	DNSRcode      *string           `toml:"dns_rcode"`
	DNSAnswer     *string           `toml:"dns_answer"`
}

// over returns c refined by m (m's set keys win).
func (c rawCheck) over(m *rawCheck) rawCheck {
	if m == nil {
		return c
	}
	r := c
	r.Type, r.Method, r.Path, r.Host, r.Body = pick(c.Type, m.Type), pick(c.Method, m.Method), pick(c.Path, m.Path), pick(c.Host, m.Host), pick(c.Body, m.Body)
	r.ExpectBody, r.ExpectRegexp, r.TLSServerName, r.TLSCA = pick(c.ExpectBody, m.ExpectBody), pick(c.ExpectRegexp, m.ExpectRegexp), pick(c.TLSServerName, m.TLSServerName), pick(c.TLSCA, m.TLSCA)
	r.DNSName, r.DNSType, r.DNSRcode, r.DNSAnswer = pick(c.DNSName, m.DNSName), pick(c.DNSType, m.DNSType), pick(c.DNSRcode, m.DNSRcode), pick(c.DNSAnswer, m.DNSAnswer)
	r.Port, r.Rise, r.Fall = pick(c.Port, m.Port), pick(c.Rise, m.Rise), pick(c.Fall, m.Fall)
	r.Interval, r.Timeout, r.LatencyBudget = pick(c.Interval, m.Interval), pick(c.Timeout, m.Timeout), pick(c.LatencyBudget, m.LatencyBudget)
	r.TLSSkipVerify = pick(c.TLSSkipVerify, m.TLSSkipVerify)
	if m.Headers != nil {
		r.Headers = m.Headers
	}
	if m.ExpectStatus != nil {
		r.ExpectStatus = m.ExpectStatus
	}
	return r
}

// pick is b when it is set, else a.
func pick[T any](a, b *T) *T {
	if b != nil {
		return b
	}
	return a
}

// Check defaults.
const (
	DefaultCheckInterval = 5 * time.Second
	DefaultRise          = 5
	DefaultFall          = 3
	DefaultUnstableTTL   = 10
)

// check validates a merged check table. path names it for errors.
func (v *validator) check(r rawCheck, path string, pool string) (*Check, int) {
	at := func(k string) Pos { return v.at(path + "." + k) }
	c := &Check{Interval: DefaultCheckInterval, Rise: DefaultRise, Fall: DefaultFall, DNSType: dns.TypeA}
	kind := "http"
	if r.Type != nil {
		kind = strings.ToLower(*r.Type)
	}
	switch CheckKind(kind) {
	case CheckHTTP, CheckHTTPS, CheckTCP, CheckDNS:
		c.Kind = CheckKind(kind)
	default:
		v.add(at("type"), "pool %s check: type %q is not one of http, https, tcp, dns", pool, kind)
	}
	if r.Interval != nil {
		c.Interval = r.Interval.Duration
		if c.Interval < 100*time.Millisecond {
			v.add(at("interval"), "pool %s check: interval %s is below 100ms", pool, c.Interval)
		}
	}
	c.Timeout = c.Interval / 2
	if r.Timeout != nil {
		c.Timeout = r.Timeout.Duration
		if c.Timeout <= 0 || c.Timeout > c.Interval {
			v.add(at("timeout"), "pool %s check: timeout must be above 0 and at most the interval (%s)", pool, c.Interval)
		}
	}
	if r.Rise != nil {
		c.Rise = *r.Rise
		if c.Rise < 1 || c.Rise > 100 {
			v.add(at("rise"), "pool %s check: rise must be 1..100", pool)
		}
	}
	if r.Fall != nil {
		c.Fall = *r.Fall
		if c.Fall < 1 || c.Fall > 100 {
			v.add(at("fall"), "pool %s check: fall must be 1..100", pool)
		}
	}
	if r.LatencyBudget != nil {
		c.LatencyBudget = r.LatencyBudget.Duration
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	c.Method, c.Path, c.Host, c.Body = strings.ToUpper(str(r.Method)), str(r.Path), str(r.Host), str(r.Body)
	c.Headers = r.Headers
	c.ExpectStatus = r.ExpectStatus
	c.ExpectBody = str(r.ExpectBody)
	c.TLSServerName, c.TLSCAFile = str(r.TLSServerName), str(r.TLSCA)
	c.TLSSkipVerify = r.TLSSkipVerify != nil && *r.TLSSkipVerify
	if c.Path == "" {
		c.Path = "/"
	}
	if !strings.HasPrefix(c.Path, "/") {
		v.add(at("path"), "pool %s check: path %q must start with /", pool, c.Path)
	}
	if c.Method == "" {
		c.Method = "GET"
		if c.Body != "" {
			c.Method = "POST"
		}
	}
	for _, s := range c.ExpectStatus {
		if s < 100 || s > 599 {
			v.add(at("expect_status"), "pool %s check: %d is not an HTTP status", pool, s)
		}
	}
	if r.ExpectRegexp != nil {
		re, err := regexp.Compile(*r.ExpectRegexp)
		if err != nil {
			v.add(at("expect_regexp"), "pool %s check: expect_regexp: %v", pool, err)
		}
		c.ExpectRegexp = re
	}
	httpOnly := r.Method != nil || r.Host != nil || r.Body != nil || r.ExpectStatus != nil || r.ExpectBody != nil || r.ExpectRegexp != nil || r.Headers != nil
	if httpOnly && c.Kind != CheckHTTP && c.Kind != CheckHTTPS {
		v.add(v.at(path), "pool %s check: method, host, headers, body and expect_* apply to http and https checks only", pool)
	}
	if (r.TLSServerName != nil || r.TLSCA != nil || r.TLSSkipVerify != nil) && c.Kind != CheckHTTPS {
		v.add(v.at(path), "pool %s check: tls_* keys apply to https checks only", pool)
	}
	if c.Kind == CheckDNS {
		c.DNSName = dns.Fqdn(str(r.DNSName))
		if r.DNSName == nil {
			v.add(v.at(path), "pool %s check: a dns check needs dns_name", pool)
		}
		if r.DNSType != nil {
			t, ok := dns.StringToType[strings.ToUpper(*r.DNSType)]
			if !ok {
				v.add(at("dns_type"), "pool %s check: dns_type %q is not a DNS type", pool, *r.DNSType)
			}
			c.DNSType = t
		}
		if r.DNSRcode != nil {
			rc, ok := dns.StringToRcode[strings.ToUpper(*r.DNSRcode)]
			if !ok {
				v.add(at("dns_rcode"), "pool %s check: dns_rcode %q is not an rcode", pool, *r.DNSRcode)
			}
			c.DNSRcode = rc
		}
		c.DNSAnswer = str(r.DNSAnswer)
	} else if r.DNSName != nil || r.DNSType != nil || r.DNSRcode != nil || r.DNSAnswer != nil {
		v.add(v.at(path), "pool %s check: dns_* keys apply to dns checks only", pool)
	}
	port := int(c.DefaultPort())
	if r.Port != nil {
		port = *r.Port
		if port < 1 || port > 65535 {
			v.add(at("port"), "pool %s check: port %d is out of range", pool, port)
		}
	}
	return c, port
}

// endpoints resolves a member's probe endpoints: the listed ones
// (address, address:port, or for http(s) checks a URL such as
// "https://10.0.0.5:8443/healthz"), else each of its answer addresses on
// the check's port.
func (v *validator) endpoints(m *Member, c *Check, list []string, port int, pos Pos, pool string) []Endpoint {
	var out []Endpoint
	if len(list) == 0 {
		if m.CNAME != "" {
			v.add(m.Pos, "pool %s member %s answers with a CNAME, so list the endpoints to probe", pool, m.Region)
		}
		for _, a := range append(append([]netip.Addr(nil), m.A...), m.AAAA...) {
			out = append(out, Endpoint{Addr: netip.AddrPortFrom(a, uint16(port))})
		}
		return out
	}
	for _, e := range list {
		if ap, err := netip.ParseAddrPort(e); err == nil {
			out = append(out, Endpoint{Addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())})
			continue
		}
		if a, err := netip.ParseAddr(e); err == nil {
			out = append(out, Endpoint{Addr: netip.AddrPortFrom(a.Unmap(), uint16(port))})
			continue
		}
		if ep, ok := v.urlEndpoint(c, e, pos, pool, m.Region); ok {
			out = append(out, ep)
			continue
		}
		v.add(pos, "pool %s member %s: endpoint %q is not an address, address:port or URL", pool, m.Region, e)
	}
	return out
}

// urlEndpoint reads an endpoint written as an http(s) URL with an IP host.
// Meridian probes addresses, never names: resolving a name through DNS
// would make health depend on the DNS it serves.
func (v *validator) urlEndpoint(c *Check, s string, pos Pos, pool, region string) (Endpoint, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return Endpoint{}, false
	}
	if string(c.Kind) != u.Scheme {
		v.add(pos, "pool %s member %s: endpoint %q is %s, but the check is %s", pool, region, s, u.Scheme, c.Kind)
		return Endpoint{}, true
	}
	a, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]"))
	if err != nil {
		v.add(pos, "pool %s member %s: endpoint %q must name an IP address; set host (and tls_server_name) for the name", pool, region, s)
		return Endpoint{}, true
	}
	port := c.DefaultPort()
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			v.add(pos, "pool %s member %s: endpoint %q has a bad port", pool, region, s)
			return Endpoint{}, true
		}
		port = uint16(n)
	}
	path := u.EscapedPath()
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	return Endpoint{Addr: netip.AddrPortFrom(a.Unmap(), port), Path: path}, true
}

// FoldHealth turns target verdicts into member health: a member is down
// when fewer than its pool's HealthyShare of its endpoints are up (default:
// when none is up), degraded when every up endpoint is degraded, and
// pending when any endpoint's verdict may flip. Targets without a verdict
// are up (cold start).
//
// An endpoint's verdict is looked up under the ID of the target it shares
// with every other member that probes it with the same check, so one Down
// verdict takes down every member that uses the endpoint.
func FoldHealth(cfg *Config, verdicts map[string]TargetVerdict) HealthView {
	h := HealthView{}
	ids := targetIDs{}
	for _, z := range cfg.Zones {
		for _, p := range z.Pools {
			for _, m := range p.Members {
				if m.Check == nil || len(m.Endpoints) == 0 {
					continue
				}
				up, degraded, pending := 0, 0, false
				var firstDown string
				for i, ep := range m.Endpoints {
					tv, ok := verdicts[m.targetID(i, ids)]
					if !ok {
						up++
						continue
					}
					pending = pending || tv.Pending
					switch tv.State {
					case Down:
						if firstDown == "" {
							firstDown = ep.String() + ": " + tv.Reason
						}
					case Degraded:
						up++
						degraded++
					default:
						up++
					}
				}
				total := len(m.Endpoints)
				need := 1
				if p.HealthyShare > 0 {
					need = max(1, int(math.Ceil(p.HealthyShare*float64(total)-1e-9)))
				}
				mh := MemberHealth{Pending: pending}
				switch {
				case up < need:
					mh.State = Down
					mh.Reason = fmt.Sprintf("%d of %d endpoints up (need %d); %s", up, total, need, firstDown)
				case degraded == up:
					mh.State = Degraded
					mh.Reason = "every up endpoint is over its latency budget"
				default:
					if firstDown != "" {
						mh.Reason = strconv.Itoa(up) + " of " + strconv.Itoa(total) + " endpoints up; " + firstDown
					}
				}
				if mh.State != Up || mh.Pending || mh.Reason != "" {
					h[MemberKey{Pool: p.Owner, Region: m.Region}] = mh
				}
			}
		}
	}
	return h
}
