//go:build linux

package dnsserver

import (
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The Linux UDP path works like gdnsd's: each worker blocks in recvmmsg on
// the socket itself (not through Go's netpoller, whose epoll round trip per
// packet costs more kernel time than answering), answers the whole batch,
// and sends every reply with one sendmmsg. A receive timeout lets workers
// notice shutdown. A wildcard socket also receives each datagram's
// destination in a control message and sends each reply with one naming
// that address as its source (pktinfo_linux.go); other sockets pass no
// control messages at all.

const (
	batchSize   = 32
	maxQuery    = 4096 // a larger UDP query is not one we answer; it is dropped
	maxReply    = 4096 // UDP replies are at most maxUDP; slack for the slow packer
	pollTimeout = 200 * time.Millisecond
)

// batchConn is a UDP socket in blocking mode served with recvmmsg/sendmmsg.
type batchConn struct {
	fd      int
	fam     pktFamily // set before the workers start
	closing atomic.Bool
}

// newBatchConn takes over u's socket: it switches the socket to blocking
// mode with a receive timeout on a duplicate descriptor, and closes u. The
// close matters: it takes u's descriptor out of Go's epoll set, where every
// arriving packet would otherwise wake the runtime's network poller for
// nothing.
func newBatchConn(u *net.UDPConn, fam pktFamily) (*batchConn, error) {
	rc, err := u.SyscallConn()
	if err != nil {
		return nil, err
	}
	var fd int
	var opErr error
	if err := rc.Control(func(s uintptr) {
		fd, opErr = unix.Dup(int(s))
		if opErr != nil {
			return
		}
		if opErr = unix.SetNonblock(fd, false); opErr != nil {
			return
		}
		tv := unix.NsecToTimeval(pollTimeout.Nanoseconds())
		opErr = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	}); err != nil {
		return nil, err
	}
	if opErr != nil {
		if fd > 0 {
			unix.Close(fd)
		}
		return nil, opErr
	}
	u.Close()
	return &batchConn{fd: fd, fam: fam}, nil
}

// stop asks the workers to return; they notice within pollTimeout.
func (b *batchConn) stop() { b.closing.Store(true) }

// release closes the socket once no worker uses it.
func (b *batchConn) release() { unix.Close(b.fd) }

// batch is one worker's buffers for recvmmsg and sendmmsg.
type batch struct {
	in    [batchSize][maxQuery]byte
	out   [batchSize][]byte
	addrs [batchSize]unix.RawSockaddrInet6 // large enough for either family
	iovIn [batchSize]unix.Iovec
	iovOu [batchSize]unix.Iovec
	recv  [batchSize]unix.Mmsghdr
	send  [batchSize]unix.Mmsghdr
	// The control messages of a wildcard socket: each query's
	// destination, and each reply's source.
	ctlIn  [batchSize]ctlBuf
	ctlOut [batchSize]ctlBuf
}

func newBatch(fam pktFamily) *batch {
	bt := &batch{}
	for i := range bt.recv {
		bt.out[i] = make([]byte, 0, maxReply)
		bt.iovIn[i].Base = &bt.in[i][0]
		bt.iovIn[i].SetLen(maxQuery)
		h := &bt.recv[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&bt.addrs[i]))
		h.Iov = &bt.iovIn[i]
		h.SetIovlen(1)
		if fam != noPktinfo {
			h.Control = (*byte)(unsafe.Pointer(&bt.ctlIn[i]))
		}
	}
	return bt
}

