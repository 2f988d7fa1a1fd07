package dnsserver

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// testFrom is the source address of test queries.
var testFrom = netip.MustParseAddr("203.0.113.53")

func unpackReply(t testing.TB, b []byte) *dns.Msg {
	t.Helper()
	if b == nil {
		t.Fatal("no reply")
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatalf("reply does not unpack: %v\n%x", err, b)
	}
	return m
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withCookie adds a COOKIE option: client cookie, then server cookie, hex.
func withCookie(h string) reqOpt {
	return func(m *dns.Msg) {
		o := ensureOPT(m)
		o.Option = append(o.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: h})
	}
}

// cookieOf returns a reply's COOKIE option, hex, and whether there is one.
func cookieOf(m *dns.Msg) (string, bool) {
	if o := m.IsEdns0(); o != nil {
		for _, opt := range o.Option {
			if c, ok := opt.(*dns.EDNS0_COOKIE); ok {
				return c.Cookie, true
			}
		}
	}
	return "", false
}

// clock is a settable injected clock; tests that use it do not share it
// between goroutines.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) set(unix int64)      { c.t = time.Unix(unix, 0) }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock(unix int64) *clock     { return &clock{t: time.Unix(unix, 0)} }
func secrets(t testing.TB, hs ...string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, h := range hs {
		out = append(out, unhex(t, h))
	}
	return out
}

func mustCookies(t testing.TB, c *clock, hs ...string) *Cookies {
	t.Helper()
	var now func() time.Time
	if c != nil {
		now = c.now
	}
	ck, err := NewCookies(secrets(t, hs...), now)
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

// vectorAnswer runs one query cookie (hex) from ip through c.answer.
func vectorAnswer(t *testing.T, c *Cookies, qcookie, ip string) (reply string, valid bool) {
	t.Helper()
	var q query
	if err := parseCookie(unhex(t, qcookie), &q.cookie); err != nil {
		t.Fatal(err)
	}
	var dst [clientCookieLen + serverCookieLen]byte
	c.answer(&q, netip.MustParseAddr(ip), &dst)
	return hex.EncodeToString(dst[:]), q.serverCookie
}

// The published RFC 9018 Appendix A exchanges, byte for byte: what the
// server returns to a client cookie (A.1), to a 40-minute-old cookie of its
// own (A.2: valid, renewed since it is over half an hour old), to a cookie
// with Reserved bytes set (A.3: hashed as received), and to an IPv6 client
// after the secret rolled over (A.4).
func TestServerCookieRFC9018Vectors(t *testing.T) {
	const (
		secret  = "e5e973e5a6b2a43f48e7dc849e37bfcf"
		oldA4   = "dd3bdf9344b678b185a6f5cb60fca715"
		newA4   = "445536bcd2513298075a5d379663c962"
		ip1     = "198.51.100.100"
		ip3     = "203.0.113.203"
		ip6     = "2001:db8:220:1:59de:d0f4:8769:82b8"
		reply1  = "2464c4abcf10c957010000005cf79f111f8130c3eee29480"
		reply2  = "2464c4abcf10c957010000005cf7a871d4a564a1442aca77"
		query3  = "fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5"
		reply3  = "fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e"
		query4  = "22681ab97d52c298010000005cf7c57926556bd0934c72f8"
		reply4  = "22681ab97d52c298010000005cf7c609a6bb79d16625507a"
		mapped1 = "::ffff:198.51.100.100"
	)
	tests := []struct {
		name    string
		secrets []string
		now     int64
		query   string
		ip      string
		want    string
		valid   bool
	}{
		{"A.1 client cookie only", []string{secret}, 1559731985, "2464c4abcf10c957", ip1, reply1, false},
		{"A.1 from an IPv4-mapped address: hashed as IPv4", []string{secret}, 1559731985, "2464c4abcf10c957", mapped1, reply1, false},
		{"A.2 the A.1 cookie 40 minutes on: valid, renewed", []string{secret}, 1559734385, reply1, ip1, reply2, true},
		{"A.3 Reserved bytes set, 1h52m old: expired, fresh cookie", []string{secret}, 1559734700, query3, ip3, reply3, false},
		{"A.3 client cookie only", []string{secret}, 1559734700, "fc93fc62807ddb86", ip3, reply3, false},
		{"A.4 new secret: client cookie only", []string{newA4}, 1559741961, "22681ab97d52c298", ip6, reply4, false},
		{"A.4 cookie of the old secret, still listed: valid, sent back as it came (2 minutes old)", []string{newA4, oldA4}, 1559741961, query4, ip6, query4, true},
		{"A.4 old secret removed: invalid, fresh cookie from the new one", []string{newA4}, 1559741961, query4, ip6, reply4, false},
		{"A.1 cookie a minute on: valid, sent back as it came", []string{secret}, 1559731985 + 60, reply1, ip1, reply1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustCookies(t, newClock(tc.now), tc.secrets...)
			got, valid := vectorAnswer(t, c, tc.query, tc.ip)
			if got != tc.want || valid != tc.valid {
				t.Errorf("reply cookie %s valid=%v, want %s valid=%v", got, valid, tc.want, tc.valid)
			}
		})
	}
	// A.3's cookie is ours: the Reserved bytes are hashed as received. At a
	// time it is in date it verifies, and the reply is a fresh cookie with
	// Reserved zero rather than the one received.
	c := mustCookies(t, newClock(1559727985+60), secret)
	got, valid := vectorAnswer(t, c, query3, ip3)
	if !valid || got[16:24] != "01000000" || got[24:32] != "5cf78fad" {
		t.Errorf("A.3 in date: reply %s valid=%v, want valid and a fresh cookie 01000000 5cf78fad…", got, valid)
	}
}

