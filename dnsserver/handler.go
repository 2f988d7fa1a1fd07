package dnsserver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime/debug"
	"unsafe"

	"github.com/meridian-gtm/meridian/zones"
	"github.com/miekg/dns"
)

// Source gives the snapshot to answer from. zones.Store implements it.
// Load must be cheap and never block: it is called once per query.
type Source interface {
	Load() *zones.Snapshot
}

var _ Source = (*zones.Store)(nil)

// Limits on what we send.
const (
	// maxUDP is the largest UDP answer we send whatever the client offers:
	// 1232 avoids IP fragmentation on any path (DNS Flag Day 2020).
	maxUDP = 1232
	// ednsVersion is the highest EDNS version we speak.
	ednsVersion = 0
)

// Handler turns a request packet into a response packet. One Handler is
// shared by all listeners; per-query scratch space lives in a worker, one
// per goroutine, so the answer path needs no locks.
type Handler struct {
	src     Source
	log     *slog.Logger
	metrics *Metrics
	opts    Options
}

// Options are the answer path's protections for the open internet; the
// zero value turns them all off.
type Options struct {
	// NSID, when not empty, is returned to queries that ask for it
	// (RFC 5001), so an operator can tell which node answered.
	NSID []byte
	// Cookies, when not nil, answers DNS cookies (RFC 7873) with RFC 9018
	// server cookies and marks queries that bring back a valid one
	// (query.serverCookie). nil: COOKIE options get nothing back, as from
	// a server that does not implement them.
	Cookies *Cookies
	// RequireCookies refuses to answer UDP queries without a valid server
	// cookie: one with a client cookie gets BADCOOKIE and a server cookie
	// to retry with (RFC 7873 §5.2.3), one without any cookie an empty
	// truncated reply (TC=1), so it retries over TCP, as Knot's "require"
	// does. TCP is always answered. Needs Cookies; off by default.
	RequireCookies bool
	// RRL, when not nil, limits the rate of UDP responses (rrl.go); a
	// query with a valid server cookie is not limited.
	RRL *RRL
}

// NewHandler returns a Handler answering from src. m may be nil.
func NewHandler(log *slog.Logger, src Source, m *Metrics) *Handler {
	return NewHandlerWith(log, src, m, Options{})
}

// NewHandlerWith is NewHandler with options.
func NewHandlerWith(log *slog.Logger, src Source, m *Metrics, opts Options) *Handler {
	if m == nil {
		m = newMetrics(nil)
	}
	opts.NSID = bytes.Clone(opts.NSID)
	return &Handler{src: src, log: log, metrics: m, opts: opts}
}

// worker is the scratch space of one serving goroutine, reused for every
// query it handles.
type worker struct {
	q    query
	res  zones.Result
	out  dns.Msg
	opt  dns.OPT
	ecs  dns.EDNS0_SUBNET
	qs   [1]dns.Question
	name [maxPresent]byte
	buf  []byte
	// The reply's NSID and COOKIE option bodies, set by serve for each
	// query (nil: none); both packers write them after ECS.
	nsid      []byte
	cookie    []byte
	cookieBuf [clientCookieLen + serverCookieLen]byte
	nsidOpt   dns.EDNS0_LOCAL // the slow path's views of nsid and cookie
	cookieOpt dns.EDNS0_LOCAL
	// slowOnly makes every response go through miekg/dns's packer; tests
	// use it to check the fast packer against it.
	slowOnly bool
}

func newWorker() *worker {
	w := &worker{buf: make([]byte, 0, 65535)}
	w.opt.Hdr = dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}
	w.ecs.Code = dns.EDNS0SUBNET
	w.nsidOpt.Code = optNSID
	w.cookieOpt.Code = optCookie
	return w
}

