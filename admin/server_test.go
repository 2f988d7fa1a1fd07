package admin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const setBody = `{"action":"drain","pool":"www.example.com","region":"us-east","reason":"maintenance"}`

// route is one call of every route the API has.
type route struct {
	method, target, body string
	role                 Role   // "" for open routes
	mutates              string // the backend call a successful request makes
}

var allRoutes = []route{
	{"GET", "/healthz", "", "", ""},
	{"GET", "/readyz", "", "", ""},
	{"GET", "/metrics", "", RoleRead, ""},
	{"GET", "/api/v1/status", "", RoleRead, ""},
	{"GET", "/api/v1/overrides", "", RoleRead, ""},
	{"POST", "/api/v1/overrides", setBody, RoleOperate, "set drain:www.example.com.:us-east"},
	{"POST", "/api/v1/overrides", `{"action":"pin","pool":"www.example.com.","region":"us-east","reason":"x","dry_run":true}`, RoleOperate, ""},
	{"DELETE", "/api/v1/overrides/pin:www.example.com.", "", RoleOperate, "clear pin:www.example.com."},
	{"GET", "/api/v1/explain?client=192.0.2.1&name=www.example.com&type=A", "", RoleRead, ""},
	{"POST", "/api/v1/reload", "", RoleOperate, "reload"},
	{"GET", "/api/v1/audit", "", RoleRead, ""},
}

// TestRoutesByToken calls every route with no token, a wrong one, the
// read and the operate token: the status must follow the route's role,
// and nothing may change unless the call succeeds on a mutating route.
func TestRoutesByToken(t *testing.T) {
	callers := []struct {
		name, token, id string
		role            Role
	}{
		{"no token", "", "", ""},
		{"wrong token", wrongToken, "", ""},
		{"read", readToken, "reader", RoleRead},
		{"operate", operateToken, "operator", RoleOperate},
	}
	for _, rt := range allRoutes {
		for _, c := range callers {
			t.Run(rt.method+" "+rt.target+" "+c.name, func(t *testing.T) {
				cfg := testConfig(t)
				ts := newTestServer(t, cfg)
				w := ts.do(rt.method, rt.target, c.token, rt.body)
				want := http.StatusOK
				switch {
				case rt.role == "":
				case c.role == "":
					want = http.StatusUnauthorized
				case rt.role == RoleOperate && c.role == RoleRead:
					want = http.StatusForbidden
				}
				if w.Code != want {
					t.Fatalf("status %d, want %d; body %s", w.Code, want, w.Body)
				}
				if want == http.StatusUnauthorized && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer ") {
					t.Errorf("401 without a Bearer WWW-Authenticate: %q", w.Header().Get("WWW-Authenticate"))
				}
				if want != http.StatusOK {
					apiErr(t, w)
				}
				var wantCalls []string
				if want == http.StatusOK && rt.mutates != "" {
					wantCalls = []string{rt.mutates}
				}
				if got := ts.fake.mutations(); !slices.Equal(got, wantCalls) {
					t.Errorf("backend mutations %q, want %q", got, wantCalls)
				}
				audit := auditLines(t, cfg.AuditFile)
				if rt.role == RoleOperate && (want != http.StatusOK || rt.mutates != "") {
					// Every attempt at a mutation is audited, refused or not.
					if len(audit) == 0 {
						t.Fatalf("no audit line")
					}
					last := audit[len(audit)-1]
					if last.Result == nil || last.Result.Status != want || last.TokenID != c.id || last.Source != "127.0.0.1:40000" {
						t.Errorf("last audit line %+v, want status %d token_id %q", last, want, c.id)
					}
				}
				raw, _ := os.ReadFile(cfg.AuditFile)
				for _, tok := range []string{readToken, operateToken, wrongToken} {
					if strings.Contains(string(raw), tok) || strings.Contains(ts.logs.String(), tok) {
						t.Errorf("a token appears in the audit log or the logs")
					}
				}
			})
		}
	}
}

