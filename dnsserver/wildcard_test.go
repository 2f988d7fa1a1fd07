//go:build linux

package dnsserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// ipv6Loopback reports whether ::1 can be bound here.
func ipv6Loopback(t testing.TB) bool {
	c, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Logf("no IPv6 loopback (%v): IPv4 only", err)
		return false
	}
	c.Close()
	return true
}

// startServer serves cfg until the test ends.
func startServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	srv, err := NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), cfg, newTestHandler(t, demoStore(t)))
	if err != nil {
		t.Fatal(err)
	}
	serveUntilCleanup(t, srv)
	return srv
}

func serveUntilCleanup(t testing.TB, srv *Server) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// client is an unconnected UDP socket bound to a loopback address: it
// takes a reply from any source, so a test can see which one it was (a
// connected socket would drop a reply from the wrong address, and the test
// would only time out).
func client(t testing.TB, bind string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(bind)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exchangeFrom sends a query from c to to and returns the answer and the
// address the reply came from.
func exchangeFrom(t testing.TB, c *net.UDPConn, to netip.AddrPort) (*dns.Msg, netip.AddrPort) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("www.gslb.example.com.", dns.TypeAAAA)
	withECS("2001:db8:2::/48")(m)
	q, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteToUDPAddrPort(q, to); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("query to %s: %v", to, err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil || r.Id != m.Id {
			continue // not ours
		}
		if len(r.Answer) != 1 || r.Answer[0].(*dns.AAAA).AAAA.String() != "2001:db8:2::10" {
			t.Fatalf("query to %s: bad reply %v", to, r)
		}
		return r, netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	}
}

// A wildcard UDP listener answers each query from the address it was sent
// to: 127.0.0.1 and 127.0.0.2 (Linux answers all of 127/8 on lo), and ::1;
// on a dual-stack [::] socket IPv4 too. Both UDP paths. With the reply's
// pktinfo turned off, the answer to 127.0.0.2 leaves from 127.0.0.1: that
// is the failure the test exists to catch.
func TestWildcardUDPReplySource(t *testing.T) {
	type query struct{ from, to string }
	v4 := []query{{"127.0.0.1:0", "127.0.0.1"}, {"127.0.0.1:0", "127.0.0.2"}, {"127.0.0.2:0", "127.0.0.3"}}
	v6 := []query{{"[::1]:0", "::1"}}
	cases := []struct {
		listen  string
		queries []query
	}{
		{"0.0.0.0:0", v4},
		{"[::]:0", append(append([]query(nil), v4...), v6...)}, // dual-stack
	}
	six := ipv6Loopback(t)
	for _, tc := range cases {
		for _, netpoll := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/netpoll=%v", tc.listen, netpoll), func(t *testing.T) {
				if tc.listen[0] == '[' && !six {
					t.Skip("no IPv6")
				}
				srv := startServer(t, Config{Listen: []string{tc.listen}, UDPWorkers: 2, netpollUDP: netpoll})
				bound := srv.Addrs()[0]
				want := netip.MustParseAddrPort(tc.listen).Addr()
				if bound.Addr() != want || bound.Port() == 0 {
					t.Fatalf("Addrs() = %v, want %s with its port", srv.Addrs(), want)
				}
				if tp := srv.tcp[0].Addr().(*net.TCPAddr).Port; tp != int(bound.Port()) {
					t.Fatalf("tcp port %d, udp %d", tp, bound.Port())
				}
				for _, q := range tc.queries {
					if !six && q.to == "::1" {
						continue
					}
					to := netip.AddrPortFrom(netip.MustParseAddr(q.to), bound.Port())
					c := client(t, q.from)
					for range 3 { // again: a batch reuses its buffers
						if _, from := exchangeFrom(t, c, to); from != to {
							t.Fatalf("query to %s answered from %s", to, from)
						}
					}
				}
			})
			t.Run(fmt.Sprintf("%s/netpoll=%v/no_pktinfo_reply", tc.listen, netpoll), func(t *testing.T) {
				if tc.listen[0] == '[' && !six {
					t.Skip("no IPv6")
				}
				srv := startServer(t, Config{Listen: []string{tc.listen}, UDPWorkers: 1, netpollUDP: netpoll, noPktinfoReply: true})
				to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), srv.Addrs()[0].Port())
				if _, from := exchangeFrom(t, client(t, "127.0.0.1:0"), to); from.Addr() != netip.MustParseAddr("127.0.0.1") {
					t.Fatalf("without pktinfo the reply to %s came from %s: want 127.0.0.1, the kernel's choice, to show the test can fail", to, from)
				}
			})
		}
	}
}

