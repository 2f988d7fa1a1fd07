package zones

import (
	"time"
)

// State is a member's health as the snapshot compiler sees it.
type State uint8

const (
	// Up members take traffic. A member nobody has judged yet is Up: at
	// cold start we serve every region rather than none.
	Up State = iota
	// Degraded members pass their check but miss their latency budget.
	Degraded
	// Down members are left out of answers unless every member is down.
	Down
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Degraded:
		return "degraded"
	case Down:
		return "down"
	}
	return "unknown"
}

// MemberKey names one member of one pool.
type MemberKey struct {
	Pool   string // pool owner FQDN
	Region string
}

// Observation is one probe result, as a node saw it. Probes produce them;
// gossip spreads them; the cluster folds them into a HealthView.
//
// It names its target only: a target serves every member that probes its
// endpoint with its check, and the members of a target ID follow from the
// config (Config.Targets, FoldHealth) on every node that loaded it, so a
// result need not carry them.
type Observation struct {
	Target  string // Target.ID: kind, endpoint and check settings
	OK      bool
	Latency time.Duration
	Time    time.Time
	Reason  string // short cause: "HTTP 503 after 120ms"
}

// MemberHealth is the verdict on one member and why.
type MemberHealth struct {
	State   State
	Pending bool // an endpoint's verdict may flip soon
	Reason  string
}

// HealthView is the verdict on every member that has one. Members that are
// absent are Up. A HealthView handed to the Store must not be modified.
type HealthView map[MemberKey]MemberHealth

// AllHealthy is the view before any probe has run.
var AllHealthy = HealthView(nil)

// OverrideAction is what an operator asked for.
type OverrideAction uint8

const (
	// Drain takes a region (in one pool, or in every pool when Pool is
	// empty) out of answers whatever the probes say.
	Drain OverrideAction = iota + 1
	// Pin sends every client of a pool to one region (manual DR failover),
	// whatever the policy and the probes say.
	Pin
)

func (a OverrideAction) String() string {
	switch a {
	case Drain:
		return "drain"
	case Pin:
		return "pin"
	}
	return "unknown"
}

// Override is a manual decision that beats probe verdicts.
type Override struct {
	Action OverrideAction
	Pool   string // pool owner FQDN; "" means every pool (Drain only)
	Region string
	Who    string
	Why    string
	When   time.Time
	// Expires, when not zero, is when the override reverts by itself. The
	// cluster (package gossip) stops handing an expired override to the
	// Store; zones itself never looks at the clock.
	Expires time.Time
}
