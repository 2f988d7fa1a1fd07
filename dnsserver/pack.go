package dnsserver

import (
	"encoding/binary"
	"strings"

	"github.com/meridian-gtm/meridian/zones"
	"github.com/miekg/dns"
)

// The fast packer writes the common responses (addresses, CNAMEs, SOA, NS,
// MX) straight into the worker's buffer, compressing names against the
// question only, which is where nearly all of a GSLB answer's names point.
// It needs no compression map and allocates nothing. Anything else (other
// record types, escaped names, an answer that must be truncated) goes
// through miekg/dns's packer instead. Both produce valid, equivalent
// messages; the fast one is just cheaper.

// packFast appends the response to w.buf and reports whether it could.
// rcode may be extended (BADVERS); then q.edns is true.
func packFast(w *worker, rcode int, aa bool, res *zones.Result, lname string, limit int) ([]byte, bool) {
	q := &w.q
	b := w.buf[:0]
	flags := uint16(flagQR) | q.flags&(0xF<<11|flagRD|flagCD) | uint16(rcode&0xF)
	if aa {
		flags |= flagAA
	}
	if w.out.Truncated {
		flags |= flagTC // RequireCookies sends a client without a cookie to TCP
	}
	ar := len(res.Extra)
	if q.edns {
		ar++
	}
	b = binary.BigEndian.AppendUint16(b, q.id)
	b = binary.BigEndian.AppendUint16(b, flags)
	b = append(b, 0, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(res.Answer)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(res.Ns)))
	b = binary.BigEndian.AppendUint16(b, uint16(ar))
	// The question exactly as asked: case preserved (RFC 4343).
	b = append(b, q.rawName...)
	b = binary.BigEndian.AppendUint16(b, q.qtype)
	b = binary.BigEndian.AppendUint16(b, q.qclass)
	c := compressor{lname: lname, raw: q.rawName}
	var ok bool
	for _, sec := range [...][]dns.RR{res.Answer, res.Ns, res.Extra} {
		for _, rr := range sec {
			if b, ok = c.appendRR(b, rr); !ok {
				return nil, false
			}
		}
	}
	if q.edns {
		b = appendOPT(b, w, rcode, res.ScopeBits)
	}
	if len(b) > limit {
		return nil, false // let the slow path truncate properly
	}
	w.buf = b[:0]
	return b, true
}

// appendOPT writes our OPT record: our UDP size, the extended rcode, the
// DO bit echoed (RFC 3225), the ECS option echoed with its scope, then
// NSID and COOKIE when serve chose to send them.
func appendOPT(b []byte, w *worker, rcode, scope int) []byte {
	q := &w.q
	b = append(b, 0) // root owner
	b = binary.BigEndian.AppendUint16(b, dns.TypeOPT)
	b = binary.BigEndian.AppendUint16(b, maxUDP)
	ttl := uint32(rcode>>4) << 24 // version 0
	if q.do {
		ttl |= 1 << 15
	}
	b = binary.BigEndian.AppendUint32(b, ttl)
	lenAt := len(b)
	b = append(b, 0, 0) // RDLENGTH, filled in below
	if q.ecs.present {
		n := (int(q.ecs.source) + 7) / 8
		b = binary.BigEndian.AppendUint16(b, optECS)
		b = binary.BigEndian.AppendUint16(b, uint16(4+n))
		b = binary.BigEndian.AppendUint16(b, q.ecs.family)
		b = append(b, q.ecs.source, ecsScope(q, scope))
		if n > 0 {
			a := q.ecs.addr.As16()
			if q.ecs.family == 1 {
				b = append(b, a[12:12+n]...)
			} else {
				b = append(b, a[:n]...)
			}
		}
	}
	b = appendOption(b, optNSID, w.nsid)
	b = appendOption(b, optCookie, w.cookie)
	binary.BigEndian.PutUint16(b[lenAt:], uint16(len(b)-lenAt-2))
	return b
}

// appendOption writes one EDNS option, unless data is nil.
func appendOption(b []byte, code uint16, data []byte) []byte {
	if data == nil {
		return b
	}
	b = binary.BigEndian.AppendUint16(b, code)
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	return append(b, data...)
}

