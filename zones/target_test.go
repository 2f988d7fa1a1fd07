package zones

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// sharedZone probes 192.0.2.1:8080 from six pools. web (both members),
// api and url probe it with one check (url names it by a URL whose path is
// that check's path), so they share one target; deep asks another path and
// slow has another fall, so each has its own. db1 and db2 share a TCP
// target although db2's check sets a path, which a TCP check never sends.
const sharedZone = `
zone = "s.test"
ns = ["ns.example.net."]
[regions.a]
lat = 0
lon = 0
[regions.b]
lat = 10
lon = 10

[pools.web]
policy = "failover"
order = ["a", "b"]
[pools.web.check]
path = "/healthz"
port = 8080
fall = 2
expect_status = [200, 204]
[pools.web.members.a]
addresses = ["192.0.2.1"]
[pools.web.members.b]
addresses = ["192.0.2.2"]
endpoints = ["192.0.2.1"]

[pools.api]
policy = "failover"
order = ["a"]
ttl = 30
[pools.api.check]
type = "http"
fall = 2
port = 8080
path = "/healthz"
expect_status = [204, 200]
[pools.api.members.a]
addresses = ["198.51.100.1"]
endpoints = ["192.0.2.1"]

[pools.url]
policy = "failover"
order = ["a"]
[pools.url.check]
fall = 2
expect_status = [200, 204]
[pools.url.members.a]
addresses = ["198.51.100.2"]
endpoints = ["http://192.0.2.1:8080/healthz"]

[pools.deep]
policy = "failover"
order = ["a"]
[pools.deep.check]
path = "/deep"
port = 8080
fall = 2
expect_status = [200, 204]
[pools.deep.members.a]
addresses = ["192.0.2.1"]

[pools.slow]
policy = "failover"
order = ["a"]
[pools.slow.check]
path = "/healthz"
port = 8080
fall = 3
expect_status = [200, 204]
[pools.slow.members.a]
addresses = ["192.0.2.1"]

[pools.db1]
policy = "failover"
order = ["a"]
[pools.db1.check]
type = "tcp"
port = 5432
[pools.db1.members.a]
addresses = ["192.0.2.1"]

[pools.db2]
policy = "failover"
order = ["a"]
[pools.db2.check]
type = "tcp"
port = 5432
path = "/never-sent"
[pools.db2.members.a]
addresses = ["192.0.2.1"]
`

// members prints a target's members as "pool/region" without the zone.
func members(tg Target) string {
	var out []string
	for _, m := range tg.Members {
		out = append(out, strings.TrimSuffix(m.Pool, ".s.test.")+"/"+m.Region)
	}
	return strings.Join(out, " ")
}

