package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/admin"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const (
	testReadToken    = "mrd_test-read-token"
	testOperateToken = "mrd_test-operate-token"
)

// adminLines gives node i an admin API on 127.0.0.7(1+i):0 with a read and
// an operate token and an audit log, and node 0 the webhooks in hooks.
func adminLines(hooks string) func(i int, dir string) string {
	return func(i int, dir string) string {
		s := fmt.Sprintf(`
[admin]
listen = "127.0.0.%d:0"
audit_file = "audit-node%d.jsonl"
[[admin.tokens]]
id = "test-read"
role = "read"
hash = %q
[[admin.tokens]]
id = "test-operate"
role = "operate"
hash = %q
`, 71+i, i+1, admin.HashToken(testReadToken), admin.HashToken(testOperateToken))
		if i == 0 {
			s += hooks
		}
		return s
	}
}

// call makes one admin API request and decodes a JSON answer into out
// (when not nil).
func call(t *testing.T, n *Node, token, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		must(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+n.AdminAddr()+path, rd)
	must(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	must(t, err)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
	if resp.StatusCode >= 300 {
		t.Logf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	return resp.StatusCode
}

// auditLines reads a node's audit log.
func auditLines(t *testing.T, file string) []admin.Entry {
	t.Helper()
	f, err := os.Open(file)
	if os.IsNotExist(err) {
		return nil
	}
	must(t, err)
	defer f.Close()
	var out []admin.Entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e admin.Entry
		must(t, json.Unmarshal(sc.Bytes(), &e))
		out = append(out, e)
	}
	return out
}

// hasAudit reports whether entries hold a line of action on target with
// result status (0: any).
func hasAudit(es []admin.Entry, action, target string, status int) bool {
	for _, e := range es {
		if e.Action == action && e.Target == target && e.Result != nil && (status == 0 || e.Result.Status == status) {
			return true
		}
	}
	return false
}

// hookReceiver records the webhook deliveries it gets, answering the first
// fail of them with 500.
type hookReceiver struct {
	srv    *httptest.Server
	secret []byte
	mu     sync.Mutex
	fail   int
	tries  map[string]int // delivery ID → attempts
	events []admin.Event  // verified deliveries
	bad    int            // deliveries whose signature did not verify
}

func newHookReceiver(t *testing.T, secret string, fail int) *hookReceiver {
	h := &hookReceiver{secret: []byte(secret), fail: fail, tries: map[string]int{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.tries[r.Header.Get("X-Meridian-Delivery")]++
		if h.fail > 0 {
			h.fail--
			http.Error(w, "not now", http.StatusInternalServerError)
			return
		}
		if !admin.VerifySignature(h.secret, r.Header.Get("X-Meridian-Timestamp"), body, r.Header.Get("X-Meridian-Signature")) {
			h.bad++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var ev admin.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			h.bad++
			return
		}
		h.events = append(h.events, ev)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// got returns the verified event of type typ, and how many attempts its
// delivery took.
func (h *hookReceiver) got(typ admin.EventType, id string) (admin.Event, int, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range h.events {
		if ev.Type == typ && ev.Override != nil && ev.Override.ID == id {
			return ev, len(h.tries), true
		}
	}
	return admin.Event{}, 0, false
}

// TestAdminCluster drives a three-node cluster through the admin API of
// its first node: refusals change nothing; a failover reaches every node's
// answers and every node's audit log; the safety rails refuse what they
// must unless forced; a dry run changes nothing; an expiring override
// reverts by itself on every node, audited; webhooks get signed events,
// retried when the receiver fails; an audit log that cannot be written
// refuses the change.
func TestAdminCluster(t *testing.T) {
	good := newHookReceiver(t, "s3cret-for-the-hook-test", 0)
	flaky := newHookReceiver(t, "s3cret-for-the-hook-test", 2)
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "hook.secret")
	must(t, os.WriteFile(secret, []byte("s3cret-for-the-hook-test\n"), 0o600))
	hooks := fmt.Sprintf(`
[[notify]]
name = "good"
url = %q
secret_file = %q
[[notify]]
name = "flaky"
url = %q
secret_file = %q
`, good.srv.URL, secret, flaky.srv.URL, secret)
	c := newTestClusterExtra(t, 3, "200ms", 2, 1, 0, adminLines(hooks))
	c.waitAll("198.51.100.10")
	n1 := c.nodes[0].Node
	audit := func(i int) []admin.Entry {
		return auditLines(t, filepath.Join(c.dir, fmt.Sprintf("audit-node%d.jsonl", i+1)))
	}
	www := "www.gslb.example.com."
	pinAP := map[string]any{"action": "pin", "pool": "www.gslb.example.com", "region": "ap-southeast", "reason": "drill"}

	// No token, a wrong token, the read role: refused, nothing changes.
	for _, tok := range []struct {
		token string
		want  int
	}{{"", 401}, {"mrd_wrong", 401}, {testReadToken, 403}} {
		if got := call(t, n1, tok.token, "POST", "/api/v1/overrides", pinAP, nil); got != tok.want {
			t.Fatalf("token %q: %d, want %d", tok.token, got, tok.want)
		}
	}
	if !hasAudit(audit(0), "override.set", "/api/v1/overrides", 401) || !hasAudit(audit(0), "override.set", "/api/v1/overrides", 403) {
		t.Errorf("refusals not audited: %+v", audit(0))
	}
	for _, cn := range c.nodes {
		if got, _ := askEU(t, cn.Node); got != "198.51.100.10" {
			t.Fatalf("%s answers %s after refused calls", cn.name, got)
		}
	}

	// A dry run changes nothing and says who moves.
	var pv admin.Preview
	dry := map[string]any{"action": "drain", "pool": www, "region": "eu-west", "reason": "maintenance", "dry_run": true}
	if got := call(t, n1, testOperateToken, "POST", "/api/v1/overrides", dry, &pv); got != 200 {
		t.Fatalf("dry run: %d", got)
	}
	if !hasMove(pv.Moves, "continent", "EU", "eu-west", "us-east") || pv.Conflict != "" {
		t.Errorf("dry run of draining eu-west: %+v, want EU eu-west → us-east and no conflict", pv)
	}
	if os := n1.Cluster().Overrides(); len(os) != 0 {
		t.Fatalf("dry run changed the overrides: %+v", os)
	}

	// The failover: every node answers by it, every node audits it, the
	// hooks get the signed event (the flaky one after two retries).
	var set admin.OverrideResponse
	if got := call(t, n1, testOperateToken, "POST", "/api/v1/overrides", pinAP, &set); got != 200 {
		t.Fatalf("failover: %d", got)
	}
	if got, _ := askEU(t, n1); got != "203.0.113.10" {
		t.Errorf("node1 answers %s right after its failover call returned, want ap-southeast", got)
	}
	c.waitAll("203.0.113.10")
	id := "pin:" + www
	if set.Override.ID != id || set.Override.Who != "test-operate" {
		t.Errorf("failover answer: %+v", set)
	}
	waitFor(t, 10*time.Second, func() error {
		if !hasAudit(audit(0), "override.set", id, 200) {
			return fmt.Errorf("node1 has no audit line of its failover")
		}
		for i := 1; i < 3; i++ {
			es := audit(i)
			found := false
			for _, e := range es {
				found = found || e.Action == "override.gossip" && e.Target == id && e.Origin == "node1" && e.Reason == "drill"
			}
			if !found {
				return fmt.Errorf("node%d has no audit line of the failover received from node1: %+v", i+1, es)
			}
		}
		return nil
	})
	waitFor(t, 20*time.Second, func() error {
		if _, _, ok := good.got(admin.EventOverrideSet, id); !ok {
			return fmt.Errorf("the good hook has no override.set event")
		}
		if _, tries, ok := flaky.got(admin.EventOverrideSet, id); !ok || tries < 1 {
			return fmt.Errorf("the flaky hook has no override.set event yet")
		}
		return nil
	})
	flaky.mu.Lock()
	maxTries := 0
	for _, n := range flaky.tries {
		maxTries = max(maxTries, n)
	}
	bad := good.bad + flaky.bad
	flaky.mu.Unlock()
	if maxTries < 3 || bad != 0 {
		t.Errorf("flaky hook: a delivery took %d attempts (want 3: two 500s, then delivered); %d bad signatures", maxTries, bad)
	}

	// Status on another node shows the override with its origin, every
	// observer's verdict, and Europe answered from ap-southeast.
	var st admin.Status
	if got := call(t, c.nodes[1].Node, testReadToken, "GET", "/api/v1/status", nil, &st); got != 200 {
		t.Fatalf("status: %d", got)
	}
	if len(st.Members) != 3 || len(st.Overrides) != 1 || st.Overrides[0].Origin != "node1" || len(st.Pools) != 1 ||
		st.Pools[0].Answering["EU"] != "ap-southeast" || len(st.Pools[0].Regions) != 3 || len(st.Pools[0].Regions[0].Observers) != 3 {
		t.Errorf("status on node2: %+v", st)
	}

	// Clearing it on node2 reverts every node.
	if got := call(t, c.nodes[1].Node, testOperateToken, "DELETE", "/api/v1/overrides/"+id+"?reason=drill+over", nil, nil); got != 200 {
		t.Fatalf("clear: %d", got)
	}
	c.waitAll("198.51.100.10")
	if got := call(t, n1, testOperateToken, "DELETE", "/api/v1/overrides/"+id, nil, nil); got != 404 {
		t.Errorf("clearing it again: %d, want 404", got)
	}

	// Safety rails. eu-west fails for every node: pinning to it is refused
	// unless forced.
	c.eps["eu-west"].failFor("*")
	c.waitAll("192.0.2.10")
	post := func(body map[string]any, want int) {
		t.Helper()
		if got := call(t, n1, testOperateToken, "POST", "/api/v1/overrides", body, nil); got != want {
			t.Fatalf("%v: %d, want %d", body, got, want)
		}
	}
	clear := func(id string) {
		t.Helper()
		if got := call(t, n1, testOperateToken, "DELETE", "/api/v1/overrides/"+id, nil, nil); got != 200 {
			t.Fatalf("clear %s: %d", id, got)
		}
	}
	pinEU := map[string]any{"action": "pin", "pool": www, "region": "eu-west", "reason": "test"}
	post(pinEU, 409)
	pinEU["force"] = true
	post(pinEU, 200)
	c.waitAll("198.51.100.10")
	clear(id)
	c.waitAll("192.0.2.10")
	// With us-east drained, draining ap-southeast would leave only eu-west,
	// which is down; draining eu-west too would leave no region at all.
	post(map[string]any{"action": "drain", "pool": www, "region": "us-east", "reason": "test"}, 200)
	c.waitAll("203.0.113.10")
	drainAP := map[string]any{"action": "drain", "pool": www, "region": "ap-southeast", "reason": "test"}
	post(drainAP, 409)
	drainAP["force"] = true
	post(drainAP, 200)
	drainEU := map[string]any{"action": "drain", "pool": "*", "region": "eu-west", "reason": "test"}
	post(drainEU, 409)
	drainEU["force"] = true
	post(drainEU, 200)
	for _, id := range []string{"drain:" + www + ":us-east", "drain:" + www + ":ap-southeast", "drain:*:eu-west"} {
		clear(id)
	}
	c.eps["eu-west"].failFor()
	c.waitAll("198.51.100.10")

	// An override with an expiry reverts by itself on every node, and each
	// node audits the reversion.
	post(map[string]any{"action": "pin", "pool": www, "region": "ap-southeast", "reason": "short drill", "expires_in": "1500ms"}, 200)
	c.waitAll("203.0.113.10")
	c.waitAll("198.51.100.10")
	waitFor(t, 10*time.Second, func() error {
		for i := range 3 {
			if !hasAudit(audit(i), "override.expire", id, 0) {
				return fmt.Errorf("node%d has not audited the expiry", i+1)
			}
		}
		if _, _, ok := good.got(admin.EventOverrideExpired, id); !ok {
			return fmt.Errorf("the hook has no override.expired event")
		}
		return nil
	})

	// The audit log cannot be written: the change is refused with 503 and
	// no node's answers change.
	file := filepath.Join(c.dir, "audit-node1.jsonl")
	must(t, os.Rename(file, file+".saved"))
	must(t, os.Mkdir(file, 0o755))
	post(pinAP, 503)
	// The refusal comes before node1 changes anything, so there is nothing
	// for gossip to spread: every node is checked at once.
	for _, cn := range c.nodes {
		if os := cn.Cluster().Overrides(); len(os) != 0 {
			t.Fatalf("%s has overrides after a refused change: %+v", cn.name, os)
		}
		if got, _ := askEU(t, cn.Node); got != "198.51.100.10" {
			t.Fatalf("%s answers %s after a refused change", cn.name, got)
		}
	}
	must(t, os.Remove(file))
	must(t, os.Rename(file+".saved", file))

	// Node 1 reported each kind of change on its events stream: eu-west's
	// flips, the overrides set, cleared and expired; and a member leaving.
	c.nodes[2].stop()
	waitFor(t, 15*time.Second, func() error {
		seen := map[admin.EventType]bool{}
		for _, ev := range n1.admin.Events().Recent(time.Hour) {
			switch {
			case ev.Type == admin.EventVerdict && ev.Region == "eu-west" && ev.To == "down",
				ev.Type == admin.EventMember && ev.Member == "node3" && ev.To != "alive",
				ev.Type == admin.EventOverrideSet, ev.Type == admin.EventOverrideCleared, ev.Type == admin.EventOverrideExpired:
				seen[ev.Type] = true
			}
		}
		if len(seen) != 5 {
			return fmt.Errorf("node1's events hold only %v", seen)
		}
		return nil
	})

	// Every metric of a clustered node with hooks passes promlint: the
	// admin API's, the notifier's and the gossip's included.
	problems, err := testutil.GatherAndLint(n1.Registry())
	must(t, err)
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}

	// The probes of liveness and readiness need no token; metrics do.
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 401} {
		if got := call(t, n1, "", "GET", path, nil, nil); got != want {
			t.Errorf("GET %s without a token: %d, want %d", path, got, want)
		}
	}
}

// hasMove reports whether moves hold the move of code from → to.
func hasMove(moves []admin.Move, scope, code, from, to string) bool {
	for _, m := range moves {
		if m.Scope == scope && m.Code == code && m.From == from && m.To == to {
			return true
		}
	}
	return false
}

// startLone starts a node alone on the demo config, with its zones copied
// to dir (so a test may edit them) and its admin API on a free port.
func startLone(t *testing.T, dir string) *Node {
	t.Helper()
	cfg, err := LoadConfig("../deploy/demo/node.toml")
	must(t, err)
	must(t, os.MkdirAll(filepath.Join(dir, "zones"), 0o755))
	data, err := os.ReadFile("../deploy/demo/zones/gslb.example.com.toml")
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "zones", "gslb.example.com.toml"), data, 0o644))
	cfg.Zones = filepath.Join(dir, "zones")
	cfg.DNS.Listen = []string{"127.0.0.1:0"}
	cfg.WatchInterval = Duration{}
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Admin.AuditFile = filepath.Join(dir, "audit.jsonl")
	cfg.Admin.Tokens = []admin.TokenConfig{
		{ID: "test-read", Role: admin.RoleRead, Hash: admin.HashToken(testReadToken)},
		{ID: "test-operate", Role: admin.RoleOperate, Hash: admin.HashToken(testOperateToken)},
	}
	n, err := New(slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})), cfg)
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return n
}

