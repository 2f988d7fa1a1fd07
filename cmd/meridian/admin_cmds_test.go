package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/meridian-gtm/meridian/admin"
	"github.com/meridian-gtm/meridian/zones"
	"github.com/miekg/dns"
)

const (
	readToken    = "mrd_cli-read-token-for-tests-aaaaaaaaaaaaaaaaaaaaaaaa"
	operateToken = "mrd_cli-operate-token-for-tests-bbbbbbbbbbbbbbbbbbbbb"
	testPool     = "www.gslb.example.com."
)

// fakeNode is an admin.Backend with one pool in three regions.
type fakeNode struct {
	mu        sync.Mutex
	overrides map[string]admin.Override
	sets      []admin.Override
	clears    []string
	previews  int
	reloads   int
	setErr    error  // SetOverride's answer
	conflict  string // Preview's
}

var _ admin.Backend = (*fakeNode)(nil)

func (f *fakeNode) Status(context.Context) (admin.Status, error) {
	checked := time.Now().Add(-3 * time.Second)
	return admin.Status{
		Node: "fra-1",
		Members: []admin.Member{
			{Name: "fra-1", Region: "eu-west", State: "alive", Version: "1.2.0", ConfigHash: "3f2a9c0d1e2b4a5c6d7e"},
			{Name: "iad-1", Region: "us-east", State: "suspect", Version: "1.2.0", ConfigHash: "3f2a9c0d1e2b4a5c6d7e"},
		},
		Pools: []admin.PoolStatus{{
			Pool: testPool,
			Regions: []admin.RegionStatus{
				{Region: "eu-west", Verdict: "up", Observers: []admin.ObserverVerdict{
					{Node: "fra-1", Verdict: "up", Checked: checked},
					{Node: "iad-1", Verdict: "up", Checked: checked, Lagging: true},
				}},
				{Region: "us-east", Verdict: "down", Reason: "2 of 2 observers", Override: "drained", Observers: []admin.ObserverVerdict{
					{Node: "fra-1", Verdict: "down", Reason: "HTTP 503 after 12ms", Checked: checked},
				}},
			},
			Answering: map[string]string{"NA": "eu-west", "EU": "eu-west"},
		}},
		Overrides:       f.Overrides(),
		ConfigAgreement: true,
	}, nil
}

func (f *fakeNode) Overrides() []admin.Override {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []admin.Override
	for _, o := range f.overrides {
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b admin.Override) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (f *fakeNode) SetOverride(_ context.Context, o admin.Override) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets = append(f.sets, o)
	if f.setErr != nil {
		return f.setErr
	}
	o.Force = false
	f.overrides[o.ID] = o
	return nil
}

func (f *fakeNode) ClearOverride(_ context.Context, id, _, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clears = append(f.clears, id)
	if _, ok := f.overrides[id]; !ok {
		return fmt.Errorf("clear %s: %w", id, admin.ErrNotFound)
	}
	delete(f.overrides, id)
	return nil
}

func (f *fakeNode) Preview(_ context.Context, o admin.Override) (admin.Preview, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.previews++
	return admin.Preview{Override: o, Conflict: f.conflict, Moves: []admin.Move{
		{Pool: o.Pool, Scope: "continent", Code: "EU", From: "eu-west", To: o.Region},
		{Pool: o.Pool, Scope: "country", Code: "JP", From: "ap-southeast", To: o.Region},
	}}, nil
}

func (f *fakeNode) Explain(_ context.Context, client netip.Prefix, name string, qtype uint16) (*zones.Explanation, error) {
	rr, _ := dns.NewRR(name + " 30 IN A 192.0.2.10")
	return &zones.Explanation{Client: client, Name: name, Type: qtype, Result: zones.Result{Answer: []dns.RR{rr}, Region: "eu-west"}}, nil
}

func (f *fakeNode) Reload(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads++
	return nil
}

func (f *fakeNode) Metrics() http.Handler { return http.NotFoundHandler() }
func (f *fakeNode) Ready() (bool, string) { return true, "" }

