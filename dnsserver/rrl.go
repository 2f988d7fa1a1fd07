package dnsserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// Response rate limiting (RRL), in the manner of BIND's and Knot's: an
// authoritative server that answers spoofed UDP queries is an amplifier
// aimed at whoever owns the spoofed address. RRL bounds how many identical
// responses one client network receives per second, and answers the excess
// with nothing, or (every Slip-th time) with an empty truncated response
// that sends a real resolver to TCP, where spoofing is impossible.
//
// What is counted. An account's key is the client's network (the source
// address masked to IPv4PrefixLen or IPv6PrefixLen bits; never the ECS
// address, which a spoofer picks freely) plus the response's class plus a
// name, as BIND keys it:
//
//	answer    NOERROR with data, and NODATA: per query name and type
//	nxdomain  NXDOMAIN: per zone (the zone origin), so a flood of random
//	          names shares one account per zone
//	referral  a delegation: per zone cut (the owner of the referral's NS)
//	error     SERVFAIL, FORMERR, REFUSED, NOTIMP, BADVERS: per network only
//
// (BIND counts NODATA as a class of its own; here it shares the answer
// class, keyed by name and type like an answer, so it is limited alike.)
// Only UDP responses are limited. TCP responses, queries carrying a server
// cookie this node accepts (the client has shown it receives at its
// address), and clients in an exempt prefix are never limited.
//
// The account: each key has a token bucket holding up to the class's rate
// of responses (a burst of one second), refilled continuously at the rate.
// It is kept as GCRA's "theoretical arrival time": one timestamp saying
// when the bucket will be full again, which packs into 64 bits with the key
// tag and the slip counter, so an account is updated with one compare and
// swap and the table needs no lock. With Window 0 (the default), responses
// that are not sent cost nothing, so a client network under a flood still
// gets the rate's worth of answers every second. With Window > 0 the
// account is BIND's: every response, sent or not, costs one, and the debt
// may grow to Window seconds of the rate, so the rate is averaged over the
// window and a client must stay below it for a while before it is answered
// again.
//
// Slip: every Slip-th response an account does not send goes out as a
// truncated reply instead (TC set; header, question and OPT only), counted
// per account. Slip 1 truncates every limited response; Slip 0 never does.
//
// The table. A fixed array of TableSize 64-bit entries in sets of four
// (32 bytes, two sets to a cache line), allocated once by NewRRL; a query
// never allocates. An entry is
//
//	bits 63..44  tag: the top 20 bits of the key's hash (0 = empty)
//	bits 43..40  slip counter
//	bits 39..0   when the token bucket is full again, in µs, modulo 2^40
//
// A key's set is chosen by the low bits of a seeded hash (hash/maphash, a
// fresh seed per table, so outsiders cannot aim keys at one set). A key not
// in its set takes an empty entry, or else evicts the entry whose bucket is
// full again soonest: the one with least at stake, since a full bucket is
// the same as no entry (among equals, which one depends on the new key's
// hash, so no slot is favoured). Evicting an entry whose bucket is full
// loses nothing and is not counted; evicting one still in debt is counted
// in meridian_dns_rrl_table_evictions_total, and resets that key's account:
// its network may get up to one more second's burst. A key being limited
// is nearly a second from full (more with a window); a key answered once is
// one interval (1/rate s) from full and has nothing at stake after that.
// So when the table is full, a flood of distinct keys recycles the entries
// of keys answered once, and evicts a limited account only when the other
// three entries of its set are at least as far from full, i.e. all four keys
// of a set are at their limit (an attacker who knows the seed, or a table
// far too small for the traffic). At worst an attacker then resets its own
// account or a colliding key's, which is worth one second's burst per
// eviction. Size the table so evictions stay rare: the default 65536
// entries take 512 KiB, the largest (2^24) 128 MiB.
//
// Two keys of one set with equal tags share an entry (a 1 in 2^20
// chance per pair), and are limited together. Workers update entries with
// compare and swap, retrying on conflict, so no update to an entry is ever
// lost. The one race: two workers that see a new key at the same moment
// may both insert it, in two entries of its set; each sends, so the key
// gets up to one extra response per concurrent worker when it is first seen
// (or first seen again after an eviction), and later lookups use the first
// of the two entries while the other ages out.
//
// Time is in microseconds, so a rate's interval (10^6/rate µs) is rounded
// down, erring towards sending: at most rate²/10^6 extra responses a
// second (0.01 at 100/s, 100 at 10000/s). Timestamps wrap every 12.7 days;
// an entry idle that long may look like one in debt for up to 1s+Window.

