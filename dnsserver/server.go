package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// Config is how a Server listens. The zero value of a field means its
// default.
type Config struct {
	// Listen is the addresses to serve on, UDP and TCP each: "127.0.0.1:53",
	// "[::1]:53". Port 0 picks a free port (tests). A wildcard serves every
	// address of the host (Linux only): "0.0.0.0:53" IPv4, "[::]:53" IPv6
	// and IPv4 (dual-stack), or IPv6 alone when an IPv4 address in Listen
	// has the same port, so that "0.0.0.0:53" and "[::]:53" bind together.
	// Each UDP reply of a wildcard socket leaves from the address its query
	// was sent to (pktinfo_linux.go).
	Listen []string
	// UDPWorkers is the number of goroutines reading each UDP socket, and so
	// the bound on UDP queries in flight per socket. Default: GOMAXPROCS-1,
	// at least 1: a worker waiting for packets holds its P in a system call,
	// and when no P is left idle the runtime's monitor takes it back on
	// every packet, which costs more than answering (measured: 29.6 vs
	// 22.2 µs of CPU per query at 20k q/s on one core).
	UDPWorkers int
	// MaxTCPConns bounds open TCP connections. When the table is full, a
	// new connection evicts the one idle longest; only when every one is
	// in the middle of a message or an answer is the new one closed at once
	// (meridian_dns_tcp_refused_connections_total). Default 1024.
	MaxTCPConns int
	// MaxTCPConnsPerClient bounds the open TCP connections of one client:
	// an IPv4 address, or an IPv6 /64 (one host usually holds a whole /64).
	// A client at the limit has its new connection closed at once. Default
	// (0) 8; negative means unlimited. A resolver needs few: RFC 7766 asks
	// it to reuse one connection for many queries.
	MaxTCPConnsPerClient int
	// TCPIdleTimeout closes a TCP connection that sends nothing for this
	// long (RFC 7766 §6.2.3). Default 10s. It shrinks while the table
	// fills: from 75% occupancy it falls linearly to 500ms at 100% (with
	// the default, 5.25s at 87.5%). A connection idle longer than the
	// timeout at the current occupancy is closed, idlest first and one at
	// a time, so shedding stops once the occupancy falls.
	TCPIdleTimeout time.Duration

	// Deadlines within a TCP message and answer, and the idle timeout with
	// the table full; unexported, for tests to shorten. Defaults:
	// defaultTCPMessageTimeout, defaultTCPWriteTimeout,
	// defaultTCPIdleFloor.
	tcpMessageTimeout time.Duration
	tcpWriteTimeout   time.Duration
	tcpIdleFloor      time.Duration

	// netpollUDP forces the portable UDP path (tests exercise both).
	netpollUDP bool
	// noPktinfoReply sends the replies of wildcard sockets without their
	// source address, as if IP_PKTINFO were not set: tests show that they
	// then leave from the wrong address.
	noPktinfoReply bool
}

func (c *Config) setDefaults() {
	if c.UDPWorkers <= 0 {
		c.UDPWorkers = max(1, runtime.GOMAXPROCS(0)-1)
	}
	if c.MaxTCPConns <= 0 {
		c.MaxTCPConns = 1024
	}
	if c.MaxTCPConnsPerClient == 0 {
		c.MaxTCPConnsPerClient = defaultMaxTCPConnsPerClient
	}
	if c.TCPIdleTimeout <= 0 {
		c.TCPIdleTimeout = 10 * time.Second
	}
	if c.tcpMessageTimeout <= 0 {
		c.tcpMessageTimeout = defaultTCPMessageTimeout
	}
	if c.tcpWriteTimeout <= 0 {
		c.tcpWriteTimeout = defaultTCPWriteTimeout
	}
	if c.tcpIdleFloor <= 0 {
		c.tcpIdleFloor = defaultTCPIdleFloor
	}
}

// ErrWildcard rejects 0.0.0.0 and :: as listen addresses where a reply
// cannot be made to leave from the address asked (outside Linux).
var ErrWildcard = errors.New("wildcard listen address")

// pktFamily says whether a UDP socket learns the destination of each
// datagram, to send the reply from it (a wildcard socket), and through
// which socket family's control messages.
type pktFamily uint8

const (
	noPktinfo pktFamily = iota // a specific address: the socket's own is the source
	pktinfoV4                  // 0.0.0.0: IP_PKTINFO
	pktinfoV6                  // ::, maybe dual-stack: IPV6_PKTINFO (and IP_PKTINFO to receive)
)

// Server serves DNS over UDP and TCP with a fixed number of goroutines per
// UDP socket and a bounded number of TCP connections.
type Server struct {
	cfg Config
	h   *Handler
	log *slog.Logger

	udp   []*net.UDPConn
	pkt   []pktFamily      // of each udp socket
	addrs []netip.AddrPort // bound UDP addresses, in Listen order
	tcp   []net.Listener
	batch []*batchConn // the UDP sockets served with recvmmsg (Linux)

	wg sync.WaitGroup // every serving goroutine

	tab *connTable // the open TCP connections (tcp.go)
}

