package dnsserver

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/geo"
	"github.com/meridian-gtm/meridian/zones"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func demoStore(t testing.TB) *zones.Store {
	t.Helper()
	cfg, err := zones.LoadDir("../deploy/demo/zones")
	if err != nil {
		t.Fatal(err)
	}
	g, err := geo.Open("../deploy/demo/demo-city.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	st, err := zones.NewStore(cfg, g)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newTestHandler(t testing.TB, src Source) *Handler {
	return NewHandler(slog.New(slog.NewTextHandler(io.Discard, nil)), src, NewMetrics(nil))
}

type reqOpt func(*dns.Msg)

func withECS(prefix string) reqOpt {
	return func(m *dns.Msg) {
		p := netip.MustParsePrefix(prefix)
		fam := uint16(1)
		if p.Addr().Is6() {
			fam = 2
		}
		o := ensureOPT(m)
		o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: fam, SourceNetmask: uint8(p.Bits()), Address: p.Addr().AsSlice()})
	}
}

func withEDNS(size uint16) reqOpt { return func(m *dns.Msg) { ensureOPT(m).SetUDPSize(size) } }

func ensureOPT(m *dns.Msg) *dns.OPT {
	if o := m.IsEdns0(); o != nil {
		return o
	}
	m.SetEdns0(1232, false)
	return m.IsEdns0()
}

