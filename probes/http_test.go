package probes

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/zones"
)

// appServer is an endpoint with a few behaviours, by path.
func appMux(redirectFollowed *atomic.Bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "status: ok\n")
	})
	mux.HandleFunc("/sick", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		redirectFollowed.Store(true)
		fmt.Fprint(w, "you followed a redirect")
	})
	// /whoami answers only to the Host and header the check must send.
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "svc.example" || r.Header.Get("X-Probe-Token") != "s3cret" || r.Method != http.MethodGet {
			http.Error(w, "who are you", http.StatusMisdirectedRequest)
			return
		}
		sni := ""
		if r.TLS != nil {
			sni = r.TLS.ServerName
		}
		fmt.Fprintf(w, "host=%s sni=%s ua=%s", r.Host, sni, r.UserAgent())
	})
	// /v1/infer is a tiny "inference" API: POST JSON, get JSON.
	mux.HandleFunc("/v1/infer", func(w http.ResponseWriter, r *http.Request) {
		var q struct{ Prompt string }
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&q) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		answer := map[string]string{"2+2": "4"}[q.Prompt]
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"answer": answer})
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, strings.Repeat("x", maxBody), "ok")
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	return mux
}

func httpCheck(kind zones.CheckKind, path string) *zones.Check {
	return &zones.Check{Kind: kind, Interval: 10 * time.Second, Timeout: 5 * time.Second, Rise: 5, Fall: 3, Path: path}
}

// with returns a copy of c changed by f.
func with(c *zones.Check, f func(*zones.Check)) *zones.Check {
	cc := *c
	f(&cc)
	return &cc
}

func TestHTTPCheck(t *testing.T) {
	var followed atomic.Bool
	srv := httptest.NewServer(appMux(&followed))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	closed := closedPort(t)
	for _, tc := range []struct {
		name   string
		check  *zones.Check
		ok     bool
		reason string
	}{
		{"2xx by default", httpCheck(zones.CheckHTTP, "/health"), true, "HTTP 200 after " + ms},
		{"status mismatch", httpCheck(zones.CheckHTTP, "/sick"), false, "HTTP 503 after " + ms},
		{"expected status", with(httpCheck(zones.CheckHTTP, "/sick"), func(c *zones.Check) { c.ExpectStatus = []int{503} }), true, "HTTP 503 after " + ms},
		{"404", httpCheck(zones.CheckHTTP, "/nope"), false, "HTTP 404 after " + ms},
		{"redirect is a status, not followed", httpCheck(zones.CheckHTTP, "/moved"), false, "HTTP 302 after " + ms},
		{"redirect expected", with(httpCheck(zones.CheckHTTP, "/moved"), func(c *zones.Check) { c.ExpectStatus = []int{301, 302} }), true, "HTTP 302 after " + ms},
		{"body substring", with(httpCheck(zones.CheckHTTP, "/health"), func(c *zones.Check) { c.ExpectBody = "ok" }), true, "HTTP 200 after " + ms},
		{"body lacks substring", with(httpCheck(zones.CheckHTTP, "/health"), func(c *zones.Check) { c.ExpectBody = "ready" }), false, `body lacks "ready"`},
		{"body regexp", with(httpCheck(zones.CheckHTTP, "/health"), func(c *zones.Check) { c.ExpectRegexp = regexp.MustCompile(`(?m)^status: (ok|fine)$`) }), true, "HTTP 200 after " + ms},
		{"body regexp mismatch", with(httpCheck(zones.CheckHTTP, "/health"), func(c *zones.Check) { c.ExpectRegexp = regexp.MustCompile(`^ready$`) }), false, `body does not match "\^ready\$"`},
		{"only the first 64 KiB of body are read", with(httpCheck(zones.CheckHTTP, "/big"), func(c *zones.Check) { c.ExpectBody = "ok" }), false, `body lacks "ok"`},
		{"host header and extra headers", with(httpCheck(zones.CheckHTTP, "/whoami"), func(c *zones.Check) {
			c.Host = "svc.example"
			c.Headers = map[string]string{"X-Probe-Token": "s3cret"}
			c.ExpectBody = "host=svc.example sni= ua=" + userAgent
		}), true, "HTTP 200 after " + ms},
		{"without the host header", with(httpCheck(zones.CheckHTTP, "/whoami"), func(c *zones.Check) { c.Headers = map[string]string{"X-Probe-Token": "s3cret"} }), false, "HTTP 421 after " + ms},
		{"POST JSON inference, method from the body", with(httpCheck(zones.CheckHTTP, "/v1/infer"), func(c *zones.Check) {
			c.Body = `{"prompt": "2+2"}`
			c.Headers = map[string]string{"Content-Type": "application/json"}
			c.ExpectRegexp = regexp.MustCompile(`"answer":\s*"4"`)
		}), true, "HTTP 200 after " + ms},
		{"inference with the wrong answer", with(httpCheck(zones.CheckHTTP, "/v1/infer"), func(c *zones.Check) {
			c.Body = `{"prompt": "2+3"}`
			c.Headers = map[string]string{"Content-Type": "application/json"}
			c.ExpectRegexp = regexp.MustCompile(`"answer":\s*"4"`)
		}), false, `body does not match .*`},
		{"explicit method wins over the body's POST", with(httpCheck(zones.CheckHTTP, "/v1/infer"), func(c *zones.Check) {
			c.Method = "PUT"
			c.Body = `{"prompt": "2+2"}`
			c.Headers = map[string]string{"Content-Type": "application/json"}
		}), false, "HTTP 400 after " + ms},
		{"timeout", with(httpCheck(zones.CheckHTTP, "/hang"), func(c *zones.Check) { c.Timeout = 100 * time.Millisecond }), false, "timeout after 100ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantOutcome(t, attempt(t, addr, tc.check), tc.ok, tc.reason)
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		wantOutcome(t, attempt(t, closed, httpCheck(zones.CheckHTTP, "/")), false, "connect: connection refused")
	})
	if followed.Load() {
		t.Error("a redirect was followed")
	}
}