// apiServer is an admin API over a fakeNode on a loopback socket.
type apiServer struct {
	*fakeNode
	url string

	mu       sync.Mutex
	requests []string // "METHOD escaped-path?query body"
}

func (s *apiServer) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		return ""
	}
	return s.requests[len(s.requests)-1]
}

func newAPIServer(t *testing.T, tlsServer bool) *apiServer {
	t.Helper()
	cfg := admin.Config{
		Listen: "127.0.0.1:8053",
		Tokens: []admin.TokenConfig{
			{ID: "reader", Role: admin.RoleRead, Hash: admin.HashToken(readToken)},
			{ID: "alice", Role: admin.RoleOperate, Hash: admin.HashToken(operateToken)},
		},
		AuditFile: filepath.Join(t.TempDir(), "audit.jsonl"),
	}
	f := &fakeNode{overrides: map[string]admin.Override{}}
	srv, err := admin.NewServer(cfg, f, slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	s := &apiServer{fakeNode: f}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		s.mu.Lock()
		s.requests = append(s.requests, strings.TrimSpace(r.Method+" "+r.URL.RequestURI()+" "+string(b)))
		s.mu.Unlock()
		srv.Handler().ServeHTTP(w, r)
	})
	hs := httptest.NewUnstartedServer(h)
	hs.Config.ErrorLog = log.New(io.Discard, "", 0) // TestCA's refused handshakes
	if tlsServer {
		hs.StartTLS()
	} else {
		hs.Start()
	}
	t.Cleanup(hs.Close)
	s.url = hs.URL
	t.Setenv(envAdmin, hs.URL)
	t.Setenv(envToken, operateToken)
	t.Setenv(envCA, "")
	if tlsServer {
		ca := filepath.Join(t.TempDir(), "ca.pem")
		os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw}), 0o600)
		t.Setenv(envCA, ca)
	}
	return s
}

// mustRun runs a command that must succeed.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := runCmd(args...)
	if code != 0 {
		t.Fatalf("%q: exit %d: %s", args, code, errOut)
	}
	return out
}

func wantIn(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}

func TestFailover(t *testing.T) {
	s := newAPIServer(t, false)
	out := mustRun(t, "failover", "-pool", "WWW.gslb.example.com", "-to", "us-east", "-reason", "DR test", "-expires", "90m")
	wantBody := `POST /api/v1/overrides {"action":"pin","pool":"WWW.gslb.example.com","region":"us-east","reason":"DR test","expires_in":"1h30m0s"}`
	if got := s.last(); got != wantBody {
		t.Errorf("request\n%s\nwant\n%s", got, wantBody)
	}
	if len(s.sets) != 1 || s.sets[0].ID != "pin:"+testPool || s.sets[0].Who != "alice" || s.sets[0].Force {
		t.Fatalf("backend got %+v", s.sets)
	}
	if d := time.Until(s.sets[0].ExpiresAt); d < 89*time.Minute || d > 90*time.Minute {
		t.Errorf("expires in %s, want 90m", d)
	}
	wantIn(t, "output", out, "set pin:"+testPool, "pin pool "+testPool+" to us-east", "by alice", "(in 1h", "undo with: meridian clear pin:"+testPool)

	mustRun(t, "failover", "-pool", testPool, "-to", "eu-west", "-reason", "back", "-force")
	if got := s.last(); !strings.Contains(got, `"force":true`) || strings.Contains(got, "expires_in") {
		t.Errorf("request %s: want force and no expiry", got)
	}
}

func TestDrainEveryPoolByDefault(t *testing.T) {
	s := newAPIServer(t, false)
	out := mustRun(t, "drain", "-region", "eu-west", "-reason", "maintenance")
	if got, want := s.last(), `POST /api/v1/overrides {"action":"drain","pool":"*","region":"eu-west","reason":"maintenance"}`; got != want {
		t.Errorf("request\n%s\nwant\n%s", got, want)
	}
	wantIn(t, "output", out, "set drain:*:eu-west", "drain eu-west in every pool", "expires never", "undo with: meridian undrain -region eu-west\n")

	out = mustRun(t, "drain", "-region", "eu-west", "-pool", "www.gslb.example.com", "-reason", "maintenance")
	wantIn(t, "output", out, "set drain:"+testPool+":eu-west", "undo with: meridian undrain -region eu-west -pool "+testPool)
}