func mkQuery(t testing.TB, name string, qtype uint16, opts ...reqOpt) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	for _, o := range opts {
		o(m)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func serve(t testing.TB, h *Handler, req []byte, from string, udp bool) *dns.Msg {
	t.Helper()
	w := newWorker()
	out := h.Serve(w, req, netip.MustParseAddr(from), udp)
	if out == nil {
		return nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(out); err != nil {
		t.Fatalf("response does not unpack: %v", err)
	}
	return m
}

func ecsOf(m *dns.Msg) *dns.EDNS0_SUBNET {
	if o := m.IsEdns0(); o != nil {
		for _, opt := range o.Option {
			if e, ok := opt.(*dns.EDNS0_SUBNET); ok {
				return e
			}
		}
	}
	return nil
}

func TestServe(t *testing.T) {
	h := newTestHandler(t, demoStore(t))
	const www = "www.gslb.example.com."
	tests := []struct {
		name    string
		req     []byte
		from    string
		rcode   int
		aa      bool
		answer  []string // RDATA
		ecs     string   // "addr/source/scope", "" = no ECS expected
		noReply bool
	}{
		{name: "ecs eu", req: mkQuery(t, www, dns.TypeA, withECS("198.51.100.0/24")), from: "127.0.0.1", aa: true, answer: []string{"198.51.100.10"}, ecs: "198.51.100.0/24/24"},
		{name: "ecs sg v6", req: mkQuery(t, www, dns.TypeAAAA, withECS("2001:db8:3::/48")), from: "127.0.0.1", aa: true, answer: []string{"2001:db8:3::10"}, ecs: "[2001:db8:3::]/48/48"},
		// The scope is the decision boundary around the address as sent,
		// wider, narrower or equal to the source (RFC 7871 §7.2.1).
		{name: "ecs /16 holding two answers: scope longer than the source", req: mkQuery(t, www, dns.TypeA, withECS("198.51.0.0/16")), from: "127.0.0.1", aa: true, answer: []string{"192.0.2.10"}, ecs: "198.51.0.0/16/18"},
		{name: "ecs /28 inside one /24 answer: scope shorter than the source", req: mkQuery(t, www, dns.TypeA, withECS("198.51.100.16/28")), from: "127.0.0.1", aa: true, answer: []string{"198.51.100.10"}, ecs: "198.51.100.16/28/24"},
		{name: "ecs v6 /32 holding three answers: scope longer", req: mkQuery(t, www, dns.TypeAAAA, withECS("2001:db8::/32")), from: "127.0.0.1", aa: true, answer: []string{"2001:db8:1::10"}, ecs: "[2001:db8::]/32/47"},
		{name: "ecs v6 /56 inside a /48: scope shorter", req: mkQuery(t, www, dns.TypeAAAA, withECS("2001:db8:2:ff00::/56")), from: "127.0.0.1", aa: true, answer: []string{"2001:db8:2::10"}, ecs: "[2001:db8:2:ff00::]/56/48"},
		{name: "ecs v6 /48 equal to the decision", req: mkQuery(t, www, dns.TypeAAAA, withECS("2001:db8:3::/48")), from: "127.0.0.1", aa: true, answer: []string{"2001:db8:3::10"}, ecs: "[2001:db8:3::]/48/48"},
		{name: "ecs v6 family, IPv4-mapped address: scope in IPv6 bits", req: mkQuery(t, www, dns.TypeA, withECS("::ffff:198.51.100.0/120")), from: "127.0.0.1", aa: true, answer: []string{"198.51.100.10"}, ecs: "198.51.100.0/120/120"}, // miekg prints a mapped address as IPv4,
		{name: "ecs source 0 locates by resolver, scope 0", req: mkQuery(t, www, dns.TypeA, withECS("0.0.0.0/0")), from: "203.0.113.53", aa: true, answer: []string{"203.0.113.10"}, ecs: "0.0.0.0/0/0"},
		{name: "no ecs: source address", req: mkQuery(t, www, dns.TypeA), from: "198.51.100.53", aa: true, answer: []string{"198.51.100.10"}},
		{name: "no ecs, edns: no ecs echoed", req: mkQuery(t, www, dns.TypeA, withEDNS(1232)), from: "198.51.100.53", aa: true, answer: []string{"198.51.100.10"}},
		{name: "location-independent answer has scope 0", req: mkQuery(t, "db.gslb.example.com.", dns.TypeA, withECS("198.51.100.0/24")), from: "127.0.0.1", aa: true, answer: []string{"192.0.2.30"}, ecs: "198.51.100.0/24/0"},
		{name: "nxdomain", req: mkQuery(t, "nope.gslb.example.com.", dns.TypeA), from: "127.0.0.1", rcode: dns.RcodeNameError, aa: true},
		{name: "refused", req: mkQuery(t, "example.org.", dns.TypeA), from: "127.0.0.1", rcode: dns.RcodeRefused},
		{name: "axfr refused", req: mkQuery(t, "gslb.example.com.", dns.TypeAXFR), from: "127.0.0.1", rcode: dns.RcodeRefused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := serve(t, h, tc.req, tc.from, true)
			if m == nil {
				t.Fatal("no reply")
			}
			if !m.Response || m.Rcode != tc.rcode || m.Authoritative != tc.aa {
				t.Fatalf("qr=%v rcode=%s aa=%v, want qr rcode=%s aa=%v", m.Response, dns.RcodeToString[m.Rcode], m.Authoritative, dns.RcodeToString[tc.rcode], tc.aa)
			}
			if got := zones.AnswerData(m.Answer); strings.Join(got, ",") != strings.Join(tc.answer, ",") {
				t.Errorf("answer %q, want %q", got, tc.answer)
			}
			e := ecsOf(m)
			switch {
			case tc.ecs == "" && e != nil:
				t.Errorf("unexpected ECS %s", e)
			case tc.ecs != "" && (e == nil || e.String() != tc.ecs):
				t.Errorf("ECS %v, want %s", e, tc.ecs)
			}
		})
	}
}

func TestServeQuestionCaseAndID(t *testing.T) {
	h := newTestHandler(t, demoStore(t))
	req := mkQuery(t, "WwW.GsLb.ExAmPlE.CoM.", dns.TypeA)
	id := binary.BigEndian.Uint16(req)
	m := serve(t, h, req, "198.51.100.1", true)
	if m.Id != id || m.Question[0].Name != "WwW.GsLb.ExAmPlE.CoM." {
		t.Fatalf("id %d question %q, want id %d and the question's case", m.Id, m.Question[0].Name, id)
	}
	if len(m.Answer) != 1 || !strings.EqualFold(m.Answer[0].Header().Name, "www.gslb.example.com.") {
		t.Fatalf("answer %v", m.Answer)
	}
}

func TestServeMalformed(t *testing.T) {
	h := newTestHandler(t, demoStore(t))
	good := mkQuery(t, "www.gslb.example.com.", dns.TypeA)
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	ecsRaw := func(body []byte) []byte {
		m := new(dns.Msg)
		m.SetQuestion("www.gslb.example.com.", dns.TypeA)
		m.SetEdns0(1232, false)
		b, _ := m.Pack()
		// Append the option by hand to the OPT RDATA: rdlen is the last 2 bytes.
		opt := append([]byte{0, 8, byte(len(body) >> 8), byte(len(body))}, body...)
		binary.BigEndian.PutUint16(b[len(b)-2:], uint16(len(opt)))
		return append(b, opt...)
	}
	tests := []struct {
		name    string
		req     []byte
		rcode   int
		noReply bool
	}{
		{name: "qr set: no reply", req: mod(func(b []byte) []byte { b[2] |= 0x80; return b }), noReply: true},
		{name: "short: no reply", req: good[:7], noReply: true},
		{name: "two questions", req: mod(func(b []byte) []byte { b[5] = 2; return b }), rcode: dns.RcodeFormatError},
		{name: "no question", req: mod(func(b []byte) []byte { b[5] = 0; return b[:12] }), rcode: dns.RcodeFormatError},
		{name: "truncated question", req: good[:len(good)-2], rcode: dns.RcodeFormatError},
		{name: "trailing garbage", req: append(append([]byte(nil), good...), 1, 2, 3), rcode: dns.RcodeFormatError},
		{name: "opcode update", req: mod(func(b []byte) []byte { b[2] = b[2]&^0x78 | 5<<3; return b }), rcode: dns.RcodeNotImplemented},
		{name: "opcode notify", req: mod(func(b []byte) []byte { b[2] = b[2]&^0x78 | 4<<3; return b }), rcode: dns.RcodeNotImplemented},
		{name: "ecs bad family", req: ecsRaw([]byte{0, 3, 24, 0, 1, 2, 3}), rcode: dns.RcodeFormatError},
		{name: "ecs prefix too long", req: ecsRaw([]byte{0, 1, 33, 0, 1, 2, 3, 4, 5}), rcode: dns.RcodeFormatError},
		{name: "ecs address longer than prefix", req: ecsRaw([]byte{0, 1, 16, 0, 198, 51, 100}), rcode: dns.RcodeFormatError},
		{name: "ecs bits beyond prefix", req: ecsRaw([]byte{0, 1, 20, 0, 198, 51, 100}), rcode: dns.RcodeFormatError},
		{name: "ecs scope in query", req: ecsRaw([]byte{0, 1, 24, 24, 198, 51, 100}), rcode: dns.RcodeFormatError},
		{name: "ecs too short", req: ecsRaw([]byte{0, 1}), rcode: dns.RcodeFormatError},
		{name: "ecs ok by hand", req: ecsRaw([]byte{0, 1, 20, 0, 198, 51, 96}), rcode: dns.RcodeSuccess},
		{name: "unknown option ignored", req: func() []byte {
			b := ecsRaw([]byte{0, 1, 24, 0, 198, 51, 100})
			b[len(b)-11] = 0x77 // option code 8 → 0x0077... high byte
			return b
		}(), rcode: dns.RcodeSuccess},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := serve(t, h, tc.req, "127.0.0.1", true)
			if tc.noReply {
				if m != nil {
					t.Fatalf("replied %v", m)
				}
				return
			}
			if m == nil {
				t.Fatal("no reply")
			}
			if m.Rcode != tc.rcode || !m.Response {
				t.Fatalf("rcode %s qr=%v, want %s", dns.RcodeToString[m.Rcode], m.Response, dns.RcodeToString[tc.rcode])
			}
		})
	}
}

