package admin

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Server is the admin HTTP API of one node.
type Server struct {
	cfg    Config
	b      Backend
	log    *slog.Logger
	now    func() time.Time
	tokens *tokenTable
	hosts  map[string]bool // allowed hosts, lower case
	audit  *Audit
	h      http.Handler

	events    *Events
	keepalive time.Duration // between comment lines on an idle events stream; tests shorten it
	// done is closed when Serve's context ends, before the graceful
	// shutdown: it ends the events streams, which would otherwise hold
	// Shutdown for its whole timeout (in-flight requests' contexts are
	// not cancelled by Shutdown).
	done     chan struct{}
	doneOnce sync.Once

	requests *prometheus.CounterVec // route, code
	patterns map[string]bool        // the route patterns: the route label's values, with "other"

	// mutateMu serializes mutations, so each one's before and after in
	// the audit log are exactly what it saw and left.
	mutateMu sync.Mutex

	sessions sessions // the dashboard's signed-in browsers

	// refusals bounds the audit lines written for refused requests, so a
	// flood of unauthenticated calls cannot fill the disk or its sync
	// bandwidth; those left out are counted in the next line written.
	refusalMu  sync.Mutex
	refusalWin time.Time // start of the current one-second window
	refusalN   int       // lines written in it
	suppressed int       // refusals not written since the last line
}

// maxRefusalLines is how many refused requests a second get an audit line.
const maxRefusalLines = 20

// NewServer validates cfg, fills its defaults and returns a Server over b.
// now stamps audit entries and computes expiry times.
func NewServer(cfg Config, b Backend, log *slog.Logger, now func() time.Time) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("admin config: %w", err)
	}
	if b == nil || log == nil || now == nil {
		return nil, errors.New("admin: nil backend, logger or clock")
	}
	cfg = cfg.withDefaults()
	tt, err := newTokenTable(cfg.Tokens)
	if err != nil {
		return nil, fmt.Errorf("admin config: %w", err)
	}
	s := &Server{cfg: cfg, b: b, log: log, now: now, tokens: tt, hosts: map[string]bool{}, audit: NewAudit(cfg.AuditFile, now),
		events: NewEvents(now), keepalive: DefaultEventsKeepalive, done: make(chan struct{}),
		requests: newRequestsTotal(), patterns: map[string]bool{}}
	for _, h := range cfg.AllowedHosts {
		s.hosts[normHost(h)] = true
	}
	s.h = s.routes()
	return s, nil
}

// Audit is the server's audit log, for node to record what it changes
// outside the API (overrides received by gossip, expiries).
func (s *Server) Audit() *Audit { return s.audit }

// Events is the server's event hub: node publishes to it, the events
// stream and the notifier subscribe to it.
func (s *Server) Events() *Events { return s.events }

// Handler is the API, for tests and for serving it on one's own server.
func (s *Server) Handler() http.Handler { return s.h }

// Serve answers on ln (wrapped in TLS when Config.TLSCert is set) until
// ctx is done, then shuts down gracefully: it stops accepting, lets the
// requests in flight finish for up to ShutdownTimeout, and returns nil.
// Events streams end as soon as ctx is done. Any other end is an error.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.cfg.TLSCert != "" {
		tc, err := s.tlsConfig()
		if err != nil {
			ln.Close()
			return err
		}
		ln = tls.NewListener(ln, tc)
	}
	srv := &http.Server{
		Handler:           s.h,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin serve: %w", err)
	case <-ctx.Done():
	}
	s.doneOnce.Do(func() { close(s.done) })
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		srv.Close()
		return fmt.Errorf("admin shutdown: %w", err)
	}
	return nil
}

func (s *Server) tlsConfig() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("admin tls: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if s.cfg.TLSClientCA != "" {
		pem, err := os.ReadFile(s.cfg.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("admin tls client ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("admin tls client ca: no certificate in %s", s.cfg.TLSClientCA)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// endpoint is one method of one route.
type endpoint struct {
	// role is the least role the endpoint needs; "" for none (no token,
	// and no Host check: /healthz and /readyz).
	role Role
	// action, set on mutating endpoints, is the audit action: refusals
	// are audited under it.
	action string
	h      func(w http.ResponseWriter, r *http.Request, c *call) *Error
}

// call is what the server knows about one authenticated request.
type call struct {
	token  TokenConfig
	source string
	id     string // request ID: ties audit lines together
}

// routes builds the API. Each path answers its methods; any other gets a
// 405 with Allow, and unknown paths a 404, all in the one error shape.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	add := func(pattern string, eps map[string]endpoint) {
		s.patterns[pattern] = true
		mux.Handle(pattern, s.dispatch(eps))
	}
	add("/healthz", map[string]endpoint{http.MethodGet: {h: s.healthz}})
	add("/readyz", map[string]endpoint{http.MethodGet: {h: s.readyz}})
	add("/metrics", map[string]endpoint{http.MethodGet: {role: RoleRead, h: s.metrics}})
	add("/api/v1/status", map[string]endpoint{http.MethodGet: {role: RoleRead, h: s.status}})
	add("/api/v1/overrides", map[string]endpoint{
		http.MethodGet:  {role: RoleRead, h: s.listOverrides},
		http.MethodPost: {role: RoleOperate, action: actionSet, h: s.setOverride},
	})
	add("/api/v1/overrides/{id}", map[string]endpoint{
		http.MethodDelete: {role: RoleOperate, action: actionClear, h: s.clearOverride},
	})
	add("/api/v1/explain", map[string]endpoint{http.MethodGet: {role: RoleRead, h: s.explain}})
	add("/api/v1/reload", map[string]endpoint{http.MethodPost: {role: RoleOperate, action: actionReload, h: s.reload}})
	add("/api/v1/audit", map[string]endpoint{http.MethodGet: {role: RoleRead, h: s.readAudit}})
	add("/api/v1/events", map[string]endpoint{http.MethodGet: {role: RoleRead, h: s.streamEvents}})
	add("/api/v1/session", map[string]endpoint{
		http.MethodGet:    {role: RoleRead, h: s.getSession},
		http.MethodPost:   {h: s.createSession},
		http.MethodDelete: {h: s.deleteSession},
	})
	s.patterns["/assets/"] = true
	mux.Handle("/assets/", s.assets())
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e := s.checkHost(r); e != nil {
			writeError(w, e)
			return
		}
		if r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			s.index(w, r)
			return
		}
		writeError(w, apiError(http.StatusNotFound, "no route "+r.URL.Path))
	}))
	return s.instrument(s.recoverer(mux))
}