// RRLConfig configures response rate limiting: the rrl table of a node's
// configuration. A zero field means its default (see DefaultRRLConfig),
// except Slip and Window, whose zero is a setting; ResponsesPerSecond 0
// turns rate limiting off.
type RRLConfig struct {
	// ResponsesPerSecond is how many answers (and NODATA responses) per
	// second one client network gets for one name and type. 0: no rate
	// limiting at all.
	ResponsesPerSecond int `toml:"responses_per_second"`
	// NXDomainsPerSecond, ReferralsPerSecond and ErrorsPerSecond are the
	// rates of the other classes; 0 means ResponsesPerSecond.
	NXDomainsPerSecond int `toml:"nxdomains_per_second"`
	ReferralsPerSecond int `toml:"referrals_per_second"`
	ErrorsPerSecond    int `toml:"errors_per_second"`
	// Slip: every Slip-th limited response is sent truncated instead of
	// dropped, so a real resolver at a spoofed address retries over TCP.
	// 0 never, 1 always, at most 10.
	Slip int `toml:"slip"`
	// Window, when not 0, makes every response count, sent or not, with a
	// debt of up to Window seconds of the rate (BIND's window): the rate
	// is averaged over the window. 0: only sent responses count. At most
	// one hour.
	Window time.Duration `toml:"window"`
	// IPv4PrefixLen and IPv6PrefixLen say how much of the client's address
	// names its network: one account for a whole /24 (8..32) or /56
	// (16..128).
	IPv4PrefixLen int `toml:"ipv4_prefix"`
	IPv6PrefixLen int `toml:"ipv6_prefix"`
	// TableSize is how many accounts the table holds: a power of two from
	// 4 to 16777216, eight bytes each.
	TableSize int `toml:"table_size"`
	// Exempt networks are never limited (monitoring, a partner's
	// resolvers).
	Exempt []netip.Prefix `toml:"exempt"`
}

// DefaultRRLConfig returns the defaults, BIND's where BIND has one.
func DefaultRRLConfig() RRLConfig {
	return RRLConfig{
		ResponsesPerSecond: 0,     // off until an operator picks a rate (BIND has no default either)
		Slip:               2,     // BIND's default: every other limited response truncated
		Window:             0,     // only sent responses count; a limited network keeps its rate
		IPv4PrefixLen:      24,    // BIND's ipv4-prefix-length
		IPv6PrefixLen:      56,    // BIND's ipv6-prefix-length
		TableSize:          65536, // 512 KiB; BIND's max-table-size is 20000 entries of ~100 bytes
	}
}

// Enabled reports whether c limits anything.
func (c RRLConfig) Enabled() bool { return c.ResponsesPerSecond > 0 }

// Bounds of the configuration.
const (
	maxRRLRate      = 1_000_000
	maxRRLSlip      = 10
	maxRRLWindow    = time.Hour
	minRRLTableSize = rrlWays
	maxRRLTableSize = 1 << 24
)

