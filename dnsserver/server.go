package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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
	// "[::1]:53". Port 0 picks a free port (tests).
	Listen []string
	// UDPWorkers is the number of goroutines reading each UDP socket, and so
	// the bound on UDP queries in flight per socket. Default: GOMAXPROCS-1,
	// at least 1: a worker waiting for packets holds its P in a system call,
	// and when no P is left idle the runtime's monitor takes it back on
	// every packet, which costs more than answering (measured: 29.6 vs
	// 22.2 µs of CPU per query at 20k q/s on one core).
	UDPWorkers int
	// MaxTCPConns bounds open TCP connections; further ones are closed at
	// once. Default 1024.
	MaxTCPConns int
	// TCPIdleTimeout closes a TCP connection that sends nothing for this
	// long (RFC 7766 §6.2.3). Default 10s.
	TCPIdleTimeout time.Duration

	// netpollUDP forces the portable UDP path (tests exercise both).
	netpollUDP bool
}

func (c *Config) setDefaults() {
	if c.UDPWorkers <= 0 {
		c.UDPWorkers = max(1, runtime.GOMAXPROCS(0)-1)
	}
	if c.MaxTCPConns <= 0 {
		c.MaxTCPConns = 1024
	}
	if c.TCPIdleTimeout <= 0 {
		c.TCPIdleTimeout = 10 * time.Second
	}
}

// ErrWildcard rejects 0.0.0.0 and :: as listen addresses.
var ErrWildcard = errors.New("wildcard listen address")

// Server serves DNS over UDP and TCP with a fixed number of goroutines per
// UDP socket and a bounded number of TCP connections.
type Server struct {
	cfg Config
	h   *Handler
	log *slog.Logger

	udp   []*net.UDPConn
	addrs []netip.AddrPort // bound UDP addresses, in Listen order
	tcp   []net.Listener
	batch []*batchConn // the UDP sockets served with recvmmsg (Linux)

	wg sync.WaitGroup // every serving goroutine

	mu    sync.Mutex // guards conns
	conns map[net.Conn]struct{}
	slots chan struct{} // TCP connection slots
}

// NewServer binds every listen address. Nothing is served until Serve.
func NewServer(log *slog.Logger, cfg Config, h *Handler) (*Server, error) {
	cfg.setDefaults()
	if len(cfg.Listen) == 0 {
		return nil, errors.New("dns server: no listen addresses")
	}
	s := &Server{cfg: cfg, h: h, log: log, conns: map[net.Conn]struct{}{}, slots: make(chan struct{}, cfg.MaxTCPConns)}
	for _, a := range cfg.Listen {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("dns server: listen address %q: %w", a, err)
		}
		if ap.Addr().IsUnspecified() {
			// A reply must leave from the address the query was sent to, or
			// resolvers drop it; on a wildcard socket the kernel picks the
			// source by route, which differs on multi-homed hosts.
			s.closeListeners()
			return nil, fmt.Errorf("dns server: listen address %q: list each address to serve on (e.g. \"192.0.2.53:53\"), not a wildcard: %w", a, ErrWildcard)
		}
		u, t, err := listenPair(ap)
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("dns server: %w", err)
		}
		s.udp = append(s.udp, u)
		s.addrs = append(s.addrs, u.LocalAddr().(*net.UDPAddr).AddrPort())
		s.tcp = append(s.tcp, t)
	}
	return s, nil
}

// listenPair binds UDP and TCP on one address and port. With port 0 the
// kernel picks the UDP port, which some TCP socket may already hold: then
// it tries again with another.
func listenPair(ap netip.AddrPort) (*net.UDPConn, *net.TCPListener, error) {
	for attempt := 0; ; attempt++ {
		u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			return nil, nil, err
		}
		port := uint16(u.LocalAddr().(*net.UDPAddr).Port)
		t, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr(), port)))
		if err == nil {
			return u, t, nil
		}
		u.Close()
		if ap.Port() != 0 || attempt >= 20 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, err
		}
	}
}

// Addrs returns the bound UDP addresses (TCP uses the same ports).
func (s *Server) Addrs() []netip.AddrPort {
	return append([]netip.AddrPort(nil), s.addrs...)
}

// Serve serves until ctx is done, then closes the listeners and every TCP
// connection and waits for all its goroutines.
func (s *Server) Serve(ctx context.Context) error {
	for _, u := range s.udp {
		var bc *batchConn
		var err error
		if !s.cfg.netpollUDP {
			bc, err = newBatchConn(u)
		}
		if bc == nil || err != nil {
			// Portable path through Go's netpoller.
			for i := 0; i < s.cfg.UDPWorkers; i++ {
				s.wg.Add(1)
				go s.serveUDP(u)
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
	s.log.Info("dns serving", "addrs", fmt.Sprint(s.Addrs()), "udp_workers", s.cfg.UDPWorkers)
	<-ctx.Done()
	for _, bc := range s.batch {
		bc.stop()
	}
	s.closeListeners()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
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

func (s *Server) acceptTCP(l net.Listener) {
	defer s.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		select {
		case s.slots <- struct{}{}:
		default:
			s.h.metrics.tcpRefused.Inc()
			c.Close()
			continue
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serveTCP(c)
	}
}

// serveTCP answers length-prefixed queries on one connection in order,
// until the client closes it, goes idle, or sends garbage.
func (s *Server) serveTCP(c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
		<-s.slots
		s.wg.Done()
	}()
	w := newWorker()
	from := netip.Addr{}
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		from = ta.AddrPort().Addr().Unmap()
	}
	in := make([]byte, 65535)
	out := make([]byte, 0, 65537)
	for {
		c.SetReadDeadline(time.Now().Add(s.cfg.TCPIdleTimeout))
		if _, err := io.ReadFull(c, in[:2]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(in))
		if _, err := io.ReadFull(c, in[:n]); err != nil {
			return
		}
		resp := s.h.Serve(w, in[:n], from, false)
		if resp == nil {
			continue
		}
		out = binary.BigEndian.AppendUint16(out[:0], uint16(len(resp)))
		out = append(out, resp...)
		c.SetWriteDeadline(time.Now().Add(s.cfg.TCPIdleTimeout))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}