func TestUndrainAndClear(t *testing.T) {
	s := newAPIServer(t, false)
	mustRun(t, "drain", "-region", "eu-west", "-reason", "maintenance")
	mustRun(t, "drain", "-region", "us-east", "-pool", "WWW.gslb.example.com", "-reason", "maintenance")
	mustRun(t, "failover", "-pool", testPool, "-to", "us-east", "-reason", "DR")

	out := mustRun(t, "undrain", "-region", "eu-west", "-reason", "done")
	if got := s.last(); got != "DELETE /api/v1/overrides/drain:%2A:eu-west?reason=done" {
		t.Errorf("request %s", got)
	}
	wantIn(t, "output", out, "cleared drain:*:eu-west: drain eu-west in every pool, set by alice")
	mustRun(t, "undrain", "-region", "us-east", "-pool", "www.gslb.example.com")
	// Flags after the ID are taken too.
	mustRun(t, "clear", "pin:"+testPool, "-reason", "over")
	if got := s.last(); got != "DELETE /api/v1/overrides/pin:"+testPool+"?reason=over" {
		t.Errorf("request %s", got)
	}
	want := []string{"drain:*:eu-west", "drain:" + testPool + ":us-east", "pin:" + testPool}
	if !slices.Equal(s.clears, want) || len(s.Overrides()) != 0 {
		t.Errorf("cleared %q, want %q; left %+v", s.clears, want, s.Overrides())
	}

	code, _, errOut := runCmd("clear", "pin:nope.")
	if code != 1 {
		t.Errorf("clear of an unknown ID: exit %d", code)
	}
	wantIn(t, "stderr", errOut, "meridian: not found: clear pin:nope.", "(HTTP 404)", "meridian overrides")
}

func TestDryRun(t *testing.T) {
	s := newAPIServer(t, false)
	s.conflict = "us-east is down: it would take every client to a down region"
	out := mustRun(t, "failover", "-pool", testPool, "-to", "us-east", "-reason", "what if", "-dry-run")
	if got := s.last(); !strings.Contains(got, `"dry_run":true`) {
		t.Errorf("request %s lacks dry_run", got)
	}
	if len(s.sets) != 0 || s.previews != 1 {
		t.Errorf("sets %d, previews %d", len(s.sets), s.previews)
	}
	wantIn(t, "output", out, "dry run, nothing changed", "pin pool "+testPool+" to us-east",
		"POOL", "continent  EU    eu-west       →  us-east", "country    JP    ap-southeast  →  us-east",
		"conflict: us-east is down", "-force passes it")
}

func TestJSONOutput(t *testing.T) {
	newAPIServer(t, false)
	for _, args := range [][]string{
		{"failover", "-json", "-pool", testPool, "-to", "us-east", "-reason", "DR"},
		{"drain", "-json", "-region", "eu-west", "-reason", "x", "-dry-run"},
		{"status", "-json"},
		{"overrides", "-json"},
		{"audit", "-json"},
		{"reload", "-json"},
		{"explain", "-live", "-json", "-client", "192.0.2.1", "www.gslb.example.com"},
		{"clear", "-json", "pin:" + testPool},
	} {
		out := mustRun(t, args...)
		var v map[string]any
		if err := json.Unmarshal([]byte(out), &v); err != nil || len(v) == 0 {
			t.Errorf("%q: not a JSON object: %v\n%s", args, err, out)
		}
	}
	var st admin.Status
	if err := json.Unmarshal([]byte(mustRun(t, "status", "-json")), &st); err != nil || st.Node != "fra-1" || len(st.Overrides) != 0 {
		t.Errorf("status -json: %+v, %v", st, err)
	}
}

