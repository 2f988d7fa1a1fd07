package gossip

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/meridian-gtm/meridian/zones"
)

// OverrideKey is the identity under which overrides replace one another,
// the key of their last-writer-wins register:
//
//   - a drain is keyed by (drain, pool, region): draining eu-west in pool
//     www and draining it in pool api are two overrides, and a drain with
//     Pool "" (the region in every pool) is a third;
//   - a pin is keyed by (pin, pool) alone: a pool has at most one pin, and
//     pinning it to another region replaces the pin before.
//
// Clearing removes the override under the same key. Pool is compared in
// its canonical form (lower case, fully qualified), as zones.Pool.Owner
// spells it.
func OverrideKey(action zones.OverrideAction, pool, region string) string {
	pool = canonicalPool(pool)
	if action == zones.Pin {
		return "pin\x00" + pool
	}
	return action.String() + "\x00" + pool + "\x00" + region
}

// canonicalPool spells a pool owner as zones does: lower case, with the
// root dot. "" (every pool) stays "".
func canonicalPool(p string) string {
	if p == "" {
		return ""
	}
	p = strings.ToLower(p)
	if !strings.HasSuffix(p, ".") {
		p += "."
	}
	return p
}

// validOverride checks an override as set locally and as received.
func validOverride(o *zones.Override) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%s override: %s: %w", o.Action, fmt.Sprintf(format, a...), ErrInvalidOverride)
	}
	switch {
	case o.Action != zones.Drain && o.Action != zones.Pin:
		return fmt.Errorf("override action %d: %w", o.Action, ErrInvalidOverride)
	case o.Region == "":
		return bad("no region")
	case o.Action == zones.Pin && o.Pool == "":
		return bad("a pin names its pool")
	case len(o.Pool) > maxPoolLen, len(o.Region) > maxRegionLen, len(o.Who) > maxWhoLen, len(o.Why) > maxWhyLen:
		return bad("pool, region, who or why over %d, %d, %d or %d bytes", maxPoolLen, maxRegionLen, maxWhoLen, maxWhyLen)
	case !utf8.ValidString(o.Pool) || !utf8.ValidString(o.Region) || !utf8.ValidString(o.Who) || !utf8.ValidString(o.Why):
		return bad("not UTF-8")
	case o.Pool != canonicalPool(o.Pool):
		return bad("pool %q is not lower-case and fully qualified", o.Pool)
	case !o.Expires.IsZero() && o.Expires.Before(o.When):
		// It would never be in force: a mistake (a unit, a time zone)
		// that the writer should hear about, not a silent no-op.
		return bad("expires %s before it was set %s", o.Expires.Format(time.RFC3339), o.When.Format(time.RFC3339))
	}
	return nil
}
