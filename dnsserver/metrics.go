package dnsserver

import (
	"errors"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the query counters. Every label comes from a small fixed set
// (never a name or an address), and each counter is resolved when the
// metrics are built, so counting costs one atomic add per query.
type Metrics struct {
	queries    [2][len(qtypeLabels) + 1]prometheus.Counter // [udp?][qtype]
	rcodes     [24]prometheus.Counter
	ecs        prometheus.Counter
	truncated  prometheus.Counter
	dropped    prometheus.Counter
	panics     prometheus.Counter
	tcpRefused prometheus.Counter
	tcpOpen    prometheus.Gauge
	tcpClosed  [numReasons]prometheus.Counter // by closeReason
	cookies    [cookieResults]prometheus.Counter
}

// qtypeLabels are the query types counted by name; the rest are "other".
var qtypeLabels = [...]uint16{
	dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeMX, dns.TypeTXT, dns.TypeNS,
	dns.TypeSOA, dns.TypeSRV, dns.TypeCAA, dns.TypePTR, dns.TypeANY, dns.TypeHTTPS, dns.TypeDS, dns.TypeDNSKEY,
}

// NewMetrics registers the DNS metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics { return newMetrics(reg) }

func newMetrics(reg prometheus.Registerer) *Metrics {
	q := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_dns_queries_total",
		Help: "Queries parsed, by transport and query type.",
	}, []string{"proto", "qtype"})
	r := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_dns_responses_total",
		Help: "Responses made, by rcode; meridian_dns_rrl_responses_total counts those rate limiting then withheld.",
	}, []string{"rcode"})
	ck := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_dns_cookies_total",
		Help: "Queries by their DNS COOKIE option (RFC 7873): none, client_only, good (a valid server cookie), bad, malformed. Counted when cookies are on.",
	}, []string{"result"})
	m := &Metrics{
		ecs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meridian_dns_ecs_queries_total",
			Help: "Queries located by their EDNS Client Subnet option.",
		}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meridian_dns_truncated_total",
			Help: "UDP responses truncated (TC set) to fit the client's buffer.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meridian_dns_dropped_total",
			Help: "Packets dropped without a reply: responses (QR set) and fragments shorter than a header.",
		}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meridian_dns_panics_total",
			Help: "Queries whose handling panicked; each got SERVFAIL.",
		}),
		tcpRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meridian_dns_tcp_refused_connections_total",
			Help: "TCP connections closed at once because the connection table was full and no open connection was idle.",
		}),
		tcpOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meridian_dns_tcp_connections",
			Help: "Open TCP connections.",
		}),
	}
	ev := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_dns_tcp_evicted_connections_total",
		Help: "TCP connections the server closed, by reason: idle_timeout (idle past the effective idle timeout), evicted_for_new (idlest, to make room when full), per_client_limit (new, its client held too many), slow (a deadline passed mid-message or mid-write).",
	}, []string{"reason"})
	for r, name := range reasonLabels {
		m.tcpClosed[r] = ev.WithLabelValues(name)
	}
	for p, proto := range []string{"tcp", "udp"} {
		for i, t := range qtypeLabels {
			m.queries[p][i] = q.WithLabelValues(proto, dns.TypeToString[t])
		}
		m.queries[p][len(qtypeLabels)] = q.WithLabelValues(proto, "other")
	}
	for rc := range m.rcodes {
		name, ok := dns.RcodeToString[rc]
		if !ok {
			name = "other"
		}
		m.rcodes[rc] = r.WithLabelValues(name)
	}
	for i, l := range cookieResultLabels {
		m.cookies[i] = ck.WithLabelValues(l)
	}
	if reg != nil {
		reg.MustRegister(q, r, ck, m.ecs, m.truncated, m.dropped, m.panics, m.tcpRefused, m.tcpOpen, ev)
	}
	return m
}

func (m *Metrics) query(qtype uint16, udp bool) {
	p := 0
	if udp {
		p = 1
	}
	for i, t := range qtypeLabels {
		if t == qtype {
			m.queries[p][i].Inc()
			return
		}
	}
	m.queries[p][len(qtypeLabels)].Inc()
}

func (m *Metrics) rcode(rc int) {
	if rc < 0 || rc >= len(m.rcodes) {
		rc = len(m.rcodes) - 1
	}
	m.rcodes[rc].Inc()
}

// rrlMetrics are response rate limiting's counters, resolved when the
// limiter is built.
type rrlMetrics struct {
	responses [rrlClasses][2]prometheus.Counter // [class][dropped, slipped]
	evictions prometheus.Counter
}

func newRRLMetrics(reg prometheus.Registerer) (rrlMetrics, error) {
	var m rrlMetrics
	resp := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_dns_rrl_responses_total",
		Help: "UDP responses rate limiting withheld, by response class and action: dropped (no reply) or slipped (sent truncated, empty, so the client retries over TCP).",
	}, []string{"class", "action"})
	ev := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "meridian_dns_rrl_table_evictions_total",
		Help: "Rate limiting accounts still in debt that a new key evicted from the full table, resetting them; many mean the table is too small.",
	})
	if reg != nil {
		var err error
		if resp, err = register(reg, resp); err != nil {
			return m, err
		}
		if ev, err = register(reg, ev); err != nil {
			return m, err
		}
	}
	for c, class := range rrlClassLabels {
		for a, action := range [...]string{"dropped", "slipped"} {
			m.responses[c][a] = resp.WithLabelValues(class, action)
		}
	}
	m.evictions = ev
	return m, nil
}

// register registers c with reg, or returns the collector registered
// before it, so a limiter rebuilt on reload counts on.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if old, ok := are.ExistingCollector.(C); ok {
			return old, nil
		}
	}
	return c, err
}
