// Command console is the Switchyard operations console: one binary that
// serves the web console and API (`serve`), runs it on an embedded demo
// platform (`demo`), and manages users and API tokens offline against the
// data dir (`user add`, `token create`).
//
// This is the only package that reads flags, the environment and config
// files; Main wires everything together and is reused by end-to-end tests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"switchyard/sqldb"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if len(os.Args) == 2 && os.Args[1] == "demo" || len(os.Args) > 2 && os.Args[1] == "demo" && strings.HasPrefix(os.Args[2], "-") {
		limitDemoMemory(os.Getenv)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "console:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `usage: console <command> [flags]

commands:
  serve                 run the console against the configured brokers
  demo                  run the console with an embedded Kafka and demo services
  demo fix|unfix CODE, demo fixes
                        deploy (or take back) the fix for an error code in the
                        running demo, so a redrive of its dead letters succeeds
  user add NAME         add a user (--role scraper|viewer|operator|admin; password
                        from CONSOLE_USER_PASSWORD, else generated and printed)
  token create --user NAME
                        print a new API token for NAME on stdout
  audit verify          check the audit log's hash chain with the audit key
                        and against anchors (--anchor SEQ:HASH, --anchor-file
                        FILE); exit 1 when broken or not verifiable
  dlq redrive|quarantine|discard|restore|jobs|job|cancel
                        dead-letter jobs through the console's API with a token
                        ('console dlq help' for the flags)
  alerts list|silence   alerts and silences through the console's API with a token
                        ('console alerts help' for the flags)
  export prometheus-rules|dashboards
                        alert rules as a Prometheus rule file, Grafana dashboards,
                        through the console's API with a token ('console export help')
  healthcheck           exit 0 when the console at CONSOLE_ADDR answers /healthz
  version               print the version

Run 'console <command> -h' for the flags of a command.`

// demoMemoryLimit is the Go runtime's soft memory limit for `console demo`
// when GOMEMLIMIT does not set one, and demoSQLiteLimit SQLite's, in C, for
// the whole process (sqldb.SetSoftHeapLimit). The demo's live Go heap stays
// under 50 MB once its stores are full (30 minutes), but with the default
// GOGC the heap runs to twice that between collections and the runtime
// keeps what it freed mapped for a while; and the page caches of every
// connection of every store (five of dlq.db's alone) fill up to their
// sizes. Together they took a demo past 200 MB within the hour. The limits
// make the collector run sooner and return memory, and the caches recycle
// pages instead of growing. glibc's per-thread arenas still held 85 MB for
// those 32 MB once span retention churned the trace store every minute;
// with two arenas (demoMallocArenas, unless MALLOC_ARENA_MAX sets it) they
// held 49 MB at first and 90 MB after an hour (the demo at 201 MB): the
// allocator kept 54 MB free inside its heaps for SQLite's 33 MB in use.
// Trimming the heaps every minute (demoTrimEvery, sqldb.TrimMalloc; ~40 ms)
// gives the free pages back: 41–66 MB of C memory, and a 2-hour demo at
// 174–177 MB at the end, never above 187 MB.
// Process, not library, settings: main only, never in tests.
const (
	demoMemoryLimit  = 80 << 20
	demoSQLiteLimit  = 32 << 20
	demoMallocArenas = 2
	demoTrimEvery    = time.Minute
)

func limitDemoMemory(getenv func(string) string) {
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(demoMemoryLimit)
	}
	if err := sqldb.SetSoftHeapLimit(context.Background(), demoSQLiteLimit); err != nil {
		fmt.Fprintln(os.Stderr, "console: demo:", err)
	}
	if getenv("MALLOC_ARENA_MAX") == "" {
		sqldb.LimitMallocArenas(demoMallocArenas)
	}
	go func() {
		for range time.Tick(demoTrimEvery) {
			sqldb.TrimMalloc()
		}
	}()
}

// run dispatches a command line; it is main without the process exit.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return usageError{usage}
	}
	switch args[0] {
	case "serve", "demo":
		if args[0] == "demo" && len(args) > 1 && !strings.HasPrefix(args[1], "-") {
			return runDemoControl(ctx, args[1:], stdout, getenv)
		}
		m := NewMain(stdout, stderr, getenv)
		m.DemoMode = args[0] == "demo"
		if err := m.ParseFlags(args[1:]); err != nil {
			return err
		}
		if err := m.Run(ctx); err != nil {
			m.Close()
			return err
		}
		<-ctx.Done()
		fmt.Fprintln(stdout, "shutting down…")
		return m.Close()
	case "user":
		if len(args) < 2 || args[1] != "add" {
			return usageError{"usage: console user add NAME [--role ROLE] [--data-dir DIR]"}
		}
		return runUserAdd(ctx, args[2:], stdin, stdout, getenv)
	case "token":
		if len(args) < 2 || args[1] != "create" {
			return usageError{"usage: console token create --user NAME [--name LABEL] [--ttl 720h] [--data-dir DIR]"}
		}
		return runTokenCreate(ctx, args[2:], stdout, getenv)
	case "audit":
		if len(args) < 2 || args[1] != "verify" {
			return usageError{"usage: console audit verify [--data-dir DIR] [--config FILE] [--anchor SEQ:HASH]... [--anchor-file FILE]"}
		}
		return runAuditVerify(ctx, args[2:], stdout, getenv)
	case "dlq":
		return runDLQ(ctx, args[1:], stdout, getenv)
	case "alerts":
		return runAlerts(ctx, args[1:], stdout, getenv)
	case "export":
		return runExport(ctx, args[1:], stdout, stderr, getenv)
	case "healthcheck":
		return runHealthcheck(ctx, getenv)
	case "version", "-v", "--version":
		fmt.Fprintln(stdout, "switchyard console", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		return usageError{fmt.Sprintf("unknown command %q\n%s", args[0], usage)}
	}
}
