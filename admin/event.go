package admin

import "time"

// EventType names what an Event reports.
type EventType string

// The event types. Verdict, override, expiry, isolation and self-distrust
// events are what notification hooks send by default.
const (
	// EventVerdict: a pool member's quorum verdict flipped (From → To:
	// up, degraded, down).
	EventVerdict EventType = "verdict"
	// EventOverrideSet: an override was put in force (Override says which;
	// Origin the node it was set on).
	EventOverrideSet EventType = "override.set"
	// EventOverrideCleared: an override was cleared by an operator.
	EventOverrideCleared EventType = "override.cleared"
	// EventOverrideExpired: an override reached its expiry and reverted.
	EventOverrideExpired EventType = "override.expired"
	// EventMember: a cluster member joined, left, failed or came back
	// (Member; From → To: alive, dead, left).
	EventMember EventType = "member"
	// EventIsolation: this node was cut off from most of the cluster and
	// froze its view (To "isolated"), or rejoined (To "joined").
	EventIsolation EventType = "isolation"
	// EventSelfDistrust: this node began or stopped distrusting its own
	// probes (To "distrusted" or "trusted").
	EventSelfDistrust EventType = "self_distrust"
	// EventConfig: this node loaded a new config, or refused one (Detail).
	EventConfig EventType = "config"
)

// Event is one change a node saw, as the events stream and notification
// hooks carry it. Only the fields its Type uses are set.
type Event struct {
	// Seq numbers the events of one node's process, from 1; Publish sets
	// it. A client resumes a stream after the last Seq it saw.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Type EventType `json:"type"`
	// Node is the node reporting the event.
	Node   string `json:"node"`
	Pool   string `json:"pool,omitempty"`
	Region string `json:"region,omitempty"`
	Member string `json:"member,omitempty"`
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
	// Reason is why a verdict is what it is now (the probes' reason).
	Reason   string    `json:"reason,omitempty"`
	Override *Override `json:"override,omitempty"`
	// Who and Why: the token ID and reason of an operator's change.
	Who    string `json:"who,omitempty"`
	Why    string `json:"why,omitempty"`
	Detail string `json:"detail,omitempty"`
}
