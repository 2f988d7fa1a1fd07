package dnsserver

import (
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The fast packer must produce the same message as miekg/dns's packer for
// every kind of answer it takes on.
func TestPackFastMatchesMiekg(t *testing.T) {
	h := newTestHandler(t, demoStore(t))
	reqs := []struct {
		name  string
		qtype uint16
		opts  []reqOpt
	}{
		{"www.gslb.example.com.", dns.TypeA, []reqOpt{withECS("198.51.100.0/24")}},
		{"WWW.gslb.EXAMPLE.com.", dns.TypeAAAA, []reqOpt{withECS("2001:db8:3::/48")}},
		{"www.gslb.example.com.", dns.TypeA, []reqOpt{withECS("198.51.96.0/20")}},
		{"www.gslb.example.com.", dns.TypeA, []reqOpt{withECS("0.0.0.0/0")}},
		{"www.gslb.example.com.", dns.TypeA, nil},
		{"www.gslb.example.com.", dns.TypeTXT, []reqOpt{withEDNS(4096)}},
		{"api.gslb.example.com.", dns.TypeA, nil},
		{"nope.gslb.example.com.", dns.TypeA, nil},
		{"Status.Gslb.Example.Com.", dns.TypeA, []reqOpt{withECS("203.0.113.0/24")}},
		{"gslb.example.com.", dns.TypeNS, nil},
		{"gslb.example.com.", dns.TypeSOA, nil},
		{"gslb.example.com.", dns.TypeMX, nil},
		{"gslb.example.com.", dns.TypeTXT, nil}, // TXT: slow path on both sides
		{"x.static.gslb.example.com.", dns.TypeA, nil},
		{"example.org.", dns.TypeA, []reqOpt{withEDNS(1232)}},
		{"www.gslb.example.com.", dns.TypeA, []reqOpt{func(m *dns.Msg) { ensureOPT(m).SetVersion(1) }}},
		{"www.gslb.example.com.", dns.TypeA, []reqOpt{func(m *dns.Msg) { ensureOPT(m).SetDo(true) }}},
	}
	from := netip.MustParseAddr("192.0.2.53")
	for _, r := range reqs {
		req := mkQuery(t, r.name, r.qtype, r.opts...)
		fast, slow := newWorker(), newWorker()
		slow.slowOnly = true
		a := append([]byte(nil), h.Serve(fast, req, from, true)...)
		b := append([]byte(nil), h.Serve(slow, req, from, true)...)
		var ma, mb dns.Msg
		if err := ma.Unpack(a); err != nil {
			t.Fatalf("%s %s: fast packet does not unpack: %v", r.name, dns.TypeToString[r.qtype], err)
		}
		if err := mb.Unpack(b); err != nil {
			t.Fatalf("%s: slow packet does not unpack: %v", r.name, err)
		}
		// Weighted answers are drawn at random: compare them as sets.
		for _, m := range []*dns.Msg{&ma, &mb} {
			sort.Slice(m.Answer, func(i, j int) bool { return m.Answer[i].String() < m.Answer[j].String() })
		}
		if ma.String() != mb.String() {
			t.Errorf("%s %s: fast and slow differ\nfast:\n%s\nslow:\n%s", r.name, dns.TypeToString[r.qtype], ma.String(), mb.String())
		}
	}
}

// The hot path — parse, answer, pack — must not allocate, with NSID and
// cookies on too.
func TestServeDoesNotAllocate(t *testing.T) {
	h := newTestHandler(t, demoStore(t))
	const secret, client, www = "000102030405060708090a0b0c0d0e0f", "0123456789abcdef", "www.gslb.example.com."
	const now = 1700000000
	from := netip.MustParseAddr("203.0.113.53")
	c := mustCookies(t, newClock(now), "f0e0d0c0b0a090807060504030201000", secret)
	ck := cookieHandler(t, c, false) // NSID and cookies
	req := cookieHandler(t, c, true) // and RequireCookies
	cases := []struct {
		name string
		h    *Handler
		req  []byte
	}{
		{"ecs", h, mkQuery(t, www, dns.TypeA, withECS("198.51.100.0/24"))},
		{"nxdomain", h, mkQuery(t, "nope.gslb.example.com.", dns.TypeAAAA, withEDNS(1232))},
		{"client cookie, nsid, ecs", ck, mkQuery(t, www, dns.TypeA, withECS("198.51.100.0/24"), withNSID(""), withCookie(client))},
		{"valid server cookie, echoed", ck, mkQuery(t, www, dns.TypeA, withNSID(""), withCookie(forgeCookie(t, secret, client, 1, now-60, from)))},
		{"valid server cookie, renewed", ck, mkQuery(t, www, dns.TypeA, withNSID(""), withCookie(forgeCookie(t, secret, client, 1, now-1900, from)))},
		{"bad server cookie", ck, mkQuery(t, www, dns.TypeA, withCookie(client+"0100000000000000ffffffffffffffff"))},
		{"require: BADCOOKIE", req, mkQuery(t, www, dns.TypeA, withNSID(""), withCookie(client))},
		{"require: TC", req, mkQuery(t, www, dns.TypeA)},
	}
	w := newWorker()
	for _, tc := range cases {
		tc.h.Serve(w, tc.req, from, true)
		if n := testing.AllocsPerRun(200, func() { tc.h.Serve(w, tc.req, from, true) }); n != 0 {
			t.Errorf("%s: %.1f allocs per query, want 0", tc.name, n)
		}
	}
	// With rate limiting on: answers sent (a clock that moves a second a
	// query), and answers dropped and slipped (a stopped clock).
	sec := time.Unix(1e9, 0)
	moving := func() time.Time { sec = sec.Add(time.Second); return sec }
	stopped := func() time.Time { return sec }
	for _, now := range []func() time.Time{moving, stopped} {
		rrl, err := NewRRL(RRLConfig{ResponsesPerSecond: 1, Slip: 2}, now, nil)
		if err != nil {
			t.Fatal(err)
		}
		h.opts.RRL, ck.opts.RRL = rrl, rrl
		// Everything on at once: NSID, cookies (a client cookie, so the
		// response is limited) and rate limiting.
		all := mkQuery(t, www, dns.TypeA, withECS("198.51.100.0/24"), withNSID(""), withCookie(client))
		ck.Serve(w, all, from, true)
		if n := testing.AllocsPerRun(200, func() { ck.Serve(w, all, from, true) }); n != 0 {
			t.Errorf("rrl, cookies and nsid on: %.1f allocs per query, want 0", n)
		}
		for _, r := range [][]byte{mkQuery(t, www, dns.TypeA, withECS("198.51.100.0/24")), mkQuery(t, "nope.gslb.example.com.", dns.TypeAAAA, withEDNS(1232))} {
			h.Serve(w, r, from, true)
			if n := testing.AllocsPerRun(200, func() { h.Serve(w, r, from, true) }); n != 0 {
				t.Errorf("rrl on: %.1f allocs per query, want 0", n)
			}
		}
	}
}

// presentName must agree with miekg/dns on every name, escapes included.
func TestPresentNameMatchesMiekg(t *testing.T) {
	names := []string{".", "www.gslb.example.com.", "WwW.GsLb.ExAmPlE.CoM.", `a\.b.example.`, `sp\ ace.x.`, `\000\255z.example.`, `q\"uote.(p).@at;.x.`, "_srv._tcp.Example.", `back\\slash.`}
	for _, name := range names {
		buf := make([]byte, 512)
		n, err := dns.PackDomainName(name, buf, 0, nil, false)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		dst := make([]byte, maxPresent)
		got := string(dst[:presentName(dst, buf[:n])])
		want, _, err := dns.UnpackDomainName(buf[:n], 0)
		if err != nil {
			t.Fatal(err)
		}
		if want = strings.ToLower(want); got != want {
			t.Errorf("presentName(%q) = %q, want %q", name, got, want)
		}
	}
}
