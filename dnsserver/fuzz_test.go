package dnsserver

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/geo"
	"github.com/meridian-gtm/meridian/zones"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// fuzzHandler builds a Handler over the demo zone and GeoIP database, as a
// node would (node.Load; the node package cannot be imported from here).
// Its log goes to logs, so a recovered panic's stack reaches the failure.
func fuzzHandler(f *testing.F, logs *bytes.Buffer, opts Options) *Handler {
	f.Helper()
	g, err := geo.Open("../deploy/demo/demo-city.mmdb")
	if err != nil {
		f.Fatalf("open demo geoip: %v", err)
	}
	zc, err := zones.LoadDir("../deploy/demo/zones")
	if err != nil {
		f.Fatalf("load demo zones: %v", err)
	}
	log := slog.New(slog.NewTextHandler(logs, nil))
	store, err := zones.NewStore(zc, g)
	if err != nil {
		f.Fatalf("demo store: %v", err)
	}
	return NewHandlerWith(log, store, nil, opts)
}

// Cookies in the fuzz handlers run on a stopped clock, so a reply is a
// function of the request and the fast and slow packers can be compared.
const (
	fuzzNow    = 1700000000
	fuzzSecret = "000102030405060708090a0b0c0d0e0f"
	fuzzClient = "0123456789abcdef"
)

// fuzzCookieOpt adds a COOKIE option, body as hex.
func fuzzCookieOpt(body string) func(*dns.Msg) {
	return func(m *dns.Msg) {
		o := m.IsEdns0()
		if o == nil {
			m.SetEdns0(1232, false)
			o = m.IsEdns0()
		}
		o.Option = append(o.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: body})
	}
}

// fuzzNSIDOpt adds an NSID option, payload as hex.
func fuzzNSIDOpt(payload string) func(*dns.Msg) {
	return func(m *dns.Msg) {
		o := m.IsEdns0()
		if o == nil {
			m.SetEdns0(1232, false)
			o = m.IsEdns0()
		}
		o.Option = append(o.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: payload})
	}
}

func fuzzBoth(a, b func(*dns.Msg)) func(*dns.Msg) {
	return func(m *dns.Msg) { a(m); b(m) }
}

// fuzzCounter reads a counter without prometheus/testutil, which would
// add a module to go.sum for one function.
func fuzzCounter(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatalf("read counter: %v", err)
	}
	return m.GetCounter().GetValue()
}

// fuzzQuery packs a query as a resolver would send it.
func fuzzQuery(name string, qtype uint16, edit func(*dns.Msg)) []byte {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	if edit != nil {
		edit(m)
	}
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

// fuzzRawOPT packs a query with an OPT record whose RDATA is options, as
// given: for option bodies miekg/dns would refuse to pack.
func fuzzRawOPT(name string, qtype uint16, options []byte) []byte {
	b := fuzzQuery(name, qtype, nil)
	binary.BigEndian.PutUint16(b[10:], 1) // ARCOUNT
	b = append(b, 0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(options)))
	return append(b, options...)
}

func fuzzECS(family uint16, source uint8, addr string) func(*dns.Msg) {
	return func(m *dns.Msg) {
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(1232)
		e := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: family, SourceNetmask: source}
		if addr != "" {
			e.Address = net.ParseIP(addr)
		}
		o.Option = append(o.Option, e)
		m.Extra = append(m.Extra, o)
	}
}

// fuzzProbe is a query whose answer does not depend on anything random: after
// any input, a worker must still answer it exactly as a fresh one does.
var fuzzProbe = fuzzQuery("www.gslb.example.com.", dns.TypeA, fuzzECS(1, 24, "198.51.100.0"))

