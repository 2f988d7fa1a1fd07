package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Role is what a token may do.
type Role string

const (
	// RoleRead may call every GET route: status, overrides, explain, audit
	// and metrics.
	RoleRead Role = "read"
	// RoleOperate may also change things: set and clear overrides, reload.
	RoleOperate Role = "operate"
)

// The tokens the local demo cluster documents. Validate refuses their
// hashes on any listener that is not loopback.
const (
	DemoReadToken    = "demo-read"
	DemoOperateToken = "demo-operate"
)

// TokenConfig is one bearer token the API accepts. Only its hash is
// configured: the token itself is shown once, by NewToken, and never
// stored, logged or audited.
type TokenConfig struct {
	// ID names the token in the audit log and in Override.Who.
	ID   string `toml:"id" json:"id"`
	Role Role   `toml:"role" json:"role"`
	// Hash is the hex SHA-256 of the token (see HashToken).
	Hash string `toml:"hash" json:"hash"`
}

// Config is the admin API's configuration, the [admin] part of a node's
// config. Zero fields take the defaults documented on them (see
// withDefaults).
type Config struct {
	// Listen is the API's address:port. A non-loopback address needs
	// TLSCert and TLSKey.
	Listen string `toml:"listen"`
	// TLSCert and TLSKey are PEM files; when set, Serve speaks HTTPS.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// TLSClientCA, when set, is a PEM bundle: clients must then present a
	// certificate it signed, in addition to their bearer token.
	TLSClientCA string `toml:"tls_client_ca"`
	// Tokens are the accepted bearer tokens.
	Tokens []TokenConfig `toml:"tokens"`
	// AllowedHosts are the host names (no ports) a request's Host header
	// and Origin may name; anything else is refused with 403, against DNS
	// rebinding and cross-site requests. Default: Listen's host (unless it
	// is unspecified, 0.0.0.0 or ::), localhost, 127.0.0.1 and ::1.
	AllowedHosts []string `toml:"allowed_hosts"`
	// AuditFile is the JSON-lines audit log. Required when any token has
	// the operate role: a mutation that cannot be audited is refused.
	AuditFile string `toml:"audit_file"`
	// MaxBodyBytes bounds a request body; default 64 KiB.
	MaxBodyBytes int64 `toml:"max_body_bytes"`
	// AuditReadLimit bounds the entries GET /api/v1/audit returns; default
	// 1000.
	AuditReadLimit int `toml:"audit_read_limit"`
	// Server timeouts; defaults 5s, 10s, 30s, 60s, and 5s to finish the
	// requests in flight at shutdown.
	ReadHeaderTimeout time.Duration `toml:"read_header_timeout"`
	ReadTimeout       time.Duration `toml:"read_timeout"`
	WriteTimeout      time.Duration `toml:"write_timeout"`
	IdleTimeout       time.Duration `toml:"idle_timeout"`
	ShutdownTimeout   time.Duration `toml:"shutdown_timeout"`
}

// Defaults.
const (
	DefaultMaxBodyBytes      = 64 << 10
	DefaultAuditReadLimit    = 1000
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 10 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultShutdownTimeout   = 5 * time.Second
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&c.ReadTimeout, DefaultReadTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.ShutdownTimeout, DefaultShutdownTimeout)
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.AuditReadLimit == 0 {
		c.AuditReadLimit = DefaultAuditReadLimit
	}
	if len(c.AllowedHosts) == 0 {
		c.AllowedHosts = []string{"localhost", "127.0.0.1", "::1"}
		if h, _, err := net.SplitHostPort(c.Listen); err == nil && h != "" {
			if a, err := netip.ParseAddr(h); err != nil || !a.IsUnspecified() {
				c.AllowedHosts = append(c.AllowedHosts, h)
			}
		}
	} else {
		c.AllowedHosts = append([]string(nil), c.AllowedHosts...)
	}
	c.Tokens = append([]TokenConfig(nil), c.Tokens...)
	return c
}

