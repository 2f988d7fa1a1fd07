package main

// The operator commands: each one calls a node's admin API through
// admin.Client and prints the answer as aligned text, or as the API's
// JSON with -json. `token` is here too: it makes what the API checks.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meridian-gtm/meridian/admin"
)

// The environment the client commands read.
const (
	envAdmin = "MERIDIAN_ADMIN" // the API's address
	envToken = "MERIDIAN_TOKEN" // the bearer token: never a flag, flags show in ps
	envCA    = "MERIDIAN_CA"    // a PEM file to trust for https
)

const defaultAdmin = "127.0.0.1:8053"

// usageError is a mistake in a command line: run exits 2 for it.
type usageError string

func (e usageError) Error() string { return string(e) }

func usagef(format string, a ...any) error { return usageError(fmt.Sprintf(format, a...)) }

// errFlags says the flag package has already printed a bad flag and the
// flags' usage: run exits 2 and prints nothing more.
var errFlags = errors.New("bad flags")

// parseArgs parses args with fs, taking flags after positional arguments
// too ("clear ID -reason x"), up to a "--". It returns the positional
// arguments.
func parseArgs(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, error) {
	fs.SetOutput(stderr)
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errFlags
		}
		left := fs.Args()
		if len(left) == 0 {
			return rest, nil
		}
		if n := len(args) - len(left); n > 0 && args[n-1] == "--" {
			return append(rest, left...), nil
		}
		rest, args = append(rest, left[0]), left[1:]
	}
}

// noArgs refuses positional arguments for a command that takes none.
func noArgs(cmd string, rest []string) error {
	if len(rest) > 0 {
		return usagef("%s takes no arguments, got %q", cmd, rest)
	}
	return nil
}

// clientFlags are the flags of every command that calls the API.
type clientFlags struct {
	addr      string
	ca        string
	tokenFile string
	json      bool
	timeout   time.Duration
}

func addClientFlags(fs *flag.FlagSet) *clientFlags {
	cf := &clientFlags{}
	addr := os.Getenv(envAdmin)
	if addr == "" {
		addr = defaultAdmin
	}
	fs.StringVar(&cf.addr, "admin", addr, "the node's admin API: host:port or an http(s):// URL ($"+envAdmin+")")
	fs.StringVar(&cf.ca, "ca", os.Getenv(envCA), "PEM file of the CA to trust for an https admin API ($"+envCA+")")
	fs.StringVar(&cf.tokenFile, "token-file", "", "read the bearer token from this file (default: $"+envToken+")")
	fs.BoolVar(&cf.json, "json", false, "print the API's JSON answer")
	fs.DurationVar(&cf.timeout, "timeout", 10*time.Second, "give up on the API after this long")
	return cf
}

// token is the bearer token: -token-file's content, else $MERIDIAN_TOKEN,
// else "" (the API then answers 401).
func (cf *clientFlags) token() (string, error) {
	if cf.tokenFile == "" {
		return strings.TrimSpace(os.Getenv(envToken)), nil
	}
	b, err := os.ReadFile(cf.tokenFile)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("token file %s: empty", cf.tokenFile)
	}
	return t, nil
}