// Serve answers one request. from is the client's address (source of the
// packet); udp says whether the answer must fit a datagram. It returns the
// response bytes, which alias w's buffer, or nil when no reply must be sent.
func (h *Handler) Serve(w *worker, req []byte, from netip.Addr, udp bool) (resp []byte) {
	defer func() {
		if p := recover(); p != nil {
			h.metrics.panics.Inc()
			h.log.Error("panic answering query", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			resp = h.servfail(w, req)
		}
	}()
	resp = h.serve(w, req, from, udp)
	if udp && resp != nil && h.opts.RRL != nil {
		resp = h.opts.RRL.limit(w, resp, from)
	}
	return resp
}

func (h *Handler) serve(w *worker, req []byte, from netip.Addr, udp bool) []byte {
	q := &w.q
	*q = query{}
	w.nsid, w.cookie = nil, nil
	if err := parseHeader(req, q); err != nil {
		h.metrics.dropped.Inc()
		return nil
	}
	if op := q.opcode(); op != dns.OpcodeQuery {
		return h.errorReply(w, req, dns.RcodeNotImplemented, op)
	}
	if err := parseQuery(req, q); err != nil {
		if h.opts.Cookies != nil && (errors.Is(err, errCookie) || errors.Is(err, errTwoCookie)) {
			h.metrics.cookies[cookieMalformed].Inc()
		}
		return h.errorReply(w, req, dns.RcodeFormatError, dns.OpcodeQuery)
	}
	h.metrics.query(q.qtype, udp)
	h.replyOptions(w, from)
	m := &w.out
	h.startReply(w)
	n := presentName(w.name[:], q.rawName)
	// The name only lives while this query is answered: nothing keeps it.
	lname := unsafe.String(&w.name[0], n)
	w.qs[0] = dns.Question{Name: lname, Qtype: q.qtype, Qclass: q.qclass}
	m.Question = w.qs[:]
	w.res.Reset()

	switch {
	case q.edns && q.version > ednsVersion:
		// RFC 6891 §6.1.3: BADVERS, with our OPT saying which version we speak.
		m.Rcode = dns.RcodeBadVers
	case h.opts.RequireCookies && h.opts.Cookies != nil && udp && !q.serverCookie:
		if q.cookie.present {
			m.Rcode = dns.RcodeBadCookie // with a fresh server cookie to retry with
		} else {
			m.Truncated = true // no cookie at all: come back over TCP
		}
	case q.qclass != dns.ClassINET && q.qclass != dns.ClassANY:
		m.Rcode = dns.RcodeRefused
	case q.qtype == dns.TypeOPT:
		m.Rcode = dns.RcodeFormatError // a pseudo-type, not a question
	case q.qtype == dns.TypeAXFR || q.qtype == dns.TypeIXFR:
		m.Rcode = dns.RcodeRefused // no zone transfers: each node compiles its own zones
	case q.qtype == dns.TypeMAILB || q.qtype == dns.TypeMAILA:
		m.Rcode = dns.RcodeNotImplemented
	default:
		client := from
		if q.ecs.present && q.ecs.source > 0 {
			client = q.ecs.addr
			h.metrics.ecs.Inc()
		}
		snap := h.src.Load()
		snap.Answer(&w.res, lname, q.qtype, client)
		m.Rcode = w.res.Rcode
		m.Authoritative = w.res.Authoritative
		m.Answer, m.Ns, m.Extra = w.res.Answer, w.res.Ns, w.res.Extra
	}
	return h.finish(w, req, udp)
}

// startReply resets the reply to a bare response to w.q.
func (h *Handler) startReply(w *worker) {
	m := &w.out
	*m = dns.Msg{}
	m.Id = w.q.id
	m.Response = true
	m.Opcode = w.q.opcode()
	m.RecursionDesired = w.q.flags&flagRD != 0
	m.CheckingDisabled = w.q.flags&flagCD != 0
}

// finish adds the OPT record, packs, truncates for UDP, and restores the
// question name as the client wrote it.
func (h *Handler) finish(w *worker, req []byte, udp bool) []byte {
	m := &w.out
	q := &w.q
	limit := 65535
	if udp {
		limit = 512
		if q.edns {
			limit = max(512, min(int(q.udpSize), maxUDP))
		}
	}
	if !w.slowOnly {
		if out, ok := packFast(w, m.Rcode, m.Authoritative, &w.res, w.qs[0].Name, limit); ok {
			h.metrics.rcode(m.Rcode)
			return out
		}
	}
	if q.edns {
		w.opt.Hdr.Ttl = 0
		w.opt.SetUDPSize(maxUDP)
		w.opt.SetDo(q.do)
		w.opt.Option = w.opt.Option[:0]
		if q.ecs.present {
			w.ecs.Family = q.ecs.family
			w.ecs.SourceNetmask = q.ecs.source
			w.ecs.SourceScope = ecsScope(q, w.res.ScopeBits)
			w.ecs.Address = q.ecs.addr.AsSlice()
			if q.ecs.family == 0 {
				w.ecs.Address = nil
			}
			w.opt.Option = append(w.opt.Option, &w.ecs)
		}
		if w.nsid != nil {
			w.nsidOpt.Data = w.nsid
			w.opt.Option = append(w.opt.Option, &w.nsidOpt)
		}
		if w.cookie != nil {
			w.cookieOpt.Data = w.cookie
			w.opt.Option = append(w.opt.Option, &w.cookieOpt)
		}
		m.Extra = append(m.Extra, &w.opt)
	}
	m.Compress = true
	out, err := m.PackBuffer(w.buf)
	if err == nil && len(out) > limit {
		m.Truncate(limit)
		m.Compress = true
		out, err = m.PackBuffer(w.buf)
		h.metrics.truncated.Inc()
	}
	if err != nil {
		h.log.Error("pack response", "err", err)
		return h.servfail(w, req)
	}
	// Echo the question exactly as asked (RFC 4343 case preservation): the
	// packed name has the same length, and answers point at it.
	if len(q.rawName) > 0 && len(m.Question) == 1 && len(out) >= 12+len(q.rawName) {
		copy(out[12:], q.rawName)
	}
	h.metrics.rcode(m.Rcode)
	return out
}

// errorReply answers rcode with the header and, when it parses, the
// question of req.
func (h *Handler) errorReply(w *worker, req []byte, rcode, opcode int) []byte {
	out := w.buf[:0]
	if len(req) < 12 {
		return nil
	}
	flags := binary.BigEndian.Uint16(req[2:])
	flags = flagQR | uint16(opcode&0xF)<<11 | flags&(flagRD|flagCD) | uint16(rcode&0xF)
	out = binary.BigEndian.AppendUint16(out, binary.BigEndian.Uint16(req))
	out = binary.BigEndian.AppendUint16(out, flags)
	var q query
	qd := 0
	var qend int
	if binary.BigEndian.Uint16(req[4:]) == 1 {
		if end, err := parseQuestion(req, 12, &q); err == nil {
			qd, qend = 1, end
		}
	}
	out = binary.BigEndian.AppendUint16(out, uint16(qd))
	out = append(out, 0, 0, 0, 0, 0, 0)
	if qd == 1 {
		out = append(out, req[12:qend]...)
	}
	h.metrics.rcode(rcode)
	return out
}

func (h *Handler) servfail(w *worker, req []byte) []byte {
	if len(req) < 12 {
		return nil
	}
	return h.errorReply(w, req, dns.RcodeServerFailure, int(binary.BigEndian.Uint16(req[2:])>>11)&0xF)
}
