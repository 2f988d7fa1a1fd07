package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/zones"
	"github.com/miekg/dns"
)

// The test tokens. They look like real ones, so a test can search the
// audit log and the logs for them.
const (
	readToken    = "mrd_read-token-for-tests-aaaaaaaaaaaaaaaaaaaaaaaaaa"
	operateToken = "mrd_operate-token-for-tests-bbbbbbbbbbbbbbbbbbbbbbbb"
	wrongToken   = "mrd_wrong-token-cccccccccccccccccccccccccccccccccccc"
	testHost     = "127.0.0.1:8053"
)

var testTime = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeBackend records the calls the server makes.
type fakeBackend struct {
	mu        sync.Mutex
	overrides map[string]Override
	calls     []string // mutating calls: "set ID", "clear ID", "reload"
	previews  []Override
	sets      []Override

	setErr, reloadErr error
	setHook           func() // called by SetOverride, without the lock
	ready             bool
	why               string
}

var _ Backend = (*fakeBackend)(nil)

func newFake() *fakeBackend {
	return &fakeBackend{ready: true, overrides: map[string]Override{
		"pin:www.example.com.": {ID: "pin:www.example.com.", Action: ActionPin, Pool: "www.example.com.", Region: "eu-west", Who: "operator", Why: "seeded", When: testTime},
	}}
}

func (f *fakeBackend) mutations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeBackend) Status(context.Context) (Status, error) {
	return Status{Node: "n1", Members: []Member{{Name: "n1", State: "alive"}}, Overrides: f.Overrides()}, nil
}

func (f *fakeBackend) Overrides() []Override {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Override
	for _, o := range f.overrides {
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b Override) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (f *fakeBackend) SetOverride(_ context.Context, o Override) error {
	if f.setHook != nil {
		f.setHook()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "set "+o.ID)
	f.sets = append(f.sets, o)
	if f.setErr != nil {
		return f.setErr
	}
	o.Force = false
	f.overrides[o.ID] = o
	return nil
}

func (f *fakeBackend) ClearOverride(_ context.Context, id, who, why string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "clear "+id)
	if _, ok := f.overrides[id]; !ok {
		return fmt.Errorf("clear %s: %w", id, ErrNotFound)
	}
	delete(f.overrides, id)
	return nil
}

func (f *fakeBackend) Preview(_ context.Context, o Override) (Preview, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.previews = append(f.previews, o)
	return Preview{Override: o, Moves: []Move{{Pool: o.Pool, Scope: "continent", Code: "NA", From: "us-east", To: o.Region}}}, nil
}

func (f *fakeBackend) Explain(_ context.Context, client netip.Prefix, name string, qtype uint16) (*zones.Explanation, error) {
	rr, _ := dns.NewRR(name + " 30 IN A 192.0.2.10")
	return &zones.Explanation{Client: client, Name: name, Type: qtype, Result: zones.Result{Answer: []dns.RR{rr}, Region: "eu-west"}}, nil
}

func (f *fakeBackend) Reload(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "reload")
	return f.reloadErr
}

func (f *fakeBackend) Metrics() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "meridian_up 1\n")
	})
}

func (f *fakeBackend) Ready() (bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready, f.why
}

// testConfig is a loopback config with a read and an operate token and
// an audit file in a fresh directory.
func testConfig(t *testing.T) Config {
	return Config{
		Listen: testHost,
		Tokens: []TokenConfig{
			{ID: "reader", Role: RoleRead, Hash: HashToken(readToken)},
			{ID: "operator", Role: RoleOperate, Hash: HashToken(operateToken)},
		},
		AuditFile: filepath.Join(t.TempDir(), "audit.jsonl"),
	}
}

// testServer is a Server over a fake backend, logging into a buffer the
// test can search.
type testServer struct {
	*Server
	fake *fakeBackend
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTestServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fake := newFake()
	s, err := NewServer(cfg, fake, log, func() time.Time { return testTime })
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	return &testServer{Server: s, fake: fake, logs: logs}
}

// do sends one request through the handler, from the allowed host.
func (ts *testServer) do(method, target, token, body string, hdr ...string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	req.Host = testHost
	req.RemoteAddr = "127.0.0.1:40000"
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	ts.Handler().ServeHTTP(w, req)
	return w
}

// apiErr decodes an error body, failing the test if it is not the one
// error shape.
func apiErr(t *testing.T, w *httptest.ResponseRecorder) Error {
	t.Helper()
	var e Error
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Err == "" {
		t.Fatalf("status %d: body is not {\"error\", \"detail\"}: %v", w.Code, err)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q", ct)
	}
	return e
}

// auditLines reads the audit file; none when it does not exist.
func auditLines(t *testing.T, path string) []Entry {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []Entry
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var e Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}
