package admin

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request, _ *call) *Error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request, _ *call) *Error {
	if ok, why := s.b.Ready(); !ok {
		return apiError(http.StatusServiceUnavailable, why)
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request, _ *call) *Error {
	s.b.Metrics().ServeHTTP(w, r)
	return nil
}

func (s *Server) status(w http.ResponseWriter, r *http.Request, _ *call) *Error {
	st, err := s.b.Status(r.Context())
	if err != nil {
		return backendError(err)
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// OverridesResponse is the body of GET /api/v1/overrides.
type OverridesResponse struct {
	Overrides []Override `json:"overrides"`
}

func (s *Server) listOverrides(w http.ResponseWriter, _ *http.Request, _ *call) *Error {
	writeJSON(w, http.StatusOK, OverridesResponse{Overrides: s.overrides()})
	return nil
}

// overrides is the backend's, never nil, so JSON shows [] for none.
func (s *Server) overrides() []Override {
	os := slices.Clone(s.b.Overrides())
	if os == nil {
		os = []Override{}
	}
	return os
}

// OverrideResponse is the body of a successful POST or DELETE of an
// override.
type OverrideResponse struct {
	Override Override `json:"override"`
	Cleared  bool     `json:"cleared,omitempty"`
}

func (s *Server) setOverride(w http.ResponseWriter, r *http.Request, c *call) *Error {
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	o, dry, e := decodeOverride(body, s.now(), c.token.ID)
	if e != nil {
		s.refused(r, c, actionSet, e)
		return e
	}
	if dry {
		p, err := s.b.Preview(r.Context(), o)
		if err != nil {
			return backendError(err)
		}
		writeJSON(w, http.StatusOK, p)
		return nil
	}
	return s.mutate(w, r, c, actionSet, o.ID, o.Why, func(ctx context.Context) error {
		return s.b.SetOverride(ctx, o)
	}, func(after []Override) any {
		if i := slices.IndexFunc(after, func(x Override) bool { return x.ID == o.ID }); i >= 0 {
			return OverrideResponse{Override: after[i]}
		}
		return OverrideResponse{Override: o}
	})
}

func (s *Server) clearOverride(w http.ResponseWriter, r *http.Request, c *call) *Error {
	id := r.PathValue("id")
	why := r.URL.Query().Get("reason")
	if len(why) > maxReasonLen {
		e := apiError(http.StatusBadRequest, "reason: at most 256 bytes")
		s.refused(r, c, actionClear, e)
		return e
	}
	var cleared Override
	return s.mutate(w, r, c, actionClear, id, why, func(ctx context.Context) error {
		before := s.b.Overrides()
		if i := slices.IndexFunc(before, func(x Override) bool { return x.ID == id }); i >= 0 {
			cleared = before[i]
		}
		return s.b.ClearOverride(ctx, id, c.token.ID, why)
	}, func([]Override) any { return OverrideResponse{Override: cleared, Cleared: true} })
}

// ReloadResponse is the body of a successful POST /api/v1/reload.
type ReloadResponse struct {
	Reloaded bool `json:"reloaded"`
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request, c *call) *Error {
	return s.mutate(w, r, c, actionReload, "config", r.URL.Query().Get("reason"), s.b.Reload,
		func([]Override) any { return ReloadResponse{Reloaded: true} })
}

// mutate runs one audited change: it writes and syncs an attempt line
// (failing closed with 503, before the backend is called, if it cannot),
// calls do, then writes and syncs the result line before answering. do
// runs with a context that a client hanging up does not cancel: a change
// half made because the caller left would be worse than one finished.
func (s *Server) mutate(w http.ResponseWriter, r *http.Request, c *call, action, target, reason string,
	do func(context.Context) error, ok func(after []Override) any) *Error {
	s.mutateMu.Lock()
	defer s.mutateMu.Unlock()
	entry := Entry{ID: c.id, Phase: PhaseAttempt, TokenID: c.token.ID, Source: c.source, Action: action,
		Target: target, Reason: reason, Before: s.overrides()}
	if err := s.audit.Record(entry); err != nil {
		s.log.Error("admin audit failed: change refused", "action", action, "target", target, "err", err)
		return apiError(http.StatusServiceUnavailable, "the audit log cannot be written, so nothing was changed: "+err.Error())
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.WriteTimeout)
	defer cancel()
	err := do(ctx)
	entry.Phase, entry.Time, entry.After = PhaseResult, time.Time{}, s.overrides()
	var e *Error
	if err != nil {
		e = backendError(err)
		entry.Result = &Result{Status: e.Status, Message: e.Detail}
	} else {
		entry.Result = &Result{Status: http.StatusOK}
	}
	if aerr := s.audit.Record(entry); aerr != nil {
		s.log.Error("admin audit of a change's outcome failed", "action", action, "target", target, "status", entry.Result.Status, "err", aerr)
		if e == nil {
			return apiError(http.StatusInternalServerError,
				"the change was made and its attempt is in the audit log, but its outcome could not be written: "+aerr.Error())
		}
	}
	if e != nil {
		return e
	}
	s.log.Info("admin change", "action", action, "target", target, "token_id", c.token.ID)
	writeJSON(w, http.StatusOK, ok(entry.After))
	return nil
}

// AuditResponse is the body of GET /api/v1/audit.
type AuditResponse struct {
	Entries []Entry `json:"entries"`
	// More says older entries matched and were left out; ask again with a
	// later since.
	More bool `json:"more"`
}

func (s *Server) readAudit(w http.ResponseWriter, r *http.Request, _ *call) *Error {
	q := r.URL.Query()
	var since time.Time
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return apiError(http.StatusBadRequest, "since: want an RFC 3339 time, e.g. 2025-01-02T15:04:05Z")
		}
		since = t
	}
	limit := s.cfg.AuditReadLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return apiError(http.StatusBadRequest, "limit: want a positive integer")
		}
		limit = min(n, limit)
	}
	es, more, err := s.audit.Read(since, limit)
	if err != nil {
		return apiError(http.StatusInternalServerError, err.Error())
	}
	if es == nil {
		es = []Entry{}
	}
	writeJSON(w, http.StatusOK, AuditResponse{Entries: es, More: more})
	return nil
}

func (s *Server) explain(w http.ResponseWriter, r *http.Request, _ *call) *Error {
	q := r.URL.Query()
	client, err := parseClient(q.Get("client"))
	if err != nil {
		return apiError(http.StatusBadRequest, "client: want an address (192.0.2.1) or a prefix (192.0.2.0/24)")
	}
	name := q.Get("name")
	if _, ok := dns.IsDomainName(name); !ok || name == "" || len(name) > maxQueryNameLen {
		return apiError(http.StatusBadRequest, "name: want a domain name")
	}
	qtype, ok := parseType(q.Get("type"))
	if !ok {
		return apiError(http.StatusBadRequest, "type: want a DNS type such as A, AAAA or TYPE65")
	}
	x, err := s.b.Explain(r.Context(), client, dns.Fqdn(name), qtype)
	if err != nil {
		return backendError(err)
	}
	writeJSON(w, http.StatusOK, NewExplainResult(x))
	return nil
}

// parseClient reads an address (a full-length prefix) or a prefix.
func parseClient(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		a = a.WithZone("")
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// parseType reads a type name (A, aaaa, TYPE65) or number; "" is A.
func parseType(s string) (uint16, bool) {
	if s == "" {
		return dns.TypeA, true
	}
	u := strings.ToUpper(s)
	if t, ok := dns.StringToType[u]; ok {
		return t, true
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(u, "TYPE"), 10, 16)
	return uint16(n), err == nil && n > 0
}