// The audit actions of the API's mutations.
const (
	actionSet     = "override.set"
	actionClear   = "override.clear"
	actionReload  = "reload"
	actionSession = "session.create"
)

// dispatch checks, in order: Host and Origin (403), the method (405),
// the token (401) and its role (403), then calls the endpoint. A refused
// request on a mutating endpoint is audited.
func (s *Server) dispatch(eps map[string]endpoint) http.Handler {
	allow := strings.Join(slices.Sorted(maps.Keys(eps)), ", ")
	open := true
	for _, ep := range eps {
		open = open && ep.role == ""
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !open {
			if e := s.checkHost(r); e != nil {
				writeError(w, e)
				return
			}
		}
		ep, ok := eps[r.Method]
		if !ok {
			w.Header().Set("Allow", allow)
			writeError(w, apiError(http.StatusMethodNotAllowed, r.Method+" "+r.URL.Path+"; allowed: "+allow))
			return
		}
		c := &call{source: r.RemoteAddr, id: newRequestID()}
		if ep.role != "" {
			tok, e := s.authenticate(w, r, ep.role)
			c.token = tok
			if e != nil {
				if ep.action != "" {
					s.refused(r, c, ep.action, e)
				}
				writeError(w, e)
				return
			}
		}
		if e := ep.h(w, r, c); e != nil {
			writeError(w, e)
		}
	})
}

// checkHost refuses a Host or Origin that names a host not allowed: a
// page on another site, or a DNS name rebound to our address, must not
// reach the API from a browser.
func (s *Server) checkHost(r *http.Request) *Error {
	if !s.hosts[normHost(r.Host)] {
		return apiError(http.StatusForbidden, fmt.Sprintf("host %q is not an allowed host of this API (admin.allowed_hosts)", r.Host))
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || !s.hosts[normHost(u.Host)] {
			return apiError(http.StatusForbidden, fmt.Sprintf("origin %q is not allowed: the API takes no cross-origin requests", o))
		}
	}
	return nil
}

// normHost is a host[:port] without its port and brackets, lower case,
// without a trailing dot.
func normHost(hp string) string {
	h := hp
	if hh, _, err := net.SplitHostPort(hp); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

const authRealm = `Bearer realm="meridian-admin"`

// authenticate finds the request's bearer token or, without one, its
// session cookie (see Sessions). A missing or unknown token is 401 (the
// same for both, but for the WWW-Authenticate error), a token whose role
// is short of need is 403.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, need Role) (TokenConfig, *Error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if t, e, ok := s.fromSession(r); ok {
			if e == nil && need == RoleOperate && t.Role != RoleOperate {
				e = apiError(http.StatusForbidden, fmt.Sprintf("token %q has the %s role; this needs %s", t.ID, t.Role, RoleOperate))
			}
			return t, e
		}
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		w.Header().Set("WWW-Authenticate", authRealm)
		return TokenConfig{}, apiError(http.StatusUnauthorized, "a bearer token is required (Authorization: Bearer <token>)")
	}
	t, ok := s.tokens.lookup(strings.TrimSpace(tok))
	if !ok {
		w.Header().Set("WWW-Authenticate", authRealm+`, error="invalid_token"`)
		return TokenConfig{}, apiError(http.StatusUnauthorized, "the token is not valid")
	}
	if need == RoleOperate && t.Role != RoleOperate {
		return t, apiError(http.StatusForbidden, fmt.Sprintf("token %q has the %s role; this needs %s", t.ID, t.Role, RoleOperate))
	}
	return t, nil
}

// refused audits a mutation refused before it reached the backend. The
// answer does not wait on it: nothing changed.
func (s *Server) refused(r *http.Request, c *call, action string, e *Error) {
	msg := e.Detail
	s.refusalMu.Lock()
	now := s.now()
	if now.Sub(s.refusalWin) >= time.Second || now.Before(s.refusalWin) {
		s.refusalWin, s.refusalN = now, 0
	}
	if s.refusalN >= maxRefusalLines {
		s.suppressed++
		s.refusalMu.Unlock()
		return
	}
	s.refusalN++
	if s.suppressed > 0 {
		msg += fmt.Sprintf(" (and %d refused requests before this one not audited: over %d a second)", s.suppressed, maxRefusalLines)
		s.suppressed = 0
	}
	s.refusalMu.Unlock()
	err := s.audit.Record(Entry{ID: c.id, Phase: PhaseResult, TokenID: c.token.ID, Source: c.source, Action: action,
		Target: r.URL.Path, Result: &Result{Status: e.Status, Message: msg}})
	if err != nil && !errors.Is(err, ErrNoAuditFile) {
		s.log.Error("admin audit of refused request failed", "action", action, "status", e.Status, "err", err)
	}
}

// recoverer turns a panic in a handler into a 500.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("admin handler panic", "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeError(w, apiError(http.StatusInternalServerError, "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail
	return hex.EncodeToString(b[:])
}
