package probes

import (
	"testing"

	"github.com/meridian-gtm/meridian/zones"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// TestMetricsLint: every probe metric passes promlint (names, units, help)
// and carries exactly the labels the dashboards expect.
func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := newMetrics(reg)
	tg := zones.Target{ID: "http://192.0.2.1:80/#0123456789ab", Members: []zones.MemberKey{{Pool: "p.", Region: "eu"}, {Pool: "q.", Region: "eu"}}}
	m.attempts.WithLabelValues(tg.ID, "http", resultSuccess).Inc()
	m.duration.WithLabelValues("http").Observe(0.01)
	m.setUp(&tg, zones.Down)
	m.flips.WithLabelValues(tg.ID, "down").Inc()

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
		"meridian_probe_attempts_total":      {"kind", "result", "target"},
		"meridian_probe_duration_seconds":    {"kind"},
		"meridian_probe_target_up":           {"target"},
		"meridian_probe_verdict_flips_total": {"target", "to"},
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
		if len(got) != len(want) {
			t.Errorf("%s labels %v, want %v", mf.GetName(), got, want)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s labels %v, want %v", mf.GetName(), got, want)
			}
		}
	}
	if v := testutil.ToFloat64(m.up.WithLabelValues(tg.ID)); v != 0 {
		t.Errorf("target_up of a down target = %v", v)
	}
	m.forget(&tg)
	for name, c := range map[string]prometheus.Collector{"up": m.up, "attempts": m.attempts, "flips": m.flips} {
		if n := testutil.CollectAndCount(c); n != 0 {
			t.Errorf("%d %s series after forget, want none", n, name)
		}
	}
}