// client is the API client the flags describe, and the context of one
// command: it ends after -timeout.
func (cf *clientFlags) client() (*admin.Client, context.Context, context.CancelFunc, error) {
	if cf.timeout <= 0 {
		return nil, nil, nil, usagef("-timeout %s: want a positive duration", cf.timeout)
	}
	tok, err := cf.token()
	if err != nil {
		return nil, nil, nil, err
	}
	hc := &http.Client{
		// A redirect would take the token elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if cf.ca != "" {
		pem, err := os.ReadFile(cf.ca)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("ca: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, nil, nil, fmt.Errorf("ca: no PEM certificate in %s", cf.ca)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		hc.Transport = tr
	}
	c, err := admin.NewClient(cf.addr, tok, hc)
	if err != nil {
		return nil, nil, nil, usageError(err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
	return c, ctx, cancel, nil
}

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// apiHint is a line of advice for an API error, or "".
func apiHint(cmd string, e *admin.Error) string {
	switch e.Status {
	case http.StatusUnauthorized:
		return "give the token in $" + envToken + " or with -token-file (make one with `meridian token -role operate`)"
	case http.StatusForbidden:
		if strings.Contains(e.Detail, "role") {
			return "this needs a token with the operate role"
		}
		return "address the API by a name in admin.allowed_hosts (-admin)"
	case http.StatusConflict:
		return "a safety rail refused the change: see what it would do with -dry-run; if you are sure, repeat with -force and a -reason that says why"
	case http.StatusNotFound:
		if cmd == "clear" || cmd == "undrain" {
			return "`meridian overrides` lists the overrides in force and their IDs"
		}
	}
	return ""
}

// tokenCmd makes a token and the config block that admits it.
func tokenCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	role := fs.String("role", "", "what the token may do: read or operate (required)")
	id := fs.String("id", "", "the token's name in the audit log and on overrides (default: the role and a random suffix)")
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if err := noArgs("token", rest); err != nil {
		return err
	}
	r := admin.Role(*role)
	if r != admin.RoleRead && r != admin.RoleOperate {
		return usagef("-role %q: want %s or %s", *role, admin.RoleRead, admin.RoleOperate)
	}
	if *id == "" {
		var b [3]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail
		*id = *role + "-" + hex.EncodeToString(b[:])
	}
	if !tokenIDOK(*id) {
		return usagef("-id %q: letters, digits, '.', '_', '-' and '@' only, at most 128 bytes", *id)
	}
	tok, err := admin.NewToken()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n\n[[admin.tokens]]\nid = %q\nrole = %q\nhash = %q\n", tok, *id, r, admin.HashToken(tok))
	fmt.Fprintf(stderr, "meridian: the token (the first line) is shown this once and stored nowhere: keep it in your secret store\n"+
		"and give it to the commands in $%s or with -token-file. Add the block to the [admin] part of\n"+
		"each node's config: it holds only the token's hash.\n", envToken)
	return nil
}

// tokenIDOK: IDs of this alphabet need no escaping in TOML, logs or
// audit lines.
func tokenIDOK(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._-@", c) >= 0) {
			return false
		}
	}
	return true
}

// overrideFlags are the flags failover and drain share.
type overrideFlags struct {
	reason  string
	expires time.Duration
	force   bool
	dryRun  bool
}

func addOverrideFlags(fs *flag.FlagSet) *overrideFlags {
	of := &overrideFlags{}
	fs.StringVar(&of.reason, "reason", "", "why (required): it is audited and shown to other operators")
	fs.DurationVar(&of.expires, "expires", 0, "revert by itself after this long, e.g. 90m (default: never)")
	fs.BoolVar(&of.force, "force", false, "pass the safety rails (say why in -reason)")
	fs.BoolVar(&of.dryRun, "dry-run", false, "show which clients would move where, and any safety rail that would refuse it; change nothing")
	return of
}

func (of *overrideFlags) request(a admin.Action, pool, region string) (admin.OverrideRequest, error) {
	if strings.TrimSpace(of.reason) == "" {
		return admin.OverrideRequest{}, usagef("-reason is required: say why, it is audited and shown to other operators")
	}
	if of.expires < 0 {
		return admin.OverrideRequest{}, usagef("-expires %s: negative", of.expires)
	}
	req := admin.OverrideRequest{Action: string(a), Pool: pool, Region: region, Reason: of.reason, Force: of.force}
	if of.expires > 0 {
		req.ExpiresIn = of.expires.String()
	}
	return req, nil
}

// failoverCmd pins a pool to a region.
func failoverCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("failover", flag.ContinueOnError)
	pool := fs.String("pool", "", "the pool's owner name, e.g. www.gslb.example.com (required)")
	to := fs.String("to", "", "the region every client of the pool gets (required)")
	of := addOverrideFlags(fs)
	cf := addClientFlags(fs)
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if err := noArgs("failover", rest); err != nil {
		return err
	}
	if *pool == "" || *pool == admin.AllPools || *to == "" {
		return usagef("usage: meridian failover -pool <pool> -to <region> -reason <why> [-expires 90m] [-force] [-dry-run]")
	}
	req, err := of.request(admin.ActionPin, *pool, *to)
	if err != nil {
		return err
	}
	return setOverride(cf, req, of.dryRun, stdout)
}

