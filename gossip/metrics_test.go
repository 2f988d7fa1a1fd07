package gossip

import (
	"slices"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/zones"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// TestMetrics: every gossip metric passes promlint, carries the labels the
// dashboards expect, and counts real traffic.
func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	nodes := cluster(t, []string{"127.0.0.191", "127.0.0.192"}, func(c *Config) {
		if c.Name == "n1" {
			c.Registerer = reg
		}
	})
	nodes[1].SetLocalVerdicts(map[string]zones.TargetVerdict{"tcp://192.0.2.1:22#x": verdict(zones.Up, "ok")})
	if err := nodes[1].SetOverride(zones.Override{Action: zones.Drain, Region: "eu"}); err != nil {
		t.Fatal(err)
	}
	m := nodes[0].m
	waitFor(t, 5*time.Second, "n1 counts the verdict, the override and a push/pull", func() bool {
		return counter(t, m.msgReceived.WithLabelValues("verdict")) > 0 && counter(t, m.msgReceived.WithLabelValues("override")) > 0 &&
			counter(t, m.msgReceived.WithLabelValues("state")) > 0 && gauge(t, m.overrides) == 1
	})
	for _, c := range []prometheus.Counter{m.netSent.WithLabelValues("udp"), m.netRecv.WithLabelValues("udp"),
		m.netSent.WithLabelValues("tcp"), m.netRecv.WithLabelValues("tcp"), m.payloadRecv.WithLabelValues("state"), m.payloadSent.WithLabelValues("state")} {
		if counter(t, c) == 0 {
			t.Errorf("a byte counter stayed at 0: %v", c.Desc())
		}
	}
	if v := gauge(t, m.members.WithLabelValues(stateAlive)); v != 2 {
		t.Errorf("members{state=alive} = %v, want 2", v)
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	labels := map[string][]string{
		"meridian_gossip_members":                      {"state"},
		"meridian_gossip_isolated":                     nil,
		"meridian_gossip_self_distrust":                nil,
		"meridian_gossip_config_agreement":             nil,
		"meridian_gossip_messages_sent_total":          {"type"},
		"meridian_gossip_messages_received_total":      {"type"},
		"meridian_gossip_payload_sent_bytes_total":     {"type"},
		"meridian_gossip_payload_received_bytes_total": {"type"},
		"meridian_gossip_messages_rejected_total":      {"reason"},
		"meridian_gossip_network_sent_bytes_total":     {"proto"},
		"meridian_gossip_network_received_bytes_total": {"proto"},
		"meridian_gossip_state_entries":                {"kind"},
		"meridian_gossip_overrides":                    nil,
	}
	if len(mfs) != len(labels) {
		t.Errorf("%d metric families, want %d", len(mfs), len(labels))
	}
	for _, mf := range mfs {
		want, ok := labels[mf.GetName()]
		if !ok {
			t.Errorf("unexpected metric %s", mf.GetName())
			continue
		}
		var got []string
		for _, l := range mf.GetMetric()[0].GetLabel() {
			got = append(got, l.GetName())
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s labels %v, want %v", mf.GetName(), got, want)
		}
	}
}

// TestDefaultConfig: the defaults the doc comments promise, and that New
// fills them into a sparse config.
func TestDefaultConfig(t *testing.T) {
	d := DefaultConfig()
	if d.Profile != "lan" || d.MaxAge != 30*time.Second || d.RejoinInterval != 15*time.Second ||
		d.TombstoneTTL != 72*time.Hour || d.AgreementGrace != 30*time.Second || d.QuorumShare != 0 ||
		d.Bind.Port() != 7946 || d.Log == nil || d.Now == nil {
		t.Errorf("defaults %+v", d)
	}
	cfg := Config{Name: "sparse", Bind: d.Bind, Keys: [][]byte{testKey}}
	cfg.Bind = testConfig(t, "x", "127.0.0.193").Bind
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.cfg.MaxAge != d.MaxAge || c.cfg.TombstoneTTL != d.TombstoneTTL || c.Addr().Port() == 0 {
		t.Errorf("New did not fill the defaults: %+v", c.cfg)
	}
}