func TestServeBADVERS(t *testing.T) {
	h := newTestHandler(t, demoStore(t))
	req := mkQuery(t, "www.gslb.example.com.", dns.TypeA, func(m *dns.Msg) { ensureOPT(m).SetVersion(1) })
	m := serve(t, h, req, "127.0.0.1", true)
	if m.Rcode != dns.RcodeBadVers || m.IsEdns0() == nil || m.IsEdns0().Version() != 0 || len(m.Answer) != 0 {
		t.Fatalf("rcode %s opt %v answers %d, want BADVERS with our OPT version 0 and no answer", dns.RcodeToString[m.Rcode], m.IsEdns0(), len(m.Answer))
	}
}

// bigStore serves a pool whose answer does not fit 512 bytes.
func bigStore(t testing.TB) *zones.Store {
	var b strings.Builder
	b.WriteString("zone = \"big.test\"\nns = [\"ns.example.net.\"]\n[regions.a]\nlat = 0\nlon = 0\n[pools.many]\npolicy = \"failover\"\norder = [\"a\"]\n[pools.many.members.a]\naddresses = [")
	for i := 1; i <= 80; i++ {
		if i > 1 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `"2001:db8::%x"`, i)
	}
	b.WriteString("]\n")
	z, err := zones.ParseZone("big.toml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	st, err := zones.NewStore(&zones.Config{Zones: []*zones.Zone{z}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestServeTruncation(t *testing.T) {
	h := newTestHandler(t, bigStore(t))
	tests := []struct {
		name  string
		opts  []reqOpt
		udp   bool
		limit int
		tc    bool
	}{
		{"no edns: 512", nil, true, 512, true},
		{"edns 4096 capped at 1232", []reqOpt{withEDNS(4096)}, true, 1232, true},
		{"edns 800", []reqOpt{withEDNS(800)}, true, 800, true},
		{"edns below 512 means 512", []reqOpt{withEDNS(100)}, true, 512, true},
		{"tcp: whole answer", nil, false, 65535, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := mkQuery(t, "many.big.test.", dns.TypeAAAA, tc.opts...)
			w := newWorker()
			out := h.Serve(w, req, netip.MustParseAddr("127.0.0.1"), tc.udp)
			if len(out) > tc.limit {
				t.Fatalf("response %d bytes, limit %d", len(out), tc.limit)
			}
			m := new(dns.Msg)
			if err := m.Unpack(out); err != nil {
				t.Fatal(err)
			}
			if m.Truncated != tc.tc {
				t.Fatalf("tc = %v, want %v", m.Truncated, tc.tc)
			}
			if !tc.tc && len(m.Answer) != 80 {
				t.Fatalf("tcp answer has %d records, want 80", len(m.Answer))
			}
			if tc.tc && len(tc.opts) > 0 && m.IsEdns0() == nil {
				t.Fatal("truncated EDNS answer lost its OPT record")
			}
		})
	}
}