// A handler with cookies (and NSID) at a settable time.
func cookieHandler(t testing.TB, c *Cookies, require bool) *Handler {
	return NewHandlerWith(slog.New(slog.NewTextHandler(io.Discard, nil)), demoStore(t), NewMetrics(nil), Options{NSID: []byte("n1"), Cookies: c, RequireCookies: require})
}

// serverCookieFor asks h with a client cookie and returns the reply's full
// COOKIE option (hex).
func serverCookieFor(t testing.TB, h *Handler, client string, from netip.Addr) string {
	t.Helper()
	m := unpackReply(t, h.Serve(newWorker(), mkQuery(t, "www.gslb.example.com.", dns.TypeA, withCookie(client)), from, true))
	ck, ok := cookieOf(m)
	if !ok || len(ck) != 48 || ck[:16] != client {
		t.Fatalf("reply cookie %q, want the client cookie %s and a 16-byte server cookie", ck, client)
	}
	return ck
}

// cookieVerifies reports whether c accepts the server cookie in full (hex,
// client cookie first) from ip now.
func cookieVerifies(t testing.TB, c *Cookies, full string, ip netip.Addr) bool {
	t.Helper()
	var q cookieOpt
	if err := parseCookie(unhex(t, full), &q); err != nil {
		t.Fatal(err)
	}
	ok, _ := c.check(*c.keys.Load(), &q, ip, uint32(c.now().Unix()))
	return ok
}

// forgeCookie makes a full cookie (hex) with the given version and
// timestamp and a correct hash under secret for ip.
func forgeCookie(t testing.TB, secret, client string, version byte, ts uint32, ip netip.Addr) string {
	t.Helper()
	s := unhex(t, secret)
	k := sipKey{binary.LittleEndian.Uint64(s), binary.LittleEndian.Uint64(s[8:])}
	head := [8]byte{version}
	binary.BigEndian.PutUint32(head[4:], ts)
	cl := [8]byte(unhex(t, client))
	var out [24]byte
	copy(out[:], cl[:])
	copy(out[8:], head[:])
	binary.LittleEndian.PutUint64(out[16:], cookieHash(k, &cl, head, ip))
	return hex.EncodeToString(out[:])
}

