package gossip

import "errors"

// Sentinel errors; match them with errors.Is.
var (
	// ErrNoKeys: a cluster without an encryption key was asked for and
	// Config.Insecure does not allow it.
	ErrNoKeys = errors.New("gossip needs an encryption key (or Insecure, for development only)")
	// ErrNoKeyring: key rotation on a cluster started without keys.
	ErrNoKeyring = errors.New("gossip runs without encryption: there is no keyring")
	// ErrMalformed: a gossip message or state file does not decode.
	ErrMalformed = errors.New("malformed")
	// ErrTooLarge: a gossip message, state or one of its fields is over
	// its bound.
	ErrTooLarge = errors.New("too large")
	// ErrVersion: a message of a codec version this node does not speak.
	ErrVersion = errors.New("unsupported codec version")
	// ErrInvalidOverride: an override that names no region, pins no pool,
	// or has an unknown action.
	ErrInvalidOverride = errors.New("invalid override")
	// ErrNoOverride: ClearOverride of an override that is not set.
	ErrNoOverride = errors.New("no such override")
	// ErrRunning: Run called while another Run is running.
	ErrRunning = errors.New("gossip cluster already running")
	// ErrClosed: the cluster was shut down.
	ErrClosed = errors.New("gossip cluster closed")
)
