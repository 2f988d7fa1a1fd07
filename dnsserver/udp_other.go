//go:build !linux

package dnsserver

import (
	"errors"
	"fmt"
	"net"
)

// batchConn is Linux-only; elsewhere UDP goes through Go's netpoller.
type batchConn struct{}

func newBatchConn(*net.UDPConn, pktFamily) (*batchConn, error) {
	return nil, errors.New("recvmmsg is Linux-only")
}

func (*batchConn) stop()                   {}
func (*batchConn) release()                {}
func (s *Server) serveUDPBatch(*batchConn) { s.wg.Done() }

// enablePktinfo refuses wildcards: the control messages that carry a
// datagram's destination differ between systems (IP_RECVDSTADDR on the
// BSDs, none on Windows), and only Linux's are built here.
func enablePktinfo(*net.UDPConn, pktFamily) error {
	return fmt.Errorf("supported on Linux only; list each address to serve on (e.g. \"192.0.2.53:53\"): %w", ErrWildcard)
}

// serveUDPPktinfo is never started: enablePktinfo refuses every wildcard.
func (s *Server) serveUDPPktinfo(u *net.UDPConn, _ pktFamily) { s.serveUDP(u) }