func TestMissingToken(t *testing.T) {
	s := newAPIServer(t, false)
	t.Setenv(envToken, "")
	code, out, errOut := runCmd("drain", "-region", "eu-west", "-reason", "x")
	if code != 1 || out != "" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	wantIn(t, "stderr", errOut, "meridian: unauthorized: a bearer token is required", "(HTTP 401)", "$MERIDIAN_TOKEN", "-token-file")
	if len(s.sets) != 0 {
		t.Errorf("backend got %+v", s.sets)
	}
}

func TestTokenFile(t *testing.T) {
	s := newAPIServer(t, false)
	t.Setenv(envToken, "mrd_wrong")
	path := filepath.Join(t.TempDir(), "token")
	os.WriteFile(path, []byte(operateToken+"\n"), 0o600)
	mustRun(t, "reload", "-token-file", path, "-reason", "new zone")
	if s.reloads != 1 {
		t.Errorf("reloads %d", s.reloads)
	}
	// The wrong token from the environment: refused, and never shown.
	code, out, errOut := runCmd("reload")
	if code != 1 || strings.Contains(out+errOut, "mrd_wrong") {
		t.Errorf("exit %d, output %q %q", code, out, errOut)
	}
	wantIn(t, "stderr", errOut, "the token is not valid")
}

func TestConflict(t *testing.T) {
	s := newAPIServer(t, false)
	s.setErr = fmt.Errorf("drain eu-west: it is the last healthy region of %s: %w", testPool, admin.ErrConflict)
	code, _, errOut := runCmd("drain", "-region", "eu-west", "-pool", testPool, "-reason", "x")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	wantIn(t, "stderr", errOut, "meridian: conflict: drain eu-west: it is the last healthy region", "(HTTP 409)", "-force", "-reason", "-dry-run")
}

func TestReadRoleCannotChange(t *testing.T) {
	newAPIServer(t, false)
	t.Setenv(envToken, readToken)
	code, _, errOut := runCmd("reload")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	wantIn(t, "stderr", errOut, "(HTTP 403)", "operate role")
}

func TestToken(t *testing.T) {
	code, out, errOut := runCmd("token", "-role", "operate", "-id", "alice@ops")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	tok, block, ok := strings.Cut(out, "\n\n")
	if !ok || !strings.HasPrefix(tok, admin.TokenPrefix) {
		t.Fatalf("output is not a token, a blank line and a block:\n%s", out)
	}
	wantIn(t, "stderr", errOut, "shown this once")
	if strings.Contains(errOut, tok) {
		t.Error("stderr shows the token")
	}
	var cfg struct {
		Admin struct{ Tokens []admin.TokenConfig }
	}
	md, err := toml.Decode(block, &cfg)
	if err != nil || len(md.Undecoded()) != 0 {
		t.Fatalf("block %q: %v, undecoded %v", block, err, md.Undecoded())
	}
	if len(cfg.Admin.Tokens) != 1 {
		t.Fatalf("tokens %+v", cfg.Admin.Tokens)
	}
	tc := cfg.Admin.Tokens[0]
	if tc.ID != "alice@ops" || tc.Role != admin.RoleOperate || tc.Hash != admin.HashToken(tok) {
		t.Errorf("token config %+v, want the hash %s", tc, admin.HashToken(tok))
	}
	ac := admin.Config{Listen: "127.0.0.1:8053", Tokens: cfg.Admin.Tokens, AuditFile: "audit.jsonl"}
	if err := ac.Validate(); err != nil {
		t.Errorf("the block does not validate: %v", err)
	}

	// The default ID is the role and a suffix; two tokens differ.
	_, out1, _ := runCmd("token", "-role", "read")
	_, out2, _ := runCmd("token", "-role", "read")
	wantIn(t, "output", out1, "\nid = \"read-", "\nrole = \"read\"\n")
	if out1 == out2 {
		t.Error("two tokens are the same")
	}
}

