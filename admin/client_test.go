package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// clientOf serves ts over a real socket and returns a client of it with
// token.
func clientOf(t *testing.T, ts *testServer, token string) *Client {
	t.Helper()
	hs := httptest.NewServer(ts.Handler())
	t.Cleanup(hs.Close)
	c, err := NewClient(hs.URL, token, hs.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewClient(t *testing.T) {
	for _, tc := range []struct {
		addr, base string
	}{
		{"127.0.0.21:8053", "http://127.0.0.21:8053"},
		{"[::1]:8053", "http://[::1]:8053"},
		{"localhost:8053", "http://localhost:8053"},
		{"http://127.0.0.1:8053/", "http://127.0.0.1:8053"},
		{"https://admin.example.net:8443", "https://admin.example.net:8443"},
		{"https://proxy.example.net/meridian/", "https://proxy.example.net/meridian"},
	} {
		c, err := NewClient(tc.addr, "", nil)
		if err != nil || c.base != tc.base {
			t.Errorf("NewClient(%q): base %q, %v; want %q", tc.addr, c.base, err, tc.base)
		}
	}
	for _, addr := range []string{"", "ftp://host:21", "http://", "http://u:p@host:1", "http://host:1/?x=1", "http://host:1/#f", "%zz"} {
		if _, err := NewClient(addr, "", nil); err == nil {
			t.Errorf("NewClient(%q): no error", addr)
		}
	}
	if _, err := NewClient("127.0.0.1:8053", "a\r\nX-Evil: 1", nil); err == nil {
		t.Error("a token with a line break was taken")
	}
}

func TestClientReads(t *testing.T) {
	ts := newTestServer(t, testConfig(t))
	c := clientOf(t, ts, readToken)
	ctx := context.Background()

	st, err := c.Status(ctx)
	if err != nil || st.Node != "n1" || len(st.Members) != 1 || len(st.Overrides) != 1 {
		t.Errorf("Status: %+v, %v", st, err)
	}
	os, err := c.Overrides(ctx)
	if err != nil || len(os) != 1 || os[0].ID != "pin:www.example.com." || os[0].Who != "operator" {
		t.Errorf("Overrides: %+v, %v", os, err)
	}
	x, err := c.Explain(ctx, "192.0.2.0/24", "www.example.com", "aaaa")
	if err != nil || x.Client != "192.0.2.0/24" || x.Type != "AAAA" || !strings.Contains(x.Text, "client:") {
		t.Errorf("Explain: %+v, %v", x, err)
	}
	if x, err := c.Explain(ctx, "192.0.2.1", "www.example.com", ""); err != nil || x.Type != "A" {
		t.Errorf("Explain without a type: %+v, %v", x, err)
	}
	a, err := c.Audit(ctx, time.Time{}, 0)
	if err != nil || a.Entries == nil {
		t.Errorf("Audit: %+v, %v", a, err)
	}
}

func TestClientChanges(t *testing.T) {
	cfg := testConfig(t)
	ts := newTestServer(t, cfg)
	c := clientOf(t, ts, operateToken)
	ctx := context.Background()

	r, err := c.SetOverride(ctx, OverrideRequest{Action: "drain", Pool: AllPools, Region: "us-east", Reason: "maintenance", ExpiresIn: "90m", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	const id = "drain:*:us-east"
	if r.Override.ID != id || r.Override.Who != "operator" || !r.Override.ExpiresAt.Equal(testTime.Add(90*time.Minute)) {
		t.Errorf("SetOverride: %+v", r.Override)
	}
	if s := ts.fake.sets; len(s) != 1 || !s[0].Force || s[0].Why != "maintenance" {
		t.Errorf("backend got %+v", s)
	}
	// The ID holds '*' and ':': it must reach the server as one segment.
	r, err = c.ClearOverride(ctx, id, "done")
	if err != nil || !r.Cleared || r.Override.ID != id {
		t.Fatalf("ClearOverride: %+v, %v", r, err)
	}
	if err := c.Reload(ctx, "new zone"); err != nil {
		t.Fatal(err)
	}
	if got, want := ts.fake.mutations(), []string{"set " + id, "clear " + id, "reload"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("mutations %q, want %q", got, want)
	}
	a, err := c.Audit(ctx, testTime, 2)
	if err != nil || len(a.Entries) != 2 || !a.More {
		t.Fatalf("Audit: %+v, %v", a, err)
	}
	if e := a.Entries[1]; e.Action != "reload" || e.Reason != "new zone" || e.Phase != PhaseResult {
		t.Errorf("last audit entry %+v", e)
	}
	if _, err := c.SetOverride(ctx, OverrideRequest{DryRun: true}); err == nil {
		t.Error("SetOverride took a dry run")
	}
}

func TestClientPreviewChangesNothing(t *testing.T) {
	cfg := testConfig(t)
	ts := newTestServer(t, cfg)
	c := clientOf(t, ts, operateToken)
	p, err := c.Preview(context.Background(), OverrideRequest{Action: "pin", Pool: "www.example.com", Region: "us-east", Reason: "what if"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Moves) != 1 || p.Moves[0].To != "us-east" || p.Override.ID != "pin:www.example.com." {
		t.Errorf("preview %+v", p)
	}
	if len(ts.fake.previews) != 1 || len(ts.fake.mutations()) != 0 {
		t.Errorf("previews %d, mutations %q", len(ts.fake.previews), ts.fake.mutations())
	}
	if a := auditLines(t, cfg.AuditFile); len(a) != 0 {
		t.Errorf("a dry run wrote audit lines: %+v", a)
	}
}

// wantAPIError asserts err is an *Error with this status and a detail
// holding detail.
func wantAPIError(t *testing.T, err error, status int, detail string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want *Error", err, err)
	}
	if e.Status != status || !strings.Contains(e.Detail, detail) {
		t.Errorf("error %+v, want status %d and a detail with %q", e, status, detail)
	}
	return e
}

func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("no token", func(t *testing.T) {
		c := clientOf(t, newTestServer(t, testConfig(t)), "")
		_, err := c.Status(ctx)
		if e := wantAPIError(t, err, 401, "bearer token is required"); e.Err != "unauthorized" {
			t.Errorf("error phrase %q", e.Err)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		c := clientOf(t, newTestServer(t, testConfig(t)), wrongToken)
		_, err := c.Overrides(ctx)
		wantAPIError(t, err, 401, "not valid")
		if strings.Contains(err.Error(), wrongToken) {
			t.Errorf("the error shows the token: %v", err)
		}
	})
	t.Run("read role", func(t *testing.T) {
		c := clientOf(t, newTestServer(t, testConfig(t)), readToken)
		wantAPIError(t, c.Reload(ctx, ""), 403, "needs operate")
	})
	t.Run("conflict", func(t *testing.T) {
		ts := newTestServer(t, testConfig(t))
		ts.fake.setErr = fmt.Errorf("drain us-east: it is the last healthy region of www.example.com.: %w", ErrConflict)
		c := clientOf(t, ts, operateToken)
		_, err := c.SetOverride(ctx, OverrideRequest{Action: "drain", Pool: "www.example.com", Region: "us-east", Reason: "x"})
		if e := wantAPIError(t, err, 409, "last healthy region"); e.Err != "conflict" {
			t.Errorf("error phrase %q", e.Err)
		}
	})
	t.Run("unknown override", func(t *testing.T) {
		c := clientOf(t, newTestServer(t, testConfig(t)), operateToken)
		_, err := c.ClearOverride(ctx, "drain:nope.:x", "")
		wantAPIError(t, err, 404, "not found")
	})
	t.Run("not the API", func(t *testing.T) {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html>\n  <body>upstream "+strings.Repeat("gone ", 200)+"</body>\n</html>\n")
		}))
		defer hs.Close()
		c, err := NewClient(hs.URL, operateToken, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Status(ctx)
		e := wantAPIError(t, err, 502, "<html> <body>upstream gone")
		if e.Err != "bad gateway" || len(e.Detail) > maxErrorSnippet+len("…") {
			t.Errorf("error %q, detail of %d bytes", e.Err, len(e.Detail))
		}
	})
}

func TestClientBoundsResponses(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"node":"`)
		io.Copy(w, io.LimitReader(neverEnding('x'), MaxResponseBytes))
		io.WriteString(w, `"}`)
	}))
	defer hs.Close()
	c, err := NewClient(hs.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(context.Background()); err == nil || !strings.Contains(err.Error(), "response over") {
		t.Errorf("error %v, want one about the size", err)
	}
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// A redirect would carry the token to another host: the default client
// does not follow it.
func TestClientNoRedirect(t *testing.T) {
	var reached atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		reached.Add(1)
	}))
	defer elsewhere.Close()
	hs := httptest.NewServer(http.RedirectHandler(elsewhere.URL, http.StatusTemporaryRedirect))
	defer hs.Close()
	c, err := NewClient(hs.URL, operateToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Status(context.Background())
	wantAPIError(t, err, 307, "")
	if n := reached.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
}
