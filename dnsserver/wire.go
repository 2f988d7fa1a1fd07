package dnsserver

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// query is what we need of a request, parsed straight from the wire without
// allocating. Name slices alias the request buffer.
type query struct {
	id      uint16
	flags   uint16 // the request's flags word
	qdcount uint16
	// The question.
	rawName []byte // wire form, as sent (case preserved)
	qtype   uint16
	qclass  uint16
	qend    int // offset just past the question
	// EDNS0.
	edns    bool
	version uint8
	udpSize uint16
	do      bool
	ecs     ecs
	nsid    bool // an NSID option asked who answers (RFC 5001)
	cookie  cookieOpt
	// serverCookie: the request carried a server cookie this node made
	// and still accepts (RFC 7873, RFC 9018). Such a client has shown it
	// can receive at its address, so rate limiting lets it through.
	serverCookie bool
}

// Header flag bits (RFC 1035 §4.1.1).
const (
	flagQR = 1 << 15
	flagAA = 1 << 10
	flagTC = 1 << 9
	flagRD = 1 << 8
	flagCD = 1 << 4
)

func (q *query) opcode() int { return int(q.flags>>11) & 0xF }

// Parse errors. Each maps to FORMERR, except errNoReply.
var (
	errShort     = errors.New("message shorter than a header")
	errNoReply   = errors.New("response or unparseable header: no reply")
	errQuestion  = errors.New("bad question section")
	errCounts    = errors.New("unexpected section counts")
	errOPT       = errors.New("bad OPT record")
	errTwoOPT    = errors.New("more than one OPT record")
	errTrailing  = errors.New("trailing bytes after the message")
	errNameLong  = errors.New("name longer than 255 octets")
	errLabelType = errors.New("compression or unknown label type in question")
)

// parseHeader reads the fixed header. A message too short to hold a header,
// or one with QR set, gets no reply at all: answering responses invites
// reflection loops.
func parseHeader(b []byte, q *query) error {
	if len(b) < 12 {
		return errNoReply
	}
	q.id = binary.BigEndian.Uint16(b)
	q.flags = binary.BigEndian.Uint16(b[2:])
	if q.flags&flagQR != 0 {
		return errNoReply
	}
	q.qdcount = binary.BigEndian.Uint16(b[4:])
	return nil
}

// parseQuery parses a standard query: exactly one question, no answer or
// authority records, and at most one additional record, which must be OPT.
func parseQuery(b []byte, q *query) error {
	if q.qdcount != 1 {
		return errCounts
	}
	an := binary.BigEndian.Uint16(b[6:])
	ns := binary.BigEndian.Uint16(b[8:])
	ar := binary.BigEndian.Uint16(b[10:])
	if an != 0 || ns != 0 {
		return errCounts
	}
	off, err := parseQuestion(b, 12, q)
	if err != nil {
		return err
	}
	q.qend = off
	for i := 0; i < int(ar); i++ {
		off, err = parseAdditional(b, off, q)
		if err != nil {
			return err
		}
	}
	if off != len(b) {
		return errTrailing
	}
	return nil
}

func parseQuestion(b []byte, off int, q *query) (int, error) {
	start := off
	for {
		if off >= len(b) {
			return 0, errQuestion
		}
		l := int(b[off])
		if l == 0 {
			off++
			break
		}
		if l&0xC0 != 0 {
			// A question is the first name in the message: nothing to point at.
			return 0, errLabelType
		}
		off += 1 + l
		if off-start > 254 {
			return 0, errNameLong
		}
	}
	if off+4 > len(b) {
		return 0, errQuestion
	}
	q.rawName = b[start:off]
	q.qtype = binary.BigEndian.Uint16(b[off:])
	q.qclass = binary.BigEndian.Uint16(b[off+2:])
	return off + 4, nil
}

// parseAdditional accepts one OPT record (RFC 6891 §6.1.1: more than one is
// FORMERR, as is an owner other than the root).
func parseAdditional(b []byte, off int, q *query) (int, error) {
	if off+11 > len(b) || b[off] != 0 {
		return 0, errOPT
	}
	typ := binary.BigEndian.Uint16(b[off+1:])
	if typ != 41 { // OPT
		return 0, errOPT
	}
	if q.edns {
		return 0, errTwoOPT
	}
	q.edns = true
	q.udpSize = binary.BigEndian.Uint16(b[off+3:])
	ttl := binary.BigEndian.Uint32(b[off+5:])
	q.version = uint8(ttl >> 16)
	q.do = ttl&(1<<15) != 0
	rdlen := int(binary.BigEndian.Uint16(b[off+9:]))
	off += 11
	if off+rdlen > len(b) {
		return 0, errOPT
	}
	if err := parseOptions(b[off:off+rdlen], q); err != nil {
		return 0, err
	}
	return off + rdlen, nil
}