func TestHostAndOrigin(t *testing.T) {
	tests := []struct {
		name   string
		method string
		target string
		hdr    []string
		want   int
	}{
		{"loopback host", "GET", "/api/v1/status", []string{"Host", "127.0.0.1:8053"}, 200},
		{"localhost", "GET", "/api/v1/status", []string{"Host", "LOCALHOST:8053"}, 200},
		{"ipv6 loopback", "GET", "/api/v1/status", []string{"Host", "[::1]:8053"}, 200},
		{"rebound name", "GET", "/api/v1/status", []string{"Host", "evil.example:8053"}, 403},
		{"rebound name, mutation", "POST", "/api/v1/reload", []string{"Host", "evil.example"}, 403},
		{"rebound name, unknown path", "GET", "/nothing", []string{"Host", "evil.example"}, 403},
		{"rebound name, wrong method", "PUT", "/api/v1/status", []string{"Host", "evil.example"}, 403},
		{"same origin", "POST", "/api/v1/reload", []string{"Origin", "http://127.0.0.1:8053"}, 200},
		{"cross origin", "POST", "/api/v1/reload", []string{"Origin", "https://evil.example"}, 403},
		{"null origin", "POST", "/api/v1/reload", []string{"Origin", "null"}, 403},
		{"healthz from any host", "GET", "/healthz", []string{"Host", "10.1.2.3:8053"}, 200},
		{"readyz from any host", "GET", "/readyz", []string{"Host", "10.1.2.3:8053"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, testConfig(t))
			w := ts.do(tt.method, tt.target, operateToken, "", tt.hdr...)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if tt.want == 403 {
				apiErr(t, w)
				if m := ts.fake.mutations(); len(m) != 0 {
					t.Errorf("backend mutated: %q", m)
				}
			}
		})
	}
}

func TestAllowedHostsConfigured(t *testing.T) {
	cfg := testConfig(t)
	cfg.AllowedHosts = []string{"admin.example.net"}
	ts := newTestServer(t, cfg)
	if w := ts.do("GET", "/api/v1/status", readToken, "", "Host", "admin.example.net:8053"); w.Code != 200 {
		t.Errorf("configured host: %d", w.Code)
	}
	if w := ts.do("GET", "/api/v1/status", readToken, "", "Host", "localhost:8053"); w.Code != 403 {
		t.Errorf("host left out of allowed_hosts: %d, want 403", w.Code)
	}
}

