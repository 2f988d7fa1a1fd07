//go:build !linux

package dnsserver

import (
	"errors"
	"net"
)

// batchConn is Linux-only; elsewhere UDP goes through Go's netpoller.
type batchConn struct{}

func newBatchConn(*net.UDPConn) (*batchConn, error) {
	return nil, errors.New("recvmmsg is Linux-only")
}

func (*batchConn) stop()                   {}
func (*batchConn) release()                {}
func (s *Server) serveUDPBatch(*batchConn) { s.wg.Done() }