// FuzzServe feeds arbitrary packets to the handlers: the plain one, one
// with NSID and cookies, and one that also requires cookies. They must
// never panic (the handler recovers, so the panic counter must stay 0);
// every reply must be a well-formed response to the request (QR, same ID
// and opcode, the question echoed byte for byte, NSID and COOKIE only when
// asked and well-formed), fit the transport's limit, say what miekg/dns's
// packer says (the fast packer is checked against it), leave the request
// untouched, and leave the worker fit to answer the next query.
func FuzzServe(f *testing.F) {
	var logs bytes.Buffer
	cookies, err := NewCookies([][]byte{fuzzUnhex(fuzzSecret)}, func() time.Time { return time.Unix(fuzzNow, 0) })
	if err != nil {
		f.Fatal(err)
	}
	hs := []*fuzzTarget{
		{name: "plain", h: fuzzHandler(f, &logs, Options{})},
		{name: "nsid+cookies", h: fuzzHandler(f, &logs, Options{NSID: []byte("fuzz-node"), Cookies: cookies})},
		{name: "nsid+cookies required", h: fuzzHandler(f, &logs, Options{NSID: []byte("fuzz-node"), Cookies: cookies, RequireCookies: true})},
	}
	from := netip.MustParseAddr("127.0.0.1")
	for _, ft := range hs {
		if ft.want = bytes.Clone(ft.h.Serve(newWorker(), fuzzProbe, from, true)); ft.want == nil {
			f.Fatalf("%s: no reply to the probe query", ft.name)
		}
	}
	good := forgeCookie(f, fuzzSecret, fuzzClient, 1, fuzzNow-60, from)
	stale := forgeCookie(f, fuzzSecret, fuzzClient, 1, fuzzNow-3601, from)
	cookie := func(n int) []byte { // a COOKIE option of n bytes
		return append([]byte{0, 10, byte(n >> 8), byte(n)}, bytes.Repeat([]byte{0xA5}, n)...)
	}

	for _, seed := range [][]byte{
		fuzzProbe,
		fuzzQuery("www.gslb.example.com.", dns.TypeA, nil),
		fuzzQuery("WwW.GsLb.Example.Com.", dns.TypeAAAA, fuzzECS(2, 48, "2001:db8:3::")),
		fuzzRawOPT("www.gslb.example.com.", dns.TypeA, []byte{0, 8, 0, 4, 0, 0, 0, 0}),                         // family 0, as dig +subnet=0 sent
		fuzzRawOPT("www.gslb.example.com.", dns.TypeA, []byte{0, 8, 0, 4, 0, 1, 0, 0, 0, 8, 0, 4, 0, 1, 0, 0}), // two ECS options
		fuzzRawOPT("www.gslb.example.com.", dns.TypeA, []byte{0, 8, 0, 5, 0, 1, 8, 0, 198, 0, 10, 0, 0}),       // ECS, then an unknown empty option
		fuzzQuery("www.gslb.example.com.", dns.TypeA, fuzzECS(1, 0, "0.0.0.0")),
		fuzzQuery("api.gslb.example.com.", dns.TypeA, fuzzECS(1, 22, "198.51.100.0")),
		fuzzQuery("status.gslb.example.com.", dns.TypeANY, nil),
		fuzzQuery("a.b.static.gslb.example.com.", dns.TypeA, nil),
		fuzzQuery("nope.gslb.example.com.", dns.TypeTXT, nil),
		fuzzQuery("gslb.example.com.", dns.TypeNS, fuzzECS(1, 32, "203.0.113.7")),
		fuzzQuery("gslb.example.com.", dns.TypeAXFR, nil),
		fuzzQuery("example.org.", dns.TypeA, nil),
		fuzzQuery(".", dns.TypeOPT, nil),
		fuzzQuery("www.gslb.example.com.", dns.TypeA, func(m *dns.Msg) {
			m.SetEdns0(4096, true)
			m.Extra[0].(*dns.OPT).SetVersion(1)
		}),
		fuzzQuery("www.gslb.example.com.", dns.TypeA, func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }),
		fuzzQuery("www.gslb.example.com.", dns.TypeA, func(m *dns.Msg) { m.Response = true }),
		fuzzQuery("www.gslb.example.com.", dns.TypeA, func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }),
		{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1}, // a pointer in the question
		{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},                       // no question
		{0, 1, 0},                                                  // shorter than a header
		// NSID (RFC 5001) and COOKIE (RFC 7873), well-formed and not.
		fuzzQuery("www.gslb.example.com.", dns.TypeA, fuzzNSIDOpt("")),
		fuzzQuery("www.gslb.example.com.", dns.TypeA, fuzzNSIDOpt("c0ffee")), // a payload, ignored
		fuzzQuery("www.gslb.example.com.", dns.TypeA, fuzzCookieOpt(fuzzClient)),
		fuzzQuery("www.gslb.example.com.", dns.TypeA, fuzzCookieOpt(good)),
		fuzzQuery("www.gslb.example.com.", dns.TypeA, fuzzCookieOpt(stale)),
		fuzzQuery("www.gslb.example.com.", dns.TypeA, fuzzCookieOpt(fuzzClient+"0200000065536fd00000000000000000")), // version 2
		fuzzQuery("www.gslb.example.com.", dns.TypeAAAA, fuzzBoth(fuzzECS(2, 48, "2001:db8:3::"), fuzzBoth(fuzzNSIDOpt(""), fuzzCookieOpt(good)))),
		fuzzQuery("gslb.example.com.", dns.TypeTXT, fuzzBoth(fuzzNSIDOpt(""), fuzzCookieOpt(fuzzClient))), // slow path
		fuzzQuery("www.gslb.example.com.", dns.TypeA, fuzzBoth(fuzzCookieOpt(fuzzClient), func(m *dns.Msg) { m.Extra[0].(*dns.OPT).SetVersion(1) })),
		fuzzRawOPT("www.gslb.example.com.", dns.TypeA, cookie(7)),
		fuzzRawOPT("www.gslb.example.com.", dns.TypeA, cookie(9)),
		fuzzRawOPT("www.gslb.example.com.", dns.TypeA, cookie(15)),
		fuzzRawOPT("www.gslb.example.com.", dns.TypeA, cookie(16)),
		fuzzRawOPT("www.gslb.example.com.", dns.TypeA, cookie(40)),
		fuzzRawOPT("www.gslb.example.com.", dns.TypeA, cookie(41)),
		fuzzRawOPT("www.gslb.example.com.", dns.TypeA, append(cookie(8), cookie(8)...)),                     // two COOKIE options
		fuzzRawOPT("www.gslb.example.com.", dns.TypeA, append([]byte{0, 3, 0, 0}, cookie(24)...)),           // NSID, then COOKIE
		fuzzRawOPT("www.gslb.example.com.", dns.TypeA, append([]byte{0, 3, 0, 2, 1, 2, 0, 3, 0, 0}, 0, 10)), // two NSIDs, cut COOKIE
	} {
		f.Add(seed, true)
		f.Add(seed, false)
	}

	f.Fuzz(func(t *testing.T, req []byte, udp bool) {
		for _, ft := range hs {
			t.Run(ft.name, func(t *testing.T) { fuzzServeOne(t, &logs, ft.h, ft.want, req, from, udp) })
		}
	})
}

