package gossip

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the cluster's series. Labels come from fixed sets (member
// state, message type, protocol, entry kind), never from node names,
// targets or anything a peer sends, so the series count is constant.
type metrics struct {
	members         *prometheus.GaugeVec // state
	isolated        prometheus.Gauge
	selfDistrust    prometheus.Gauge
	configAgreement prometheus.Gauge

	msgSent     *prometheus.CounterVec // type
	msgReceived *prometheus.CounterVec // type
	payloadSent *prometheus.CounterVec // type
	payloadRecv *prometheus.CounterVec // type
	rejected    *prometheus.CounterVec // reason
	netSent     *prometheus.CounterVec // proto
	netRecv     *prometheus.CounterVec // proto

	entries   *prometheus.GaugeVec // kind
	overrides prometheus.Gauge
}

// Values of the reason label of meridian_gossip_messages_rejected_total.
const (
	rejectMalformed = "malformed" // does not decode
	rejectFuture    = "future"    // a version from beyond maxClockSkew
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meridian_gossip_members",
			Help: "Cluster members this node knows, by state (alive, dead, left), itself included.",
		}, []string{"state"}),
		isolated: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meridian_gossip_isolated",
			Help: "1 while this node reaches fewer than half of the cluster's members and serves the last agreed health view, frozen.",
		}),
		selfDistrust: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meridian_gossip_self_distrust",
			Help: "1 while this node sees every target it observes down and its peers do not, so its own votes are left out.",
		}),
		configAgreement: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meridian_gossip_config_agreement",
			Help: "0 when a live member has had another zone config hash for longer than the grace period, else 1.",
		}),
		msgSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_gossip_messages_sent_total",
			Help: "Gossip messages sent by this node's delegate, by type (verdict, override, heartbeat: broadcasts and their retransmissions; state: push/pull; leave).",
		}, []string{"type"}),
		msgReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_gossip_messages_received_total",
			Help: "Gossip messages received by this node's delegate, by type.",
		}, []string{"type"}),
		payloadSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_gossip_payload_sent_bytes_total",
			Help: "Bytes of gossip messages sent by this node's delegate, by type, before memberlist's framing and encryption.",
		}, []string{"type"}),
		payloadRecv: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_gossip_payload_received_bytes_total",
			Help: "Bytes of gossip messages received by this node's delegate, by type.",
		}, []string{"type"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_gossip_messages_rejected_total",
			Help: "Gossip messages or entries refused, by reason (malformed: does not decode; future: versioned more than a minute ahead of this node's clock).",
		}, []string{"reason"}),
		netSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_gossip_network_sent_bytes_total",
			Help: "Bytes this node's gossip transport sent, by protocol (udp, tcp): memberlist's own traffic, framing and encryption included.",
		}, []string{"proto"}),
		netRecv: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_gossip_network_received_bytes_total",
			Help: "Bytes this node's gossip transport received, by protocol (udp, tcp).",
		}, []string{"proto"}),
		entries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meridian_gossip_state_entries",
			Help: "Entries of the replicated state, by kind (verdict: every origin's; override: in force; tombstone: cleared; expired: past its expiry time; the last two are kept for the tombstone TTL).",
		}, []string{"kind"}),
		overrides: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meridian_gossip_overrides",
			Help: "Operator overrides in force.",
		}),
	}
	m.configAgreement.Set(1)
	// Every series of a fixed label set exists from the start, so a rate
	// over it has a zero to start from.
	for _, s := range []string{stateAlive, stateDead, stateLeft} {
		m.members.WithLabelValues(s)
	}
	for _, t := range []msgType{msgVerdict, msgOverride, msgBeat, msgState, msgLeave} {
		m.msgSent.WithLabelValues(t.String())
		m.msgReceived.WithLabelValues(t.String())
		m.payloadSent.WithLabelValues(t.String())
		m.payloadRecv.WithLabelValues(t.String())
	}
	m.msgReceived.WithLabelValues("unknown")
	m.payloadRecv.WithLabelValues("unknown")
	for _, r := range []string{rejectMalformed, rejectFuture} {
		m.rejected.WithLabelValues(r)
	}
	for _, p := range []string{"udp", "tcp"} {
		m.netSent.WithLabelValues(p)
		m.netRecv.WithLabelValues(p)
	}
	for _, k := range []string{"verdict", "override", "tombstone", "expired"} {
		m.entries.WithLabelValues(k)
	}
	if reg != nil {
		reg.MustRegister(m.members, m.isolated, m.selfDistrust, m.configAgreement,
			m.msgSent, m.msgReceived, m.payloadSent, m.payloadRecv, m.rejected,
			m.netSent, m.netRecv, m.entries, m.overrides)
	}
	return m
}

// sent counts one outgoing message of ours.
func (m *metrics) sent(b []byte) {
	t := msgTypeOf(b)
	m.msgSent.WithLabelValues(t).Inc()
	m.payloadSent.WithLabelValues(t).Add(float64(len(b)))
}

// received counts one incoming message.
func (m *metrics) received(b []byte) {
	t := msgTypeOf(b)
	m.msgReceived.WithLabelValues(t).Inc()
	m.payloadRecv.WithLabelValues(t).Add(float64(len(b)))
}

// msgTypeOf names a message's type label from its header, folding anything
// unknown into one value so that a peer cannot mint series.
func msgTypeOf(b []byte) string {
	if len(b) >= 2 {
		switch t := msgType(b[1]); t {
		case msgVerdict, msgOverride, msgBeat, msgState, msgLeave:
			return t.String()
		}
	}
	return "unknown"
}