func TestBadRequests(t *testing.T) {
	tests := []struct {
		name, method, target, body string
		want                       int
		detail                     string
	}{
		{"not JSON", "POST", "/api/v1/overrides", `{"action":`, 400, "body"},
		{"empty body", "POST", "/api/v1/overrides", ``, 400, "empty"},
		{"unknown field", "POST", "/api/v1/overrides", `{"action":"pin","pool":"a.","region":"b","reason":"c","extra":1}`, 400, "unknown field"},
		{"two values", "POST", "/api/v1/overrides", `{"action":"pin","pool":"a.","region":"b","reason":"c"} {}`, 400, "more than one"},
		{"unknown action", "POST", "/api/v1/overrides", `{"action":"nuke","pool":"a.","region":"b","reason":"c"}`, 400, "action"},
		{"no pool", "POST", "/api/v1/overrides", `{"action":"pin","region":"b","reason":"c"}`, 400, "pool"},
		{"pin every pool", "POST", "/api/v1/overrides", `{"action":"pin","pool":"*","region":"b","reason":"c"}`, 400, "pool"},
		{"bad pool", "POST", "/api/v1/overrides", `{"action":"pin","pool":"a/b","region":"b","reason":"c"}`, 400, "pool"},
		{"no region", "POST", "/api/v1/overrides", `{"action":"pin","pool":"a.","reason":"c"}`, 400, "region"},
		{"no reason", "POST", "/api/v1/overrides", `{"action":"pin","pool":"a.","region":"b","reason":"  "}`, 400, "reason"},
		{"bad expiry", "POST", "/api/v1/overrides", `{"action":"pin","pool":"a.","region":"b","reason":"c","expires_in":"-5m"}`, 400, "expires_in"},
		{"too large", "POST", "/api/v1/overrides", `{"action":"pin","pool":"a.","region":"b","reason":"` + strings.Repeat("x", 200) + `"}`, 413, "over 128 bytes"},
		{"bad client", "GET", "/api/v1/explain?client=nope&name=www.example.com", "", 400, "client"},
		{"bad type", "GET", "/api/v1/explain?client=192.0.2.1&name=www.example.com&type=BOGUS", "", 400, "type"},
		{"no name", "GET", "/api/v1/explain?client=192.0.2.1", "", 400, "name"},
		{"bad since", "GET", "/api/v1/audit?since=yesterday", "", 400, "since"},
		{"bad limit", "GET", "/api/v1/audit?limit=-1", "", 400, "limit"},
		{"unknown path", "GET", "/api/v1/nothing", "", 404, "no route"},
		{"wrong method", "PUT", "/api/v1/overrides", "", 405, "allowed"},
		{"wrong method, open route", "POST", "/healthz", "", 405, "allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.MaxBodyBytes = 128
			ts := newTestServer(t, cfg)
			w := ts.do(tt.method, tt.target, operateToken, tt.body)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			e := apiErr(t, w)
			if !strings.Contains(e.Detail, tt.detail) {
				t.Errorf("detail %q does not mention %q", e.Detail, tt.detail)
			}
			if m := ts.fake.mutations(); len(m) != 0 {
				t.Errorf("backend mutated: %q", m)
			}
			if tt.method == "POST" && tt.want < 405 {
				a := auditLines(t, cfg.AuditFile)
				if len(a) != 1 || a[0].Result.Status != tt.want || a[0].Action != "override.set" {
					t.Errorf("audit of the refused attempt: %+v", a)
				}
			}
		})
	}
}

func TestMethodNotAllowedAllow(t *testing.T) {
	ts := newTestServer(t, testConfig(t))
	for target, allow := range map[string]string{
		"/api/v1/overrides":   "GET, POST",
		"/api/v1/overrides/x": "DELETE",
		"/api/v1/status":      "GET",
		"/api/v1/reload":      "POST",
		"/metrics":            "GET",
		"/api/v1/events":      "GET",
	} {
		w := ts.do("PATCH", target, operateToken, "")
		if w.Code != 405 || w.Header().Get("Allow") != allow {
			t.Errorf("PATCH %s: %d, Allow %q; want 405, %q", target, w.Code, w.Header().Get("Allow"), allow)
		}
	}
}

func TestBackendErrors(t *testing.T) {
	t.Run("conflict", func(t *testing.T) {
		ts := newTestServer(t, testConfig(t))
		ts.fake.setErr = fmt.Errorf("drain us-east: it is the last healthy region of www.example.com.: %w", ErrConflict)
		w := ts.do("POST", "/api/v1/overrides", operateToken, setBody)
		if w.Code != http.StatusConflict {
			t.Fatalf("status %d, want 409", w.Code)
		}
		if e := apiErr(t, w); e.Err != "conflict" || !strings.Contains(e.Detail, "last healthy region") {
			t.Errorf("error %+v", e)
		}
	})
	t.Run("unknown override", func(t *testing.T) {
		ts := newTestServer(t, testConfig(t))
		w := ts.do("DELETE", "/api/v1/overrides/drain:nope.:x", operateToken, "")
		if w.Code != http.StatusNotFound {
			t.Fatalf("status %d, want 404", w.Code)
		}
		apiErr(t, w)
	})
	t.Run("bad config", func(t *testing.T) {
		ts := newTestServer(t, testConfig(t))
		ts.fake.reloadErr = fmt.Errorf("reload: zones/www.toml:12:3: unknown key %q: %w", "polcy", ErrInvalid)
		w := ts.do("POST", "/api/v1/reload", operateToken, "")
		if w.Code != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", w.Code)
		}
		if e := apiErr(t, w); !strings.Contains(e.Detail, "zones/www.toml:12:3") {
			t.Errorf("detail %q lacks file:line", e.Detail)
		}
	})
	t.Run("other", func(t *testing.T) {
		ts := newTestServer(t, testConfig(t))
		ts.fake.reloadErr = errors.New("disk on fire")
		if w := ts.do("POST", "/api/v1/reload", operateToken, ""); w.Code != 500 {
			t.Fatalf("status %d, want 500", w.Code)
		}
	})
}