// What the handler does with each kind of cookie, over real wire bytes:
// every query with a client cookie is answered normally with a cookie
// that verifies, and only a valid server cookie marks the query.
func TestCookies(t *testing.T) {
	const (
		secret = "000102030405060708090a0b0c0d0e0f"
		other  = "f0e0d0c0b0a090807060504030201000"
		client = "0123456789abcdef"
		t0     = 1700000000
	)
	clk := newClock(t0)
	c := mustCookies(t, clk, secret)
	h := cookieHandler(t, c, false)
	first := serverCookieFor(t, h, client, testFrom)
	if !cookieVerifies(t, c, first, testFrom) {
		t.Fatalf("the server cookie we handed out, %s, does not verify", first)
	}
	if first[16:24] != "01000000" || first[24:32] != hex.EncodeToString(binary.BigEndian.AppendUint32(nil, t0)) {
		t.Fatalf("server cookie %s: want version 1, reserved 0, timestamp %d", first[16:], t0)
	}
	flip := []byte(first)
	flip[47] ^= 1 // the hash's last hex digit
	if flip[47] > 'f' || (flip[47] > '9' && flip[47] < 'a') {
		flip[47] = '0'
	}
	tests := []struct {
		name   string
		at     int64 // clock
		keys   []string
		cookie string
		from   netip.Addr
		valid  bool
		echo   bool // the server cookie comes back as sent
	}{
		{name: "our cookie back", at: t0, cookie: first, from: testFrom, valid: true, echo: true},
		{name: "29 minutes on: sent back as it came", at: t0 + 29*60, cookie: first, from: testFrom, valid: true, echo: true},
		{name: "31 minutes on: valid, renewed", at: t0 + 31*60, cookie: first, from: testFrom, valid: true},
		{name: "an hour on: still valid", at: t0 + 3600, cookie: first, from: testFrom, valid: true},
		{name: "an hour and a second: expired", at: t0 + 3601, cookie: first, from: testFrom},
		{name: "wrong hash", at: t0, cookie: string(flip), from: testFrom},
		{name: "another client address", at: t0, cookie: first, from: netip.MustParseAddr("203.0.113.54")},
		{name: "IPv4-mapped source is the same client", at: t0, cookie: first, from: netip.MustParseAddr("::ffff:203.0.113.53"), valid: true, echo: true},
		{name: "5 minutes in the future: accepted (skew)", at: t0, cookie: forgeCookie(t, secret, client, 1, t0+300, testFrom), from: testFrom, valid: true, echo: true},
		{name: "5 minutes and a second in the future", at: t0, cookie: forgeCookie(t, secret, client, 1, t0+301, testFrom), from: testFrom},
		{name: "unknown version, hash right", at: t0, cookie: forgeCookie(t, secret, client, 2, t0, testFrom), from: testFrom},
		{name: "made by another secret", at: t0, cookie: forgeCookie(t, other, client, 1, t0, testFrom), from: testFrom},
		{name: "old secret still listed second: accepted", at: t0, keys: []string{other, secret}, cookie: first, from: testFrom, valid: true, echo: true},
		{name: "old secret removed", at: t0, keys: []string{other}, cookie: first, from: testFrom},
		{name: "32-byte server cookie, not ours", at: t0, cookie: client + strings.Repeat("01", 32), from: testFrom},
		{name: "8-byte server cookie, not ours", at: t0, cookie: client + "0100000000000000", from: testFrom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk.set(tc.at)
			keys := tc.keys
			if keys == nil {
				keys = []string{secret}
			}
			if err := c.SetSecrets(secrets(t, keys...)); err != nil {
				t.Fatal(err)
			}
			req := mkQuery(t, "www.gslb.example.com.", dns.TypeA, withCookie(tc.cookie))
			for _, slow := range []bool{false, true} {
				w := newWorker()
				w.slowOnly = slow
				m := unpackReply(t, h.Serve(w, req, tc.from, true))
				if w.q.serverCookie != tc.valid {
					t.Errorf("slow=%v: serverCookie = %v, want %v", slow, w.q.serverCookie, tc.valid)
				}
				if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
					t.Fatalf("slow=%v: rcode %s, %d answers: want a normal answer", slow, dns.RcodeToString[m.Rcode], len(m.Answer))
				}
				got, ok := cookieOf(m)
				if !ok || len(got) != 48 || got[:16] != client {
					t.Fatalf("slow=%v: reply cookie %q, want client cookie %s and a 16-byte server cookie", slow, got, client)
				}
				if !cookieVerifies(t, c, got, tc.from) {
					t.Errorf("slow=%v: reply cookie %s does not verify", slow, got)
				}
				if echoed := got == tc.cookie; echoed != tc.echo {
					t.Errorf("slow=%v: reply cookie %s, sent %s: echoed=%v, want %v", slow, got, tc.cookie, echoed, tc.echo)
				}
			}
		})
	}
}