// fuzzTarget is a handler under fuzzing and its reply to fuzzProbe.
type fuzzTarget struct {
	name string
	h    *Handler
	want []byte
}

// fuzzServeOne checks h's reply to req (see FuzzServe).
func fuzzServeOne(t *testing.T, logs *bytes.Buffer, h *Handler, want, req []byte, from netip.Addr, udp bool) {
	logs.Reset()
	orig := bytes.Clone(req)
	w := newWorker()
	resp := bytes.Clone(h.Serve(w, req, from, udp))
	if n := fuzzCounter(t, h.metrics.panics); n != 0 {
		t.Fatalf("the handler panicked (recovered, counted %v):\n%s", n, logs.String())
	}
	if !bytes.Equal(req, orig) {
		t.Fatalf("Serve modified the request:\nbefore %x\nafter  %x", orig, req)
	}
	if resp != nil {
		fuzzCheckResponse(t, w, req, resp, udp)
		fuzzCheckOptions(t, h, w, resp, udp)
	}
	// The fast packer and miekg/dns's must say the same thing.
	sw := newWorker()
	sw.slowOnly = true
	if sresp := h.Serve(sw, req, from, udp); (sresp == nil) != (resp == nil) {
		t.Fatalf("fast path reply %x, slow path reply %x", resp, sresp)
	} else if resp != nil {
		if fast, slow := fuzzNormal(t, resp), fuzzNormal(t, sresp); fast != slow {
			t.Fatalf("fast and slow packers differ\nfast:\n%s\nslow:\n%s", fast, slow)
		}
	}
	// The worker is reused for the next query: it must answer it as a
	// fresh worker does, whatever this input left in it.
	if got := h.Serve(w, fuzzProbe, from, true); !bytes.Equal(got, want) {
		t.Fatalf("after this input the worker answers the probe query with\n%x\nwant\n%x", got, want)
	}
}

