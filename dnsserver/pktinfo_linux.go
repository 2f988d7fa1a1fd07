//go:build linux

package dnsserver

import (
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A wildcard UDP socket (0.0.0.0, ::) is told, with each datagram, the
// address it was sent to (IP_PKTINFO, IPV6_PKTINFO), and each reply names
// that address as its source in the same kind of control message. Without
// it the kernel picks the source by route, which on a multi-homed host or
// a pod with several addresses need not be the address asked, and
// resolvers drop such replies.
//
// The control messages are parsed and built by hand, in buffers the
// caller owns: unix.ParseSocketControlMessage allocates, and this is the
// per-packet path. The layout is the kernel's: a cmsghdr (length, level,
// type; 16 bytes on 64-bit), padded to the word size, then the payload,
// and the next header at the padded end:
//
//	IP_PKTINFO    in_pktinfo  {ifindex int32; spec_dst, addr [4]byte}
//	IPV6_PKTINFO  in6_pktinfo {addr [16]byte; ifindex uint32}

const (
	cmsgHdrLen = (unix.SizeofCmsghdr + unix.SizeofPtr - 1) &^ (unix.SizeofPtr - 1)
	pktinfo4   = cmsgHdrLen + (unix.SizeofInet4Pktinfo+unix.SizeofPtr-1)&^(unix.SizeofPtr-1)
	pktinfo6   = cmsgHdrLen + (unix.SizeofInet6Pktinfo+unix.SizeofPtr-1)&^(unix.SizeofPtr-1)

	// ctlInLen holds what a dual-stack socket gets with an IPv4 datagram
	// (both IP_PKTINFO and IPV6_PKTINFO), with room to spare: a control
	// message cut short (MSG_CTRUNC) loses the address.
	ctlInLen = 128
	// ctlOutLen holds the one control message of a reply.
	ctlOutLen = pktinfo6
)

// ctlBuf is a control message buffer, word-aligned so that a cmsghdr can
// be read in place.
type ctlBuf [ctlInLen / 8]uint64

func (c *ctlBuf) bytes() []byte { return (*[ctlInLen]byte)(unsafe.Pointer(c))[:] }

// enablePktinfo asks the kernel for the destination of each datagram on
// u, a wildcard socket. An IPv6 socket may be dual-stack, receiving IPv4
// datagrams as IPv4-mapped addresses: for those the kernel reports the
// destination only with IP_PKTINFO set too, so both are.
func enablePktinfo(u *net.UDPConn, fam pktFamily) error {
	rc, err := u.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	err = rc.Control(func(fd uintptr) {
		opErr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		if opErr == nil && fam == pktinfoV6 {
			opErr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
		}
	})
	if err != nil {
		return err
	}
	return opErr
}

// parsePktinfo finds the destination address and the arriving interface
// in a received control message: from IP_PKTINFO or IPV6_PKTINFO,
// whichever comes first (on a dual-stack socket an IPv4 datagram brings
// both, with the same address). An IPv4-mapped address is unmapped. It
// does not allocate.
func parsePktinfo(ctl []byte) (dst netip.Addr, ifindex uint32, ok bool) {
	for len(ctl) >= cmsgHdrLen {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
		l := int(h.Len)
		if l < cmsgHdrLen || l > len(ctl) {
			return netip.Addr{}, 0, false
		}
		data := ctl[cmsgHdrLen:l]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			// Addr is the header's destination, the address asked;
			// Spec_dst is the local address the kernel would route by.
			return netip.AddrFrom4(pi.Addr), uint32(pi.Ifindex), true
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			return netip.AddrFrom16(pi.Addr).Unmap(), pi.Ifindex, true
		}
		next := cmsgHdrLen + (l-cmsgHdrLen+unix.SizeofPtr-1)&^(unix.SizeofPtr-1)
		if next >= len(ctl) {
			break
		}
		ctl = ctl[next:]
	}
	return netip.Addr{}, 0, false
}

// putPktinfo writes into b the control message that makes a reply leave
// from src, and returns its length (0 if b is too short or src does not
// fit the socket). fam is the socket's family: an IPv6 socket takes
// IPV6_PKTINFO even for an IPv4 client of a dual-stack socket, with src
// IPv4-mapped. The interface is left to the routing table (0), as
// Unbound does, so a reply follows the routes and not the way the query
// came; only a link-local source names its interface, the link it is
// unique on. It does not allocate.
func putPktinfo(b []byte, fam pktFamily, src netip.Addr, ifindex uint32) int {
	if len(b) < pktinfo4 {
		return 0
	}
	if !src.Is6() || !src.IsLinkLocalUnicast() {
		ifindex = 0
	}
	clear(b[:min(len(b), pktinfo6)])
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	switch {
	case fam == pktinfoV4 && src.Is4() && len(b) >= pktinfo4:
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(cmsgHdrLen + unix.SizeofInet4Pktinfo)
		pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&b[cmsgHdrLen]))
		pi.Spec_dst = src.As4()
		return pktinfo4
	case fam == pktinfoV6 && len(b) >= pktinfo6:
		h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
		h.SetLen(cmsgHdrLen + unix.SizeofInet6Pktinfo)
		pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&b[cmsgHdrLen]))
		pi.Addr = src.As16() // IPv4 comes out IPv4-mapped
		pi.Ifindex = ifindex
		return pktinfo6
	}
	return 0
}