// Nodes behind one name share the secret file, so each accepts the
// other's cookies; a node with another secret does not.
func TestCookiesTwoNodes(t *testing.T) {
	const secret, client = "5ea2c0ffee5ea2c0ffee5ea2c0ffee00", "a1a2a3a4a5a6a7a8"
	clk := newClock(1700000000)
	a := cookieHandler(t, mustCookies(t, clk, secret), false)
	b := cookieHandler(t, mustCookies(t, clk, secret), false)
	stranger := cookieHandler(t, mustCookies(t, clk, "00000000000000000000000000000001"), false)
	fromA := serverCookieFor(t, a, client, testFrom)
	clk.add(10 * time.Second)
	fromB := serverCookieFor(t, b, client, testFrom)
	for _, tc := range []struct {
		name   string
		h      *Handler
		cookie string
		valid  bool
	}{
		{"a's cookie at b", b, fromA, true},
		{"b's cookie at a", a, fromB, true},
		{"a's cookie at a node with another secret", stranger, fromA, false},
	} {
		w := newWorker()
		tc.h.Serve(w, mkQuery(t, "www.gslb.example.com.", dns.TypeA, withCookie(tc.cookie)), testFrom, true)
		if w.q.serverCookie != tc.valid {
			t.Errorf("%s: serverCookie = %v, want %v", tc.name, w.q.serverCookie, tc.valid)
		}
	}
}

// rawOptions is a query whose OPT carries the given options as raw bytes.
func rawOptions(opts ...[]byte) []byte {
	return fuzzRawOPT("www.gslb.example.com.", dns.TypeA, bytes.Join(opts, nil))
}

func rawOption(code uint16, body []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, code)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

// RFC 7873 §5.2.2: a COOKIE option of any length but 8 or 16 to 40, or a
// second one, is FORMERR; the lengths in between are fine.
func TestCookieMalformed(t *testing.T) {
	m := NewMetrics(nil)
	h := NewHandlerWith(slog.New(slog.NewTextHandler(io.Discard, nil)), demoStore(t), m, Options{Cookies: mustCookies(t, nil, "000102030405060708090a0b0c0d0e0f")})
	ck := func(n int) []byte { return rawOption(optCookie, bytes.Repeat([]byte{1}, n)) }
	tests := []struct {
		name  string
		req   []byte
		rcode int
	}{
		{"empty", rawOptions(ck(0)), dns.RcodeFormatError},
		{"7 bytes", rawOptions(ck(7)), dns.RcodeFormatError},
		{"8 bytes", rawOptions(ck(8)), dns.RcodeSuccess},
		{"9 bytes", rawOptions(ck(9)), dns.RcodeFormatError},
		{"15 bytes", rawOptions(ck(15)), dns.RcodeFormatError},
		{"16 bytes", rawOptions(ck(16)), dns.RcodeSuccess},
		{"24 bytes", rawOptions(ck(24)), dns.RcodeSuccess},
		{"40 bytes", rawOptions(ck(40)), dns.RcodeSuccess},
		{"41 bytes", rawOptions(ck(41)), dns.RcodeFormatError},
		{"two COOKIE options", rawOptions(ck(8), ck(8)), dns.RcodeFormatError},
		{"two COOKIE options around NSID", rawOptions(ck(24), rawOption(optNSID, nil), ck(8)), dns.RcodeFormatError},
		{"COOKIE and NSID", rawOptions(rawOption(optNSID, nil), ck(8)), dns.RcodeSuccess},
		{"NSID with a payload", rawOptions(rawOption(optNSID, []byte("x")), ck(8)), dns.RcodeSuccess},
	}
	malformed := 0
	for _, tc := range tests {
		resp := unpackReply(t, h.Serve(newWorker(), tc.req, testFrom, true))
		if resp.Rcode != tc.rcode {
			t.Errorf("%s: rcode %s, want %s", tc.name, dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.rcode])
		}
		if tc.rcode == dns.RcodeFormatError {
			malformed++
		}
	}
	if got := testutil.ToFloat64(m.cookies[cookieMalformed]); got != float64(malformed) {
		t.Errorf("malformed counter %v, want %d", got, malformed)
	}
}

