package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"switchyard/access"
	"switchyard/delivery"
)

// openAudit opens the data dir's database and its audit log, keyed as the
// console's is (see offlineLocation).
func openAudit(ctx context.Context, loc *offlineLocation) (Config, *sql.DB, access.AuditLog, error) {
	c, err := loc.resolve()
	if err != nil {
		return Config{}, nil, nil, err
	}
	db, err := openConsoleDB(ctx, c.DataDir)
	if err != nil {
		return Config{}, nil, nil, err
	}
	audit, err := access.NewAuditWith(db, access.AuditOptions{Key: c.AuditKey})
	if err != nil {
		db.Close()
		return Config{}, nil, nil, err
	}
	return c, db, audit, nil
}

// openStore opens the data dir's database for the offline commands that
// change it; their audit rows are keyed like the console's, and a keyed
// log without its key is refused before anything changes.
func openStore(ctx context.Context, loc *offlineLocation) (access.Directory, func(), error) {
	_, db, audit, err := openAudit(ctx, loc)
	if err != nil {
		return nil, nil, err
	}
	if err := audit.CheckKey(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("audit log: %s", delivery.ErrorMessage(err))
	}
	store, err := access.NewStore(db, access.Options{Audit: audit})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return store, func() { db.Close() }, nil
}

// runUserAdd adds a user offline. The password comes from
// CONSOLE_USER_PASSWORD, else from the first line of stdin when it is not a
// terminal, else it is generated and printed once.
func runUserAdd(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	role := fs.String("role", "viewer", "scraper (reads /metrics only), viewer, operator or admin")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	loc := offlineFlags(fs, getenv)
	name, rest := splitName(args)
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	}
	if name == "" {
		return usageError{"usage: console user add NAME [--role ROLE] [--password-stdin] [--data-dir DIR]"}
	}
	password := getenv("CONSOLE_USER_PASSWORD")
	if *fromStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("read password: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	}
	generated := false
	if password == "" {
		p, err := access.GeneratePassword()
		if err != nil {
			return err
		}
		password, generated = p, true
	}
	store, closeFn, err := openStore(ctx, loc)
	if err != nil {
		return err
	}
	defer closeFn()
	if err := store.AddUser(ctx, name, password, *role); err != nil {
		return err
	}
	if generated {
		fmt.Fprintf(stdout, "added user %s (role %s), password: %s\n", name, *role, password)
	} else {
		fmt.Fprintf(stdout, "added user %s (role %s)\n", name, *role)
	}
	return nil
}

// runTokenCreate prints a new API token on stdout (and nothing else, so that
// scripts can capture it).
func runTokenCreate(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("token create", flag.ContinueOnError)
	user := fs.String("user", "", "the user the token acts as (required)")
	label := fs.String("name", "cli", "a label to recognise the token by")
	ttl := fs.Duration("ttl", 90*24*time.Hour, "lifetime; 0 for no expiry")
	loc := offlineFlags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" {
		return usageError{"usage: console token create --user NAME [--name LABEL] [--ttl 720h] [--data-dir DIR]"}
	}
	store, closeFn, err := openStore(ctx, loc)
	if err != nil {
		return err
	}
	defer closeFn()
	tok, err := store.CreateToken(ctx, *user, *label, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// runHealthcheck is the container health check: GET /healthz on CONSOLE_ADDR.
func runHealthcheck(ctx context.Context, getenv func(string) string) error {
	addr := getenv("CONSOLE_ADDR")
	if addr == "" {
		addr = ":8080"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("CONSOLE_ADDR %q: %w", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: status %d", resp.StatusCode)
	}
	return nil
}

// splitName lets NAME come before the flags (`user add alice --role admin`),
// which the flag package alone does not allow.
func splitName(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

// anchorFlags collects repeated --anchor SEQ:HASH values.
type anchorFlags []access.Anchor

func (a *anchorFlags) String() string { return fmt.Sprint(*a) }

func (a *anchorFlags) Set(v string) error {
	x, err := access.ParseAnchor(v)
	if err != nil {
		return errors.New(delivery.ErrorMessage(err))
	}
	*a = append(*a, x)
	return nil
}

// runAuditVerify recomputes the audit log's hash chain offline — keyed
// rows with the audit key, read as the console reads it — checks it
// against the anchors given (--anchor, --anchor-file, and the config's
// auth.audit_anchor_file), and says whether it is intact. A broken chain,
// a failing anchor, or keyed rows it has no key for are an error (exit 1).
func runAuditVerify(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	var anchors anchorFlags
	fs.Var(&anchors, "anchor", "SEQ:HASH of an earlier chain head, from the console's \"audit chain anchor\" log lines (repeatable)")
	anchorFile := fs.String("anchor-file", "", "a file of anchors: the console's anchor file or its JSON log")
	loc := offlineFlags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	c, db, audit, err := openAudit(ctx, loc)
	if err != nil {
		return err
	}
	defer db.Close()
	var files []string
	for _, f := range []string{*anchorFile, c.Auth.AuditAnchorFile} {
		if f != "" && !slices.Contains(files, f) {
			files = append(files, f)
		}
	}
	for _, f := range files {
		got, err := readAnchorFile(f)
		if err != nil {
			return err
		}
		anchors = append(anchors, got...)
	}
	res, err := audit.Verify(ctx, anchors...)
	if err != nil {
		return err
	}
	switch {
	case res.BrokenAt > 0:
		return fmt.Errorf("audit log broken at row %d: %s (%d rows checked)", res.BrokenAt, res.Problem, res.Rows)
	case !res.OK:
		return fmt.Errorf("audit log not verified: %s (%d rows checked)", res.Problem, res.Rows)
	}
	fmt.Fprintf(stdout, "audit log intact: %d rows, hash chain verified\n", res.Rows)
	if res.Keyed > 0 {
		fmt.Fprintf(stdout, "  keyed:    %d rows (HMAC-SHA256, key id %s)\n", res.Keyed, res.KeyID)
	}
	if res.Unkeyed > 0 {
		fmt.Fprintf(stdout, "  unkeyed:  rows 1-%d (plain SHA-256, written without an audit key: they prove order, not authorship)\n", res.Unkeyed)
	}
	if len(anchors) > 0 {
		fmt.Fprintf(stdout, "  anchors:  %d matched\n", res.Anchors)
	} else {
		fmt.Fprintln(stdout, "  anchors:  none given (--anchor, --anchor-file): a rewrite of the whole chain, or rows cut off its end, cannot be seen without one")
	}
	if res.Head.Seq > 0 {
		fmt.Fprintf(stdout, "  head:     %s (keep it as an anchor)\n", res.Head)
	}
	return nil
}

// readAnchorFile reads the anchors of an anchor file or a console log.
func readAnchorFile(path string) ([]access.Anchor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("anchor file: %w", err)
	}
	defer f.Close()
	as, err := access.ReadAnchors(f)
	if delivery.ErrorCode(err) == delivery.EINVALID {
		return nil, fmt.Errorf("anchor file %s: %s", path, delivery.ErrorMessage(err))
	}
	if err != nil {
		return nil, fmt.Errorf("anchor file %s: %w", path, err)
	}
	return as, nil
}
