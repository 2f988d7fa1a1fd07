package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxResponseBytes bounds a response body the Client reads: an answer
// past it is an error, not a truncated decode. Status and audit answers
// of a large cluster stay far below it.
const MaxResponseBytes = 8 << 20

// maxErrorSnippet bounds the part of a non-JSON error body an Error's
// Detail carries.
const maxErrorSnippet = 256

// Client calls the admin API of one node, as `meridian status`,
// `failover` and the other operator commands do. Safe for concurrent use.
type Client struct {
	base  string // scheme://host[:port][/prefix], without a trailing slash
	token string // "" sends no Authorization header
	hc    *http.Client
}

// NewClient returns a client of the API at addr: host:port
// ("127.0.0.1:8053", spoken to over http://) or an http:// or https://
// URL, which may carry a path prefix when a proxy serves the API below
// one. token is sent as a bearer token; "" sends none. hc nil is a client
// that does not follow redirects (a redirect would carry the token
// elsewhere); TLS trust and timeouts are the caller's, in hc and in the
// contexts passed to the methods.
func NewClient(addr, token string, hc *http.Client) (*Client, error) {
	if addr == "" {
		return nil, errors.New("admin client: empty address")
	}
	raw := addr
	if !strings.Contains(addr, "://") {
		raw = "http://" + addr
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("admin client: address %q: want host:port or an http(s) URL", addr)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("admin client: address %q: scheme %q, want http or https", addr, u.Scheme)
	case u.Host == "":
		return nil, fmt.Errorf("admin client: address %q: no host", addr)
	case u.User != nil:
		return nil, fmt.Errorf("admin client: address %q: credentials in the URL; use a token", addr)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("admin client: address %q: a query or fragment has no place in it", addr)
	}
	if strings.ContainsAny(token, "\r\n") {
		return nil, errors.New("admin client: the token holds a line break")
	}
	if hc == nil {
		hc = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	base := u.Scheme + "://" + u.Host + strings.TrimSuffix(u.EscapedPath(), "/")
	return &Client{base: base, token: strings.TrimSpace(token), hc: hc}, nil
}

// Status is GET /api/v1/status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	if err := c.do(ctx, http.MethodGet, "/api/v1/status", nil, nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Overrides is GET /api/v1/overrides: the overrides in force, sorted by
// ID.
func (c *Client) Overrides(ctx context.Context) ([]Override, error) {
	var r OverridesResponse
	if err := c.do(ctx, http.MethodGet, "/api/v1/overrides", nil, nil, &r); err != nil {
		return nil, err
	}
	return r.Overrides, nil
}

// SetOverride is POST /api/v1/overrides. req.DryRun must be false: a dry
// run answers a Preview (see Preview).
func (c *Client) SetOverride(ctx context.Context, req OverrideRequest) (*OverrideResponse, error) {
	if req.DryRun {
		return nil, errors.New("set override: dry_run set; call Preview")
	}
	var r OverrideResponse
	if err := c.do(ctx, http.MethodPost, "/api/v1/overrides", nil, req, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Preview is POST /api/v1/overrides with dry_run: what req would do,
// changing nothing. A conflict is not an error here but Preview.Conflict.
func (c *Client) Preview(ctx context.Context, req OverrideRequest) (*Preview, error) {
	req.DryRun = true
	var p Preview
	if err := c.do(ctx, http.MethodPost, "/api/v1/overrides", nil, req, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// ClearOverride is DELETE /api/v1/overrides/{id}?reason=; reason may be
// "". An unknown ID is an *Error with Status 404.
func (c *Client) ClearOverride(ctx context.Context, id, reason string) (*OverrideResponse, error) {
	if id == "" {
		return nil, errors.New("clear override: empty id")
	}
	q := url.Values{}
	if reason != "" {
		q.Set("reason", reason)
	}
	var r OverrideResponse
	if err := c.do(ctx, http.MethodDelete, "/api/v1/overrides/"+url.PathEscape(id), q, nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Explain is GET /api/v1/explain: how the node answers client (an
// address or an ECS prefix) asking name and qtype ("" is A) now.
func (c *Client) Explain(ctx context.Context, client, name, qtype string) (*ExplainResult, error) {
	q := url.Values{"client": {client}, "name": {name}}
	if qtype != "" {
		q.Set("type", qtype)
	}
	var x ExplainResult
	if err := c.do(ctx, http.MethodGet, "/api/v1/explain", q, nil, &x); err != nil {
		return nil, err
	}
	return &x, nil
}

// Reload is POST /api/v1/reload?reason=. A bad config is an *Error with
// Status 400 whose Detail names file:line.
func (c *Client) Reload(ctx context.Context, reason string) error {
	q := url.Values{}
	if reason != "" {
		q.Set("reason", reason)
	}
	var r ReloadResponse
	return c.do(ctx, http.MethodPost, "/api/v1/reload", q, nil, &r)
}

// Audit is GET /api/v1/audit: the entries at or after since (all when
// zero), at most limit (0: the server's limit), newest last.
func (c *Client) Audit(ctx context.Context, since time.Time, limit int) (*AuditResponse, error) {
	q := url.Values{}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339Nano))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var r AuditResponse
	if err := c.do(ctx, http.MethodGet, "/api/v1/audit", q, nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// do sends one request and decodes a 2xx answer into out. A non-2xx
// answer is an *Error. No error it returns holds the token: it is only
// ever in a request header.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	target := c.base + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err // a *url.Error: method, URL (no token) and cause
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if len(b) > MaxResponseBytes {
		return fmt.Errorf("%s %s: response over %d bytes", method, path, MaxResponseBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return responseError(resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

// responseError is the *Error of a non-2xx answer: the API's one error
// shape when the body has it, else (a proxy's page, say) the status text
// and a trimmed snippet of the body.
func responseError(status int, body []byte) *Error {
	var e Error
	if json.Unmarshal(body, &e) == nil && e.Err != "" {
		e.Status = status
		return &e
	}
	phrase := strings.ToLower(http.StatusText(status))
	if phrase == "" {
		phrase = "HTTP status " + strconv.Itoa(status)
	}
	return &Error{Status: status, Err: phrase, Detail: snippet(body)}
}

// snippet is body trimmed, on one line, cut to maxErrorSnippet bytes at
// a rune boundary.
func snippet(body []byte) string {
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(body), "\uFFFD")), " ")
	if len(s) <= maxErrorSnippet {
		return s
	}
	cut := maxErrorSnippet
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