// Validate checks c, reporting every problem at once, each naming its key.
func (c RRLConfig) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.ResponsesPerSecond < 0 || c.ResponsesPerSecond > maxRRLRate {
		bad("rrl.responses_per_second: %d is out of range: want 0 (off) or a rate from 1 to %d", c.ResponsesPerSecond, maxRRLRate)
	}
	for _, r := range []struct {
		key string
		v   int
	}{{"nxdomains_per_second", c.NXDomainsPerSecond}, {"referrals_per_second", c.ReferralsPerSecond}, {"errors_per_second", c.ErrorsPerSecond}} {
		switch {
		case r.v < 0 || r.v > maxRRLRate:
			bad("rrl.%s: %d is out of range: want 0 (same as rrl.responses_per_second) or a rate from 1 to %d", r.key, r.v, maxRRLRate)
		case r.v > 0 && c.ResponsesPerSecond == 0:
			bad("rrl.%s: set while rrl.responses_per_second is 0, which turns rate limiting off", r.key)
		}
	}
	if c.Slip < 0 || c.Slip > maxRRLSlip {
		bad("rrl.slip: %d is out of range: want 0 (never truncate) to %d (1: truncate every limited response)", c.Slip, maxRRLSlip)
	}
	if c.Window < 0 || c.Window > maxRRLWindow {
		bad("rrl.window: %s is out of range: want 0 (count sent responses only) up to %s", c.Window, maxRRLWindow)
	}
	if c.IPv4PrefixLen != 0 && (c.IPv4PrefixLen < 8 || c.IPv4PrefixLen > 32) {
		bad("rrl.ipv4_prefix: %d is out of range: want 8 to 32 (default 24)", c.IPv4PrefixLen)
	}
	if c.IPv6PrefixLen != 0 && (c.IPv6PrefixLen < 16 || c.IPv6PrefixLen > 128) {
		bad("rrl.ipv6_prefix: %d is out of range: want 16 to 128 (default 56)", c.IPv6PrefixLen)
	}
	if n := c.TableSize; n != 0 && (n < minRRLTableSize || n > maxRRLTableSize || n&(n-1) != 0) {
		bad("rrl.table_size: %d: want a power of two from %d to %d (default 65536)", n, minRRLTableSize, maxRRLTableSize)
	}
	for i, p := range c.Exempt {
		if !p.IsValid() {
			bad("rrl.exempt[%d]: not a CIDR prefix", i)
		}
	}
	return errors.Join(errs...)
}

// ErrRRLOff is NewRRL's answer to a configuration that limits nothing.
var ErrRRLOff = errors.New("rrl.responses_per_second is 0: rate limiting is off")

// rrlClass is what a response is counted as.
type rrlClass uint8

const (
	rrlAnswer rrlClass = iota
	rrlNXDomain
	rrlReferral
	rrlError
	rrlClasses
)

var rrlClassLabels = [rrlClasses]string{"answer", "nxdomain", "referral", "error"}

// rrlAction is what to do with a response.
type rrlAction uint8

const (
	rrlSend rrlAction = iota
	rrlDrop
	rrlSlip
)

// The table's geometry and the layout of an entry.
const (
	rrlWays     = 4
	rrlTagBits  = 20
	rrlTagShift = 64 - rrlTagBits
	rrlSlipBits = 4
	rrlTimeBits = rrlTagShift - rrlSlipBits
	rrlTimeMask = 1<<rrlTimeBits - 1
	rrlSlipMask = 1<<rrlSlipBits - 1
)

// rrlSet is one set of the table. Its entries are written only by compare
// and swap.
type rrlSet [rrlWays]atomic.Uint64

// rrlRate is a class's rate, in µs.
type rrlRate struct {
	interval uint64 // between two responses at the rate: 10^6/rate, at least 1
	burst    uint64 // how far ahead of now the account may be and still send: (rate-1)*interval
	limit    uint64 // how far ahead it may get at all: rate*interval + the window
}

// RRL is a response rate limiter. It is safe for use by every worker at
// once and takes no lock: each decision is a few atomic loads and, when
// the account changes, one compare and swap. NewRRL sets every field; after
// that only the table's entries change, by compare and swap.
type RRL struct {
	now  func() time.Time // nil: the monotonic clock, read by time.Since
	base time.Time        // µs are counted from here
	seed maphash.Seed

	v4mask     uint32
	v6hi, v6lo uint64
	exempt     []netip.Prefix
	slip       uint64
	horizon    uint64 // µs: an account further ahead than this is stale (wrapped); 1s + window
	rates      [rrlClasses]rrlRate
	window     uint64 // µs

	table []rrlSet // len a power of two, fixed at construction
	mask  uint64

	m rrlMetrics
}

