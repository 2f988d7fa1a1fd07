package admin

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Entry is one line of the audit log.
//
// A mutation through the API writes two lines with the same ID: an
// "attempt" line, synced before the backend is called, and a "result"
// line, synced before the API answers. A request refused before it could
// change anything (401, 403, 400, 413) writes one "result" line.
type Entry struct {
	Time time.Time `json:"time"`
	// ID ties an attempt to its result.
	ID      string `json:"id,omitempty"`
	Phase   string `json:"phase"`              // "attempt" or "result"
	TokenID string `json:"token_id,omitempty"` // never the token itself
	// Source is the client's address, or "gossip" for an override this
	// node received from another.
	Source string `json:"source,omitempty"`
	// Origin is the node a change came from, for gossip and expiry.
	Origin string `json:"origin,omitempty"`
	// Action is what was asked: "override.set", "override.clear",
	// "reload", or for node's own entries e.g. "override.expire" and
	// "override.gossip".
	Action string  `json:"action"`
	Target string  `json:"target,omitempty"` // an override ID, "config"
	Reason string  `json:"reason,omitempty"`
	Result *Result `json:"result,omitempty"`
	// Before and After are the overrides in force around a mutation.
	Before []Override `json:"before,omitzero"`
	After  []Override `json:"after,omitzero"`
}

// Result is an audited request's outcome: its HTTP status and message.
type Result struct {
	Status  int    `json:"status"`
	Message string `json:"message,omitempty"`
}

// The audit phases.
const (
	PhaseAttempt = "attempt"
	PhaseResult  = "result"
)

// ErrNoAuditFile: Record on an Audit without a file. The server treats it
// like any write failure: no mutation goes through.
var ErrNoAuditFile = errors.New("no audit file configured")

// Audit appends entries to a JSON-lines file. Each Record opens the file
// in append mode, writes one line, syncs and closes it, so a line is on
// disk when Record returns nil, and a rotated or removed file is simply
// created again. Mutations are seconds apart at most, so the cost does
// not matter. Safe for concurrent use.
type Audit struct {
	path string
	now  func() time.Time

	mu        sync.Mutex // serializes writes; guards dirSynced
	dirSynced bool       // the directory entry of the file is on disk
}

// NewAudit returns an audit log writing to path ("" for none: every
// Record fails with ErrNoAuditFile), stamping entries without a time
// with now.
func NewAudit(path string, now func() time.Time) *Audit {
	return &Audit{path: path, now: now}
}

// Record appends e as one line and syncs it to disk. A zero e.Time
// becomes now. Node calls it for overrides received by gossip and for
// expiries; an error means the line may not be on disk.
func (a *Audit) Record(e Entry) error {
	if a.path == "" {
		return ErrNoAuditFile
	}
	if e.Time.IsZero() {
		e.Time = a.now()
	}
	if e.Phase == "" {
		e.Phase = PhaseResult
	}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit encode: %w", err)
	}
	line = append(line, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit open: %w", err)
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return fmt.Errorf("audit write: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("audit sync: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("audit close: %w", err)
	}
	if !a.dirSynced {
		// The first line may have created the file: make its name durable.
		if err := syncDir(filepath.Dir(a.path)); err != nil {
			return fmt.Errorf("audit sync directory: %w", err)
		}
		a.dirSynced = true
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// maxAuditLine bounds one line when reading back; longer lines are
// skipped.
const maxAuditLine = 1 << 20

// Read returns the entries at or after since (all when since is zero),
// oldest first, at most limit of them: the newest. more says older
// matching entries were left out. Lines that do not decode are skipped.
// A missing file reads as empty.
func (a *Audit) Read(since time.Time, limit int) (entries []Entry, more bool, err error) {
	if a.path == "" || limit <= 0 {
		return nil, false, nil
	}
	f, err := os.Open(a.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("audit read: %w", err)
	}
	defer f.Close()
	ring := make([]Entry, 0, min(limit, 64))
	start := 0 // ring[start] is the oldest once the ring is full
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		line, rerr := readLine(r)
		if len(line) > 0 {
			var e Entry
			if json.Unmarshal(line, &e) == nil && !e.Time.Before(since) {
				if len(ring) < limit {
					ring = append(ring, e)
				} else {
					ring[start] = e
					start = (start + 1) % limit
					more = true
				}
			}
		}
		if rerr != nil {
			break
		}
	}
	return append(ring[start:], ring[:start]...), more, nil
}

// readLine returns the next line without its newline, or nil for a line
// over maxAuditLine (which it skips); err is set at the end of the file.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	tooLong := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > maxAuditLine {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err != nil:
			return line, err
		}
		if tooLong {
			return nil, nil
		}
		return line[:len(line)-1], nil
	}
}