// ecsScope is the SCOPE PREFIX-LENGTH we return: the widest prefix around
// the address as sent inside which every address gets this answer. It may
// be longer than the source prefix (RFC 7871 §7.2.1): a /16 that holds two
// answers gets the longer scope, so no resolver caches this answer for the
// part of the /16 that should get the other one (§7.3). It is 0 when the
// answer does not depend on location and when the client sent no address
// bits.
func ecsScope(q *query, scope int) uint8 {
	if q.ecs.source == 0 || scope == 0 {
		return 0
	}
	if q.ecs.family == 2 && q.ecs.addr.Is4In6() {
		// The snapshot measures an IPv4-mapped address in IPv4 bits; the
		// option speaks of the IPv6 address.
		scope += 96
	}
	return uint8(scope)
}

// compressor writes names, pointing at the question name where they share
// a suffix with it.
type compressor struct {
	lname string // the question name, lower-case presentation form
	raw   []byte // the question name in wire form, at message offset 12
}

func (c *compressor) appendRR(b []byte, rr dns.RR) ([]byte, bool) {
	h := rr.Header()
	var ok bool
	if b, ok = c.appendName(b, h.Name); !ok {
		return nil, false
	}
	b = binary.BigEndian.AppendUint16(b, h.Rrtype)
	b = binary.BigEndian.AppendUint16(b, h.Class)
	b = binary.BigEndian.AppendUint32(b, h.Ttl)
	lenAt := len(b)
	b = append(b, 0, 0)
	switch v := rr.(type) {
	case *dns.A:
		ip := v.A.To4()
		if ip == nil {
			return nil, false
		}
		b = append(b, ip...)
	case *dns.AAAA:
		if len(v.AAAA) != 16 {
			return nil, false
		}
		b = append(b, v.AAAA...)
	case *dns.CNAME:
		b, ok = c.appendName(b, v.Target)
	case *dns.NS:
		b, ok = c.appendName(b, v.Ns)
	case *dns.MX:
		b = binary.BigEndian.AppendUint16(b, v.Preference)
		b, ok = c.appendName(b, v.Mx)
	case *dns.SOA:
		if b, ok = c.appendName(b, v.Ns); ok {
			b, ok = c.appendName(b, v.Mbox)
		}
		b = binary.BigEndian.AppendUint32(b, v.Serial)
		b = binary.BigEndian.AppendUint32(b, v.Refresh)
		b = binary.BigEndian.AppendUint32(b, v.Retry)
		b = binary.BigEndian.AppendUint32(b, v.Expire)
		b = binary.BigEndian.AppendUint32(b, v.Minttl)
	default:
		return nil, false
	}
	if !ok {
		return nil, false
	}
	binary.BigEndian.PutUint16(b[lenAt:], uint16(len(b)-lenAt-2))
	return b, true
}

// appendName writes name (a lower-case FQDN without escapes) as labels up
// to the first suffix it shares with the question, then a pointer.
func (c *compressor) appendName(b []byte, name string) ([]byte, bool) {
	if strings.IndexByte(name, '\\') >= 0 || len(name) == 0 || name[len(name)-1] != '.' {
		return nil, false
	}
	for off := 0; ; {
		rest := name[off:]
		if rest == "." {
			return append(b, 0), true
		}
		if p, ok := c.suffixOffset(rest); ok {
			return append(b, 0xC0|byte(p>>8), byte(p)), true
		}
		end := strings.IndexByte(rest, '.')
		if end <= 0 || end > 63 {
			return nil, false
		}
		b = append(b, byte(end))
		b = append(b, rest[:end]...)
		off += end + 1
	}
}

// suffixOffset returns the message offset of suffix within the question
// name, if the question name ends with it at a label boundary.
func (c *compressor) suffixOffset(suffix string) (int, bool) {
	if len(suffix) > len(c.lname) || c.lname[len(c.lname)-len(suffix):] != suffix {
		return 0, false
	}
	skip := len(c.lname) - len(suffix)
	if skip > 0 && c.lname[skip-1] != '.' {
		return 0, false
	}
	if strings.IndexByte(c.lname[:skip], '\\') >= 0 {
		return 0, false // escaped labels: presentation and wire lengths differ
	}
	// Each presentation label "abc." is one wire label of 1+3 bytes, so
	// presentation offsets and wire offsets agree for unescaped names.
	return 12 + skip, true
}