// A node alone takes overrides too (in memory), with the same previews,
// safety rails, expiry, audit and events; its API reloads the config with
// file:line errors and keeps serving the last good one.
func TestAdminLoneNode(t *testing.T) {
	dir := t.TempDir()
	n := startLone(t, dir)
	www := "www.gslb.example.com."

	// Names the API cannot act on: 400 or 404 with the reason.
	for _, tc := range []struct {
		body map[string]any
		want int
	}{
		{map[string]any{"action": "pin", "pool": "nope.gslb.example.com", "region": "eu-west", "reason": "x"}, 400},
		{map[string]any{"action": "pin", "pool": "db.gslb.example.com", "region": "ap-southeast", "reason": "x"}, 400},
		{map[string]any{"action": "drain", "pool": "*", "region": "mars", "reason": "x"}, 400},
	} {
		if got := call(t, n, testOperateToken, "POST", "/api/v1/overrides", tc.body, nil); got != tc.want {
			t.Errorf("%v: %d, want %d", tc.body, got, tc.want)
		}
	}
	if got := call(t, n, testOperateToken, "DELETE", "/api/v1/overrides/pin:"+www, nil, nil); got != 404 {
		t.Errorf("clearing an override not in force: %d, want 404", got)
	}

	// Draining ap-southeast moves Asia, and Japan (a country with a geo
	// rule) to its rule's next region.
	var pv admin.Preview
	body := map[string]any{"action": "drain", "pool": www, "region": "ap-southeast", "reason": "x", "dry_run": true}
	if got := call(t, n, testOperateToken, "POST", "/api/v1/overrides", body, &pv); got != 200 {
		t.Fatalf("preview: %d", got)
	}
	asia := slices.ContainsFunc(pv.Moves, func(m admin.Move) bool { return m.Scope == "continent" && m.Code == "AS" && m.From == "ap-southeast" })
	if !hasMove(pv.Moves, "country", "JP", "ap-southeast", "us-east") || !asia {
		t.Errorf("preview of draining ap-southeast: %+v", pv.Moves)
	}
	for _, m := range pv.Moves {
		if m.Scope == "country" && m.Code != "JP" {
			t.Errorf("a country without a geo rule in the preview: %+v", m)
		}
	}

	// Draining eu-west everywhere moves no country: the only country rule
	// (JP) does not name it.
	pv = admin.Preview{}
	body = map[string]any{"action": "drain", "pool": "*", "region": "eu-west", "reason": "x", "dry_run": true}
	if got := call(t, n, testOperateToken, "POST", "/api/v1/overrides", body, &pv); got != 200 {
		t.Fatalf("preview: %d", got)
	}
	if slices.ContainsFunc(pv.Moves, func(m admin.Move) bool { return m.Scope == "country" }) || !hasMove(pv.Moves, "continent", "EU", "eu-west", "us-east") {
		t.Errorf("preview of draining eu-west everywhere: %+v", pv.Moves)
	}

	// An expiring pin: in force at once, then gone by itself, audited and
	// reported.
	pin := map[string]any{"action": "pin", "pool": www, "region": "ap-southeast", "reason": "drill", "expires_in": "500ms"}
	if got := call(t, n, testOperateToken, "POST", "/api/v1/overrides", pin, nil); got != 200 {
		t.Fatalf("pin: %d", got)
	}
	if got, _ := askEU(t, n); got != "203.0.113.10" {
		t.Fatalf("after the pin: %s", got)
	}
	waitAnswer(t, n, "198.51.100.10", 5*time.Second)
	id := "pin:" + www
	waitFor(t, 5*time.Second, func() error {
		if !hasAudit(auditLines(t, filepath.Join(dir, "audit.jsonl")), "override.expire", id, 0) {
			return fmt.Errorf("the expiry is not audited")
		}
		return nil
	})
	var types []admin.EventType
	for _, ev := range n.admin.Events().Recent(time.Hour) {
		types = append(types, ev.Type)
	}
	if !slices.Contains(types, admin.EventOverrideSet) || !slices.Contains(types, admin.EventOverrideExpired) {
		t.Errorf("events: %v, want override.set and override.expired", types)
	}

	// A bad zone file: 400 naming file:line, the last good config serves.
	zf := filepath.Join(dir, "zones", "gslb.example.com.toml")
	good, err := os.ReadFile(zf)
	must(t, err)
	must(t, os.WriteFile(zf, append(good, []byte("\n[pools.bad]\npolicy = \"closest\"\n")...), 0o644))
	req, err := http.NewRequest("POST", "http://"+n.AdminAddr()+"/api/v1/reload", nil)
	must(t, err)
	req.Header.Set("Authorization", "Bearer "+testOperateToken)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(msg), "gslb.example.com.toml:") {
		t.Errorf("reload of a bad file: %d %s, want 400 with file:line", resp.StatusCode, msg)
	}
	if got, _ := askEU(t, n); got != "198.51.100.10" {
		t.Errorf("after a rejected reload: %s", got)
	}
	must(t, os.WriteFile(zf, good, 0o644))
	if got := call(t, n, testOperateToken, "POST", "/api/v1/reload", nil, nil); got != 200 {
		t.Errorf("reload of the good file: %d", got)
	}

	// Status alone: one member, every pool, where Europe goes.
	var st admin.Status
	if got := call(t, n, testReadToken, "GET", "/api/v1/status", nil, &st); got != 200 {
		t.Fatalf("status: %d", got)
	}
	if len(st.Members) != 1 || len(st.Pools) != 3 || st.Pools[len(st.Pools)-1].Answering["EU"] != "eu-west" {
		t.Errorf("status: %+v", st)
	}
}