// fuzzCheckOptions checks a reply's NSID and COOKIE options: NSID only when
// asked and configured; a cookie only to a query with a client cookie, when
// cookies are on, as that client cookie and a version-1 server cookie with
// Reserved zero; BADCOOKIE only to a UDP query with a client cookie and no
// valid server cookie, when cookies are required.
func fuzzCheckOptions(t *testing.T, h *Handler, w *worker, resp []byte, udp bool) {
	t.Helper()
	var m dns.Msg
	if err := m.Unpack(resp); err != nil {
		t.Fatalf("reply does not unpack: %v", err)
	}
	var nsid, cookie []string
	if o := m.IsEdns0(); o != nil {
		for _, opt := range o.Option {
			switch v := opt.(type) {
			case *dns.EDNS0_NSID:
				nsid = append(nsid, v.Nsid)
			case *dns.EDNS0_COOKIE:
				cookie = append(cookie, v.Cookie)
			}
		}
	}
	q := &w.q
	switch {
	case len(nsid) > 1:
		t.Errorf("%d NSID options in the reply", len(nsid))
	case len(nsid) == 1 && (!q.nsid || nsid[0] != hex.EncodeToString(h.opts.NSID)):
		t.Errorf("NSID %q in the reply; asked %v, configured %q", nsid[0], q.nsid, h.opts.NSID)
	case len(nsid) == 0 && q.nsid && len(h.opts.NSID) > 0 && m.Rcode != dns.RcodeFormatError && m.Rcode != dns.RcodeServerFailure && m.Rcode != dns.RcodeNotImplemented:
		t.Errorf("NSID asked and configured, none in the %s reply", dns.RcodeToString[m.Rcode])
	}
	switch {
	case len(cookie) > 1:
		t.Errorf("%d COOKIE options in the reply", len(cookie))
	case len(cookie) == 1:
		c := cookie[0]
		if h.opts.Cookies == nil || !q.cookie.present || len(c) != 48 || c[:16] != hex.EncodeToString(q.cookie.client[:]) || c[16:24] != "01000000" {
			t.Errorf("COOKIE %s in the reply to client cookie %x (present %v, cookies on %v)", c, q.cookie.client, q.cookie.present, h.opts.Cookies != nil)
		}
	}
	if m.Rcode == dns.RcodeBadCookie && (!h.opts.RequireCookies || !udp || !q.cookie.present || q.serverCookie || len(cookie) != 1 || len(m.Answer) != 0) {
		t.Errorf("BADCOOKIE (require %v, udp %v, client cookie %v, valid server cookie %v, %d cookies, %d answers)", h.opts.RequireCookies, udp, q.cookie.present, q.serverCookie, len(cookie), len(m.Answer))
	}
}

