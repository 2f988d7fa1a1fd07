package admin

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/meridian-gtm/meridian/zones"
)

// Backend is what the API reads and changes: in a node, an adapter over
// the gossip cluster and the zones store (package node writes it). The
// server serializes its mutating calls (SetOverride, ClearOverride,
// Reload), so a backend sees one at a time from the API; every method must
// be safe to call concurrently with the others and with its own node's
// work. Errors that wrap ErrConflict, ErrNotFound or ErrInvalid reach the
// client as 409, 404 or 400 with the error's text; any other error is a
// 500 with its text.
type Backend interface {
	// Status is the cluster as this node sees it.
	Status(ctx context.Context) (Status, error)
	// Overrides are the overrides in force, sorted by ID.
	Overrides() []Override
	// SetOverride puts o in force on every node (by gossip), replacing the
	// override with the same ID. o.Who is the token's ID; o.Force says the
	// operator accepts what the safety rails would refuse (a backend
	// refuses with an error wrapping ErrConflict otherwise); a non-zero
	// o.ExpiresAt asks for the override to revert by itself then.
	SetOverride(ctx context.Context, o Override) error
	// ClearOverride removes the override with this ID, or returns an
	// error wrapping ErrNotFound.
	ClearOverride(ctx context.Context, id, who, why string) error
	// Preview says what SetOverride(o) would do, changing nothing: which
	// clients would move where, and which safety rail, if any, would
	// refuse it.
	Preview(ctx context.Context, o Override) (Preview, error)
	// Explain is the decision trace for a client (an address or an ECS
	// prefix) asking name/qtype, from the snapshot this node serves now.
	Explain(ctx context.Context, client netip.Prefix, name string, qtype uint16) (*zones.Explanation, error)
	// Reload loads, validates and compiles the config, then swaps it in;
	// on error (wrap ErrInvalid for a bad config, with file:line in its
	// text) the running config keeps serving.
	Reload(ctx context.Context) error
	// Metrics serves the node's Prometheus metrics.
	Metrics() http.Handler
	// Ready reports whether the node should get traffic and, if not, why.
	Ready() (bool, string)
}

// Sentinel errors a Backend wraps to choose the HTTP status.
var (
	// ErrConflict: the change would break a safety rail (409).
	ErrConflict = errors.New("conflict")
	// ErrNotFound: no such override (404).
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the request or the config it loads is wrong (400).
	ErrInvalid = errors.New("invalid")
)

// Action is an override's kind, as the API spells it.
type Action string

// The override actions (see zones.OverrideAction).
const (
	ActionPin   Action = "pin"
	ActionDrain Action = "drain"
)

// Zones is the action as package zones has it; 0 for an unknown one.
func (a Action) Zones() zones.OverrideAction {
	switch a {
	case ActionPin:
		return zones.Pin
	case ActionDrain:
		return zones.Drain
	}
	return 0
}

// AllPools is the Pool of a drain that takes its region out of every pool.
const AllPools = "*"

// Override is a manual decision that beats probe verdicts, as the API
// shows and takes it.
type Override struct {
	// ID is derived from the key the override replaces others under (see
	// OverrideID): setting an override with the same ID replaces it.
	ID     string `json:"id"`
	Action Action `json:"action"`
	// Pool is the pool owner, lower case and fully qualified; AllPools
	// ("*") for a drain in every pool.
	Pool   string    `json:"pool"`
	Region string    `json:"region"`
	Who    string    `json:"who"` // the token ID that set it
	Why    string    `json:"why"`
	When   time.Time `json:"when"`
	// ExpiresAt, when not zero, is when it reverts by itself.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Origin is the node it was set on, when the backend knows it.
	Origin string `json:"origin,omitempty"`
	// Force asks the backend to skip its safety rails; only on requests.
	Force bool `json:"force,omitempty"`
}

// OverrideID is the ID of the override with this key, the same key gossip
// replaces overrides under:
//
//   - a pin is keyed by its pool alone (a pool has one pin):
//     "pin:www.gslb.example.com.";
//   - a drain by pool and region: "drain:www.gslb.example.com.:eu-west",
//     and "drain:*:eu-west" for the region in every pool.
//
// pool is canonicalized first (lower case, trailing dot), so IDs are
// equal on every node and can be typed by hand. An ID is one URL path
// segment: pools and regions hold no '/'.
func OverrideID(a Action, pool, region string) string {
	pool = CanonicalPool(pool)
	if a == ActionPin {
		return "pin:" + pool
	}
	if pool == "" {
		pool = AllPools
	}
	return string(a) + ":" + pool + ":" + region
}