// NewRRL builds a limiter for cfg, with its table, and registers its
// metrics with reg (nil: not registered; registered ones are reused). now
// is the clock (nil: the system's monotonic clock).
func NewRRL(cfg RRLConfig, now func() time.Time, reg prometheus.Registerer) (*RRL, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, ErrRRLOff
	}
	def := DefaultRRLConfig()
	if cfg.IPv4PrefixLen == 0 {
		cfg.IPv4PrefixLen = def.IPv4PrefixLen
	}
	if cfg.IPv6PrefixLen == 0 {
		cfg.IPv6PrefixLen = def.IPv6PrefixLen
	}
	if cfg.TableSize == 0 {
		cfg.TableSize = def.TableSize
	}
	base := time.Now()
	if now != nil {
		base = now()
	}
	m, err := newRRLMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("rrl metrics: %w", err)
	}
	r := &RRL{
		now:    now,
		base:   base,
		seed:   maphash.MakeSeed(),
		v4mask: ^uint32(0) << (32 - cfg.IPv4PrefixLen),
		slip:   uint64(cfg.Slip),
		window: uint64(cfg.Window / time.Microsecond),
		table:  make([]rrlSet, cfg.TableSize/rrlWays),
		m:      m,
	}
	r.mask = uint64(len(r.table) - 1)
	r.horizon = 1e6 + r.window
	r.v6hi, r.v6lo = prefixMask128(cfg.IPv6PrefixLen)
	for _, p := range cfg.Exempt {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96) // clients are matched unmapped
		}
		r.exempt = append(r.exempt, p.Masked())
	}
	for c, rate := range [rrlClasses]int{cfg.ResponsesPerSecond, cfg.NXDomainsPerSecond, cfg.ReferralsPerSecond, cfg.ErrorsPerSecond} {
		if rate == 0 {
			rate = cfg.ResponsesPerSecond
		}
		iv := max(1, uint64(1e6/rate))
		r.rates[c] = rrlRate{interval: iv, burst: uint64(rate-1) * iv, limit: uint64(rate)*iv + r.window}
	}
	return r, nil
}

func prefixMask128(bits int) (hi, lo uint64) {
	if bits >= 64 {
		return ^uint64(0), ^uint64(0) << (128 - bits) // a shift by 64 is 0 in Go
	}
	return ^uint64(0) << (64 - bits), 0
}

// limit applies the limiter to resp, the packed UDP response to the query
// in w, sent to from. It returns resp, a truncated reply in resp's place,
// or nil for no reply.
func (r *RRL) limit(w *worker, resp []byte, from netip.Addr) []byte {
	if w.q.serverCookie || len(resp) < 12 {
		return resp
	}
	class, name := r.classify(w, resp)
	switch r.decide(from, class, name) {
	case rrlSend:
		return resp
	case rrlSlip:
		return slipReply(w, resp)
	}
	return nil
}

// classify says what resp counts as, and hashes the name its account is
// kept by. An rcode of 0 in the header means the response came from finish,
// so the worker's reply and result describe it (errorReply always sets an
// rcode, and an extended one such as BADVERS exists only in finish's).
func (r *RRL) classify(w *worker, resp []byte) (rrlClass, uint64) {
	rcode := int(resp[3] & 0xF)
	if rcode == dns.RcodeSuccess {
		rcode = w.out.Rcode
	}
	res := &w.res
	switch {
	case rcode == dns.RcodeNameError:
		return rrlNXDomain, maphash.String(r.seed, res.Zone)
	case rcode != dns.RcodeSuccess:
		return rrlError, 0
	case len(res.Answer) == 0 && !res.Authoritative && len(res.Ns) > 0:
		return rrlReferral, maphash.String(r.seed, res.Ns[0].Header().Name)
	}
	// The lower-case name, so that 0x20 case randomization is one key.
	return rrlAnswer, maphash.String(r.seed, w.qs[0].Name) ^ uint64(w.q.qtype)*0x9E3779B97F4A7C15
}

// decide counts one response of class for name to client and says what to
// do with it.
func (r *RRL) decide(client netip.Addr, class rrlClass, name uint64) rrlAction {
	client = client.Unmap()
	for _, p := range r.exempt {
		if p.Contains(client) {
			return rrlSend
		}
	}
	h := r.hash(client, class, name)
	b := &r.table[h&r.mask]
	tag := h >> rrlTagShift
	if tag == 0 {
		tag = 1 // 0 marks an empty entry
	}
	start := int(h>>32) & (rrlWays - 1)
	rate := &r.rates[class]
	now := r.micros()
scan:
	for {
		victim, victimOld, victimAhead := 0, uint64(0), uint64(1<<64-1)
		for j := range b {
			// Start at a slot the key picks, so that among entries as full
			// as each other (seen at the same moment) the one evicted varies.
			i := (j + start) & (rrlWays - 1)
			v := b[i].Load()
			ahead := r.ahead(v, now)
			if v>>rrlTagShift == tag {
				if act, ok := r.account(&b[i], v, tag, ahead, now, rate, class); ok {
					return act
				}
				continue scan // another worker changed the entry first
			}
			if v != 0 {
				ahead++ // an empty entry goes before one whose bucket is full
			}
			if ahead < victimAhead {
				victim, victimOld, victimAhead = i, v, ahead
			}
		}
		// A new key: its first response is sent (every rate is at least 1).
		if b[victim].CompareAndSwap(victimOld, tag<<rrlTagShift|(now+rate.interval)&rrlTimeMask) {
			if victimAhead > 1 {
				r.m.evictions.Inc() // the evicted account was in debt
			}
			return rrlSend
		}
	}
}