// TCP needs no pktinfo (an accepted connection's local address is the one
// asked), but must work on a wildcard too, to every address.
func TestWildcardTCP(t *testing.T) {
	listen := []string{"0.0.0.0:0"}
	if ipv6Loopback(t) {
		listen = append(listen, "[::]:0")
	}
	srv := startServer(t, Config{Listen: listen})
	for i, a := range srv.Addrs() {
		tos := []string{"127.0.0.1", "127.0.0.2"}
		if i == 1 {
			tos = append(tos, "::1")
		}
		for _, to := range tos {
			addr := netip.AddrPortFrom(netip.MustParseAddr(to), a.Port()).String()
			m := new(dns.Msg)
			m.SetQuestion("www.gslb.example.com.", dns.TypeAAAA)
			withECS("2001:db8:2::/48")(m)
			r, _, err := (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(m, addr)
			if err != nil {
				t.Fatalf("tcp %s: %v", addr, err)
			}
			if len(r.Answer) != 1 || r.Answer[0].(*dns.AAAA).AAAA.String() != "2001:db8:2::10" {
				t.Fatalf("tcp %s: %v", addr, r)
			}
		}
	}
}

func TestListenNet(t *testing.T) {
	aps := func(s ...string) []netip.AddrPort {
		var out []netip.AddrPort
		for _, a := range s {
			out = append(out, netip.MustParseAddrPort(a))
		}
		return out
	}
	cases := []struct {
		ap, family string
		all        []netip.AddrPort
		fam        pktFamily
	}{
		{"127.0.0.1:53", "", aps("127.0.0.1:53", "[::]:53"), noPktinfo},
		{"[::1]:53", "", aps("[::1]:53"), noPktinfo},
		{"0.0.0.0:53", "4", aps("0.0.0.0:53", "[::]:53"), pktinfoV4},
		{"[::]:53", "", aps("[::]:53"), pktinfoV6},                  // dual-stack
		{"[::]:53", "6", aps("0.0.0.0:53", "[::]:53"), pktinfoV6},   // IPv4 has its own
		{"[::]:53", "6", aps("192.0.2.1:53", "[::]:53"), pktinfoV6}, // likewise
		{"[::]:53", "", aps("0.0.0.0:54", "[::]:53"), pktinfoV6},
		{"[::]:0", "", aps("0.0.0.0:0", "[::]:0"), pktinfoV6}, // two ports the kernel picks
	}
	for _, tc := range cases {
		family, fam := listenNet(netip.MustParseAddrPort(tc.ap), tc.all)
		if family != tc.family || fam != tc.fam {
			t.Errorf("%s in %v: %q %d, want %q %d", tc.ap, tc.all, family, fam, tc.family, tc.fam)
		}
	}
}

// "0.0.0.0:P" and "[::]:P" bind together ([::] then IPv6 only) and each
// answers from the address asked.
func TestWildcardBothFamiliesOnePort(t *testing.T) {
	if !ipv6Loopback(t) {
		t.Skip("no IPv6")
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := newTestHandler(t, demoStore(t))
	var srv *Server
	for attempt := 0; srv == nil; attempt++ {
		// A port free in both families: the one a dual-stack socket got.
		probe, err := NewServer(log, Config{Listen: []string{"[::]:0"}}, h)
		if err != nil {
			t.Fatal(err)
		}
		port := probe.Addrs()[0].Port()
		probe.closeListeners()
		srv, err = NewServer(log, Config{Listen: []string{fmt.Sprintf("0.0.0.0:%d", port), fmt.Sprintf("[::]:%d", port)}}, h)
		if errors.Is(err, syscall.EADDRINUSE) && attempt < 5 {
			continue // taken meanwhile
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	serveUntilCleanup(t, srv)
	port := srv.Addrs()[0].Port()
	if want := fmt.Sprintf("[0.0.0.0:%d [::]:%d]", port, port); fmt.Sprint(srv.Addrs()) != want {
		t.Fatalf("Addrs() = %v, want %s", srv.Addrs(), want)
	}
	for _, q := range []struct{ from, to string }{{"127.0.0.1:0", "127.0.0.2"}, {"[::1]:0", "::1"}} {
		to := netip.AddrPortFrom(netip.MustParseAddr(q.to), port)
		if _, from := exchangeFrom(t, client(t, q.from), to); from != to {
			t.Fatalf("query to %s answered from %s", to, from)
		}
	}
}

// putPktinfo writes what x/sys/unix's own encoders write (but for the
// interface, left to routing unless link-local), and parsePktinfo reads
// the destination back, from either message, also after another one and
// with an IPv4-mapped address unmapped.
func TestPktinfoEncoding(t *testing.T) {
	v4, v6, ll := netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("2001:db8::53"), netip.MustParseAddr("fe80::53")
	cases := []struct {
		name    string
		fam     pktFamily
		src     netip.Addr
		ifindex uint32
		want    []byte
		wantIf  uint32 // the interface parsePktinfo reads back
	}{
		{"ipv4", pktinfoV4, v4, 7, unix.PktInfo4(&unix.Inet4Pktinfo{Spec_dst: v4.As4()}), 0},
		{"ipv6", pktinfoV6, v6, 7, unix.PktInfo6(&unix.Inet6Pktinfo{Addr: v6.As16()}), 0},
		{"ipv6 link-local keeps its link", pktinfoV6, ll, 7, unix.PktInfo6(&unix.Inet6Pktinfo{Addr: ll.As16(), Ifindex: 7}), 7},
		{"ipv4 on a dual-stack socket: mapped", pktinfoV6, v4, 7, unix.PktInfo6(&unix.Inet6Pktinfo{Addr: v4.As16()}), 0},
	}
	for _, tc := range cases {
		var b ctlBuf
		n := putPktinfo(b.bytes(), tc.fam, tc.src, tc.ifindex)
		if !bytes.Equal(b.bytes()[:n], tc.want) {
			t.Errorf("%s: put % x, want % x", tc.name, b.bytes()[:n], tc.want)
		}
		// Sent IP_PKTINFO names the source in Spec_dst; the kernel reports
		// the destination in Addr. Read what the kernel would send.
		recv := tc.want
		if tc.fam == pktinfoV4 {
			recv = unix.PktInfo4(&unix.Inet4Pktinfo{Ifindex: 3, Spec_dst: [4]byte{10, 0, 0, 1}, Addr: tc.src.As4()})
			tc.wantIf = 3
		}
		dst, ifindex, ok := parsePktinfo(recv)
		if !ok || dst != tc.src || ifindex != tc.wantIf {
			t.Errorf("%s: parse %v %d %v, want %v %d", tc.name, dst, ifindex, ok, tc.src, tc.wantIf)
		}
	}
	if n := putPktinfo(make([]byte, 8), pktinfoV4, v4, 0); n != 0 {
		t.Errorf("put into 8 bytes: %d", n)
	}
	if n := putPktinfo(make([]byte, 64), pktinfoV4, v6, 0); n != 0 {
		t.Errorf("put IPv6 into an IPv4 socket's message: %d", n)
	}

	// A dual-stack socket's IPv4 datagram: both messages, after another.
	other := unix.UnixRights(1, 2, 3)
	both := append(append(append([]byte(nil), other...), unix.PktInfo6(&unix.Inet6Pktinfo{Addr: v4.As16(), Ifindex: 1})...), unix.PktInfo4(&unix.Inet4Pktinfo{Ifindex: 1, Addr: v4.As4()})...)
	if dst, ifindex, ok := parsePktinfo(both); !ok || dst != v4 || ifindex != 1 {
		t.Errorf("both: %v %d %v", dst, ifindex, ok)
	}
	for name, bad := range map[string][]byte{
		"empty":              nil,
		"other only":         other,
		"short header":       unix.PktInfo6(&unix.Inet6Pktinfo{})[:8],
		"cut payload":        unix.PktInfo6(&unix.Inet6Pktinfo{})[:cmsgHdrLen+8],
		"length beyond data": append(unix.PktInfo4(&unix.Inet4Pktinfo{})[:cmsgHdrLen-8], 0xff, 0, 0, 0, 0, 0, 0, 0),
		"length zero":        make([]byte, 64),
	} {
		if dst, _, ok := parsePktinfo(bad); ok {
			t.Errorf("%s: parsed %v", name, dst)
		}
	}
}

// The per-packet helpers must not allocate.
func TestPktinfoDoesNotAllocate(t *testing.T) {
	var in, out ctlBuf
	v4, v6 := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("::1")
	copy(in.bytes(), append(unix.PktInfo6(&unix.Inet6Pktinfo{Addr: v4.As16(), Ifindex: 1}), unix.PktInfo4(&unix.Inet4Pktinfo{Ifindex: 1, Addr: v4.As4()})...))
	n := testing.AllocsPerRun(1000, func() {
		dst, ifindex, ok := parsePktinfo(in.bytes())
		if !ok {
			panic("no pktinfo")
		}
		putPktinfo(out.bytes(), pktinfoV4, dst, ifindex)
		putPktinfo(out.bytes(), pktinfoV6, dst, ifindex)
		putPktinfo(out.bytes(), pktinfoV6, v6, ifindex)
	})
	if n != 0 {
		t.Errorf("%.1f allocs per packet, want 0", n)
	}
}

// A loopback round trip through a wildcard socket allocates nothing on
// either UDP path (the count is the whole process's: the client's calls
// and the server's worker).
func TestWildcardRoundTripDoesNotAllocate(t *testing.T) {
	for _, netpoll := range []bool{false, true} {
		t.Run(fmt.Sprintf("netpoll=%v", netpoll), func(t *testing.T) {
			srv := startServer(t, Config{Listen: []string{"0.0.0.0:0"}, UDPWorkers: 1, netpollUDP: netpoll})
			rt := newRoundTrip(t, client(t, "127.0.0.1:0"), netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), srv.Addrs()[0].Port()))
			rt.do()
			if n := testing.AllocsPerRun(200, rt.do); n != 0 {
				t.Errorf("%.1f allocs per query, want 0", n)
			}
		})
	}
}

// roundTrip sends one prepared query and reads its reply, checking the
// reply's source, without allocating.
type roundTrip struct {
	t   testing.TB
	c   *net.UDPConn
	to  netip.AddrPort
	q   []byte
	buf []byte
}

func newRoundTrip(t testing.TB, c *net.UDPConn, to netip.AddrPort) *roundTrip {
	q := mkQuery(t, "www.gslb.example.com.", dns.TypeA, withECS("198.51.100.0/24"))
	return &roundTrip{t: t, c: c, to: to, q: q, buf: make([]byte, 4096)}
}

func (r *roundTrip) do() {
	if _, err := r.c.WriteToUDPAddrPort(r.q, r.to); err != nil {
		r.t.Fatal(err)
	}
	for {
		n, from, err := r.c.ReadFromUDPAddrPort(r.buf)
		if err != nil {
			r.t.Fatal(err)
		}
		if n >= 2 && r.buf[0] == r.q[0] && r.buf[1] == r.q[1] {
			if from != r.to {
				r.t.Fatalf("reply from %s, want %s", from, r.to)
			}
			return
		}
	}
}

// BenchmarkUDPRoundTrip is a query and its answer over loopback, through
// a specific address and through a wildcard (with pktinfo), on both UDP
// paths: the cost of the control messages, and their allocations (none).
func BenchmarkUDPRoundTrip(b *testing.B) {
	for _, bc := range []struct{ name, listen, to string }{
		{"specific", "127.0.0.2:0", "127.0.0.2"},
		{"wildcard", "0.0.0.0:0", "127.0.0.2"},
	} {
		for _, netpoll := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/netpoll=%v", bc.name, netpoll), func(b *testing.B) {
				srv := startServer(b, Config{Listen: []string{bc.listen}, UDPWorkers: 1, netpollUDP: netpoll})
				rt := newRoundTrip(b, client(b, "127.0.0.1:0"), netip.AddrPortFrom(netip.MustParseAddr(bc.to), srv.Addrs()[0].Port()))
				b.ReportAllocs()
				for b.Loop() {
					rt.do()
				}
			})
		}
	}
}