// Validate reports every problem with c at once, each naming its key.
// It refuses a non-loopback Listen without TLS, and the demo tokens'
// hashes on a non-loopback Listen.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	loopback := true
	if c.Listen == "" {
		bad("admin.listen: empty")
	} else if h, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("admin.listen: %w", err)
	} else {
		loopback = isLoopbackHost(h)
	}
	tls := c.TLSCert != "" || c.TLSKey != ""
	switch {
	case (c.TLSCert == "") != (c.TLSKey == ""):
		bad("admin.tls_cert and admin.tls_key: set both or neither")
	case !loopback && !tls:
		bad("admin.listen: %q is not a loopback address: set admin.tls_cert and admin.tls_key", c.Listen)
	}
	if c.TLSClientCA != "" && !tls {
		bad("admin.tls_client_ca: needs admin.tls_cert and admin.tls_key")
	}
	demo := map[string]string{}
	for _, t := range []string{DemoReadToken, DemoOperateToken} {
		demo[HashToken(t)] = t
	}
	ids, hashes := map[string]bool{}, map[string]bool{}
	operate := false
	for i, t := range c.Tokens {
		key := fmt.Sprintf("admin.tokens[%d]", i)
		switch {
		case t.ID == "":
			bad("%s.id: empty", key)
		case ids[t.ID]:
			bad("%s.id: %q is used twice", key, t.ID)
		case len(t.ID) > maxTokenIDLen:
			bad("%s.id: over %d bytes", key, maxTokenIDLen)
		}
		ids[t.ID] = true
		switch t.Role {
		case RoleRead:
		case RoleOperate:
			operate = true
		default:
			bad("%s.role: %q is neither %q nor %q", key, t.Role, RoleRead, RoleOperate)
		}
		h := strings.ToLower(t.Hash)
		if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
			bad("%s.hash: not a hex SHA-256 (64 hex digits); make one with `meridian token`", key)
			continue
		}
		if hashes[h] {
			bad("%s.hash: the same token is configured twice", key)
		}
		hashes[h] = true
		if name, ok := demo[h]; ok && !loopback {
			bad("%s.hash: the documented demo token %q is refused on the non-loopback listener %q", key, name, c.Listen)
		}
	}
	if operate && c.AuditFile == "" {
		bad("admin.audit_file: required when a token has the operate role")
	}
	if c.MaxBodyBytes < 0 {
		bad("admin.max_body_bytes: negative")
	}
	if c.AuditReadLimit < 0 {
		bad("admin.audit_read_limit: negative")
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"read_header_timeout", c.ReadHeaderTimeout}, {"read_timeout", c.ReadTimeout}, {"write_timeout", c.WriteTimeout}, {"idle_timeout", c.IdleTimeout}, {"shutdown_timeout", c.ShutdownTimeout}} {
		if d.v < 0 {
			bad("admin.%s: negative", d.key)
		}
	}
	return errors.Join(errs...)
}

// isLoopbackHost reports whether a listen host binds loopback only: a
// loopback IP or "localhost". An empty host (every interface) or any other
// name is not.
func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}

// HashToken is the hex SHA-256 of a token, the form Config.Tokens holds.
// A token is random (see NewToken), so an unsalted fast hash suffices: it
// cannot be guessed from its hash.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// TokenPrefix starts every token NewToken makes, so secret scanners can
// find leaked ones.
const TokenPrefix = "mrd_"

// NewToken returns a new random token: "mrd_" and 32 random bytes in
// unpadded base64url.
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("new token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// tokenTable finds the configured token a presented one matches.
type tokenTable struct {
	hashes [][sha256.Size]byte
	tokens []TokenConfig
}

func newTokenTable(ts []TokenConfig) (*tokenTable, error) {
	tt := &tokenTable{}
	for _, t := range ts {
		b, err := hex.DecodeString(strings.ToLower(t.Hash))
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("token %q: hash is not a hex SHA-256", t.ID)
		}
		tt.hashes = append(tt.hashes, [sha256.Size]byte(b))
		tt.tokens = append(tt.tokens, t)
	}
	return tt, nil
}

// lookup hashes token and compares it with every configured hash in
// constant time, without stopping at a match, so timing says nothing about
// which (or whether a) hash matched.
func (tt *tokenTable) lookup(token string) (TokenConfig, bool) {
	sum := sha256.Sum256([]byte(token))
	found := -1
	for i := range tt.hashes {
		if subtle.ConstantTimeCompare(sum[:], tt.hashes[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return TokenConfig{}, false
	}
	return tt.tokens[found], true
}