// drainCmd takes a region out of a pool, or of every pool.
func drainCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("drain", flag.ContinueOnError)
	region := fs.String("region", "", "the region to take out (required)")
	pool := fs.String("pool", admin.AllPools, "the pool's owner name; "+admin.AllPools+" for every pool")
	of := addOverrideFlags(fs)
	cf := addClientFlags(fs)
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if err := noArgs("drain", rest); err != nil {
		return err
	}
	if *region == "" || *pool == "" {
		return usagef("usage: meridian drain -region <region> [-pool <pool>] -reason <why> [-expires 90m] [-force] [-dry-run]")
	}
	req, err := of.request(admin.ActionDrain, *pool, *region)
	if err != nil {
		return err
	}
	return setOverride(cf, req, of.dryRun, stdout)
}

func setOverride(cf *clientFlags, req admin.OverrideRequest, dryRun bool, stdout io.Writer) error {
	c, ctx, cancel, err := cf.client()
	if err != nil {
		return err
	}
	defer cancel()
	if dryRun {
		p, err := c.Preview(ctx, req)
		if err != nil {
			return err
		}
		if cf.json {
			return printJSON(stdout, p)
		}
		printPreview(stdout, p, req.Force)
		return nil
	}
	r, err := c.SetOverride(ctx, req)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(stdout, r)
	}
	o := r.Override
	fmt.Fprintf(stdout, "set %s: %s, by %s, expires %s\n", o.ID, describe(o), o.Who, expires(o.ExpiresAt, time.Now()))
	if o.Action == admin.ActionDrain {
		undo := "meridian undrain -region " + o.Region
		if o.Pool != admin.AllPools {
			undo += " -pool " + o.Pool
		}
		fmt.Fprintf(stdout, "undo with: %s\n", undo)
	} else {
		fmt.Fprintf(stdout, "undo with: meridian clear %s\n", o.ID)
	}
	return nil
}

// describe says what an override does, in words.
func describe(o admin.Override) string {
	if o.Action == admin.ActionPin {
		return fmt.Sprintf("pin pool %s to %s", o.Pool, o.Region)
	}
	if o.Pool == admin.AllPools {
		return fmt.Sprintf("%s %s in every pool", o.Action, o.Region)
	}
	return fmt.Sprintf("%s %s in pool %s", o.Action, o.Region, o.Pool)
}

func printPreview(w io.Writer, p *admin.Preview, force bool) {
	fmt.Fprintf(w, "dry run, nothing changed: %s (%s)\n", describe(p.Override), p.Override.ID)
	if len(p.Moves) == 0 {
		fmt.Fprintln(w, "no client would get another answer")
	} else {
		fmt.Fprintln(w, "these clients would move:")
		tw := newTable(w, "  ")
		fmt.Fprintln(tw, "POOL\tSCOPE\tCODE\tFROM\t\tTO")
		for _, m := range p.Moves {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t→\t%s\n", m.Pool, m.Scope, m.Code, orDash(m.From), orDash(m.To))
		}
		tw.Flush()
	}
	switch {
	case p.Conflict == "":
		fmt.Fprintln(w, "no safety rail would refuse it")
	case force:
		fmt.Fprintf(w, "conflict: %s\n  -force passes it\n", p.Conflict)
	default:
		fmt.Fprintf(w, "conflict: %s\n  it would be refused; -force passes it (say why in -reason)\n", p.Conflict)
	}
}

// undrainCmd clears a drain.
func undrainCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("undrain", flag.ContinueOnError)
	region := fs.String("region", "", "the drained region (required)")
	pool := fs.String("pool", admin.AllPools, "the pool's owner name, as drained; "+admin.AllPools+" for every pool")
	reason := fs.String("reason", "", "why, for the audit log")
	cf := addClientFlags(fs)
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if err := noArgs("undrain", rest); err != nil {
		return err
	}
	if *region == "" || *pool == "" {
		return usagef("usage: meridian undrain -region <region> [-pool <pool>] [-reason <why>]")
	}
	return clearOverride(cf, admin.OverrideID(admin.ActionDrain, *pool, *region), *reason, stdout)
}

// clearCmd clears any override by its ID.
func clearCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("clear", flag.ContinueOnError)
	reason := fs.String("reason", "", "why, for the audit log")
	cf := addClientFlags(fs)
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(rest) != 1 || rest[0] == "" {
		return usagef("usage: meridian clear [-reason <why>] <override ID>  (`meridian overrides` lists them)")
	}
	return clearOverride(cf, rest[0], *reason, stdout)
}

