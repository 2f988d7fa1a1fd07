package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Sessions let the dashboard use the API without keeping a token in the
// page: the browser trades a token for a session cookie once, and
// EventSource, which cannot send headers, then authenticates with the
// cookie. The cookie is HttpOnly (no script reads it), SameSite=Strict (no
// other site's page sends it) and Secure over TLS; it carries only a random
// session ID, whose SHA-256 the server keeps with the token's ID and role.
// A session ends after SessionIdle without a request, or SessionMax after
// sign-in, or at sign-out, or when the node restarts.
//
// A change made with a session cookie must also carry an Origin header of
// an allowed host: SameSite already keeps other sites' pages from sending
// the cookie, and the Origin check holds even for a browser that ignored
// it.
const (
	SessionCookie = "meridian_session"
	SessionIdle   = 30 * time.Minute
	SessionMax    = 12 * time.Hour
	maxSessions   = 1024
)

// session is one signed-in browser.
type session struct {
	token    TokenConfig // ID and role; never the token itself
	created  time.Time
	lastSeen time.Time
}

func (s session) expires() time.Time {
	idle, max := s.lastSeen.Add(SessionIdle), s.created.Add(SessionMax)
	if idle.Before(max) {
		return idle
	}
	return max
}

// sessions is the server's table of sessions, by the SHA-256 of the ID.
type sessions struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]*session
}

// create starts a session for t and returns its ID. A full table drops
// the session that expires first, so signing in always works.
func (ss *sessions) create(t TokenConfig, now time.Time) (string, *session) {
	var raw [32]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read does not fail
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m == nil {
		ss.m = map[[sha256.Size]byte]*session{}
	}
	for k, s := range ss.m {
		if !now.Before(s.expires()) {
			delete(ss.m, k)
		}
	}
	if len(ss.m) >= maxSessions {
		var oldest [sha256.Size]byte
		var first time.Time
		for k, s := range ss.m {
			if first.IsZero() || s.expires().Before(first) {
				oldest, first = k, s.expires()
			}
		}
		delete(ss.m, oldest)
	}
	s := &session{token: TokenConfig{ID: t.ID, Role: t.Role}, created: now, lastSeen: now}
	ss.m[sha256.Sum256([]byte(id))] = s
	return id, s
}

// lookup finds the live session with this ID and marks it used.
func (ss *sessions) lookup(id string, now time.Time) (session, bool) {
	if id == "" || len(id) > 128 {
		return session{}, false
	}
	k := sha256.Sum256([]byte(id))
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[k]
	if !ok {
		return session{}, false
	}
	if !now.Before(s.expires()) {
		delete(ss.m, k)
		return session{}, false
	}
	s.lastSeen = now
	return *s, true
}

func (ss *sessions) remove(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, sha256.Sum256([]byte(id)))
}

// SessionRequest is the body of POST /api/v1/session.
type SessionRequest struct {
	Token string `json:"token"`
}

// SessionResponse describes the caller's session.
type SessionResponse struct {
	TokenID string    `json:"token_id"`
	Role    Role      `json:"role"`
	Expires time.Time `json:"expires"`
}

// createSession trades a valid token for a session cookie. A wrong token
// is 401 and sets nothing.
func (s *Server) createSession(w http.ResponseWriter, r *http.Request, c *call) *Error {
	var req SessionRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return bodyError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return apiError(http.StatusBadRequest, "body: more than one JSON value")
	}
	t, ok := s.tokens.lookup(strings.TrimSpace(req.Token))
	if req.Token == "" || !ok {
		e := apiError(http.StatusUnauthorized, "the token is not valid")
		s.refused(r, c, actionSession, e)
		return e
	}
	id, ses := s.sessions.create(t, s.now())
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, MaxAge: int(SessionMax / time.Second),
	})
	s.log.Info("admin session started", "token_id", t.ID, "role", t.Role, "source", c.source)
	writeJSON(w, http.StatusOK, SessionResponse{TokenID: t.ID, Role: t.Role, Expires: ses.expires()})
	return nil
}

// getSession says who the caller is: the token or session it authenticated
// with.
func (s *Server) getSession(w http.ResponseWriter, r *http.Request, c *call) *Error {
	resp := SessionResponse{TokenID: c.token.ID, Role: c.token.Role}
	if ck, err := r.Cookie(SessionCookie); err == nil && r.Header.Get("Authorization") == "" {
		if ses, ok := s.sessions.lookup(ck.Value, s.now()); ok {
			resp.Expires = ses.expires()
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// deleteSession signs out: the session ends and the cookie is cleared.
func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request, _ *call) *Error {
	if ck, err := r.Cookie(SessionCookie); err == nil {
		s.sessions.remove(ck.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: -1})
	writeJSON(w, http.StatusOK, map[string]bool{"signed_out": true})
	return nil
}

// fromSession authenticates a request by its session cookie, for a
// request without an Authorization header. ok is false when there is no
// live session; a change made with one needs an allowed Origin.
func (s *Server) fromSession(r *http.Request) (TokenConfig, *Error, bool) {
	ck, err := r.Cookie(SessionCookie)
	if err != nil {
		return TokenConfig{}, nil, false
	}
	ses, ok := s.sessions.lookup(ck.Value, s.now())
	if !ok {
		return TokenConfig{}, nil, false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Header.Get("Origin") == "" {
		return ses.token, apiError(http.StatusForbidden, "a change made with a session cookie must carry an Origin header"), true
	}
	return ses.token, nil, true
}