// RequireCookies: over UDP a client cookie alone gets BADCOOKIE with a
// server cookie and no answer, no cookie at all gets TC=1, and TCP and
// valid cookies get answers.
func TestRequireCookies(t *testing.T) {
	const client = "0123456789abcdef"
	c := mustCookies(t, nil, "000102030405060708090a0b0c0d0e0f")
	h := cookieHandler(t, c, true)
	good := serverCookieFor(t, cookieHandler(t, c, false), client, testFrom)
	const www = "www.gslb.example.com."
	tests := []struct {
		name     string
		req      []byte
		udp      bool
		rcode    int
		tc       bool
		answered bool
		cookie   bool
	}{
		{"client cookie, udp: BADCOOKIE", mkQuery(t, www, dns.TypeA, withCookie(client)), true, dns.RcodeBadCookie, false, false, true},
		{"client cookie, udp, ecs and nsid: BADCOOKIE", mkQuery(t, www, dns.TypeA, withECS("198.51.100.0/24"), withNSID(""), withCookie(client)), true, dns.RcodeBadCookie, false, false, true},
		{"bad server cookie, udp: BADCOOKIE", mkQuery(t, www, dns.TypeA, withCookie(client+strings.Repeat("00", 16))), true, dns.RcodeBadCookie, false, false, true},
		{"client cookie, tcp: answered", mkQuery(t, www, dns.TypeA, withCookie(client)), false, dns.RcodeSuccess, false, true, true},
		{"valid server cookie, udp: answered", mkQuery(t, www, dns.TypeA, withCookie(good)), true, dns.RcodeSuccess, false, true, true},
		{"no cookie, edns, udp: TC", mkQuery(t, www, dns.TypeA, withEDNS(1232)), true, dns.RcodeSuccess, true, false, false},
		{"no edns, udp: TC", mkQuery(t, www, dns.TypeA), true, dns.RcodeSuccess, true, false, false},
		{"no cookie, tcp: answered", mkQuery(t, www, dns.TypeA), false, dns.RcodeSuccess, false, true, false},
		{"client cookie, edns version 1: BADVERS first", mkQuery(t, www, dns.TypeA, withCookie(client), func(m *dns.Msg) { ensureOPT(m).SetVersion(1) }), true, dns.RcodeBadVers, false, false, true},
	}
	for _, tc := range tests {
		for _, slow := range []bool{false, true} {
			w := newWorker()
			w.slowOnly = slow
			m := unpackReply(t, h.Serve(w, tc.req, testFrom, tc.udp))
			got, hasCookie := cookieOf(m)
			if m.Rcode != tc.rcode || m.Truncated != tc.tc || (len(m.Answer) > 0) != tc.answered || hasCookie != tc.cookie {
				t.Errorf("%s (slow=%v): rcode %s tc=%v answers=%d cookie=%q, want rcode %s tc=%v answered=%v cookie=%v",
					tc.name, slow, dns.RcodeToString[m.Rcode], m.Truncated, len(m.Answer), got, dns.RcodeToString[tc.rcode], tc.tc, tc.answered, tc.cookie)
			}
			if hasCookie && !cookieVerifies(t, c, got, testFrom) {
				t.Errorf("%s (slow=%v): reply cookie %s does not verify", tc.name, slow, got)
			}
			if len(m.Question) != 1 {
				t.Errorf("%s (slow=%v): question not echoed", tc.name, slow)
			}
		}
	}
	// The header carries BADCOOKIE's low bits (23&15 = 7), the OPT the rest.
	out := h.Serve(newWorker(), mkQuery(t, www, dns.TypeA, withCookie(client)), testFrom, true)
	if rc := out[3] & 0xF; rc != 7 {
		t.Errorf("header rcode %d, want 7", rc)
	}
}

