package admin

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeOverride feeds POST /api/v1/overrides bodies to the decoder.
// Whatever the bytes, it must either refuse them with a 400 or 413 in the
// one error shape, or return an override the backend can take as is.
// Seeds are in testdata/fuzz/FuzzDecodeOverride.
func FuzzDecodeOverride(f *testing.F) {
	f.Add([]byte(setBody))
	f.Fuzz(func(t *testing.T, body []byte) {
		const limit = 1 << 10
		r := http.MaxBytesReader(nil, ioNopCloser{bytes.NewReader(body)}, limit)
		o, _, e := decodeOverride(r, testTime, "operator")
		if e != nil {
			if e.Status != http.StatusBadRequest && e.Status != http.StatusRequestEntityTooLarge || e.Err == "" || e.Detail == "" {
				t.Fatalf("error %+v", e)
			}
			if e.Status == http.StatusRequestEntityTooLarge && len(body) <= limit {
				t.Fatalf("413 for %d bytes", len(body))
			}
			return
		}
		switch {
		case o.Action != ActionPin && o.Action != ActionDrain:
			t.Fatalf("action %q", o.Action)
		case o.Pool == "" || o.Pool != CanonicalPool(o.Pool) || (o.Pool == AllPools && o.Action == ActionPin):
			t.Fatalf("pool %q", o.Pool)
		case o.Region == "" || len(o.Region) > maxRegionLen || strings.ContainsAny(o.Region, "/?#% :"):
			t.Fatalf("region %q", o.Region)
		case strings.TrimSpace(o.Why) == "" || len(o.Why) > maxReasonLen || !utf8.ValidString(o.Why):
			t.Fatalf("reason %q", o.Why)
		case !o.ExpiresAt.IsZero() && !o.ExpiresAt.After(testTime):
			t.Fatalf("expires %v", o.ExpiresAt)
		case o.ID != OverrideID(o.Action, o.Pool, o.Region) || strings.ContainsAny(o.ID, "/?#% "):
			t.Fatalf("id %q", o.ID)
		case o.Who != "operator" || !o.When.Equal(testTime):
			t.Fatalf("who %q when %v", o.Who, o.When)
		}
	})
}

type ioNopCloser struct{ *bytes.Reader }

func (ioNopCloser) Close() error { return nil }
