package gossip

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/meridian-gtm/meridian/zones"
)

// The state file. A node keeps one, StateDir/state.json, with what it
// needs to answer as the cluster did before it restarted: the overrides
// (tombstones included: a restarted node must not take back an override
// cleared before), every origin's verdict entries with when they were last
// vouched for, the heartbeats, the members it knew (so that a node that
// comes back alone knows it is cut off and freezes rather than acting on
// its own evidence) and its clock (so that what it writes next is newer
// than what it wrote before).
//
// JSON rather than the wire codec: an operator in an incident can read
// which overrides a node holds with jq, and the file is written at most
// once a second. It is written whole to a temporary file in the same
// directory, synced, renamed over the old one, and the directory synced,
// so a crash at any point leaves the old file or the new one, never a mix.
const (
	stateFileName   = "state.json"
	stateFormat     = 1
	maxStateFileLen = 256 << 20
)

type stateFile struct {
	Format     int            `json:"format"`
	Node       string         `json:"node"`
	Saved      time.Time      `json:"saved"`
	Clock      uint64         `json:"clock"`
	Overrides  []fileOverride `json:"overrides"`
	Verdicts   []fileVerdict  `json:"verdicts"`
	Heartbeats []fileBeat     `json:"heartbeats"`
	Members    []fileMember   `json:"members"`
}

type fileOverride struct {
	Action string    `json:"action"` // drain or pin
	Pool   string    `json:"pool,omitempty"`
	Region string    `json:"region"`
	Who    string    `json:"who,omitempty"`
	Why    string    `json:"why,omitempty"`
	When   time.Time `json:"when,omitzero"`
	// Expires is absent from files written before overrides could expire,
	// and when the override never does; either way it reads back zero.
	// Absent when zero, so that a file without expiring overrides still
	// reads in a build that does not know the field.
	Expires time.Time `json:"expires,omitzero"`
	Version uint64    `json:"version"`
	Node    string    `json:"node"`
	Cleared bool      `json:"cleared,omitempty"`
}