// NewServer binds every listen address. Nothing is served until Serve.
func NewServer(log *slog.Logger, cfg Config, h *Handler) (*Server, error) {
	cfg.setDefaults()
	if len(cfg.Listen) == 0 {
		return nil, errors.New("dns server: no listen addresses")
	}
	s := &Server{cfg: cfg, h: h, log: log}
	s.tab = newConnTable(&s.cfg, h.metrics)
	aps := make([]netip.AddrPort, len(cfg.Listen))
	for i, a := range cfg.Listen {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			return nil, fmt.Errorf("dns server: listen address %q: %w", a, err)
		}
		aps[i] = ap
	}
	for i, ap := range aps {
		family, fam := listenNet(ap, aps)
		u, t, err := listenPair(ap, family)
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("dns server: %w", err)
		}
		s.udp = append(s.udp, u)
		s.pkt = append(s.pkt, fam)
		s.addrs = append(s.addrs, u.LocalAddr().(*net.UDPAddr).AddrPort())
		s.tcp = append(s.tcp, t)
		if fam == noPktinfo {
			continue
		}
		// A reply must leave from the address the query was sent to, or
		// resolvers drop it; on a wildcard socket the kernel would pick
		// the source by route, which differs on multi-homed hosts.
		if err := enablePktinfo(u, fam); err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("dns server: listen address %q: %w", cfg.Listen[i], err)
		}
	}
	return s, nil
}

// listenNet picks the socket family of a listen address: the suffix of
// "udp"/"tcp" for net.Listen, and whether the UDP socket needs pktinfo. A
// specific address binds as it always has. 0.0.0.0 binds IPv4 alone (plain
// "udp" would make it a dual-stack IPv6 socket). :: is dual-stack, as Go
// makes it, unless an IPv4 address in all has the same port: that one
// would collide with the IPv4 half, so :: binds IPv6 alone.
func listenNet(ap netip.AddrPort, all []netip.AddrPort) (string, pktFamily) {
	switch {
	case !ap.Addr().IsUnspecified():
		return "", noPktinfo
	case ap.Addr().Is4():
		return "4", pktinfoV4
	}
	for _, o := range all {
		if o.Addr().Unmap().Is4() && o.Port() == ap.Port() && ap.Port() != 0 {
			return "6", pktinfoV6
		}
	}
	return "", pktinfoV6
}

// udpBuffer is the socket buffer size asked for each UDP listener.
const udpBuffer = 4 << 20

// listenPair binds UDP and TCP on one address and port, with the networks
// "udp"+family and "tcp"+family (family "", "4" or "6", see listenNet).
// With port 0 the kernel picks the UDP port, which some TCP socket may
// already hold: then it tries again with another.
func listenPair(ap netip.AddrPort, family string) (*net.UDPConn, *net.TCPListener, error) {
	for attempt := 0; ; attempt++ {
		u, err := net.ListenUDP("udp"+family, net.UDPAddrFromAddrPort(ap))
		if err != nil {
			return nil, nil, err
		}
		// A burst (a flood being rate limited, a GC pause) must wait in
		// the socket, not be dropped by the kernel: ask for 4 MiB each way
		// (the kernel caps it at net.core.rmem_max and wmem_max).
		_ = u.SetReadBuffer(udpBuffer)
		_ = u.SetWriteBuffer(udpBuffer)
		port := uint16(u.LocalAddr().(*net.UDPAddr).Port)
		t, err := net.ListenTCP("tcp"+family, net.TCPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr(), port)))
		if err == nil {
			return u, t, nil
		}
		u.Close()
		if ap.Port() != 0 || attempt >= 20 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, err
		}
	}
}

// Addrs returns the bound UDP addresses (TCP uses the same ports); a
// wildcard as given, with its port.
func (s *Server) Addrs() []netip.AddrPort {
	return append([]netip.AddrPort(nil), s.addrs...)
}

// Serve serves until ctx is done, then closes the listeners and every TCP
// connection and waits for all its goroutines.
func (s *Server) Serve(ctx context.Context) error {
	for k, u := range s.udp {
		var bc *batchConn
		var err error
		if !s.cfg.netpollUDP {
			bc, err = newBatchConn(u, s.pkt[k])
		}
		if bc == nil || err != nil {
			// Portable path through Go's netpoller.
			for i := 0; i < s.cfg.UDPWorkers; i++ {
				s.wg.Add(1)
				if s.pkt[k] != noPktinfo {
					go s.serveUDPPktinfo(u, s.pkt[k])
				} else {
					go s.serveUDP(u)
				}
			}
			continue
		}
		s.batch = append(s.batch, bc)
		for i := 0; i < s.cfg.UDPWorkers; i++ {
			s.wg.Add(1)
			go s.serveUDPBatch(bc)
		}
	}
	for _, t := range s.tcp {
		s.wg.Add(1)
		go s.acceptTCP(t)
	}
	sweepDone := make(chan struct{})
	s.wg.Add(1)
	go s.sweepTCP(sweepDone)
	s.log.Info("dns serving", "addrs", fmt.Sprint(s.Addrs()), "udp_workers", s.cfg.UDPWorkers)
	<-ctx.Done()
	for _, bc := range s.batch {
		bc.stop()
	}
	s.closeListeners()
	close(sweepDone)
	s.tab.closeAll()
	s.wg.Wait()
	for _, bc := range s.batch {
		bc.release()
	}
	return nil
}

func (s *Server) closeListeners() {
	for _, u := range s.udp {
		u.Close()
	}
	for _, t := range s.tcp {
		t.Close()
	}
}

func (s *Server) serveUDP(u *net.UDPConn) {
	defer s.wg.Done()
	w := newWorker()
	in := make([]byte, 65535)
	for {
		n, from, err := u.ReadFromUDPAddrPort(in)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP-driven errors: keep serving
		}
		resp := s.h.Serve(w, in[:n], from.Addr().Unmap(), true)
		if resp != nil {
			u.WriteToUDPAddrPort(resp, from) // a lost reply is the client's retry
		}
	}
}