type panicSource struct{}

func (panicSource) Load() *zones.Snapshot { panic("boom") }

func TestServePanicIsServfail(t *testing.T) {
	m := NewMetrics(nil)
	h := NewHandler(slog.New(slog.NewTextHandler(io.Discard, nil)), panicSource{}, m)
	req := mkQuery(t, "www.gslb.example.com.", dns.TypeA)
	resp := serve(t, h, req, "127.0.0.1", true)
	if resp == nil || resp.Rcode != dns.RcodeServerFailure || len(resp.Question) != 1 {
		t.Fatalf("got %v, want SERVFAIL echoing the question", resp)
	}
	if got := testutil.ToFloat64(m.panics); got != 1 {
		t.Fatalf("panics counter = %v, want 1", got)
	}
}

// TestServerUDPAndTCP runs the real listeners on loopback, with both UDP
// paths (recvmmsg on Linux, and the portable netpoller one).
func TestServerUDPAndTCP(t *testing.T) {
	for _, netpoll := range []bool{false, true} {
		t.Run(fmt.Sprintf("netpoll=%v", netpoll), func(t *testing.T) { testServerUDPAndTCP(t, netpoll) })
	}
}

func testServerUDPAndTCP(t *testing.T, netpoll bool) {
	h := newTestHandler(t, demoStore(t))
	listen := []string{"127.0.0.1:0"}
	if c, err := net.ListenPacket("udp6", "[::1]:0"); err == nil {
		c.Close()
		listen = append(listen, "[::1]:0")
	} else {
		t.Logf("no IPv6 loopback (%v): IPv4 only", err)
	}
	srv, err := NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), Config{Listen: listen, MaxTCPConns: 4, netpollUDP: netpoll}, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithCancel(t)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	addr := srv.Addrs()[0].String()
	for _, a := range srv.Addrs() {
		// Many queries at once from several sockets: every one answered, by ID.
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for c := 0; c < 8; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
				for i := 0; i < 50; i++ {
					m := new(dns.Msg)
					m.SetQuestion("www.gslb.example.com.", dns.TypeAAAA)
					withECS("2001:db8:2::/48")(m)
					r, _, err := cl.Exchange(m, a.String())
					if err == nil && (r.Id != m.Id || len(r.Answer) != 1 || r.Answer[0].(*dns.AAAA).AAAA.String() != "2001:db8:2::10") {
						err = fmt.Errorf("bad reply %v", r)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("%s: %v", a, err)
		}
	}
	for _, proto := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: proto}
		m := new(dns.Msg)
		m.SetQuestion("www.gslb.example.com.", dns.TypeA)
		m.SetEdns0(1232, false)
		withECS("203.0.113.0/24")(m)
		r, _, err := c.Exchange(m, addr)
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		if got := zones.AnswerData(r.Answer); len(got) != 1 || got[0] != "203.0.113.10" {
			t.Fatalf("%s: answer %v", proto, got)
		}
	}
	// Several pipelined queries on one TCP connection are answered in order.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	dc := &dns.Conn{Conn: conn}
	for i := 0; i < 3; i++ {
		m := new(dns.Msg)
		m.SetQuestion("db.gslb.example.com.", dns.TypeA)
		m.Id = uint16(100 + i)
		if err := dc.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		r, err := dc.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		if r.Id != uint16(100+i) || len(r.Answer) != 1 {
			t.Fatalf("reply %d: id %d answers %d", i, r.Id, len(r.Answer))
		}
	}
	dc.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// BenchmarkServe is the full per-packet path without sockets: parse,
