package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"switchyard/access"
)

// The audit key and anchors: where the console reads them, and why they
// must live outside the data dir (whoever can write console.db and read
// the key can rewrite the whole chain so that it verifies).

// decodeAuditKey reads a key written as hex (`openssl rand -hex 32`) or
// base64 (`openssl rand -base64 32`, standard or URL alphabet, padded or
// not). Hex is tried first: a hex text is also valid base64, but nobody
// writes a base64 key that happens to be all hex digits.
func decodeAuditKey(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	if b, err := hex.DecodeString(text); err == nil && len(text) > 0 {
		return checkKeyLen(b)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(text); err == nil && len(text) > 0 {
			return checkKeyLen(b)
		}
	}
	return nil, errors.New("is neither hex nor base64")
}

func checkKeyLen(b []byte) ([]byte, error) {
	if len(b) < access.MinAuditKeyLen {
		return nil, fmt.Errorf("is %d bytes, want at least %d (openssl rand -hex 32)", len(b), access.MinAuditKeyLen)
	}
	return b, nil
}

// insideDir reports whether path is dir or below it, after resolving
// symlinks of whatever exists of both (so that a link into the data dir
// counts as inside).
func insideDir(path, dir string) bool {
	resolve := func(p string) string {
		abs, err := filepath.Abs(p)
		if err != nil {
			return filepath.Clean(p)
		}
		// Resolve the longest existing prefix: the file itself may not
		// exist yet (an anchor file is created on first use).
		rest := ""
		for cur := abs; ; {
			if r, err := filepath.EvalSymlinks(cur); err == nil {
				return filepath.Join(r, rest)
			}
			parent := filepath.Dir(cur)
			if parent == cur {
				return abs
			}
			rest = filepath.Join(filepath.Base(cur), rest)
			cur = parent
		}
	}
	rel, err := filepath.Rel(resolve(dir), resolve(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// auditProblems lists what is wrong with the audit settings, for
// Validate: a key file or anchor file inside the data dir, both key
// sources at once, an anchor interval under a second.
func (c Config) auditProblems(envKey string) []error {
	var errs []error
	if c.Auth.AuditKeyFile != "" && strings.TrimSpace(envKey) != "" {
		errs = append(errs, errors.New("auth: set the audit key in CONSOLE_AUDIT_KEY or auth.audit_key_file, not both"))
	}
	for name, p := range map[string]string{"audit_key_file": c.Auth.AuditKeyFile, "audit_anchor_file": c.Auth.AuditAnchorFile} {
		if p != "" && insideDir(p, c.DataDir) {
			errs = append(errs, fmt.Errorf("auth.%s %s is inside the data dir: whoever can rewrite the database could rewrite it too; keep it elsewhere", name, p))
		}
	}
	if c.Auth.AuditAnchorInterval < Duration(time.Second) {
		errs = append(errs, errors.New("auth.audit_anchor_interval must be at least 1s"))
	}
	return errs
}

// readAuditKey returns the audit key from envKey (CONSOLE_AUDIT_KEY) or
// the file c.Auth.AuditKeyFile, nil when neither is set. It never says
// anything about the key itself beyond its length.
func (c Config) readAuditKey(envKey string) ([]byte, error) {
	if envKey = strings.TrimSpace(envKey); envKey != "" {
		k, err := decodeAuditKey(envKey)
		if err != nil {
			return nil, fmt.Errorf("CONSOLE_AUDIT_KEY %w", err)
		}
		return k, nil
	}
	if c.Auth.AuditKeyFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(c.Auth.AuditKeyFile)
	if err != nil {
		return nil, fmt.Errorf("auth.audit_key_file: %w", err)
	}
	k, err := decodeAuditKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("auth.audit_key_file %s: the key %w", c.Auth.AuditKeyFile, err)
	}
	return k, nil
}

// offlineLocation is where an offline command finds the console's data:
// --data-dir (else CONSOLE_DATA_DIR, else the config file's data_dir,
// else ./data) and --config (CONSOLE_CONFIG), whose auth.audit_key_file
// and auth.audit_anchor_file it uses; CONSOLE_AUDIT_KEY as for serve.
type offlineLocation struct {
	dataDir, config *string
	getenv          func(string) string
}

func offlineFlags(fs *flag.FlagSet, getenv func(string) string) *offlineLocation {
	return &offlineLocation{
		dataDir: fs.String("data-dir", "", "data directory (CONSOLE_DATA_DIR, else the config file's, else ./data)"),
		config:  fs.String("config", getenv("CONSOLE_CONFIG"), "JSON config file, for the audit key and anchor files (CONSOLE_CONFIG)"),
		getenv:  getenv,
	}
}

// resolve returns the configuration an offline command works with, its
// audit key read and its audit settings checked.
func (l *offlineLocation) resolve() (Config, error) {
	c := defaultConfig()
	if *l.config != "" {
		if err := c.loadFile(*l.config); err != nil {
			return Config{}, err
		}
	}
	if v := strings.TrimSpace(l.getenv("CONSOLE_DATA_DIR")); v != "" {
		c.DataDir = v
	}
	if *l.dataDir != "" {
		c.DataDir = *l.dataDir
	}
	envKey := l.getenv("CONSOLE_AUDIT_KEY")
	if err := errors.Join(c.auditProblems(envKey)...); err != nil {
		return Config{}, err
	}
	if _, err := os.Stat(c.DataDir); err != nil {
		return Config{}, fmt.Errorf("data dir %s: %w", c.DataDir, err)
	}
	k, err := c.readAuditKey(envKey)
	if err != nil {
		return Config{}, err
	}
	c.AuditKey = k
	return c, nil
}

// startAnchors anchors the audit chain's head in the log (and the anchor
// file, when configured) now, and has it anchored every
// auth.audit_anchor_interval while it moves and once more at Close. The
// anchor lines are logged at info whatever log_level says: they are the
// record `console audit verify --anchor-file` checks, not chatter. An
// anchor file that cannot be written fails the start.
func (m *Main) startAnchors(ctx context.Context) error {
	c := m.Config
	x, err := access.NewAnchorer(access.AnchorOptions{
		Audit:    m.audit,
		Logger:   slog.New(slog.NewJSONHandler(m.logWriter(), nil)).With("component", "audit"),
		File:     c.Auth.AuditAnchorFile,
		Interval: time.Duration(c.Auth.AuditAnchorInterval),
	})
	if err != nil {
		return err
	}
	if _, err := x.Anchor(ctx, true); err != nil {
		return fmt.Errorf("audit chain anchor: %w", err)
	}
	m.anchorer = x
	m.goRun(ctx, "audit anchors", x.Run)
	return nil
}
