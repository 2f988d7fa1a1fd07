package admin

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// signIn trades token for a session cookie; it returns the cookie ("" when
// none was set) and the status.
func signIn(t *testing.T, ts *testServer, token string, hdr ...string) (string, int) {
	t.Helper()
	body, _ := json.Marshal(SessionRequest{Token: token})
	w := ts.do("POST", "/api/v1/session", "", string(body), hdr...)
	for _, c := range w.Result().Cookies() {
		if c.Name == SessionCookie {
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
				t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/", c)
			}
			return c.Value, w.Code
		}
	}
	return "", w.Code
}

func withCookie(id string, hdr ...string) []string {
	return append([]string{"Cookie", SessionCookie + "=" + id}, hdr...)
}

// A session cookie is issued only for a valid token, stands for that
// token's role, ends when idle, at its maximum age and at sign-out, and a
// change made with it must come from an allowed origin.
func TestSessions(t *testing.T) {
	ts := newTestServer(t, testConfig(t))
	now := testTime
	ts.now = func() time.Time { return now }

	for _, tok := range []string{"", wrongToken, "demo-read"} {
		if id, code := signIn(t, ts, tok); code != 401 || id != "" {
			t.Errorf("sign-in with %q: %d, cookie %q; want 401 and no cookie", tok, code, id)
		}
	}
	if id, code := signIn(t, ts, readToken, "Origin", "https://evil.example"); code != 403 || id != "" {
		t.Errorf("cross-origin sign-in: %d, cookie %q; want 403 and no cookie", code, id)
	}

	read, code := signIn(t, ts, readToken, "Origin", "http://127.0.0.1:8053")
	if code != 200 || read == "" {
		t.Fatalf("sign-in with the read token: %d", code)
	}
	if w := ts.do("GET", "/api/v1/status", "", "", withCookie(read)...); w.Code != 200 {
		t.Fatalf("status with the session: %d", w.Code)
	}
	var who SessionResponse
	w := ts.do("GET", "/api/v1/session", "", "", withCookie(read)...)
	if err := json.NewDecoder(w.Body).Decode(&who); err != nil || who.TokenID != "reader" || who.Role != RoleRead || !who.Expires.Equal(now.Add(SessionIdle)) {
		t.Errorf("whoami: %d %+v %v", w.Code, who, err)
	}
	set := `{"action":"pin","pool":"www.example.com","region":"eu-west","reason":"x"}`
	if w := ts.do("POST", "/api/v1/overrides", "", set, withCookie(read, "Origin", "http://127.0.0.1:8053")...); w.Code != 403 {
		t.Errorf("a change with a read session: %d, want 403", w.Code)
	}

	op, _ := signIn(t, ts, operateToken)
	for _, tc := range []struct {
		name string
		hdr  []string
		want int
	}{
		{"no Origin", nil, 403},
		{"another site", []string{"Origin", "https://evil.example"}, 403},
		{"this page", []string{"Origin", "http://127.0.0.1:8053"}, 200},
	} {
		before := len(ts.fake.mutations())
		w := ts.do("POST", "/api/v1/overrides", "", set, withCookie(op, tc.hdr...)...)
		if w.Code != tc.want {
			t.Errorf("change with an operate session, %s: %d, want %d", tc.name, w.Code, tc.want)
		}
		if changed := len(ts.fake.mutations()) != before; changed != (tc.want == 200) {
			t.Errorf("change with an operate session, %s: backend changed %v", tc.name, changed)
		}
	}

	// Idle for less than SessionIdle keeps it; for more ends it.
	now = now.Add(SessionIdle - time.Minute)
	if w := ts.do("GET", "/api/v1/status", "", "", withCookie(read)...); w.Code != 200 {
		t.Fatalf("after %s idle: %d", SessionIdle-time.Minute, w.Code)
	}
	now = now.Add(SessionIdle)
	if w := ts.do("GET", "/api/v1/status", "", "", withCookie(read)...); w.Code != 401 {
		t.Errorf("after %s idle: %d, want 401", SessionIdle, w.Code)
	}

	// In use all along, it still ends SessionMax after sign-in.
	busy, _ := signIn(t, ts, readToken)
	end := now.Add(SessionMax)
	for now.Before(end.Add(-20 * time.Minute)) {
		now = now.Add(20 * time.Minute)
		if w := ts.do("GET", "/api/v1/status", "", "", withCookie(busy)...); w.Code != 200 {
			t.Fatalf("a session in use, %s after sign-in: %d", now.Sub(end.Add(-SessionMax)), w.Code)
		}
	}
	now = end
	if w := ts.do("GET", "/api/v1/status", "", "", withCookie(busy)...); w.Code != 401 {
		t.Errorf("at the session's maximum age: %d, want 401", w.Code)
	}

	// Sign-out ends it and clears the cookie.
	out, _ := signIn(t, ts, readToken)
	w = ts.do("DELETE", "/api/v1/session", "", "", withCookie(out, "Origin", "http://127.0.0.1:8053")...)
	if w.Code != 200 || !strings.Contains(w.Header().Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("sign-out: %d, Set-Cookie %q", w.Code, w.Header().Get("Set-Cookie"))
	}
	if w := ts.do("GET", "/api/v1/status", "", "", withCookie(out)...); w.Code != 401 {
		t.Errorf("after sign-out: %d, want 401", w.Code)
	}
	// A bearer token still works beside sessions, and a wrong cookie is
	// no session.
	if w := ts.do("GET", "/api/v1/status", readToken, ""); w.Code != 200 {
		t.Errorf("bearer token: %d", w.Code)
	}
	if w := ts.do("GET", "/api/v1/status", "", "", withCookie("forged")...); w.Code != 401 {
		t.Errorf("forged cookie: %d", w.Code)
	}
	// Failed sign-ins are audited like other refusals.
	if !hasEntry(auditLines(t, ts.cfg.AuditFile), actionSession, 401) {
		t.Error("a failed sign-in is not audited")
	}
}

func hasEntry(es []Entry, action string, status int) bool {
	for _, e := range es {
		if e.Action == action && e.Result != nil && e.Result.Status == status {
			return true
		}
	}
	return false
}

// The page and its assets are served with a strict content policy, to
// allowed hosts only.
func TestDashboardAssets(t *testing.T) {
	ts := newTestServer(t, testConfig(t))
	w := ts.do("GET", "/", "", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `<script type="module" src="/assets/app.js">`) {
		t.Fatalf("GET /: %d", w.Code)
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	for file, ctype := range map[string]string{"app.js": "text/javascript", "style.css": "text/css", "world.js": "text/javascript"} {
		w := ts.do("GET", "/assets/"+file, "", "")
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), ctype) {
			t.Errorf("GET /assets/%s: %d %q", file, w.Code, w.Header().Get("Content-Type"))
		}
		if w2 := ts.do("GET", "/assets/"+file, "", "", "If-None-Match", w.Header().Get("ETag")); w2.Code != 304 {
			t.Errorf("GET /assets/%s with its ETag: %d, want 304", file, w2.Code)
		}
	}
	if w := ts.do("GET", "/assets/nope.js", "", ""); w.Code != 404 {
		t.Errorf("missing asset: %d", w.Code)
	}
	if w := ts.do("GET", "/", "", "", "Host", "rebound.example"); w.Code != 403 {
		t.Errorf("page on a foreign Host: %d, want 403", w.Code)
	}
	if w := ts.do("POST", "/assets/app.js", "", ""); w.Code != 405 {
		t.Errorf("POST an asset: %d, want 405", w.Code)
	}
}
