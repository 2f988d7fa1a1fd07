package node

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Every metric must pass promlint, and /metrics must serve the DNS and
// probe families.
func TestMetrics(t *testing.T) {
	n, _ := failoverNode(t, "100ms", 2)
	askEU(t, n)
	problems, err := testutil.GatherAndLint(n.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// /metrics is served by the admin API (with a read token) and, as an
// alias without one, on metrics_listen; both carry every family, the
// admin API's and the snapshot's included, and all of them pass promlint.
func TestMetricsEndpoint(t *testing.T) {
	cfgPath, _ := copyDemo(t)
	n := startNode(t, cfgPath, func(c *Config) { c.MetricsListen = "127.0.0.1:0" })
	askEU(t, n)
	problems, err := testutil.GatherAndLint(n.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	get := func(url, token string) string {
		t.Helper()
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s", url, resp.Status)
		}
		return string(body)
	}
	get("http://"+n.AdminAddr()+"/healthz", "") // counted by route and code
	for _, body := range []string{
		get("http://"+n.MetricsAddr()+"/metrics", ""),
		get("http://"+n.AdminAddr()+"/metrics", "demo-read"),
	} {
		for _, want := range []string{
			"meridian_dns_queries_total", "meridian_config_last_reload_success_timestamp_seconds", "go_goroutines",
			`meridian_dns_answers_total{pool="www.gslb.example.com.",region="eu-west"} 1`,
			`meridian_dns_zone_queries_total{zone="gslb.example.com."} 1`,
			`meridian_member_verdict{pool="www.gslb.example.com.",region="eu-west",verdict="up"} 1`,
			`meridian_overrides_active{action="pin"} 0`, "meridian_build_info{",
			"meridian_admin_requests_total", "meridian_events_subscribers", "meridian_geoip_build_timestamp_seconds 1",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	}
}
