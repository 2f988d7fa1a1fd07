package zones

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const checkedZone = `
zone = "h.test"
ns = ["ns.example.net."]
[regions.a]
lat = 0
lon = 0
[regions.b]
lat = 10
lon = 10
[pools.app]
policy = "failover"
order = ["a", "b"]
ttl = 60
ttl_unstable = 5
healthy_share = 0.5
degraded = "avoid"
[pools.app.check]
type = "http"
path = "/healthz"
port = 8080
interval = "1s"
fall = 2
expect_status = [200, 204]
latency_budget = "300ms"
[pools.app.members.a]
addresses = ["192.0.2.1", "192.0.2.2"]
[pools.app.members.b]
addresses = ["198.51.100.1"]
endpoints = ["10.0.0.7:9000", "10.0.0.8"]
[pools.app.members.b.check]
type = "tcp"
rise = 2
[pools.llm]
policy = "failover"
order = ["a"]
[pools.llm.check]
type = "https"
path = "/v1/completions"
body = '{"prompt":"2+2=","max_tokens":1}'
headers = { Content-Type = "application/json" }
expect_regexp = '"text":\s*"4"'
timeout = "2s"
interval = "10s"
tls_server_name = "llm.internal"
[pools.llm.members.a]
addresses = ["192.0.2.9"]
`

func TestCheckConfig(t *testing.T) {
	z := parseZone(t, checkedZone)
	cfg := &Config{Zones: []*Zone{z}}
	ts := cfg.Targets()
	var ids []string
	for _, tg := range ts {
		ids = append(ids, tg.ID)
	}
	// Golden IDs: when these change, every target on every node is renamed
	// on upgrade, so each verdict starts over (cold start = up). Change
	// checkSettings' encoding on purpose, with its version line, or not at all.
	want := []string{
		"http://192.0.2.1:8080/healthz#15f1fa0c5d7f", "http://192.0.2.2:8080/healthz#15f1fa0c5d7f",
		"https://192.0.2.9:443/v1/completions#fccf5436dc20",
		"tcp://10.0.0.7:9000#9083250ed817", "tcp://10.0.0.8:80#9083250ed817",
	}
	if strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Fatalf("targets\n%q\nwant\n%q", ids, want)
	}
	a := ts[0].Check
	if a.Interval != time.Second || a.Timeout != 500*time.Millisecond || a.Fall != 2 || a.Rise != DefaultRise || a.Path != "/healthz" || a.Method != "GET" {
		t.Errorf("pool check: %+v", a)
	}
	if ts[0].Path != "/healthz" || ts[3].Path != "" {
		t.Errorf("probed paths %q and %q, want the http check's and none for tcp", ts[0].Path, ts[3].Path)
	}
	b := ts[3].Check
	if b.Kind != CheckTCP || b.Rise != 2 || b.Fall != 2 || b.Interval != time.Second {
		t.Errorf("member check must refine the pool's: %+v", b)
	}
	llm := ts[2].Check
	if llm.Method != "POST" || llm.Timeout != 2*time.Second || !llm.ExpectRegexp.MatchString(`{"text": "4"}`) || llm.Headers["Content-Type"] != "application/json" {
		t.Errorf("llm check: %+v", llm)
	}
}