func TestStatus(t *testing.T) {
	newAPIServer(t, false)
	mustRun(t, "drain", "-region", "us-east", "-reason", "maintenance", "-expires", "2h")
	out := mustRun(t, "status")
	wantIn(t, "status", out,
		"as node fra-1 sees it",
		"MEMBER  REGION   STATE    VERSION  CONFIG",
		"fra-1   eu-west  alive    1.2.0    3f2a9c0d1e2b",
		"iad-1   us-east  suspect",
		"isolated: no   self-distrust: no   config agreement: yes",
		"pool "+testPool,
		"eu-west  up      -",
		"us-east  down    drained   ",
		"fra-1     down     3s   HTTP 503 after 12ms",
		"(lagging)",
		"answering: EU eu-west, NA eu-west",
		"overrides:",
		"drain:*:us-east  alice",
		"maintenance",
		"(in 2h)",
	)
	out = mustRun(t, "overrides")
	wantIn(t, "overrides", out, "ID               WHO    WHEN", "drain:*:us-east  alice")
}

func TestReloadAndAudit(t *testing.T) {
	newAPIServer(t, false)
	wantIn(t, "reload", mustRun(t, "reload", "-reason", "new zone"), "reloaded")
	out := mustRun(t, "audit", "-since", "1h", "-limit", "5")
	wantIn(t, "audit", out, "TIME", "alice", "reload", "config", "attempt", "200", "new zone")
	if code, _, errOut := runCmd("audit", "-since", "yesterday"); code != 2 || !strings.Contains(errOut, "RFC 3339") {
		t.Errorf("audit -since yesterday: exit %d, %q", code, errOut)
	}
}

func TestExplainLive(t *testing.T) {
	s := newAPIServer(t, false)
	out := mustRun(t, "explain", "-live", "-client", "192.0.2.0/24", "www.gslb.example.com", "AAAA")
	if got := s.last(); got != "GET /api/v1/explain?client=192.0.2.0%2F24&name=www.gslb.example.com&type=AAAA" {
		t.Errorf("request %s", got)
	}
	wantIn(t, "output", out, "health:    live", "client:", "192.0.2.0/24")
}

// -ca trusts the API's certificate; without it, https fails.
func TestCA(t *testing.T) {
	newAPIServer(t, true)
	wantIn(t, "overrides", mustRun(t, "overrides"), "overrides: none")
	t.Setenv(envCA, "")
	if code, _, errOut := runCmd("overrides"); code != 1 || !strings.Contains(errOut, "certificate") {
		t.Errorf("without -ca: exit %d, %q", code, errOut)
	}
}

func TestAdminUsageErrors(t *testing.T) {
	newAPIServer(t, false)
	for _, args := range [][]string{
		{"failover", "-pool", testPool, "-to", "us-east"}, // no reason
		{"failover", "-to", "us-east", "-reason", "x"},    // no pool
		{"failover", "-pool", "*", "-to", "us-east", "-reason", "x"},
		{"drain", "-reason", "x"},
		{"drain", "-region", "eu-west", "-reason", "x", "extra"},
		{"drain", "-region", "eu-west", "-reason", "x", "-bogus"},
		{"undrain"},
		{"clear"},
		{"clear", "a", "b"},
		{"token"},
		{"token", "-role", "admin"},
		{"token", "-role", "read", "-id", `a"b`},
		{"status", "-admin", "ftp://x"},
		{"status", "-timeout", "0s"},
		{"audit", "-limit", "-1"},
		{"explain", "-live", "-probe", "-client", "192.0.2.1", "www.gslb.example.com"},
		{"explain", "-config", demo, "-json", "-client", "192.0.2.1", "www.gslb.example.com"},
	} {
		if code, _, errOut := runCmd(args...); code != 2 {
			t.Errorf("%q: exit %d, want 2: %s", args, code, errOut)
		}
	}
}

func TestSpan(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                  "0s",
		1400 * time.Millisecond:            "1s",
		45 * time.Second:                   "45s",
		90 * time.Minute:                   "1h30m",
		2*time.Hour - 200*time.Millisecond: "2h",
		26*time.Hour + 5*time.Minute:       "26h5m",
		3*time.Minute + 40*time.Second:     "4m",
	} {
		if got := span(d); got != want {
			t.Errorf("span(%s) = %q, want %q", d, got, want)
		}
	}
}