type fileVerdict struct {
	Origin  string    `json:"origin"`
	Target  string    `json:"target"`
	State   string    `json:"state"` // up, degraded or down
	Pending bool      `json:"pending,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Since   time.Time `json:"since,omitzero"`
	Checked time.Time `json:"checked,omitzero"`
	Version uint64    `json:"version"`
	Removed bool      `json:"removed,omitempty"`
	Lagging bool      `json:"lagging,omitempty"`
	Vouched time.Time `json:"vouched,omitzero"`
}

type fileBeat struct {
	Origin  string    `json:"origin"`
	Version uint64    `json:"version"`
	AsOf    time.Time `json:"as_of"`
	Sum     uint64    `json:"sum"`
}

type fileMember struct {
	Name       string `json:"name"`
	Addr       string `json:"addr,omitempty"`
	Region     string `json:"region,omitempty"`
	Version    string `json:"version,omitempty"`
	ConfigHash string `json:"config_hash,omitempty"`
	State      string `json:"state"`
}

// loaded is a decoded, validated state file.
type loaded struct {
	clock   uint64
	tab     *table
	members []Member
}

func parseState(s string) (zones.State, bool) {
	for _, st := range []zones.State{zones.Up, zones.Degraded, zones.Down} {
		if s == st.String() {
			return st, true
		}
	}
	return 0, false
}

func parseAction(s string) (zones.OverrideAction, bool) {
	for _, a := range []zones.OverrideAction{zones.Drain, zones.Pin} {
		if s == a.String() {
			return a, true
		}
	}
	return 0, false
}

// decodeStateFile decodes and validates a state file; every entry must be
// one the wire codec would accept. It never panics.
func decodeStateFile(b []byte) (loaded, error) {
	if len(b) > maxStateFileLen {
		return loaded{}, fmt.Errorf("state file of %d bytes, over %d: %w", len(b), maxStateFileLen, ErrTooLarge)
	}
	var f stateFile
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		return loaded{}, fmt.Errorf("state file: %w: %w", ErrMalformed, err)
	}
	if d.More() {
		return loaded{}, fmt.Errorf("state file: data after the object: %w", ErrMalformed)
	}
	if f.Format != stateFormat {
		return loaded{}, fmt.Errorf("state file format %d (this build reads %d): %w", f.Format, stateFormat, ErrVersion)
	}
	l := loaded{clock: f.Clock, tab: newTable()}
	for i, v := range f.Verdicts {
		st, ok := parseState(v.State)
		if !ok {
			return loaded{}, fmt.Errorf("state file: verdicts[%d]: state %q: %w", i, v.State, ErrMalformed)
		}
		e := Entry{Origin: v.Origin, Target: v.Target, Version: v.Version, Removed: v.Removed, Lagging: v.Lagging,
			Verdict: zones.TargetVerdict{State: st, Pending: v.Pending, Reason: v.Reason, Since: v.Since, Checked: v.Checked}}
		if err := validEntry(&e); err != nil {
			return loaded{}, fmt.Errorf("state file: verdicts[%d]: %w", i, err)
		}
		l.tab.mergeVerdict(e)
		if h := l.tab.verdicts[e.Origin][e.Target]; h.Version == e.Version && v.Vouched.After(h.vouched) {
			h.vouched = v.Vouched
		}
		l.clock = max(l.clock, e.Version)
	}
	for i, h := range f.Heartbeats {
		b := heartbeat{Origin: h.Origin, Version: h.Version, AsOf: h.AsOf, Sum: h.Sum}
		if b.Origin == "" || len(b.Origin) > maxNameLen || b.Version == 0 {
			return loaded{}, fmt.Errorf("state file: heartbeats[%d]: no origin or version: %w", i, ErrMalformed)
		}
		l.tab.mergeBeat(b)
		l.clock = max(l.clock, b.Version)
	}
	for i, o := range f.Overrides {
		a, ok := parseAction(o.Action)
		if !ok {
			return loaded{}, fmt.Errorf("state file: overrides[%d]: action %q: %w", i, o.Action, ErrMalformed)
		}
		e := overrideEntry{O: zones.Override{Action: a, Pool: o.Pool, Region: o.Region, Who: o.Who, Why: o.Why, When: o.When,
			Expires: o.Expires}, Version: o.Version, Node: o.Node, Cleared: o.Cleared}
		if err := validOverrideEntry(&e); err != nil {
			return loaded{}, fmt.Errorf("state file: overrides[%d]: %w", i, err)
		}
		l.tab.mergeOverride(e, time.Time{})
		l.clock = max(l.clock, e.Version)
	}
	for i, m := range f.Members {
		if m.Name == "" || len(m.Name) > maxNameLen || len(m.Region) > maxFieldLen || len(m.Version) > maxFieldLen || len(m.ConfigHash) > maxFieldLen {
			return loaded{}, fmt.Errorf("state file: members[%d]: name or metadata out of bounds: %w", i, ErrMalformed)
		}
		mem := Member{Name: m.Name, Region: m.Region, Version: m.Version, ConfigHash: m.ConfigHash, State: m.State}
		if m.Addr != "" {
			ap, err := netip.ParseAddrPort(m.Addr)
			if err != nil {
				return loaded{}, fmt.Errorf("state file: members[%d]: address: %w: %w", i, ErrMalformed, err)
			}
			mem.Addr = ap
		}
		switch m.State {
		case stateAlive, stateSuspect, stateDead, stateLeft:
		default:
			return loaded{}, fmt.Errorf("state file: members[%d]: state %q: %w", i, m.State, ErrMalformed)
		}
		l.members = append(l.members, mem)
	}
	return l, nil
}

// encodeStateFile is the file for what a node holds. The caller holds
// Cluster.mu.
func encodeStateFile(node string, saved time.Time, clock uint64, t *table, members []Member) ([]byte, error) {
	f := stateFile{Format: stateFormat, Node: node, Saved: saved, Clock: clock,
		Overrides: []fileOverride{}, Verdicts: []fileVerdict{}, Heartbeats: []fileBeat{}, Members: []fileMember{}}
	for _, o := range t.overrideEntries() {
		f.Overrides = append(f.Overrides, fileOverride{Action: o.O.Action.String(), Pool: o.O.Pool, Region: o.O.Region,
			Who: o.O.Who, Why: o.O.Why, When: o.O.When, Expires: o.O.Expires, Version: o.Version, Node: o.Node, Cleared: o.Cleared})
	}
	for _, h := range t.held() {
		f.Verdicts = append(f.Verdicts, fileVerdict{Origin: h.Origin, Target: h.Target, State: h.Verdict.State.String(),
			Pending: h.Verdict.Pending, Reason: h.Verdict.Reason, Since: h.Verdict.Since, Checked: h.Verdict.Checked,
			Version: h.Version, Removed: h.Removed, Lagging: h.Lagging, Vouched: h.vouched})
	}
	for _, b := range t.heartbeats() {
		f.Heartbeats = append(f.Heartbeats, fileBeat{Origin: b.Origin, Version: b.Version, AsOf: b.AsOf, Sum: b.Sum})
	}
	for _, m := range members {
		fm := fileMember{Name: m.Name, Region: m.Region, Version: m.Version, ConfigHash: m.ConfigHash, State: m.State}
		if m.Addr.IsValid() {
			fm.Addr = m.Addr.String()
		}
		f.Members = append(f.Members, fm)
	}
	return json.MarshalIndent(&f, "", "  ")
}

// readStateFile reads dir's state file; a missing file is an empty state.
func readStateFile(dir string) (loaded, error) {
	p := filepath.Join(dir, stateFileName)
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return loaded{tab: newTable()}, nil
	}
	if err != nil {
		return loaded{}, fmt.Errorf("read state: %w", err)
	}
	if st.Size() > maxStateFileLen {
		return loaded{}, fmt.Errorf("read state %s: %d bytes, over %d: %w", p, st.Size(), maxStateFileLen, ErrTooLarge)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return loaded{}, fmt.Errorf("read state: %w", err)
	}
	l, err := decodeStateFile(b)
	if err != nil {
		return loaded{}, fmt.Errorf("read state %s: %w", p, err)
	}
	return l, nil
}

// writeFileAtomic replaces dir/name with data: a temporary file in dir,
// synced, renamed over the old one, then dir synced so that the rename
// itself survives a power cut.
func writeFileAtomic(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, name+".tmp-*")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write state: sync: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write state: sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write state: sync dir: %w", err)
	}
	return nil
}