// parseOptions walks the EDNS options. Unknown options are ignored
// (RFC 6891 §6.1.2); a malformed ECS option is an error (RFC 7871 §7.1.1),
// and so is a malformed or repeated COOKIE option (RFC 7873 §5.2.2), even
// when cookies are off: it is broken EDNS either way. An NSID option's
// payload is ignored in a query (RFC 5001 §2.3).
func parseOptions(b []byte, q *query) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return errOPT
		}
		code := binary.BigEndian.Uint16(b)
		n := int(binary.BigEndian.Uint16(b[2:]))
		if 4+n > len(b) {
			return errOPT
		}
		switch code {
		case optECS:
			if q.ecs.present {
				return errECS
			}
			if err := parseECS(b[4:4+n], &q.ecs); err != nil {
				return err
			}
		case optNSID:
			q.nsid = true
		case optCookie:
			if err := parseCookie(b[4:4+n], &q.cookie); err != nil {
				return err
			}
		}
		b = b[4+n:]
	}
	return nil
}

// optECS is the EDNS option code of Client Subnet (RFC 7871).
const optECS = 8

// ecs is a parsed EDNS Client Subnet option.
type ecs struct {
	present bool
	family  uint16 // 1 IPv4, 2 IPv6
	source  uint8  // SOURCE PREFIX-LENGTH
	addr    netip.Addr
}

var errECS = errors.New("malformed EDNS Client Subnet option")

// parseECS validates an ECS option body as RFC 7871 §6 requires: a known
// family, a source prefix no longer than the family's addresses, scope 0 in
// a query, exactly ceil(source/8) address octets, and no address bits set
// beyond the source prefix.
func parseECS(b []byte, e *ecs) error {
	if len(b) < 4 {
		return errECS
	}
	e.family = binary.BigEndian.Uint16(b)
	e.source = b[2]
	scope := b[3]
	addr := b[4:]
	var full int
	switch e.family {
	case 0:
		// dig sends family 0 with +subnet=0 (as miekg/dns notes); with no
		// address it can only mean "do not use client information".
		if e.source != 0 || scope != 0 || len(addr) != 0 {
			return errECS
		}
		e.present = true
		return nil
	case 1:
		full = 32
	case 2:
		full = 128
	default:
		return errECS
	}
	if int(e.source) > full || scope != 0 || len(addr) != (int(e.source)+7)/8 {
		return errECS
	}
	if e.source%8 != 0 && len(addr) > 0 {
		mask := byte(0xFF) >> (e.source % 8)
		if addr[len(addr)-1]&mask != 0 {
			return errECS
		}
	}
	var a16 [16]byte
	copy(a16[:], addr)
	if e.family == 1 {
		e.addr = netip.AddrFrom4([4]byte(a16[:4]))
	} else {
		e.addr = netip.AddrFrom16(a16)
	}
	e.present = true
	return nil
}

// presentName writes the lower-case presentation form of a wire name into
// dst (escaping as miekg/dns does, so it matches configured names) and
// returns the length.
func presentName(dst []byte, wire []byte) int {
	if len(wire) == 0 || wire[0] == 0 {
		dst[0] = '.'
		return 1
	}
	n := 0
	for off := 0; off < len(wire) && wire[off] != 0; {
		l := int(wire[off])
		label := wire[off+1 : off+1+l]
		out := dst[n : n+l] // one bounds check per label on the common path
		plain := true
		for i, c := range label {
			p := plainLower[c]
			out[i] = p
			if p == 0 {
				plain = false
				break
			}
		}
		if plain {
			n += l
		} else {
			n = escapeLabel(dst, n, label)
		}
		dst[n] = '.'
		n++
		off += 1 + l
	}
	return n
}

// escapeLabel writes a label that has bytes needing escapes.
func escapeLabel(dst []byte, n int, label []byte) int {
	for _, c := range label {
		if p := plainLower[c]; p != 0 {
			dst[n] = p
			n++
			continue
		}
		switch {
		case c == '.' || c == ' ' || c == '\'' || c == '@' || c == ';' || c == '(' || c == ')' || c == '"' || c == '\\':
			dst[n] = '\\'
			dst[n+1] = c
			n += 2
		default: // not printable
			dst[n] = '\\'
			dst[n+1] = '0' + c/100
			dst[n+2] = '0' + c/10%10
			dst[n+3] = '0' + c%10
			n += 4
		}
	}
	return n
}

// plainLower maps each byte that needs no escape to its lower-case form,
// and the others to 0: one table load per byte on the common path.
var plainLower = func() (t [256]byte) {
	for c := '!'; c <= '~'; c++ {
		switch c {
		case '.', '\'', '@', ';', '(', ')', '"', '\\':
			continue
		}
		t[c] = byte(c)
		if 'A' <= c && c <= 'Z' {
			t[c] = byte(c + 'a' - 'A')
		}
	}
	return t
}()

// maxPresent is the longest presentation name: 255 octets, each escaped as \DDD.
const maxPresent = 255 * 4
