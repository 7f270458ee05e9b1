package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"switchyard/access"
	"switchyard/sqldb"
)

// openStore opens the data dir's database for the offline commands.
func openStore(ctx context.Context, dataDir string) (*access.Store, func(), error) {
	path := filepath.Join(dataDir, "console.db")
	if _, err := os.Stat(dataDir); err != nil {
		return nil, nil, fmt.Errorf("data dir %s: %w", dataDir, err)
	}
	db, err := sqldb.Open(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	store, err := access.NewStore(db, access.Options{})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return store, func() { db.Close() }, nil
}

func dataDirFlag(fs *flag.FlagSet, getenv func(string) string) *string {
	def := getenv("CONSOLE_DATA_DIR")
	if def == "" {
		def = "./data"
	}
	return fs.String("data-dir", def, "data directory (CONSOLE_DATA_DIR)")
}

// runUserAdd adds a user offline. The password comes from
// CONSOLE_USER_PASSWORD, else from the first line of stdin when it is not a
// terminal, else it is generated and printed once.
func runUserAdd(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	role := fs.String("role", "viewer", "scraper (reads /metrics only), viewer, operator or admin")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	dataDir := dataDirFlag(fs, getenv)
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
	store, closeFn, err := openStore(ctx, *dataDir)
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
	dataDir := dataDirFlag(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" {
		return usageError{"usage: console token create --user NAME [--name LABEL] [--ttl 720h] [--data-dir DIR]"}
	}
	store, closeFn, err := openStore(ctx, *dataDir)
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

// runAuditVerify recomputes the audit log's hash chain offline and says
// whether it is intact; a broken chain is an error (exit 1) naming the row.
func runAuditVerify(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	dataDir := dataDirFlag(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := os.Stat(*dataDir); err != nil {
		return fmt.Errorf("data dir %s: %w", *dataDir, err)
	}
	db, err := sqldb.Open(ctx, filepath.Join(*dataDir, "console.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	audit, err := access.NewAudit(db, nil)
	if err != nil {
		return err
	}
	res, err := audit.Verify(ctx)
	if err != nil {
		return err
	}
	if !res.OK {
		return fmt.Errorf("audit log broken at row %d: %s (%d rows checked)", res.BrokenAt, res.Problem, res.Rows)
	}
	fmt.Fprintf(stdout, "audit log intact: %d rows, hash chain verified\n", res.Rows)
	return nil
}
