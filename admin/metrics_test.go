package admin

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// TestRequestMetrics: every answer is counted under its route pattern,
// or "other", never the path asked for, and its status.
func TestRequestMetrics(t *testing.T) {
	ts := newTestServer(t, testConfig(t))
	ts.do("GET", "/api/v1/status", readToken, "")
	ts.do("GET", "/api/v1/status", readToken, "")
	ts.do("GET", "/api/v1/overrides", "", "")
	ts.do("DELETE", "/api/v1/overrides/drain:nope.:x", operateToken, "")
	ts.do("PATCH", "/api/v1/status", readToken, "")
	ts.do("GET", "/api/v1/secret-looking-path", readToken, "")
	ts.do("GET", "/healthz", "", "")
	ts.do("GET", "/metrics", readToken, "")
	ts.fake.setHook = func() { panic("backend bug") }
	ts.do("POST", "/api/v1/overrides", operateToken, setBody)

	want := map[[2]string]float64{
		{"/api/v1/status", "200"}:         2,
		{"/api/v1/overrides", "401"}:      1,
		{"/api/v1/overrides/{id}", "404"}: 1,
		{"/api/v1/status", "405"}:         1,
		{"other", "404"}:                  1,
		{"/healthz", "200"}:               1,
		{"/metrics", "200"}:               1,
		{"/api/v1/overrides", "500"}:      1,
	}
	for k, n := range want {
		if got := testutil.ToFloat64(ts.requests.WithLabelValues(k[0], k[1])); got != n {
			t.Errorf("requests{route=%q,code=%q} = %v, want %v", k[0], k[1], got, n)
		}
	}
	if n := testutil.CollectAndCount(ts.requests); n != len(want) {
		t.Errorf("%d series, want %d: a route label from a raw path?", n, len(want))
	}
}

// TestRequestMetricsStream: an events stream goes through the status
// recorder and still streams (TestEventStream* test the rest), and is
// counted when it ends.
func TestRequestMetricsStream(t *testing.T) {
	ts := newTestServer(t, testConfig(t))
	base, _ := serve(t, ts)
	ctx, cancel := context.WithCancel(context.Background())
	frames := openStream(t, ctx, base+"/api/v1/events")
	ts.Events().Publish(Event{Type: EventConfig})
	nextEvent(t, frames)
	cancel()
	waitFor(t, 5*time.Second, "the stream to be counted", func() bool {
		return testutil.ToFloat64(ts.requests.WithLabelValues("/api/v1/events", "200")) == 1
	})
}

// TestMetricsLint: every admin and notify metric passes promlint and
// has the labels dashboards expect, and they register together.
func TestMetricsLint(t *testing.T) {
	ts := newTestServer(t, testConfig(t))
	ts.do("GET", "/api/v1/status", readToken, "")
	n, err := NewNotifier([]HookConfig{{Name: "pager", URL: "https://hooks.example.net/x", SecretFile: writeSecret(t, testSecret)}},
		slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	for _, c := range slices.Concat(ts.Collectors(), n.Collectors()) {
		if err := reg.Register(c); err != nil {
			t.Fatalf("register: %v", err)
		}
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
		"meridian_admin_requests_total":             {"code", "route"},
		"meridian_events_subscribers":               nil,
		"meridian_events_dropped_subscribers_total": nil,
		"meridian_notify_deliveries_total":          {"hook", "result"},
		"meridian_notify_attempts_total":            {"hook"},
		"meridian_notify_queue_length":              {"hook"},
		"meridian_notify_missed_events_total":       nil,
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