func TestCheckConfigErrors(t *testing.T) {
	bad := strings.Replace(checkedZone, `type = "tcp"`, `type = "icmp"`, 1)
	bad = strings.Replace(bad, `interval = "10s"`, `interval = "10 s"`, 1)
	_, err := ParseZone("test.toml", []byte(bad))
	if err == nil || !strings.Contains(err.Error(), "test.toml:") {
		t.Fatalf("err = %v", err)
	}
	// The duration error is a decode error (stops decoding); fix it to see the semantic ones.
	bad = strings.Replace(bad, `interval = "10 s"`, `interval = "10s"`, 1)
	bad = strings.Replace(bad, `tls_server_name = "llm.internal"`, "tls_server_name = \"llm.internal\"\ndns_name = \"x\"", 1)
	_, err = ParseZone("test.toml", []byte(bad))
	for _, w := range []string{`type "icmp" is not one of http, https, tcp, dns`, "dns_* keys apply to dns checks only"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
}

func TestFoldHealthAndUnstableTTL(t *testing.T) {
	z := parseZone(t, checkedZone)
	cfg := &Config{Zones: []*Zone{z}}
	const app = "app.h.test."
	byEndpoint := map[string]string{}
	for _, tg := range cfg.Targets() {
		byEndpoint[tg.Endpoint.String()] = tg.ID
	}
	// id is the ID of the target probing ep: each endpoint of this zone is
	// probed with one check (a's are http on :8080, b's tcp).
	id := func(ep string) string { return byEndpoint[ep] }
	tests := []struct {
		name     string
		verdicts map[string]TargetVerdict
		region   string
		ttl      uint32
	}{
		{"cold start: all up", nil, "a", 60},
		{"one of two down keeps a up (share 0.5)", map[string]TargetVerdict{
			id("192.0.2.1:8080"): {State: Down, Reason: "HTTP 503"},
		}, "a", 60},
		{"both down: b", map[string]TargetVerdict{
			id("192.0.2.1:8080"): {State: Down}, id("192.0.2.2:8080"): {State: Down},
		}, "b", 60},
		{"pending failure shortens the TTL", map[string]TargetVerdict{
			id("192.0.2.1:8080"): {State: Up, Pending: true},
		}, "a", 5},
		{"degraded a is avoided", map[string]TargetVerdict{
			id("192.0.2.1:8080"): {State: Degraded}, id("192.0.2.2:8080"): {State: Degraded},
		}, "b", 5},
		{"everything down fails open with the short TTL", map[string]TargetVerdict{
			id("192.0.2.1:8080"): {State: Down}, id("192.0.2.2:8080"): {State: Down},
			id("10.0.0.7:9000"): {State: Down}, id("10.0.0.8:80"): {State: Down},
		}, "a", 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := FoldHealth(cfg, tc.verdicts)
			s := compile(t, Inputs{Config: cfg, Health: h})
			var r Result
			s.Answer(&r, app, dns.TypeA, netip.Addr{})
			if r.Region != tc.region || len(r.Answer) == 0 || r.Answer[0].Header().Ttl != tc.ttl {
				t.Fatalf("region %q answers %v, want %s with TTL %d (health %v)", r.Region, r.Answer, tc.region, tc.ttl, h)
			}
		})
	}
	h := FoldHealth(cfg, map[string]TargetVerdict{id("192.0.2.1:8080"): {State: Down, Reason: "3 consecutive failures, last: HTTP 503 after 120ms"}, id("192.0.2.2:8080"): {State: Down}})
	if got := h[MemberKey{Pool: app, Region: "a"}].Reason; !strings.Contains(got, "0 of 2 endpoints up") || !strings.Contains(got, "HTTP 503 after 120ms") {
		t.Errorf("reason %q", got)
	}
}

func TestURLEndpoints(t *testing.T) {
	src := strings.Replace(checkedZone, `[pools.llm.members.a]
addresses = ["192.0.2.9"]`, `[pools.llm.members.a]
addresses = ["192.0.2.9"]
endpoints = ["https://10.1.2.3:8443/v2/ready?deep=1", "https://[2001:db8::5]/x"]`, 1)
	z := parseZone(t, src)
	var got []string
	for _, tg := range (&Config{Zones: []*Zone{z}}).Targets() {
		if tg.Members[0].Pool == "llm.h.test." {
			got = append(got, tg.Endpoint.String()+" "+tg.Path+" "+tg.ID)
		}
	}
	want := []string{
		"10.1.2.3:8443 /v2/ready?deep=1 https://10.1.2.3:8443/v2/ready?deep=1#fccf5436dc20",
		"[2001:db8::5]:443 /x https://[2001:db8::5]:443/x#fccf5436dc20",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("targets %q, want %q", got, want)
	}
	for _, bad := range []struct{ ep, msg string }{
		{"https://llm.internal/x", "must name an IP address"},
		{"http://10.1.2.3/x", "is http, but the check is https"},
		{"not a url at all", "is not an address, address:port or URL"},
	} {
		src := strings.Replace(checkedZone, `[pools.llm.members.a]
addresses = ["192.0.2.9"]`, `[pools.llm.members.a]
addresses = ["192.0.2.9"]
endpoints = ["`+bad.ep+`"]`, 1)
		_, err := ParseZone("test.toml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("%s: err %v, want %q", bad.ep, err, bad.msg)
		}
	}
}