func TestTargetsShareEndpointAndCheck(t *testing.T) {
	cfg := &Config{Zones: []*Zone{parseZone(t, sharedZone)}}
	var got []string
	for _, tg := range cfg.Targets() {
		got = append(got, fmt.Sprintf("%s %s%s: %s", tg.Check.Kind, tg.Endpoint, tg.Path, members(tg)))
	}
	// Sorted by ID, and the settings hashes order the two /healthz targets.
	want := []string{
		"http 192.0.2.1:8080/deep: deep/a",
		"http 192.0.2.1:8080/healthz: slow/a",
		"http 192.0.2.1:8080/healthz: api/a url/a web/a web/b",
		"tcp 192.0.2.1:5432: db1/a db2/a",
	}
	slices.Sort(got)
	slices.Sort(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("targets:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestFoldHealthSharedVerdict: one Down verdict on a shared target takes
// down every member that probes the endpoint with that check, and no other.
func TestFoldHealthSharedVerdict(t *testing.T) {
	cfg := &Config{Zones: []*Zone{parseZone(t, sharedZone)}}
	var shared Target
	for _, tg := range cfg.Targets() {
		if len(tg.Members) == 4 {
			shared = tg
		}
	}
	if shared.ID == "" {
		t.Fatal("no target shared by four members")
	}
	h := FoldHealth(cfg, map[string]TargetVerdict{shared.ID: {State: Down, Reason: "3 consecutive failures, last: connect: connection refused"}})
	var down []string
	for k, mh := range h {
		if mh.State == Down && strings.Contains(mh.Reason, "0 of 1 endpoints up") && strings.Contains(mh.Reason, "connection refused") {
			down = append(down, strings.TrimSuffix(k.Pool, ".s.test.")+"/"+k.Region)
		}
	}
	slices.Sort(down)
	if got, want := strings.Join(down, " "), members(shared); got != want || len(h) != len(shared.Members) {
		t.Errorf("down members %q of health %v, want exactly %q", got, h, want)
	}
}

// targetOf parses a one-pool zone whose check has the given keys and
// returns the ID of its one target.
func targetOf(t *testing.T, check map[string]string, ttl int) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "zone = \"k.test\"\nns = [\"ns.example.net.\"]\n[regions.a]\nlat = 0\nlon = 0\n")
	fmt.Fprintf(&b, "[pools.p]\npolicy = \"failover\"\norder = [\"a\"]\nttl = %d\n[pools.p.check]\n", ttl)
	for _, k := range slices.Sorted(maps.Keys(check)) {
		fmt.Fprintf(&b, "%s = %s\n", k, check[k])
	}
	b.WriteString("[pools.p.members.a]\naddresses = [\"192.0.2.1\"]\n")
	ts := (&Config{Zones: []*Zone{parseZone(t, b.String())}}).Targets()
	if len(ts) != 1 {
		t.Fatalf("%d targets, want 1", len(ts))
	}
	return ts[0].ID
}

// TestTargetIDStability: a target's ID is the same when the same config is
// parsed again or only something other than its check changes (so its
// verdict survives the reload), and differs when any setting that changes
// what is sent, how it is judged or when the verdict flips changes.
func TestTargetIDStability(t *testing.T) {
	bases := map[string]map[string]string{
		"http":  {"type": `"http"`, "path": `"/healthz"`, "expect_status": `[200, 204]`, "headers": `{ A = "1", B = "2" }`},
		"https": {"type": `"https"`},
		"dns":   {"type": `"dns"`, "dns_name": `"status.internal."`},
	}
	tests := []struct {
		base, key, value string
		same             bool
	}{
		{"http", "type", `"http"`, true}, // the same config parsed again
		{"http", "expect_status", `[204, 200]`, true},
		{"http", "headers", `{ B = "2", A = "1" }`, true},
		{"http", "port", "8080", false},
		{"http", "path", `"/other"`, false},
		{"http", "interval", `"7s"`, false},
		{"http", "timeout", `"1s"`, false},
		{"http", "rise", "2", false},
		{"http", "fall", "4", false},
		{"http", "latency_budget", `"300ms"`, false},
		{"http", "method", `"HEAD"`, false},
		{"http", "host", `"app.internal"`, false},
		{"http", "headers", `{ A = "1", B = "3" }`, false},
		{"http", "body", `"{}"`, false},
		{"http", "expect_status", `[200]`, false},
		{"http", "expect_body", `"ok"`, false},
		{"http", "expect_regexp", `"o+k"`, false},
		{"https", "tls_server_name", `"app.internal"`, false},
		{"https", "tls_ca", `"/etc/meridian/ca.pem"`, false},
		{"https", "tls_skip_verify", "true", false},
		{"dns", "dns_name", `"other.internal."`, false},
		{"dns", "dns_type", `"AAAA"`, false},
		{"dns", "dns_rcode", `"NXDOMAIN"`, false},
		{"dns", "dns_answer", `"192.0.2.1"`, false},
	}
	for _, tc := range tests {
		t.Run(tc.base+" "+tc.key+"="+tc.value, func(t *testing.T) {
			before := targetOf(t, bases[tc.base], 60)
			edited := maps.Clone(bases[tc.base])
			edited[tc.key] = tc.value
			// The TTL is not part of the check: it never renames a target.
			after := targetOf(t, edited, 30)
			if (before == after) != tc.same {
				t.Errorf("ID %q, then %q: want same=%v", before, after, tc.same)
			}
		})
	}
}

// A target shared by pools takes the most observers any of them asks for,
// and every node when any of them leaves observers unset.
func TestTargetObservers(t *testing.T) {
	pool := func(name, observers string) string {
		return fmt.Sprintf(`
[pools.%s]
policy = "failover"
order = ["a"]
%s
[pools.%s.check]
type = "tcp"
port = 9000
[pools.%s.members.a]
addresses = ["192.0.2.1"]
`, name, observers, name, name)
	}
	head := "zone = \"o.test\"\nns = [\"ns.example.net.\"]\n[regions.a]\nlat = 0\nlon = 0\n"
	for _, tc := range []struct {
		name  string
		pools string
		want  int
	}{
		{"one pool, 2", pool("p", "observers = 2"), 2},
		{"most of 2 and 3", pool("p", "observers = 2") + pool("q", "observers = 3"), 3},
		{"unset wins: every node", pool("p", "observers = 2") + pool("q", ""), 0},
		{"unset first, still every node", pool("p", "") + pool("q", "observers = 2"), 0},
	} {
		z := parseZone(t, head+tc.pools)
		ts := (&Config{Zones: []*Zone{z}}).Targets()
		if len(ts) != 1 || ts[0].Observers != tc.want {
			t.Errorf("%s: %d targets, observers %v; want 1 target with %d", tc.name, len(ts), ts, tc.want)
		}
	}
	if _, err := ParseZone("o.toml", []byte(head+pool("p", "observers = 0"))); err == nil || !strings.Contains(err.Error(), "observers must be at least 1") {
		t.Errorf("observers = 0: err %v", err)
	}
}