// CanonicalPool spells a pool owner as zones does: lower case with the
// root dot. "" and AllPools stay as they are.
func CanonicalPool(p string) string {
	if p == "" || p == AllPools {
		return p
	}
	p = strings.ToLower(p)
	if !strings.HasSuffix(p, ".") {
		p += "."
	}
	return p
}

// OverrideFrom converts a zones.Override; origin is the node it was set
// on ("" when unknown).
func OverrideFrom(o zones.Override, origin string) Override {
	a := Action(o.Action.String())
	pool := o.Pool
	if pool == "" {
		pool = AllPools
	}
	return Override{
		ID: OverrideID(a, pool, o.Region), Action: a, Pool: pool, Region: o.Region,
		Who: o.Who, Why: o.Why, When: o.When, ExpiresAt: o.Expires, Origin: origin,
	}
}

// Zones converts o for package zones (and gossip): AllPools becomes "".
func (o Override) Zones() zones.Override {
	pool := o.Pool
	if pool == AllPools {
		pool = ""
	}
	return zones.Override{Action: o.Action.Zones(), Pool: pool, Region: o.Region, Who: o.Who, Why: o.Why, When: o.When, Expires: o.ExpiresAt}
}

// Status is the cluster as one node sees it, the body of GET
// /api/v1/status.
type Status struct {
	Node      string       `json:"node"` // the node answering
	Time      time.Time    `json:"time"` // when it answered, by its clock
	Regions   []RegionInfo `json:"regions"`
	Members   []Member     `json:"members"`
	Pools     []PoolStatus `json:"pools"`
	Overrides []Override   `json:"overrides"`
	// Isolated: cut off from most of the cluster, serving the last agreed
	// view, frozen.
	Isolated bool `json:"isolated"`
	// SelfDistrust: this node sees everything down while its peers do not,
	// so its own votes are left out.
	SelfDistrust bool `json:"self_distrust"`
	// ConfigAgreement: every live member announces this node's config
	// hash (see Member.ConfigHash).
	ConfigAgreement bool `json:"config_agreement"`
	// Answers counts, per region, the answers this node has given for
	// any pool since it started: two statuses make a rate.
	Answers map[string]uint64 `json:"answers"`
}

// RegionInfo is a region as the config places it.
type RegionInfo struct {
	Name      string  `json:"name"`
	Lat       float64 `json:"lat"`
	Lon       float64 `json:"lon"`
	Country   string  `json:"country,omitempty"`
	Continent string  `json:"continent,omitempty"`
}

// Member is one cluster member.
type Member struct {
	Name       string `json:"name"`
	Region     string `json:"region,omitempty"`
	Addr       string `json:"addr,omitempty"`
	State      string `json:"state"` // alive, suspect, dead, left
	Version    string `json:"version,omitempty"`
	ConfigHash string `json:"config_hash,omitempty"`
}

// PoolStatus is one pool's health and where it sends clients now.
type PoolStatus struct {
	Pool    string         `json:"pool"`
	Policy  string         `json:"policy"` // nearest, weighted, failover
	Regions []RegionStatus `json:"regions"`
	// Answering maps a continent code ("EU") to the region that answers
	// its clients now.
	Answering map[string]string `json:"answering"`
}

// RegionStatus is one member of a pool: the quorum verdict and each
// observer's.
type RegionStatus struct {
	Region  string `json:"region"`
	Verdict string `json:"verdict"` // up, degraded, down (the quorum's)
	Pending bool   `json:"pending,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Override is "drained" or "pinned" when an override applies.
	Override  string            `json:"override,omitempty"`
	Observers []ObserverVerdict `json:"observers"`
}

// ObserverVerdict is one observer's latest verdict on a member.
type ObserverVerdict struct {
	Node    string    `json:"node"`
	Verdict string    `json:"verdict"`
	Reason  string    `json:"reason,omitempty"`
	Checked time.Time `json:"checked,omitzero"`
	// Lagging: it does not count in the quorum now (stale or no longer
	// vouched for, or its node is dead or distrusts itself).
	Lagging bool `json:"lagging,omitempty"`
}

// Preview is what an override would do, the body of a dry_run.
type Preview struct {
	Override Override `json:"override"`
	Moves    []Move   `json:"moves"`
	// Conflict names the safety rail that would refuse it without force;
	// "" when none would.
	Conflict string `json:"conflict,omitempty"`
}

// Move is a set of clients whose answer would change.
type Move struct {
	Pool  string `json:"pool"`
	Scope string `json:"scope"` // "continent" or "country"
	Code  string `json:"code"`  // "EU", "DE"
	From  string `json:"from"`
	To    string `json:"to"`
}