func (s *Server) serveUDPBatch(bc *batchConn) {
	defer s.wg.Done()
	w := newWorker()
	bt := newBatch(bc.fam)
	pkt := bc.fam != noPktinfo
	busy := false // the last receive found more than one packet waiting
	for !bc.closing.Load() {
		for i := range bt.recv {
			bt.recv[i].Hdr.Namelen = unix.SizeofSockaddrInet6
			bt.recv[i].Hdr.Flags = 0
		}
		if pkt {
			for i := range bt.recv {
				bt.recv[i].Hdr.SetControllen(ctlInLen)
			}
		}
		// Under load packets are already queued: take them without telling
		// the scheduler (a non-blocking raw syscall). When the last batch
		// held a single packet the queue is likely empty, so block at once
		// (through the scheduler) rather than pay for a second call.
		var n int
		var err error = unix.EAGAIN
		if busy {
			n, err = rawMmsg(unix.SYS_RECVMMSG, bc.fd, bt.recv[:], unix.MSG_DONTWAIT)
		}
		if errors.Is(err, unix.EAGAIN) {
			n, err = mmsg(unix.SYS_RECVMMSG, bc.fd, bt.recv[:], unix.MSG_WAITFORONE)
		}
		busy = n > 1
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue // timeout: look at closing again
			}
			if errors.Is(err, unix.EBADF) {
				return
			}
			// Anything else (ENOMEM, say) may repeat at once: do not spin.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		ns := 0
		for i := 0; i < n; i++ {
			h := &bt.recv[i]
			if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
				continue
			}
			from, ok := sockaddrAddr(&bt.addrs[i])
			if !ok {
				continue
			}
			w.buf = bt.out[i][:0]
			resp := s.h.Serve(w, bt.in[i][:h.Len], from, true)
			if resp == nil {
				continue
			}
			bt.iovOu[ns].Base = &resp[0]
			bt.iovOu[ns].SetLen(len(resp))
			sh := &bt.send[ns].Hdr
			sh.Name = (*byte)(unsafe.Pointer(&bt.addrs[i]))
			sh.Namelen = h.Hdr.Namelen
			sh.Iov = &bt.iovOu[ns]
			sh.SetIovlen(1)
			if pkt {
				s.setReplySource(bc.fam, sh, bt.ctlIn[i].bytes()[:min(int(h.Hdr.Controllen), ctlInLen)], &bt.ctlOut[ns])
			}
			ns++
		}
		for off := 0; off < ns; {
			m, err := rawMmsg(unix.SYS_SENDMMSG, bc.fd, bt.send[off:ns], unix.MSG_DONTWAIT)
			if errors.Is(err, unix.EAGAIN) {
				m, err = mmsg(unix.SYS_SENDMMSG, bc.fd, bt.send[off:ns], 0)
			}
			if err != nil {
				if errors.Is(err, unix.EINTR) {
					continue
				}
				// The first reply was refused (a source address gone from
				// the host since the query came, say): skip it, not the
				// batch. A lost reply is the client's retry.
				m = 1
			}
			off += max(m, 1)
		}
	}
}

// setReplySource gives a reply of a wildcard socket, sh, the control
// message naming its source: the destination of its query, read from
// ctlIn. Without one (none received) the kernel picks the source.
func (s *Server) setReplySource(fam pktFamily, sh *unix.Msghdr, ctlIn []byte, ctlOut *ctlBuf) {
	sh.Control = nil
	sh.SetControllen(0)
	dst, ifindex, ok := parsePktinfo(ctlIn)
	if !ok || s.cfg.noPktinfoReply {
		return
	}
	if n := putPktinfo(ctlOut.bytes(), fam, dst, ifindex); n > 0 {
		sh.Control = (*byte)(unsafe.Pointer(ctlOut))
		sh.SetControllen(n)
	}
}

// serveUDPPktinfo is serveUDP for a wildcard socket: it reads each query's
// destination with the query and sends the reply from it.
func (s *Server) serveUDPPktinfo(u *net.UDPConn, fam pktFamily) {
	defer s.wg.Done()
	w := newWorker()
	in := make([]byte, 65535)
	ctlIn, ctlOut := new(ctlBuf), new(ctlBuf)
	for {
		n, ctln, _, from, err := u.ReadMsgUDPAddrPort(in, ctlIn.bytes())
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP-driven errors: keep serving
		}
		resp := s.h.Serve(w, in[:n], from.Addr().Unmap(), true)
		if resp == nil {
			continue
		}
		var ctl []byte
		if dst, ifindex, ok := parsePktinfo(ctlIn.bytes()[:ctln]); ok && !s.cfg.noPktinfoReply {
			ctl = ctlOut.bytes()[:putPktinfo(ctlOut.bytes(), fam, dst, ifindex)]
		}
		u.WriteMsgUDPAddrPort(resp, ctl, from) // a lost reply is the client's retry
	}
}

func mmsg(trap uintptr, fd int, hdrs []unix.Mmsghdr, flags int) (int, error) {
	r, _, e := unix.Syscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)), uintptr(flags), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// rawMmsg is mmsg for calls that cannot block (MSG_DONTWAIT): it skips the
// scheduler's syscall bookkeeping, which costs more than the call itself.
func rawMmsg(trap uintptr, fd int, hdrs []unix.Mmsghdr, flags int) (int, error) {
	r, _, e := unix.RawSyscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)), uintptr(flags), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// sockaddrAddr reads the source address of a received datagram.
func sockaddrAddr(sa *unix.RawSockaddrInet6) (netip.Addr, bool) {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrFrom4(sa4.Addr), true
	case unix.AF_INET6:
		return netip.AddrFrom16(sa.Addr).Unmap(), true
	}
	return netip.Addr{}, false
}
