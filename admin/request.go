package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// OverrideRequest is the body of POST /api/v1/overrides.
type OverrideRequest struct {
	Action string `json:"action"` // "pin" or "drain"
	Pool   string `json:"pool"`   // pool owner; "*" for a drain in every pool
	Region string `json:"region"`
	Reason string `json:"reason"` // required: it is audited and shown
	// ExpiresIn is a Go duration ("90m"); "" for no expiry.
	ExpiresIn string `json:"expires_in,omitempty"`
	// Force passes the safety rails (the reason is still required).
	Force bool `json:"force,omitempty"`
	// DryRun previews the change and changes nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// Bounds on an override's fields; the same as gossip's, so a request the
// API accepts is one the cluster can carry.
const (
	maxPoolLen      = 255
	maxRegionLen    = 64
	maxReasonLen    = 256
	maxTokenIDLen   = 128
	maxExpiresIn    = 365 * 24 * time.Hour
	maxQueryNameLen = 255
)

// decodeOverride reads and checks a POST /api/v1/overrides body (already
// bounded by http.MaxBytesReader). The override it returns is valid:
// known action, canonical pool, a region, a reason, and ExpiresAt after
// now when set.
func decodeOverride(body io.Reader, now time.Time, who string) (Override, bool, *Error) {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	var req OverrideRequest
	if err := dec.Decode(&req); err != nil {
		return Override{}, false, bodyError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		if err != nil {
			if e := bodyError(err); e.Status == http.StatusRequestEntityTooLarge {
				return Override{}, false, e
			}
		}
		return Override{}, false, apiError(http.StatusBadRequest, "body: more than one JSON value")
	}
	bad := func(format string, a ...any) (Override, bool, *Error) {
		return Override{}, false, apiError(http.StatusBadRequest, fmt.Sprintf(format, a...))
	}
	a := Action(req.Action)
	switch {
	case a != ActionPin && a != ActionDrain:
		return bad("action %q: want %q or %q", req.Action, ActionPin, ActionDrain)
	case req.Pool == "":
		return bad("pool: required (the pool owner name, or %q to drain a region in every pool)", AllPools)
	case req.Pool == AllPools && a != ActionDrain:
		return bad("pool %q: only a drain applies to every pool; a pin names its pool", AllPools)
	case req.Pool != AllPools && !nameOK(req.Pool, maxPoolLen):
		return bad("pool %q: not a domain name of at most %d bytes", req.Pool, maxPoolLen)
	case req.Region == "":
		return bad("region: required")
	case !nameOK(req.Region, maxRegionLen):
		return bad("region %q: letters, digits, '-', '_' and '.' only, at most %d bytes", req.Region, maxRegionLen)
	case strings.TrimSpace(req.Reason) == "":
		return bad("reason: required: say why, it is audited and shown to other operators")
	case len(req.Reason) > maxReasonLen || !utf8.ValidString(req.Reason):
		return bad("reason: at most %d bytes of UTF-8", maxReasonLen)
	}
	o := Override{
		Action: a, Pool: CanonicalPool(req.Pool), Region: req.Region,
		Who: who, Why: strings.TrimSpace(req.Reason), When: now, Force: req.Force,
	}
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 || d > maxExpiresIn {
			return bad("expires_in %q: want a positive duration up to %s, e.g. \"90m\"", req.ExpiresIn, maxExpiresIn)
		}
		o.ExpiresAt = now.Add(d)
	}
	o.ID = OverrideID(o.Action, o.Pool, o.Region)
	return o, req.DryRun, nil
}

// bodyError maps a JSON decoding error: 413 past the body limit, else 400.
func bodyError(err error) *Error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return apiError(http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", mb.Limit))
	}
	if errors.Is(err, io.EOF) {
		return apiError(http.StatusBadRequest, "body: empty, want a JSON object")
	}
	return apiError(http.StatusBadRequest, "body: "+err.Error())
}

// nameOK reports whether s is a pool or region name the API takes:
// letters, digits, '-', '_' and '.', no empty label, at most max bytes.
// Names of this alphabet make IDs one URL path segment.
func nameOK(s string, max int) bool {
	if s == "" || len(s) > max || strings.Contains(s, "..") || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
