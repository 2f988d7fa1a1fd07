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

func TestMetricsEndpoint(t *testing.T) {
	cfgPath, _ := copyDemo(t)
	n := startNode(t, cfgPath, func(c *Config) { c.MetricsListen = "127.0.0.1:0" })
	resp, err := http.Get("http://" + n.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"meridian_dns_queries_total", "meridian_config_last_reload_success_timestamp_seconds", "go_goroutines"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