func TestCookieMetrics(t *testing.T) {
	const client = "0123456789abcdef"
	m := NewMetrics(nil)
	c := mustCookies(t, nil, "000102030405060708090a0b0c0d0e0f")
	h := NewHandlerWith(slog.New(slog.NewTextHandler(io.Discard, nil)), demoStore(t), m, Options{Cookies: c})
	good := serverCookieFor(t, h, client, testFrom) // client_only
	const www = "www.gslb.example.com."
	for _, req := range [][]byte{
		mkQuery(t, www, dns.TypeA),
		mkQuery(t, www, dns.TypeA, withCookie(good)),
		mkQuery(t, www, dns.TypeA, withCookie(good)),
		mkQuery(t, www, dns.TypeA, withCookie(client+strings.Repeat("00", 16))),
		rawOptions(rawOption(optCookie, []byte{1})),
	} {
		h.Serve(newWorker(), req, testFrom, true)
	}
	want := [cookieResults]float64{cookieNone: 1, cookieClientOnly: 1, cookieGood: 2, cookieBad: 1, cookieMalformed: 1}
	for i, w := range want {
		if got := testutil.ToFloat64(m.cookies[i]); got != w {
			t.Errorf("cookies_total{result=%q} = %v, want %v", cookieResultLabels[i], got, w)
		}
	}
}

// Without Cookies a COOKIE option gets nothing back and RequireCookies
// cannot turn queries away.
func TestCookiesOff(t *testing.T) {
	h := NewHandlerWith(slog.New(slog.NewTextHandler(io.Discard, nil)), demoStore(t), nil, Options{RequireCookies: true})
	m := unpackReply(t, h.Serve(newWorker(), mkQuery(t, "www.gslb.example.com.", dns.TypeA, withCookie("0123456789abcdef")), testFrom, true))
	if ck, ok := cookieOf(m); ok || m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Fatalf("rcode %s answers %d cookie %q, want a plain answer", dns.RcodeToString[m.Rcode], len(m.Answer), ck)
	}
}

func TestNewCookiesRejectsBadSecrets(t *testing.T) {
	for _, s := range [][][]byte{nil, {}, {make([]byte, 15)}, {make([]byte, 16), make([]byte, 17)}} {
		if _, err := NewCookies(s, nil); !errors.Is(err, ErrCookieSecret) {
			t.Errorf("NewCookies(%d secrets) err %v, want ErrCookieSecret", len(s), err)
		}
	}
	c := mustCookies(t, nil, "000102030405060708090a0b0c0d0e0f")
	if err := c.SetSecrets([][]byte{{1}}); !errors.Is(err, ErrCookieSecret) {
		t.Fatalf("SetSecrets: %v", err)
	}
	if k := *c.keys.Load(); len(k) != 1 || k[0].k0 != 0x0706050403020100 {
		t.Fatalf("a rejected SetSecrets changed the keys: %+v", k)
	}
}