// fuzzNormal is a reply in presentation form with each section sorted
// (a weighted pool may list its addresses in either order) and the names
// after the question lower-cased (compression may point them at the
// question, whose case is the client's).
func fuzzNormal(t *testing.T, b []byte) string {
	t.Helper()
	var m dns.Msg
	if err := m.Unpack(b); err != nil {
		t.Fatalf("reply does not unpack: %v\n%x", err, b)
	}
	var out strings.Builder
	fmt.Fprintf(&out, "%+v\n%v\n", m.MsgHdr, m.Question)
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		lines := make([]string, len(sec))
		for i, rr := range sec {
			lines[i] = strings.ToLower(rr.String())
		}
		slices.Sort(lines)
		fmt.Fprintf(&out, "%q\n", lines)
	}
	return out.String()
}

// fuzzCheckResponse checks the properties every reply must have.
func fuzzCheckResponse(t *testing.T, w *worker, req, resp []byte, udp bool) {
	t.Helper()
	if len(req) < 12 {
		t.Fatalf("a reply (%x) to %d bytes, shorter than a header", resp, len(req))
	}
	if req[2]&0x80 != 0 {
		t.Fatalf("a reply to a response (QR set): %x", resp)
	}
	var m dns.Msg
	if err := m.Unpack(resp); err != nil {
		t.Fatalf("reply does not unpack: %v\n%x", err, resp)
	}
	if !m.Response {
		t.Errorf("reply without QR: %v", &m)
	}
	if id := binary.BigEndian.Uint16(req); m.Id != id {
		t.Errorf("reply ID %d, request ID %d", m.Id, id)
	}
	if op := int(req[2]>>3) & 0xF; m.Opcode != op {
		t.Errorf("reply opcode %d, request opcode %d", m.Opcode, op)
	}
	limit := 65535
	if udp {
		limit = 512
		if w.q.edns {
			limit = max(512, min(int(w.q.udpSize), maxUDP))
		}
	}
	if len(resp) > limit {
		t.Errorf("reply of %d bytes over the limit %d (udp=%v, edns=%v, buffer %d)", len(resp), limit, udp, w.q.edns, w.q.udpSize)
	}
	// A question in the reply is the request's, byte for byte (RFC 4343).
	var q query
	if binary.BigEndian.Uint16(resp[4:]) == 1 {
		end, err := parseQuestion(req, 12, &q)
		if err != nil {
			t.Fatalf("reply echoes a question the request does not have: %v", &m)
		}
		if len(resp) < end || !bytes.Equal(resp[12:end], req[12:end]) {
			t.Errorf("question echoed as %x, asked %x", resp[12:min(end, len(resp))], req[12:end])
		}
	}
	if m.Rcode == dns.RcodeSuccess && len(m.Question) != 1 {
		t.Errorf("NOERROR without the question: %v", &m)
	}
}