// account charges one response to the entry e, which held v, and reports
// the action; ok is false when another worker changed e first.
func (r *RRL) account(e *atomic.Uint64, v, tag, ahead, now uint64, rate *rrlRate, class rrlClass) (act rrlAction, ok bool) {
	slips := v >> rrlTimeBits & rrlSlipMask
	next := ahead
	if ahead <= rate.burst {
		next = ahead + rate.interval
	} else {
		act = rrlDrop
		if r.slip > 0 {
			if slips++; slips >= r.slip {
				act, slips = rrlSlip, 0
			}
		}
		if r.window > 0 {
			next = min(ahead+rate.interval, rate.limit)
		}
		if r.slip == 0 && next == ahead {
			// Nothing to write: a flood without slip or window only reads.
			r.m.responses[class][act-1].Inc()
			return act, true
		}
	}
	if !e.CompareAndSwap(v, tag<<rrlTagShift|slips<<rrlTimeBits|(now+next)&rrlTimeMask) {
		return 0, false
	}
	if act != rrlSend {
		r.m.responses[class][act-1].Inc()
	}
	return act, true
}

// micros is the time in µs since the limiter was built, modulo 2^40.
func (r *RRL) micros() uint64 {
	var d time.Duration
	if r.now == nil {
		d = time.Since(r.base) // reads only the monotonic clock: half time.Now's cost
	} else {
		d = r.now().Sub(r.base)
	}
	return uint64(d/time.Microsecond) & rrlTimeMask
}

// ahead is how far past now the entry v's bucket is full again, in µs: 0
// when it is full already, or when its time is too far ahead to be real
// (an entry idle for the 12.7 days the clock takes to wrap).
func (r *RRL) ahead(v, now uint64) uint64 {
	d := (v - now) & rrlTimeMask
	if d > r.horizon {
		return 0 // in the past (a negative difference wraps) or stale
	}
	return d
}

// hash is the key's seeded hash: the client's network, the class and the
// name's hash.
func (r *RRL) hash(client netip.Addr, class rrlClass, name uint64) uint64 {
	var k [27]byte
	switch {
	case client.Is4():
		a := client.As4()
		k[0] = 4
		binary.LittleEndian.PutUint32(k[3:], binary.BigEndian.Uint32(a[:])&r.v4mask)
	case client.Is6():
		a := client.As16()
		k[0] = 6
		binary.LittleEndian.PutUint64(k[3:], binary.BigEndian.Uint64(a[:8])&r.v6hi)
		binary.LittleEndian.PutUint64(k[11:], binary.BigEndian.Uint64(a[8:])&r.v6lo)
	}
	k[1] = byte(class)
	binary.LittleEndian.PutUint64(k[19:], name)
	return maphash.Bytes(r.seed, k[:])
}

// slipReply turns resp, in place, into the truncated reply a limited query
// may get: resp's header with TC set, its question, and an OPT record when
// resp had one, nothing else. The rcode stays resp's.
func slipReply(w *worker, resp []byte) []byte {
	end := 12
	if binary.BigEndian.Uint16(resp[4:]) == 1 {
		var q query
		n, err := parseQuestion(resp, 12, &q)
		if err != nil {
			return nil // we packed resp; it cannot happen
		}
		end = n
	}
	// finish always adds an OPT to an EDNS query's reply; errorReply never does.
	opt := w.q.edns && binary.BigEndian.Uint16(resp[10:]) > 0
	b := resp[:end]
	binary.BigEndian.PutUint16(b[2:], binary.BigEndian.Uint16(b[2:])|flagTC)
	clear(b[6:12])
	if opt {
		b[11] = 1
		b = appendOPT(b, w, w.out.Rcode, 0)
	}
	return b
}