func TestLoadCookieSecrets(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "# the first makes cookies\n\n  445536bcd2513298075a5d379663c962  # new\nDD3BDF9344B678B185A6F5CB60FCA715\n", 0o600)
	got, err := LoadCookieSecrets(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || hex.EncodeToString(got[0]) != "445536bcd2513298075a5d379663c962" || hex.EncodeToString(got[1]) != "dd3bdf9344b678b185a6f5cb60fca715" {
		t.Fatalf("secrets %x", got)
	}

	open := write("open", "445536bcd2513298075a5d379663c962\n", 0o644)
	got, err = LoadCookieSecrets(open)
	if !errors.Is(err, ErrCookieFileMode) || len(got) != 1 {
		t.Fatalf("world-readable: %d secrets, err %v; want the secret and ErrCookieFileMode", len(got), err)
	}

	for _, tc := range []struct{ name, body, want string }{
		{"short", "# c\n445536bcd2513298075a5d379663c9\n", "short:2: 30 characters"},
		{"long", "445536bcd2513298075a5d379663c96200\n", "long:1: 34 characters"},
		{"not hex", "\n\n445536bcd2513298075a5d379663c9zz\n", "not hex:3: encoding/hex: invalid byte"},
		{"empty", "# nothing\n\n", "empty: no secrets"},
		{"two bad lines", "xx\n445536bcd2513298075a5d379663c962\nyy\n", "two bad lines:1: 2 characters: cookie secret must be 16 bytes (32 hex digits)\n" + filepath.Join(dir, "two bad lines") + ":3: 2 characters"},
	} {
		p := write(tc.name, tc.body, 0o600)
		_, err := LoadCookieSecrets(p)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, tc.want)) {
			t.Errorf("%s: err %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
	if _, err := LoadCookieSecrets(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// Secrets are swapped while queries are answered: the race detector
// watches the atomic pointer, and every reply carries a cookie that one of
// the two secrets made.
func TestCookiesSetSecretsWhileServing(t *testing.T) {
	a, b := "000102030405060708090a0b0c0d0e0f", "f0e0d0c0b0a090807060504030201000"
	c := mustCookies(t, nil, a)
	h := cookieHandler(t, c, false)
	req := mkQuery(t, "www.gslb.example.com.", dns.TypeA, withCookie("0123456789abcdef"))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := c.SetSecrets(secrets(t, [2]string{a, b}[i%2])); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	both := mustCookies(t, nil, a, b)
	w := newWorker()
	for range 2000 {
		m := unpackReply(t, h.Serve(w, req, testFrom, true))
		if ck, _ := cookieOf(m); !cookieVerifies(t, both, ck, testFrom) {
			t.Fatalf("reply cookie %s made by neither secret", ck)
		}
	}
	close(stop)
	wg.Wait()
}

// Through Serve, with cookies and rate limiting both on: a client that
// brings back a valid server cookie is never limited, while the same
// queries from its network without one are.
func TestValidCookieExemptFromRRL(t *testing.T) {
	const secret, client, www = "000102030405060708090a0b0c0d0e0f", "0123456789abcdef", "www.gslb.example.com."
	const now = 1700000000
	from := netip.MustParseAddr("203.0.113.53")
	h := cookieHandler(t, mustCookies(t, newClock(now), secret), false)
	stopped := time.Unix(1e9, 0)
	rrl, err := NewRRL(RRLConfig{ResponsesPerSecond: 2, Slip: 2}, func() time.Time { return stopped }, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.opts.RRL = rrl
	w := newWorker()
	count := func(req []byte) (answered, truncated, dropped int) {
		for range 20 {
			resp := h.Serve(w, req, from, true)
			if resp == nil {
				dropped++
				continue
			}
			var m dns.Msg
			if err := m.Unpack(resp); err != nil {
				t.Fatal(err)
			}
			if m.Truncated {
				truncated++
			} else if len(m.Answer) > 0 {
				answered++
			}
		}
		return
	}
	good := mkQuery(t, www, dns.TypeA, withCookie(forgeCookie(t, secret, client, 1, now-60, from)))
	if a, tc, d := count(good); a != 20 {
		t.Errorf("valid server cookie: %d answered, %d truncated, %d dropped of 20; want all answered", a, tc, d)
	}
	plain := mkQuery(t, www, dns.TypeA, withCookie(client))
	if a, tc, d := count(plain); a != 2 || tc != 9 || d != 9 {
		t.Errorf("client cookie only: %d answered, %d truncated, %d dropped of 20; want 2, 9, 9", a, tc, d)
	}
}