// FuzzParseECS feeds arbitrary ECS option bodies to parseECS. What it
// accepts must be RFC 7871-clean (no address bits past the source prefix,
// source within the family), agree with miekg/dns, and re-encode to the
// same bytes.
func FuzzParseECS(f *testing.F) {
	f.Add([]byte{0, 1, 24, 0, 198, 51, 100})                                               // 198.51.100.0/24
	f.Add([]byte{0, 1, 22, 0, 198, 51, 100})                                               // 198.51.100.0/22
	f.Add([]byte{0, 1, 32, 0, 203, 0, 113, 7})                                             // a host
	f.Add([]byte{0, 1, 0, 0})                                                              // source 0
	f.Add([]byte{0, 0, 0, 0})                                                              // family 0 (dig +subnet=0)
	f.Add([]byte{0, 2, 48, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 3})                               // 2001:db8:3::/48
	f.Add([]byte{0, 2, 56, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 3, 0})                            // /56
	f.Add([]byte{0, 1, 24, 24, 198, 51, 100})                                              // scope set in a query
	f.Add([]byte{0, 1, 23, 0, 198, 51, 101})                                               // bits past the prefix
	f.Add([]byte{0, 1, 33, 0, 1, 2, 3, 4, 5})                                              // source too long
	f.Add([]byte{0, 3, 8, 0, 1})                                                           // unknown family
	f.Add([]byte{0, 1, 24, 0, 198, 51})                                                    // address too short
	f.Add([]byte{0, 1, 24, 0, 198, 51, 100, 0})                                            // address too long
	f.Add([]byte{0, 2, 129, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}) // /129

	f.Fuzz(func(t *testing.T, b []byte) {
		var e ecs
		if err := parseECS(b, &e); err != nil {
			return
		}
		if !e.present {
			t.Fatalf("accepted %x without marking the option present", b)
		}
		var full int
		switch e.family {
		case 0:
			if e.source != 0 || e.addr.IsValid() {
				t.Fatalf("family 0 accepted with source %d, address %v", e.source, e.addr)
			}
		case 1:
			full = 32
			if !e.addr.Is4() {
				t.Fatalf("family 1 gave address %v", e.addr)
			}
		case 2:
			full = 128
			if !e.addr.Is6() {
				t.Fatalf("family 2 gave address %v", e.addr)
			}
		default:
			t.Fatalf("accepted family %d", e.family)
		}
		if int(e.source) > full {
			t.Fatalf("accepted source /%d for family %d", e.source, e.family)
		}
		if e.family != 0 {
			p := netip.PrefixFrom(e.addr, int(e.source))
			if p.Masked().Addr() != e.addr {
				t.Fatalf("accepted %v with bits set past /%d", e.addr, e.source)
			}
		}

		// Round trip: family, source, scope 0, ceil(source/8) octets.
		enc := binary.BigEndian.AppendUint16(nil, e.family)
		enc = append(enc, e.source, 0)
		if e.family != 0 {
			enc = append(enc, e.addr.AsSlice()[:(int(e.source)+7)/8]...)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encoded %x, parsed from %x", enc, b)
		}

		// miekg/dns must read the same option.
		m, err := fuzzMiekgECS(b)
		if err != nil {
			t.Fatalf("miekg/dns rejects what we accept, %x: %v", b, err)
		}
		if m.Family != e.family || m.SourceNetmask != e.source || m.SourceScope != 0 {
			t.Fatalf("miekg/dns reads family %d source %d scope %d, we read %d %d 0", m.Family, m.SourceNetmask, m.SourceScope, e.family, e.source)
		}
		if e.family != 0 {
			ma, ok := netip.AddrFromSlice(m.Address)
			if !ok || ma.Unmap() != e.addr.Unmap() {
				t.Fatalf("miekg/dns reads address %v, we read %v", m.Address, e.addr)
			}
		}
	})
}

// fuzzMiekgECS has miekg/dns read an ECS option body, wrapped in the OPT
// record of an otherwise empty query (its option parser is unexported).
func fuzzMiekgECS(body []byte) (*dns.EDNS0_SUBNET, error) {
	pkt := []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0}
	pkt = binary.BigEndian.AppendUint16(pkt, uint16(4+len(body)))
	pkt = binary.BigEndian.AppendUint16(pkt, dns.EDNS0SUBNET)
	pkt = binary.BigEndian.AppendUint16(pkt, uint16(len(body)))
	pkt = append(pkt, body...)
	var m dns.Msg
	if err := m.Unpack(pkt); err != nil {
		return nil, err
	}
	opt := m.IsEdns0()
	if opt == nil || len(opt.Option) != 1 {
		return nil, fmt.Errorf("no option in %v", &m)
	}
	e, ok := opt.Option[0].(*dns.EDNS0_SUBNET)
	if !ok {
		return nil, fmt.Errorf("option %T, not ECS", opt.Option[0])
	}
	return e, nil
}

func fuzzUnhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