func clearOverride(cf *clientFlags, id, reason string, stdout io.Writer) error {
	c, ctx, cancel, err := cf.client()
	if err != nil {
		return err
	}
	defer cancel()
	r, err := c.ClearOverride(ctx, id, reason)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(stdout, r)
	}
	if r.Override.ID == "" {
		fmt.Fprintf(stdout, "cleared %s\n", id)
		return nil
	}
	fmt.Fprintf(stdout, "cleared %s: %s, set by %s at %s: %s\n", id, describe(r.Override), r.Override.Who, stamp(r.Override.When), r.Override.Why)
	return nil
}

// statusCmd prints the cluster as the node sees it.
func statusCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	cf := addClientFlags(fs)
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if err := noArgs("status", rest); err != nil {
		return err
	}
	c, ctx, cancel, err := cf.client()
	if err != nil {
		return err
	}
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(stdout, st)
	}
	printStatus(stdout, st, time.Now())
	return nil
}

func printStatus(w io.Writer, st *admin.Status, now time.Time) {
	fmt.Fprintf(w, "as node %s sees it\n\n", st.Node)
	tw := newTable(w, "")
	fmt.Fprintln(tw, "MEMBER\tREGION\tSTATE\tVERSION\tCONFIG")
	for _, m := range st.Members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Name, orDash(m.Region), m.State, orDash(m.Version), orDash(short(m.ConfigHash, 12)))
	}
	tw.Flush()
	fmt.Fprintf(w, "isolated: %s   self-distrust: %s   config agreement: %s\n",
		yesNo(st.Isolated), yesNo(st.SelfDistrust), yesNo(st.ConfigAgreement))
	if st.Isolated {
		fmt.Fprintln(w, "  ISOLATED: cut off from most of the cluster; serving the last agreed view, frozen")
	}
	if st.SelfDistrust {
		fmt.Fprintln(w, "  SELF-DISTRUST: this node sees everything down while its peers do not; its own votes are left out")
	}
	if !st.ConfigAgreement {
		fmt.Fprintln(w, "  CONFIG DISAGREEMENT: some live member announces another config hash")
	}
	for _, p := range st.Pools {
		fmt.Fprintf(w, "\npool %s\n", p.Pool)
		tw := newTable(w, "  ")
		fmt.Fprintln(tw, "REGION\tQUORUM\tOVERRIDE\tOBSERVER\tVERDICT\tAGE\tREASON")
		for _, r := range p.Regions {
			verdict := r.Verdict
			if r.Pending {
				verdict += " (pending)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t\t\t\t%s\n", r.Region, verdict, orDash(r.Override), r.Reason)
			for _, o := range r.Observers {
				reason := o.Reason
				if o.Lagging {
					reason = strings.TrimSpace("(lagging) " + reason)
				}
				fmt.Fprintf(tw, "\t\t\t%s\t%s\t%s\t%s\n", o.Node, o.Verdict, age(o.Checked, now), reason)
			}
		}
		tw.Flush()
		var ans []string
		for _, cont := range slices.Sorted(maps.Keys(p.Answering)) {
			ans = append(ans, cont+" "+p.Answering[cont])
		}
		if len(ans) == 0 {
			ans = []string{"-"}
		}
		fmt.Fprintf(w, "  answering: %s\n", strings.Join(ans, ", "))
	}
	fmt.Fprintln(w)
	printOverrides(w, st.Overrides, now)
}

// overridesCmd lists the overrides in force.
func overridesCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("overrides", flag.ContinueOnError)
	cf := addClientFlags(fs)
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if err := noArgs("overrides", rest); err != nil {
		return err
	}
	c, ctx, cancel, err := cf.client()
	if err != nil {
		return err
	}
	defer cancel()
	list, err := c.Overrides(ctx)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(stdout, admin.OverridesResponse{Overrides: list})
	}
	printOverrides(stdout, list, time.Now())
	return nil
}

func printOverrides(w io.Writer, list []admin.Override, now time.Time) {
	if len(list) == 0 {
		fmt.Fprintln(w, "overrides: none")
		return
	}
	fmt.Fprintln(w, "overrides:")
	tw := newTable(w, "  ")
	fmt.Fprintln(tw, "ID\tWHO\tWHEN\tEXPIRES\tWHY")
	for _, o := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.ID, orDash(o.Who), stamp(o.When), expires(o.ExpiresAt, now), o.Why)
	}
	tw.Flush()
}

