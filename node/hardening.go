package node

import (
	"errors"
	"fmt"

	"github.com/meridian-gtm/meridian/dnsserver"
)

// dnsOptions builds the answer path's protections from [dns]: NSID, DNS
// cookies and response rate limiting.
func (n *Node) dnsOptions(c DNSConfig) (dnsserver.Options, error) {
	opts := dnsserver.Options{NSID: c.nsid(), RequireCookies: c.Cookies.Require}
	if c.Cookies.SecretFile != "" {
		secrets, err := n.cookieSecrets(c.Cookies.SecretFile)
		if err != nil {
			return opts, err
		}
		if opts.Cookies, err = dnsserver.NewCookies(secrets, nil); err != nil {
			return opts, fmt.Errorf("dns.cookies: %w", err)
		}
		n.cookies = opts.Cookies
	}
	if c.RRL.Enabled() {
		var err error
		if opts.RRL, err = dnsserver.NewRRL(c.RRL, nil, n.reg); err != nil {
			return opts, fmt.Errorf("dns.rrl: %w", err)
		}
	}
	return opts, nil
}

// cookieSecrets reads the cookie secret file; a file others may read is
// logged, not refused.
func (n *Node) cookieSecrets(file string) ([][]byte, error) {
	secrets, err := dnsserver.LoadCookieSecrets(file)
	if errors.Is(err, dnsserver.ErrCookieFileMode) {
		n.log.Warn("the DNS cookie secret file is readable by every user: anyone on this machine can forge cookies; chmod 600 it", "file", file)
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("dns.cookies: %w", err)
	}
	return secrets, nil
}

// reloadCookies reads the cookie secrets again, so a rotation takes effect
// with the reload that notices the file changed. A bad file keeps the
// secrets in use.
func (n *Node) reloadCookies() {
	if n.cookies == nil {
		return
	}
	secrets, err := n.cookieSecrets(n.cfg.DNS.Cookies.SecretFile)
	if err == nil {
		err = n.cookies.SetSecrets(secrets)
	}
	if err != nil {
		n.log.Error("DNS cookie secrets not reloaded, still using the previous ones", "err", err)
	}
}
