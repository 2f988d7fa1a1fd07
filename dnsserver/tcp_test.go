package dnsserver

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// syncBuffer is a log sink the serving goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startTCP serves src on 127.0.0.1 with cfg until the test ends.
func startTCP(t *testing.T, src Source, cfg Config) (*Server, string, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	cfg.Listen = []string{"127.0.0.1:0"}
	srv, err := NewServer(log, cfg, NewHandler(log, src, NewMetrics(nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithCancel(t)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return srv, srv.Addrs()[0].String(), logs
}

// dialFrom connects to addr from the local IP from (127.0.0.x: Linux
// loopback answers all of 127/8, so each is a distinct client).
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	c, err := dialWith(from, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func dialWith(from, addr string, control func(string, string, syscall.RawConn) error) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second, Control: control}
	return d.Dial("tcp", addr)
}

// needLoopbackAliases skips the test where 127.0.0.2 cannot be bound.
func needLoopbackAliases(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 on loopback: %v", err)
	}
	l.Close()
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still not %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// tcpQuery asks for db.gslb.example.com A on c and checks the answer.
func tcpQuery(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	dc := &dns.Conn{Conn: c}
	m := new(dns.Msg)
	m.SetQuestion("db.gslb.example.com.", dns.TypeA)
	if err := dc.WriteMsg(m); err != nil {
		t.Fatal(err)
	}
	r, err := dc.ReadMsg()
	if err != nil {
		t.Fatal(err)
	}
	if r.Id != m.Id || len(r.Answer) != 1 {
		t.Fatalf("reply id %d answers %d", r.Id, len(r.Answer))
	}
}

// closedWithin says whether the server closes c within d (the read sees
// EOF or a reset rather than its deadline).
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

func closedCount(s *Server, r closeReason) float64 {
	return testutil.ToFloat64(s.h.metrics.tcpClosed[r])
}

func openCount(s *Server) int { return int(s.tab.n.Load()) }

// busyCount is how many open connections are mid-message.
func busyCount(s *Server) int {
	s.tab.mu.Lock()
	defer s.tab.mu.Unlock()
	n := 0
	for c := range s.tab.conns {
		if c.state.Load() == stateBusy {
			n++
		}
	}
	return n
}

func TestTCPPerClientLimit(t *testing.T) {
	needLoopbackAliases(t)
	srv, addr, logs := startTCP(t, demoStore(t), Config{})
	var held []net.Conn
	for range defaultMaxTCPConnsPerClient {
		held = append(held, dialFrom(t, "127.0.0.2", addr))
	}
	waitFor(t, 2*time.Second, "8 connections open", func() bool { return openCount(srv) == 8 })
	for i := range 3 {
		if c := dialFrom(t, "127.0.0.2", addr); !closedWithin(c, time.Second) {
			t.Fatalf("connection %d from 127.0.0.2 was not closed", 9+i)
		}
	}
	if got := closedCount(srv, reasonPerClient); got != 3 {
		t.Fatalf("per_client_limit = %v, want 3", got)
	}
	tcpQuery(t, dialFrom(t, "127.0.0.3", addr)) // another client still gets in
	tcpQuery(t, held[0])                        // and the held ones still work
	t.Log(strings.TrimSpace(logs.String()))
	if n := strings.Count(logs.String(), "tcp connections shed under pressure"); n != 1 {
		t.Fatalf("%d pressure log lines, want 1 (rate-limited):\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "per_client_limit=1") {
		t.Fatalf("log lacks the count: %s", logs)
	}
}

// TestTCPFullTableEvictsIdlest is the measured attack: one address fills
// the table with idle connections; another's query must still be answered
// at once, by evicting an idle connection rather than refusing.
func TestTCPFullTableEvictsIdlest(t *testing.T) {
	needLoopbackAliases(t)
	// No shrinking (floor = idle): only eviction can make room.
	srv, addr, _ := startTCP(t, demoStore(t), Config{MaxTCPConns: 50, MaxTCPConnsPerClient: -1, tcpIdleFloor: 10 * time.Second})
	var held []net.Conn
	for range 50 {
		held = append(held, dialFrom(t, "127.0.0.2", addr))
	}
	waitFor(t, 5*time.Second, "50 connections open", func() bool { return openCount(srv) == 50 })
	start := time.Now()
	tcpQuery(t, dialFrom(t, "127.0.0.3", addr))
	took := time.Since(start)
	t.Logf("query from 127.0.0.3 with the table full answered in %v", took)
	if took > time.Second {
		t.Fatalf("answer took %v", took)
	}
	if got := closedCount(srv, reasonForNew); got != 1 {
		t.Fatalf("evicted_for_new = %v, want 1", got)
	}
	if got := testutil.ToFloat64(srv.h.metrics.tcpRefused); got != 0 {
		t.Fatalf("refused = %v, want 0", got)
	}
	// The one evicted is the idlest: the first opened.
	if !closedWithin(held[0], time.Second) {
		t.Fatal("the idlest connection was not the one evicted")
	}
	if got := testutil.ToFloat64(srv.h.metrics.tcpOpen); got != 50 {
		t.Fatalf("open gauge = %v, want 50", got)
	}
}

// TestTCPBusyNotEvictedStalledClosed: connections mid-message are not
// evicted for a new one (it is refused instead), and a client that sends
// one byte and stalls is closed by the message deadline, well before the
// idle timeout.
func TestTCPBusyNotEvictedStalledClosed(t *testing.T) {
	needLoopbackAliases(t)
	const msgTimeout = 400 * time.Millisecond
	srv, addr, _ := startTCP(t, demoStore(t), Config{MaxTCPConns: 2, tcpMessageTimeout: msgTimeout})
	var stalled []net.Conn
	var sent time.Time
	for range 2 {
		c := dialFrom(t, "127.0.0.2", addr)
		sent = time.Now()
		if _, err := c.Write([]byte{0}); err != nil { // half the length
			t.Fatal(err)
		}
		stalled = append(stalled, c)
	}
	waitFor(t, 2*time.Second, "both connections busy", func() bool { return busyCount(srv) == 2 })
	if c := dialFrom(t, "127.0.0.3", addr); !closedWithin(c, time.Second) {
		t.Fatal("a new connection was admitted over two busy ones")
	}
	if got := testutil.ToFloat64(srv.h.metrics.tcpRefused); got != 1 {
		t.Fatalf("refused = %v, want 1", got)
	}
	if got := closedCount(srv, reasonForNew); got != 0 {
		t.Fatalf("evicted_for_new = %v, want 0", got)
	}
	for _, c := range stalled {
		if !closedWithin(c, 5*time.Second) {
			t.Fatal("stalled connection not closed within 5s")
		}
	}
	took := time.Since(sent)
	t.Logf("stalled connections closed %v after their first byte (message deadline %v)", took, msgTimeout)
	if took < msgTimeout-50*time.Millisecond {
		t.Fatalf("closed after %v, before the message deadline", took)
	}
	waitFor(t, 2*time.Second, "slow closes counted", func() bool { return closedCount(srv, reasonSlow) == 2 })
	tcpQuery(t, dialFrom(t, "127.0.0.3", addr))
}

func TestEffectiveIdle(t *testing.T) {
	const idle, floor = 10 * time.Second, 500 * time.Millisecond
	tests := []struct {
		n, max int
		want   time.Duration
	}{
		{0, 1024, idle},
		{767, 1024, idle},
		{768, 1024, idle}, // 75%: the curve starts
		{896, 1024, 5250 * time.Millisecond},
		{1024, 1024, floor},
		{2000, 1024, floor},
		{7, 8, 5250 * time.Millisecond},
		{1, 1, floor},
	}
	for _, tc := range tests {
		if got := effectiveIdle(tc.n, tc.max, idle, floor); got != tc.want {
			t.Errorf("effectiveIdle(%d, %d) = %v, want %v", tc.n, tc.max, got, tc.want)
		}
	}
	if got := effectiveIdle(4, 4, time.Second, 2*time.Second); got != time.Second {
		t.Errorf("floor above idle: %v, want idle", got)
	}
}

func TestClientKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::"},
		{"2001:db8:1:2:ffff::9", "2001:db8:1:2::"},
	}
	for _, tc := range tests {
		if got := clientKey(netip.MustParseAddr(tc.in)); got != netip.MustParseAddr(tc.want) {
			t.Errorf("clientKey(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestTCPSweep runs the sweep on a clock we hold: with the table full it
// closes the idlest, then stops once the occupancy left no longer calls
// for it; it never takes a busy connection.
func TestTCPSweep(t *testing.T) {
	cfg := Config{MaxTCPConns: 4, MaxTCPConnsPerClient: -1, TCPIdleTimeout: 10 * time.Second, tcpIdleFloor: time.Second}
	tab := newConnTable(&cfg, newMetrics(nil))
	sec := int64(time.Second)
	var conns []*tcpConn
	for i, since := range []int64{0, 1 * sec, -1, 2 * sec} { // -1: busy
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		tc := &tcpConn{c: a, client: netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})}
		if v, _ := tab.admit(tc, max(since, 0)); v != admitted {
			t.Fatalf("conn %d: verdict %v", i, v)
		}
		if since < 0 {
			tc.state.Store(stateBusy)
		}
		conns = append(conns, tc)
	}
	// 3.5s: full, so the timeout is the 1s floor; the idlest (3.5s) goes,
	// and at 3 of 4 the timeout is 10s again: the rest stay.
	got := tab.sweep(3500*int64(time.Millisecond), nil)
	if len(got) != 1 || got[0] != conns[0] {
		t.Fatalf("swept %d, want the idlest only", len(got))
	}
	if n := tab.n.Load(); n != 3 {
		t.Fatalf("open %d, want 3", n)
	}
	// Full again with a fresh one; everything idle is idle 10s+: at 4 of 4
	// the two idlest idle ones go (after the first, 3 of 4 is 10s: the
	// second is idle past it too), the new one and the busy one stay.
	fresh := &tcpConn{c: conns[0].c, client: netip.MustParseAddr("192.0.2.9")}
	tab.admit(fresh, 20*sec)
	got = tab.sweep(20500*int64(time.Millisecond), nil)
	if len(got) != 2 || got[0] != conns[1] || got[1] != conns[3] {
		t.Fatalf("swept %v, want conns 1 and 3", got)
	}
	if conns[2].state.Load() != stateBusy || !conns[2].inTable || !fresh.inTable {
		t.Fatal("the sweep took a busy or a fresh connection")
	}
	if got := testutil.ToFloat64(tab.m.tcpClosed[reasonIdle]); got != 3 {
		t.Fatalf("idle_timeout = %v, want 3", got)
	}
}

// TestTCPExpire: two connections whose deadlines, armed with the table
// full, pass together: the first closes, the second is kept with the
// timeout of the occupancy left.
func TestTCPExpire(t *testing.T) {
	cfg := Config{MaxTCPConns: 2, MaxTCPConnsPerClient: -1, TCPIdleTimeout: 10 * time.Second, tcpIdleFloor: time.Second}
	tab := newConnTable(&cfg, newMetrics(nil))
	tab.epoch = time.Now().Add(-1500 * time.Millisecond) // both idle 1.5s
	var conns [2]*tcpConn
	for i := range conns {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		conns[i] = &tcpConn{c: a, client: netip.MustParseAddr("192.0.2.1")}
		tab.admit(conns[i], 0)
	}
	if _, keep := tab.expire(conns[0], 1); keep || conns[0].inTable {
		t.Fatal("full table: a connection idle past the floor was kept")
	}
	d, keep := tab.expire(conns[1], 1)
	if !keep || !conns[1].inTable {
		t.Fatal("half full: a connection idle 1.5s of 10s was closed")
	}
	if want := tab.epoch.Add(10 * time.Second); !d.Equal(want) {
		t.Fatalf("new deadline %v, want %v", d, want)
	}
	if got := testutil.ToFloat64(tab.m.tcpClosed[reasonIdle]); got != 1 {
		t.Fatalf("idle_timeout = %v, want 1", got)
	}
}

// TestTCPIdleShrinksUnderPressure: with the table full, idle connections
// are closed after the shrunk timeout, far sooner than the 10s idle one,
// and only until the pressure is gone.
func TestTCPIdleShrinksUnderPressure(t *testing.T) {
	needLoopbackAliases(t)
	const floor = 300 * time.Millisecond
	srv, addr, _ := startTCP(t, demoStore(t), Config{MaxTCPConns: 8, MaxTCPConnsPerClient: -1, tcpIdleFloor: floor})
	for range 8 {
		dialFrom(t, "127.0.0.2", addr)
	}
	waitFor(t, 2*time.Second, "8 connections open", func() bool { return openCount(srv) == 8 })
	full := time.Now()
	waitFor(t, 5*time.Second, "a connection closed as idle", func() bool { return openCount(srv) < 8 })
	took := time.Since(full)
	t.Logf("with the table full an idle connection was closed after %v (floor %v, idle timeout 10s)", took, floor)
	if closedCount(srv, reasonIdle) < 1 {
		t.Fatal("no idle_timeout counted")
	}
	// Every connection may have armed its read at 8 of 8 (300ms), but a
	// deadline only closes at the occupancy of the moment: after the first
	// close, 7 of 8 means 5.25s, so the other seven stay.
	time.Sleep(3 * floor)
	if n := openCount(srv); n != 7 {
		t.Fatalf("%d connections left 3 floors later, want 7: shed past the pressure", n)
	}
}

// TestTCPSlowWriterClosed: a client that sends queries and never reads
// its answers is closed once writing an answer takes longer than the write
// deadline.
func TestTCPSlowWriterClosed(t *testing.T) {
	const writeTimeout = 300 * time.Millisecond
	srv, addr, _ := startTCP(t, bigStore(t), Config{tcpWriteTimeout: writeTimeout})
	small := func(_, _ string, rc syscall.RawConn) error {
		var err error
		rc.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return err
	}
	c, err := dialWith("127.0.0.1", addr, small)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := new(dns.Msg)
	q.SetQuestion("many.big.test.", dns.TypeAAAA) // about 2.3 KB answered
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var batch []byte
	for range 5000 { // 11 MB of answers: more than any socket buffers
		batch = append(batch, byte(len(wire)>>8), byte(len(wire)))
		batch = append(batch, wire...)
	}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		c.Write(batch) // fails once the server stops reading or closes
	}()
	waitFor(t, 10*time.Second, "the slow reader closed", func() bool { return closedCount(srv, reasonSlow) == 1 })
	t.Logf("client not reading its answers closed after %v (write deadline %v)", time.Since(start), writeTimeout)
	waitFor(t, 2*time.Second, "the connection gone", func() bool { return openCount(srv) == 0 })
	c.Close()
	<-done
}

// TestMetricsLint: every DNS metric passes promlint, the TCP ones
// included.
func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	m.tcpOpen.Inc()
	for _, c := range m.tcpClosed {
		c.Inc()
	}
	m.tcpRefused.Inc()
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	want := `
# HELP meridian_dns_tcp_connections Open TCP connections.
# TYPE meridian_dns_tcp_connections gauge
meridian_dns_tcp_connections 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "meridian_dns_tcp_connections"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "meridian_dns_tcp_evicted_connections_total"); err != nil || n != int(numReasons) {
		t.Fatalf("evicted series %d (%v), want %d", n, err, numReasons)
	}
}