// reloadCmd makes the node load its config again.
func reloadCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	reason := fs.String("reason", "", "why, for the audit log")
	cf := addClientFlags(fs)
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if err := noArgs("reload", rest); err != nil {
		return err
	}
	c, ctx, cancel, err := cf.client()
	if err != nil {
		return err
	}
	defer cancel()
	if err := c.Reload(ctx, *reason); err != nil {
		return err
	}
	if cf.json {
		return printJSON(stdout, admin.ReloadResponse{Reloaded: true})
	}
	fmt.Fprintln(stdout, "reloaded: the node serves the new config")
	return nil
}

// auditCmd prints the audit log's newest entries.
func auditCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	sinceArg := fs.String("since", "", "entries at or after this time: RFC 3339 (2025-01-02T15:04:05Z) or a duration ago (24h)")
	limit := fs.Int("limit", 0, "at most this many entries, the newest (default: the server's limit)")
	cf := addClientFlags(fs)
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if err := noArgs("audit", rest); err != nil {
		return err
	}
	now := time.Now()
	var since time.Time
	if *sinceArg != "" {
		if t, err := time.Parse(time.RFC3339Nano, *sinceArg); err == nil {
			since = t
		} else if d, err := time.ParseDuration(*sinceArg); err == nil && d > 0 {
			since = now.Add(-d)
		} else {
			return usagef("-since %q: want an RFC 3339 time (2025-01-02T15:04:05Z) or a duration (24h)", *sinceArg)
		}
	}
	if *limit < 0 {
		return usagef("-limit %d: negative", *limit)
	}
	c, ctx, cancel, err := cf.client()
	if err != nil {
		return err
	}
	defer cancel()
	a, err := c.Audit(ctx, since, *limit)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(stdout, a)
	}
	if a.More {
		fmt.Fprintln(stdout, "(older entries matched and are left out: narrow -since)")
	}
	if len(a.Entries) == 0 {
		fmt.Fprintln(stdout, "no audit entries")
		return nil
	}
	tw := newTable(stdout, "")
	fmt.Fprintln(tw, "TIME\tTOKEN\tSOURCE\tACTION\tTARGET\tRESULT\tREASON")
	for _, e := range a.Entries {
		result := e.Phase
		if e.Result != nil {
			result = strconv.Itoa(e.Result.Status)
			if e.Result.Message != "" {
				result += " " + e.Result.Message
			}
		}
		source := e.Source
		if e.Origin != "" {
			source = strings.TrimSpace(source + " from " + e.Origin)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", stamp(e.Time), orDash(e.TokenID), orDash(source), e.Action, orDash(e.Target), result, e.Reason)
	}
	tw.Flush()
	return nil
}

// explainLive asks the running node how it answers, and prints its
// trace as `explain` does offline.
func explainLive(cf *clientFlags, client, name, qtype string, stdout io.Writer) error {
	c, ctx, cancel, err := cf.client()
	if err != nil {
		return err
	}
	defer cancel()
	x, err := c.Explain(ctx, client, name, qtype)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(stdout, x)
	}
	fmt.Fprintf(stdout, "health:    live, as the node at %s serves now\n", cf.addr)
	fmt.Fprint(stdout, x.Text)
	return nil
}

func newTable(w io.Writer, indent string) *tabwriter.Writer {
	if indent != "" {
		w = &prefixWriter{w: w, prefix: indent, bol: true}
	}
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// prefixWriter indents every line.
type prefixWriter struct {
	w      io.Writer
	prefix string
	bol    bool // at the beginning of a line
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	var out []byte
	for _, c := range b {
		if p.bol {
			out = append(out, p.prefix...)
		}
		out = append(out, c)
		p.bol = c == '\n'
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// stamp is a time in UTC to the second; "-" for none.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// expires is an expiry time and how far off it is.
func expires(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := t.Sub(now)
	if d <= 0 {
		return stamp(t) + " (due)"
	}
	return fmt.Sprintf("%s (in %s)", stamp(t), span(d))
}

// age is how long ago t was; "-" for never.
func age(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return span(max(now.Sub(t), 0))
}

// span is d for people: seconds under a minute, minutes above ("2h",
// "1h30m", "45s").
func span(d time.Duration) string {
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	s := d.Round(time.Minute).String() // "2h0m0s", "1h30m0s"
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