// answer, pack. It reports allocations per query. "off" is the plain
// handler; the others turn NSID and cookies on and send an NSID option
// with a client cookie alone (a server cookie made per query) or with our
// server cookie (checked, then echoed), as a resolver that knows us does.
func BenchmarkServe(b *testing.B) {
	st := demoStore(b)
	const client = "0123456789abcdef"
	var base = []reqOpt{withECS("198.51.100.0/24"), withECS("2001:db8:3::/48"), withECS("192.0.2.0/24"), func(*dns.Msg) {}}
	var qtypes = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeA, dns.TypeA}
	from := netip.MustParseAddr("203.0.113.53")
	c := mustCookies(b, nil, "000102030405060708090a0b0c0d0e0f")
	on := cookieHandler(b, c, false)
	good := serverCookieFor(b, on, client, from)
	// Everything on: NSID, cookies and rate limiting, queries from 1,024
	// networks so that every response is accounted and sent.
	all := cookieHandler(b, c, false)
	rrl, err := NewRRL(RRLConfig{ResponsesPerSecond: 100_000, Slip: 2}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	all.opts.RRL = rrl
	for _, bc := range []struct {
		name   string
		h      *Handler
		extra  []reqOpt
		spread bool // from 1,024 networks rather than one address
	}{
		{"off", newTestHandler(b, st), nil, false},
		{"nsid+cookie_client_only", on, []reqOpt{withNSID(""), withCookie(client)}, false},
		{"nsid+cookie_server", on, []reqOpt{withNSID(""), withCookie(good)}, false},
		{"off_spread", newTestHandler(b, st), nil, true},
		{"all_on_spread", all, []reqOpt{withNSID(""), withCookie(client)}, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var reqs [4][]byte
			for i := range reqs {
				reqs[i] = mkQuery(b, "www.gslb.example.com.", qtypes[i], append([]reqOpt{base[i]}, bc.extra...)...)
			}
			var froms [1024]netip.Addr
			for i := range froms {
				froms[i] = from
				if bc.spread {
					froms[i] = netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})
				}
			}
			w := newWorker()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if bc.h.Serve(w, reqs[i&3], froms[i&1023], true) == nil {
					b.Fatal("no reply")
				}
				i++
			}
		})
	}
}
