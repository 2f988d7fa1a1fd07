package admin

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAuditFailClosed: with a directory where the audit file should be
// (tests run as root, so permissions would not stop a write), every
// mutation is refused with 503 and the backend is never called.
func TestAuditFailClosed(t *testing.T) {
	for _, rt := range allRoutes {
		if rt.mutates == "" {
			continue
		}
		t.Run(rt.method+" "+rt.target, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.AuditFile = t.TempDir()
			ts := newTestServer(t, cfg)
			before := ts.fake.Overrides()
			w := ts.do(rt.method, rt.target, operateToken, rt.body)
			if w.Code != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503: %s", w.Code, w.Body)
			}
			if e := apiErr(t, w); !strings.Contains(e.Detail, "nothing was changed") {
				t.Errorf("detail %q", e.Detail)
			}
			if m := ts.fake.mutations(); len(m) != 0 {
				t.Errorf("backend mutated: %q", m)
			}
			if after := ts.fake.Overrides(); !slices.Equal(before, after) {
				t.Errorf("overrides changed: %+v → %+v", before, after)
			}
		})
	}
}

// TestAuditOfAMutation: a successful change leaves an attempt and a
// result line, tied by ID, with the token's ID, the source, the reason and
// the overrides before and after; GET /api/v1/audit reads them back.
func TestAuditOfAMutation(t *testing.T) {
	cfg := testConfig(t)
	ts := newTestServer(t, cfg)
	if w := ts.do("POST", "/api/v1/overrides", operateToken, setBody); w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	a := auditLines(t, cfg.AuditFile)
	if len(a) != 2 {
		t.Fatalf("%d audit lines, want 2: %+v", len(a), a)
	}
	att, res := a[0], a[1]
	id := "drain:www.example.com.:us-east"
	if att.Phase != PhaseAttempt || res.Phase != PhaseResult || att.ID == "" || att.ID != res.ID {
		t.Errorf("phases %q %q, IDs %q %q", att.Phase, res.Phase, att.ID, res.ID)
	}
	for _, e := range a {
		if e.TokenID != "operator" || e.Source != "127.0.0.1:40000" || e.Action != "override.set" || e.Target != id || e.Reason != "maintenance" || !e.Time.Equal(testTime) {
			t.Errorf("audit line %+v", e)
		}
	}
	if att.Result != nil || res.Result == nil || res.Result.Status != 200 {
		t.Errorf("results %+v, %+v", att.Result, res.Result)
	}
	has := func(os []Override) bool { return slices.ContainsFunc(os, func(o Override) bool { return o.ID == id }) }
	if len(att.Before) != 1 || has(att.Before) || !has(res.After) {
		t.Errorf("before %+v, after %+v", att.Before, res.After)
	}

	w := ts.do("GET", "/api/v1/audit?since="+testTime.Format(time.RFC3339), readToken, "")
	var got AuditResponse
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || len(got.Entries) != 2 || got.More {
		t.Fatalf("GET audit: %s: %v", w.Body, err)
	}
	w = ts.do("GET", "/api/v1/audit?limit=1", readToken, "")
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || len(got.Entries) != 1 || !got.More || got.Entries[0].Phase != PhaseResult {
		t.Fatalf("GET audit, limit 1 (want the newest, and more): %s: %v", w.Body, err)
	}
	w = ts.do("GET", "/api/v1/audit?since="+testTime.Add(time.Second).Format(time.RFC3339), readToken, "")
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || len(got.Entries) != 0 {
		t.Fatalf("GET audit since later: %s: %v", w.Body, err)
	}
}

// TestAuditOutcomeFailure: when the attempt line is written but the
// result line is not, a change the backend made is not answered 2xx.
func TestAuditOutcomeFailure(t *testing.T) {
	cfg := testConfig(t)
	ts := newTestServer(t, cfg)
	ts.fake.setHook = func() {
		// Replace the audit file by a directory between the two lines.
		if err := os.Remove(cfg.AuditFile); err != nil {
			t.Error(err)
		}
		if err := os.Mkdir(cfg.AuditFile, 0o700); err != nil {
			t.Error(err)
		}
	}
	w := ts.do("POST", "/api/v1/overrides", operateToken, setBody)
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500: %s", w.Code, w.Body)
	}
	if e := apiErr(t, w); !strings.Contains(e.Detail, "the change was made") {
		t.Errorf("detail %q", e.Detail)
	}
}

func TestAuditRecordAndRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	now := testTime
	a := NewAudit(path, func() time.Time { return now })
	for i := range 5 {
		now = testTime.Add(time.Duration(i) * time.Minute)
		if err := a.Record(Entry{Source: "gossip", Origin: "n2", Action: "override.gossip", Target: "pin:www.example.com."}); err != nil {
			t.Fatal(err)
		}
	}
	// A torn or foreign line is skipped, not fatal.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("not json\n" + strings.Repeat("x", maxAuditLine+10) + "\n")
	f.Close()
	if err := a.Record(Entry{Action: "reload"}); err != nil {
		t.Fatal(err)
	}
	es, more, err := a.Read(testTime.Add(2*time.Minute), 10)
	if err != nil || more || len(es) != 4 {
		t.Fatalf("Read: %d entries, more %v, %v", len(es), more, err)
	}
	if es[0].Time != testTime.Add(2*time.Minute) || es[0].Phase != PhaseResult || es[3].Action != "reload" {
		t.Errorf("entries %+v", es)
	}
	es, more, _ = a.Read(time.Time{}, 2)
	if !more || len(es) != 2 || es[1].Action != "reload" || es[0].Time != testTime.Add(4*time.Minute) {
		t.Errorf("newest two: %+v, more %v", es, more)
	}
	if err := NewAudit("", time.Now).Record(Entry{}); err != ErrNoAuditFile {
		t.Errorf("no file: %v", err)
	}
}

// A flood of refused calls gets at most maxRefusalLines audit lines a
// second; the next line written says how many were left out.
func TestRefusalAuditBounded(t *testing.T) {
	ts := newTestServer(t, testConfig(t))
	now := testTime
	ts.now = func() time.Time { return now }
	for range 30 {
		if w := ts.do("POST", "/api/v1/overrides", "", `{}`); w.Code != 401 {
			t.Fatalf("status %d", w.Code)
		}
	}
	if got := len(auditLines(t, ts.cfg.AuditFile)); got != maxRefusalLines {
		t.Fatalf("%d audit lines for 30 refusals in one second, want %d", got, maxRefusalLines)
	}
	now = now.Add(time.Second)
	ts.do("POST", "/api/v1/overrides", "mrd_wrong", `{}`)
	lines := auditLines(t, ts.cfg.AuditFile)
	last := lines[len(lines)-1]
	if len(lines) != maxRefusalLines+1 || last.Result.Status != 401 || !strings.Contains(last.Result.Message, "and 10 refused requests before this one not audited") {
		t.Fatalf("%d lines, last %+v", len(lines), last.Result)
	}
	// A mutation that passes authentication is always audited.
	body := `{"action":"pin","pool":"www.gslb.example.com","region":"eu-west","reason":"x"}`
	if w := ts.do("POST", "/api/v1/overrides", operateToken, body); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	if got := len(auditLines(t, ts.cfg.AuditFile)); got != maxRefusalLines+3 {
		t.Fatalf("%d lines after an allowed change, want attempt and result more", got)
	}
}