// TestHTTPLatencyIncludesBody: latency runs to the end of the body, not
// just the headers.
func TestHTTPLatencyIncludesBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		time.Sleep(150 * time.Millisecond) // the slow part is the body
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	got := attempt(t, srv.Listener.Addr().String(), httpCheck(zones.CheckHTTP, "/"))
	if !got.ok || got.latency < 150*time.Millisecond {
		t.Errorf("got %+v, want a pass with latency ≥ 150ms", got)
	}
}

// writeCA writes srv's certificate (httptest's is its own CA) as PEM.
func writeCA(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestHTTPSCheck(t *testing.T) {
	var followed atomic.Bool
	srv := httptest.NewUnstartedServer(appMux(&followed))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failing handshakes are on purpose
	srv.StartTLS()
	defer srv.Close()
	plain := httptest.NewServer(appMux(&followed))
	defer plain.Close()
	addr := srv.Listener.Addr().String()
	ca := writeCA(t, srv)
	notPEM := filepath.Join(t.TempDir(), "empty.pem")
	os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600)
	base := with(httpCheck(zones.CheckHTTPS, "/health"), func(c *zones.Check) { c.TLSCAFile = ca })
	for _, tc := range []struct {
		name   string
		addr   string
		check  *zones.Check
		ok     bool
		reason string
	}{
		{"CA file, verified by IP", addr, base, true, "HTTP 200 after " + ms},
		{"CA file, verified by server name", addr, with(base, func(c *zones.Check) { c.TLSServerName = "example.com" }), true, "HTTP 200 after " + ms},
		{"server name from Host, sent as SNI", addr, with(base, func(c *zones.Check) {
			c.Path = "/whoami"
			c.Host = "svc.example"
			c.TLSServerName = "example.com"
			c.Headers = map[string]string{"X-Probe-Token": "s3cret"}
			c.ExpectBody = "host=svc.example sni=example.com"
		}), true, "HTTP 200 after " + ms},
		{"Host is the default server name", addr, with(base, func(c *zones.Check) {
			c.Path = "/whoami"
			c.Host = "svc.example"
			c.Headers = map[string]string{"X-Probe-Token": "s3cret"}
		}), false, "TLS: x509: certificate is valid for .*, not svc.example"},
		{"unknown authority", addr, with(base, func(c *zones.Check) { c.TLSCAFile = "" }), false, "TLS: x509: certificate signed by unknown authority"},
		{"skip verify", addr, with(base, func(c *zones.Check) { c.TLSCAFile = ""; c.TLSSkipVerify = true }), true, "HTTP 200 after " + ms},
		{"wrong name", addr, with(base, func(c *zones.Check) { c.TLSServerName = "wrong.example" }), false, "TLS: x509: certificate is valid for .*, not wrong.example"},
		{"status mismatch over TLS", addr, with(base, func(c *zones.Check) { c.Path = "/sick" }), false, "HTTP 503 after " + ms},
		{"plain HTTP", plain.Listener.Addr().String(), base, false, "http: server gave HTTP response to HTTPS client"},
		{"not TLS at all", banner(t, "SSH-2.0-OpenSSH_9.6\r\n"), base, false, "TLS: first record does not look like a TLS handshake"},
		{"missing CA file", addr, with(base, func(c *zones.Check) { c.TLSCAFile = "/nonexistent/ca.pem" }), false, "TLS CA file: open /nonexistent/ca.pem: no such file or directory"},
		{"CA file without PEM", addr, with(base, func(c *zones.Check) { c.TLSCAFile = notPEM }), false, "TLS CA file .*: no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantOutcome(t, attempt(t, tc.addr, tc.check), tc.ok, tc.reason)
		})
	}
}

// banner is a TCP server on 127.0.0.1 that sends msg to whoever connects
// and hangs up.
func banner(t *testing.T, msg string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, msg)
			c.Close()
		}
	}()
	return l.Addr().String()
}

// TestHTTPClosesConnections: every probe's connection is closed when the
// probe ends; none is kept alive or leaked.
func TestHTTPClosesConnections(t *testing.T) {
	var followed atomic.Bool
	srv := httptest.NewUnstartedServer(appMux(&followed))
	var open atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	c := with(httpCheck(zones.CheckHTTPS, "/health"), func(c *zones.Check) { c.TLSCAFile = writeCA(t, srv) })
	for range 20 {
		wantOutcome(t, attempt(t, srv.Listener.Addr().String(), c), true, "HTTP 200 after "+ms)
	}
	eventually(t, 5*time.Second, "connections still open", func() bool { return open.Load() == 0 })
}

// An endpoint given as a URL probes the URL's path, not the check's.
func TestHTTPTargetPathWins(t *testing.T) {
	var followed atomic.Bool
	srv := httptest.NewServer(appMux(&followed))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	c := httpCheck(zones.CheckHTTP, "/sick")
	p := New(Options{}, nil)
	tg := target(t, addr, c)
	ctx, cancel := context.WithTimeout(t.Context(), c.Timeout)
	defer cancel()
	if out := p.probe(ctx, &tg); out.ok {
		t.Fatalf("check path /sick passed: %+v", out)
	}
	tg.Path = "/health"
	if out := p.probe(ctx, &tg); !out.ok {
		t.Fatalf("URL path /health failed: %+v", out)
	}
}
