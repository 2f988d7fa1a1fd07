package gossip

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// transport wraps memberlist's NetTransport to count every byte it sends
// and receives (memberlist's own probes and membership gossip included,
// after encryption: what the network carries) and, for tests, to drop the
// traffic of chosen peers: a partition without root or network
// namespaces, with real sockets underneath.
type transport struct {
	inner *memberlist.NetTransport
	m     *metrics
	local *net.TCPAddr          // source address of dials: the bind address, nil when unspecified
	block func(netip.Addr) bool // nil: nothing dropped; set before use, then read-only

	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	ctx     context.Context // canceled by Shutdown: ends dials in flight
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the two forwarding goroutines
	closed  atomic.Bool
}

var _ memberlist.NodeAwareTransport = (*transport)(nil)

// errBlocked is what a dial to a partitioned-off peer returns.
var errBlocked = errors.New("peer partitioned off (test)")

func newTransport(inner *memberlist.NetTransport, bind netip.Addr, m *metrics, block func(netip.Addr) bool) *transport {
	t := &transport{
		inner:   inner,
		m:       m,
		block:   block,
		packets: make(chan *memberlist.Packet),
		streams: make(chan net.Conn),
		done:    make(chan struct{}),
	}
	if !bind.IsUnspecified() {
		t.local = &net.TCPAddr{IP: bind.AsSlice()}
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.wg.Add(2)
	go t.forwardPackets()
	go t.forwardStreams()
	return t
}

// blocked reports whether traffic with addr ("ip:port" or a net.Addr's
// String) is dropped.
func (t *transport) blocked(addr string) bool {
	if t.block == nil {
		return false
	}
	ap, err := netip.ParseAddrPort(addr)
	return err == nil && t.block(ap.Addr().Unmap())
}

func (t *transport) forwardPackets() {
	defer t.wg.Done()
	in := t.inner.PacketCh()
	for {
		select {
		case p := <-in:
			t.m.netRecv.WithLabelValues("udp").Add(float64(len(p.Buf)))
			if t.blocked(p.From.String()) {
				continue
			}
			select {
			case t.packets <- p:
			case <-t.done:
				return
			}
		case <-t.done:
			return
		}
	}
}

func (t *transport) forwardStreams() {
	defer t.wg.Done()
	in := t.inner.StreamCh()
	for {
		select {
		case c := <-in:
			if t.blocked(c.RemoteAddr().String()) {
				c.Close()
				continue
			}
			select {
			case t.streams <- &countedConn{Conn: c, m: t.m}:
			case <-t.done:
				c.Close()
				return
			}
		case <-t.done:
			return
		}
	}
}

func (t *transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.inner.FinalAdvertiseAddr(ip, port)
}

func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.blocked(a.Addr) {
		return time.Now(), nil // lost on the way, as UDP may be
	}
	t.m.netSent.WithLabelValues("udp").Add(float64(len(b)))
	return t.inner.WriteToAddress(b, a)
}

func (t *transport) PacketCh() <-chan *memberlist.Packet { return t.packets }

func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.blocked(a.Addr) {
		return nil, errBlocked
	}
	// Dialled here rather than by the inner transport so that Shutdown
	// cancels a dial in flight instead of waiting out its timeout, and so
	// that streams leave from the bind address (as packets do), not from
	// whatever address the route picks: peers and firewalls see one
	// address per node.
	// A timeout of zero or less means none, as for net.DialTimeout (the
	// inner transport's dial): memberlist passes what is left of a ping's
	// deadline, which may be nothing by now.
	ctx := t.ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	d := net.Dialer{LocalAddr: t.local}
	c, err := d.DialContext(ctx, "tcp", a.Addr)
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, m: t.m}, nil
}

func (t *transport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown stops the listeners, then the forwarders. memberlist reads from
// PacketCh and StreamCh until this returns, so the inner transport's
// goroutines are never stuck on a send while it shuts down.
func (t *transport) Shutdown() error {
	if !t.closed.CompareAndSwap(false, true) {
		return nil
	}
	t.cancel()
	err := t.inner.Shutdown()
	close(t.done)
	t.wg.Wait()
	return err
}

// countedConn counts a TCP stream's bytes (push/pull, reliable sends, TCP
// fallback probes).
type countedConn struct {
	net.Conn
	m *metrics
}

func (c *countedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.m.netRecv.WithLabelValues("tcp").Add(float64(n))
	return n, err
}

func (c *countedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.m.netSent.WithLabelValues("tcp").Add(float64(n))
	return n, err
}