func TestSetOverridePassesExpiryAndForce(t *testing.T) {
	ts := newTestServer(t, testConfig(t))
	w := ts.do("POST", "/api/v1/overrides", operateToken,
		`{"action":"pin","pool":"WWW.Example.com","region":"eu-west","reason":" DR test ","expires_in":"90m","force":true}`)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	want := Override{ID: "pin:www.example.com.", Action: ActionPin, Pool: "www.example.com.", Region: "eu-west",
		Who: "operator", Why: "DR test", When: testTime, ExpiresAt: testTime.Add(90 * time.Minute), Force: true}
	if len(ts.fake.sets) != 1 || ts.fake.sets[0] != want {
		t.Fatalf("backend got %+v, want %+v", ts.fake.sets, want)
	}
	var resp OverrideResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.Override.ID != want.ID {
		t.Errorf("response %s: %v", w.Body, err)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	cfg := testConfig(t)
	ts := newTestServer(t, cfg)
	w := ts.do("POST", "/api/v1/overrides", operateToken,
		`{"action":"pin","pool":"www.example.com.","region":"us-east","reason":"what if","dry_run":true}`)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var p Preview
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || len(p.Moves) != 1 || p.Moves[0].To != "us-east" {
		t.Fatalf("preview %s: %v", w.Body, err)
	}
	if len(ts.fake.previews) != 1 || len(ts.fake.mutations()) != 0 {
		t.Errorf("previews %d, mutations %q", len(ts.fake.previews), ts.fake.mutations())
	}
	if a := auditLines(t, cfg.AuditFile); len(a) != 0 {
		t.Errorf("a dry run wrote audit lines: %+v", a)
	}
}

func TestReadyz(t *testing.T) {
	ts := newTestServer(t, testConfig(t))
	ts.fake.ready, ts.fake.why = false, "waiting for the first health round"
	w := ts.do("GET", "/readyz", "", "")
	if w.Code != 503 {
		t.Fatalf("status %d, want 503", w.Code)
	}
	if e := apiErr(t, w); e.Detail != "waiting for the first health round" {
		t.Errorf("detail %q", e.Detail)
	}
}

func TestExplain(t *testing.T) {
	ts := newTestServer(t, testConfig(t))
	w := ts.do("GET", "/api/v1/explain?client=192.0.2.0/24&name=WWW.example.com&type=aaaa", readToken, "")
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var x ExplainResult
	if err := json.Unmarshal(w.Body.Bytes(), &x); err != nil {
		t.Fatal(err)
	}
	if x.Client != "192.0.2.0/24" || x.Type != "AAAA" || x.Name != "WWW.example.com." || len(x.Answer) != 1 || !strings.Contains(x.Text, "client:") {
		t.Errorf("explain %+v", x)
	}
}

// TestServe serves on a real socket and shuts down when the context ends.
func TestServe(t *testing.T) {
	ts := newTestServer(t, testConfig(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ts.Serve(ctx, ln) }()
	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/api/v1/status", nil)
	req.Host = testHost
	req.Header.Set("Authorization", "Bearer "+readToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}

// TestServeTLS serves HTTPS when a certificate is configured.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: testTime.Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)

	cfg := testConfig(t)
	cfg.TLSCert, cfg.TLSKey = certPath, keyPath
	ts := newTestServer(t, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ts.Serve(ctx, ln) }()
	cert, _ := x509.ParseCertificate(der)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := client.Get("https://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Errorf("status %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	client.CloseIdleConnections()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}