// TestMeasureAdminFailover measures, over 10 runs, the time from a
// failover call to one node's admin API to the last of three nodes
// answering by it (LAN gossip profile). Run by hand:
// MERIDIAN_MEASURE=1 go test ./node -run MeasureAdminFailover -v
func TestMeasureAdminFailover(t *testing.T) {
	if os.Getenv("MERIDIAN_MEASURE") == "" {
		t.Skip("set MERIDIAN_MEASURE=1 to measure")
	}
	const runs = 10
	c := newTestClusterExtra(t, 3, "1s", 3, 2, 0, adminLines(""))
	c.waitAll("198.51.100.10")
	www := "www.gslb.example.com."
	var took, local []time.Duration
	for i := range runs {
		n := c.nodes[i%3].Node
		start := time.Now()
		pin := map[string]any{"action": "pin", "pool": www, "region": "ap-southeast", "reason": "measure"}
		if got := call(t, n, testOperateToken, "POST", "/api/v1/overrides", pin, nil); got != 200 {
			t.Fatalf("failover: %d", got)
		}
		local = append(local, time.Since(start))
		for _, cn := range c.nodes {
			waitAnswer(t, cn.Node, "203.0.113.10", 10*time.Second)
		}
		took = append(took, time.Since(start))
		if got := call(t, c.nodes[(i+1)%3].Node, testOperateToken, "DELETE", "/api/v1/overrides/pin:"+www, nil, nil); got != 200 {
			t.Fatalf("clear: %d", got)
		}
		c.waitAll("198.51.100.10")
	}
	t.Logf("failover call answered (the called node already answering by it): %s", medianMax(local))
	t.Logf("failover call -> last of 3 nodes answering by it: %s", medianMax(took))
}
