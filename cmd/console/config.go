package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"switchyard/access"
	"switchyard/collector"
	"switchyard/delivery"
	"switchyard/demo"
	"switchyard/dlq"
	"switchyard/indexer"
	"switchyard/redrive"
	"switchyard/tracing"
	"switchyard/tsdb"
)

// Config is everything the console reads at start, from (lowest to highest
// precedence) defaults, a JSON config file, the environment and flags.
type Config struct {
	// Addr is the HTTP listen address (CONSOLE_ADDR, default ":8080").
	Addr string `json:"addr"`
	// DataDir holds the SQLite database and, in demo mode, the embedded
	// Kafka's log (CONSOLE_DATA_DIR, default "./data").
	DataDir string `json:"data_dir"`
	// LogLevel is debug, info, warn or error (CONSOLE_LOG_LEVEL).
	LogLevel string `json:"log_level"`
	// Kafka lists the clusters to operate. KAFKA_BROKERS (comma-separated)
	// defines one cluster named "default".
	Kafka []KafkaCluster `json:"kafka"`
	// RabbitMQ is optional (RABBITMQ_URL, RABBITMQ_MANAGEMENT_URL,
	// RABBITMQ_VHOSTS).
	RabbitMQ RabbitMQ `json:"rabbitmq"`
	// PollInterval is how often broker state is collected (default
	// collector.DefaultPollInterval).
	PollInterval Duration `json:"poll_interval"`
	// StartupTimeout bounds the reachability check of configured brokers at
	// start (default 10s); an unreachable broker then ends the start with one
	// error line. At run time an unreachable broker only degrades /readyz.
	StartupTimeout Duration `json:"startup_timeout"`
	// Demo configures the embedded platform of `console demo`.
	Demo Demo `json:"demo"`
	// Auth configures sessions, the trusted reverse proxy and auditing.
	Auth Auth `json:"auth"`
	// PII lists, per event type ("*" for every type), what only principals
	// with read_pii see unmasked: JSON paths of payload fields ("email",
	// "card.number", "items[].sku"), the message key ("$key") and envelope
	// metadata fields ("$metadata.partition_key"); see access.PIIRules. In
	// demo mode it defaults to the demo's own PII rules.
	PII map[string][]string `json:"pii"`

	// History configures the embedded time-series store.
	History History `json:"history"`
	// Lag configures the consumer-lag status evaluator (Burrow's rules).
	Lag Lag `json:"lag"`
	// OTLP configures the services' metrics receiver (POST /v1/metrics).
	OTLP OTLP `json:"otlp"`
	// DLQ configures the dead-letter index.
	DLQ DLQ `json:"dlq"`
	// Metrics configures GET /metrics.
	Metrics Metrics `json:"metrics"`
	// Tracing configures the span store, the OTLP trace receivers
	// (POST /v1/traces and gRPC) and forwarding to another backend.
	Tracing Tracing `json:"tracing"`
	// Alerting configures the alert evaluator and its notification
	// targets (alerting_config.go).
	Alerting Alerting `json:"alerting"`

	// AdminPassword comes only from CONSOLE_ADMIN_PASSWORD, never a file.
	AdminPassword string `json:"-"`
	// AuditKey is the audit log's HMAC key, read by ParseFlags from
	// CONSOLE_AUDIT_KEY (auditKeyEnv) or Auth.AuditKeyFile; never logged.
	AuditKey    []byte `json:"-"`
	auditKeyEnv string
}

// KafkaCluster is one Kafka cluster.
type KafkaCluster struct {
	Name    string   `json:"name"`
	Brokers []string `json:"brokers"`
}

// RabbitMQ is the RabbitMQ connection.
type RabbitMQ struct {
	URL           string `json:"url"`
	ManagementURL string `json:"management_url"`
	// VHosts are the vhosts the queue dashboards show and in which the
	// dead-letter indexer takes custody of DLQ queues (consumes them).
	// Default: URL's vhost alone ("/" without a URL), so that a console
	// pointed at one vhost of a shared broker never drains another's
	// queues; ["*"] opts in to every vhost the credentials can see.
	VHosts []string `json:"vhosts"`
}

// History configures the time-series store under the data dir.
type History struct {
	RawRetention    Duration `json:"raw_retention"`    // default tsdb.DefaultRawRetention
	RollupRetention Duration `json:"rollup_retention"` // default tsdb.DefaultRollupRetention (1-minute rollups)
	MaxSeries       int      `json:"max_series"`       // default tsdb.DefaultMaxSeries
}

// Lag configures the status evaluator.
type Lag struct {
	Window      int      `json:"window"`       // commits per partition window; default collector.DefaultWindow
	MinDistance Duration `json:"min_distance"` // a closer commit replaces the previous one
	AllowedLag  int64    `json:"allowed_lag"`  // lag that still counts as caught up (1 for transactional producers)
}

// DLQ configures which topics and queues are indexed as dead-letter
// sources, how much of each payload is kept, and retention.
type DLQ struct {
	// Patterns match DLQ topic and queue names (default
	// delivery.DefaultDLQPatterns, syntax of delivery.MatchGlob); Topics
	// and Queues name more explicitly.
	Patterns []string `json:"patterns"`
	Topics   []string `json:"topics"`
	Queues   []string `json:"queues"`
	// KafkaPayloadCap bytes of a Kafka dead letter's payload are kept in the
	// index (the record stays in Kafka); RabbitPayloadCap for RabbitMQ,
	// whose queue no longer has the message once indexed.
	KafkaPayloadCap  int `json:"kafka_payload_cap"`  // default indexer.DefaultKafkaPayloadCap
	RabbitPayloadCap int `json:"rabbit_payload_cap"` // default indexer.DefaultRabbitPayloadCap
	// Retention purges resolved and discarded entries older than this;
	// unresolved entries are never purged.
	Retention Duration `json:"retention"` // default 30 days
	// MaxRedrives is loop protection: a message that comes back to a DLQ
	// after this many redrives is quarantined automatically (default
	// delivery.DefaultMaxRedrives).
	MaxRedrives int `json:"max_redrives"`
	// MaxRate caps the rate (messages/s) an operator may give a redrive
	// job (default redrive.DefaultMaxRate; a job's default is
	// redrive.DefaultRate).
	MaxRate float64 `json:"max_rate"`
	// EditRedrive allows edit-and-redrive: an operator with the edit
	// permission changes one entry's envelope and sends it as a new
	// message (off by default).
	EditRedrive bool `json:"edit_redrive"`
	// CanaryDefault is the canary a redrive plan starts with for a set of
	// more than CanaryThreshold entries (defaults redrive.DefaultCanary
	// and redrive.DefaultCanaryThreshold; 0 turns it off).
	CanaryDefault   int `json:"canary_default"`
	CanaryThreshold int `json:"canary_threshold"`
	// RedriveWatch is how long a redriven message is watched for a
	// re-failure before its entry says "not seen again" (default
	// dlq.DefaultRedriveWatch).
	RedriveWatch Duration `json:"redrive_watch"`
	// CacheTTL is how long the landing page's counts, groups and trends
	// are shared between operators of the same scope (dlq.Cache; default
	// dlq.DefaultCacheTTL, 0 turns it off): they may be this far behind
	// the index, never behind an operator's own change.
	CacheTTL Duration `json:"cache_ttl"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Auth is "token" (default): /metrics answers only a Bearer token (or
	// session) of a principal who may scrape — the scraper role, or an
	// admin — because its series count every tenant. "none" serves it to
	// anyone who can reach it (CONSOLE_METRICS_AUTH).
	Auth string `json:"auth"`
}

// The values of metrics.auth.
const (
	MetricsAuthToken = "token"
	MetricsAuthNone  = "none"
)

// OTLP configures the metrics and trace receivers.
type OTLP struct {
	MaxSeries int `json:"max_series"` // service-metric series cap; default collector.DefaultMaxServiceSeries
	// MaxBody caps one export after decompression, over HTTP (413) and
	// gRPC (ResourceExhausted); default tracing.DefaultMaxGRPCMessage,
	// the 8 MiB the HTTP server takes by default too.
	MaxBody int `json:"max_body"`
}

// Tracing configures traces. The OTLP/HTTP receiver's body limit is the
// metrics receiver's (web.Options.MaxOTLPBody); the gRPC receiver takes the
// same.
type Tracing struct {
	// Store keeps received spans (and, with no OTEL_EXPORTER_OTLP_*
	// endpoint set, the console's own) in traces.db in the data dir, its
	// own SQLite file so that trace volume never slows the dead-letter
	// index (default true). Off, both receivers are off too.
	Store bool `json:"store"`
	// MaxAge and MaxBytes bound the store; whichever is reached first
	// deletes the oldest spans (defaults tracing.DefaultMaxAge and
	// tracing.DefaultMaxBytes).
	MaxAge   Duration `json:"max_age"`
	MaxBytes int64    `json:"max_bytes"`
	// MaxAttrs and MaxAttrLen cap one span's attributes and the length
	// of one value; a span cut is flagged (defaults tracing.DefaultMaxAttrs
	// and tracing.DefaultMaxAttrLen).
	MaxAttrs   int `json:"max_attrs"`
	MaxAttrLen int `json:"max_attr_len"`
	// GRPCAddr is the OTLP/gRPC receiver's listen address (default
	// ":4317", the standard port; CONSOLE_TRACING_GRPC_ADDR, where "off"
	// means none); empty turns it off.
	GRPCAddr string         `json:"grpc_addr"`
	Forward  TracingForward `json:"forward"`
}

// TracingForward sends everything received on to another OTLP/HTTP
// endpoint (a collector, Jaeger, Tempo) from a bounded queue, so that the
// console can sit in front of the user's tracing backend without ever
// blocking ingest. Off while Endpoint is empty.
type TracingForward struct {
	// Endpoint is the OTLP/HTTP traces URL, e.g.
	// http://collector:4318/v1/traces.
	Endpoint string `json:"endpoint"`
	// Headers go with every forwarded request (an API key).
	Headers map[string]string `json:"headers"`
	// Queue is how many requests may wait; beyond it they are dropped and
	// counted in switchyard_traces_forward_dropped_total (default
	// tracing.DefaultForwardQueue).
	Queue int `json:"queue"`
}

// grpcAddrOff is what CONSOLE_TRACING_GRPC_ADDR says to turn the gRPC
// receiver off (an empty variable is "not set").
const grpcAddrOff = "off"

// Demo configures the embedded demo platform.
type Demo struct {
	// KafkaAddr is where the embedded Kafka listens (DEMO_KAFKA_ADDR,
	// default demo.DefaultKafkaAddr).
	KafkaAddr string `json:"kafka_addr"`
	// Rate is the orders producer's events per second (default
	// demo.DefaultRate).
	Rate float64 `json:"rate"`
}

// Auth configures authentication.
type Auth struct {
	SessionIdle     Duration `json:"session_idle"`     // default access.DefaultSessionIdle
	SessionAbsolute Duration `json:"session_absolute"` // default access.DefaultSessionAbsolute
	// SecureCookies marks session cookies Secure even when the console
	// itself serves plain HTTP behind a TLS-terminating proxy.
	SecureCookies bool `json:"secure_cookies"`
	// AuditPayloadReads records every payload view in the audit log.
	AuditPayloadReads bool  `json:"audit_payload_reads"`
	Proxy             Proxy `json:"proxy"`
	// AuditKeyFile holds the audit log's HMAC key (hex or base64, at
	// least 32 bytes); CONSOLE_AUDIT_KEY is the other way to give it.
	// It must be outside the data dir.
	AuditKeyFile string `json:"audit_key_file"`
	// AuditAnchorFile, when set, gets the audit chain's head appended
	// every AuditAnchorInterval while it moves (and at start and
	// shutdown), besides the log line. It must be outside the data dir.
	AuditAnchorFile     string   `json:"audit_anchor_file"`
	AuditAnchorInterval Duration `json:"audit_anchor_interval"` // default access.DefaultAnchorInterval
}

// Proxy is the optional trusted reverse-proxy (SSO) mode.
type Proxy struct {
	Enabled      bool     `json:"enabled"`
	UserHeader   string   `json:"user_header"`   // default access.DefaultProxyUserHeader
	GroupsHeader string   `json:"groups_header"` // default access.DefaultProxyGroupsHeader
	TrustedCIDRs []string `json:"trusted_cidrs"` // required when enabled
}

// Duration is a time.Duration that reads "10s" from JSON.
type Duration time.Duration

// UnmarshalJSON accepts a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"10s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Default RabbitMQ addresses used by the demo when nothing is configured.
const (
	defaultRabbitURL        = "amqp://guest:guest@127.0.0.1:5672/"
	defaultRabbitManagement = "http://guest:guest@127.0.0.1:15672"
)

// defaultConfig holds the defaults of what only the console configures;
// a value that a package also defaults for its own zero options comes from
// that package's exported default, so that each has one.
func defaultConfig() Config {
	return Config{
		Addr:           ":8080",
		DataDir:        "./data",
		LogLevel:       "info",
		PollInterval:   Duration(collector.DefaultPollInterval),
		StartupTimeout: Duration(10 * time.Second),
		Demo:           Demo{KafkaAddr: demo.DefaultKafkaAddr, Rate: demo.DefaultRate},
		History: History{RawRetention: Duration(tsdb.DefaultRawRetention), RollupRetention: Duration(tsdb.DefaultRollupRetention),
			MaxSeries: tsdb.DefaultMaxSeries},
		Lag:     Lag{Window: collector.DefaultWindow},
		OTLP:    OTLP{MaxSeries: collector.DefaultMaxServiceSeries, MaxBody: tracing.DefaultMaxGRPCMessage},
		Metrics: Metrics{Auth: MetricsAuthToken},
		Tracing: Tracing{Store: true, MaxAge: Duration(tracing.DefaultMaxAge), MaxBytes: tracing.DefaultMaxBytes,
			MaxAttrs: tracing.DefaultMaxAttrs, MaxAttrLen: tracing.DefaultMaxAttrLen, GRPCAddr: ":4317",
			Forward: TracingForward{Queue: tracing.DefaultForwardQueue}},
		Alerting: defaultAlerting(),
		DLQ: DLQ{KafkaPayloadCap: indexer.DefaultKafkaPayloadCap, RabbitPayloadCap: indexer.DefaultRabbitPayloadCap,
			Retention: Duration(30 * 24 * time.Hour), MaxRedrives: delivery.DefaultMaxRedrives, MaxRate: redrive.DefaultMaxRate,
			CanaryDefault: redrive.DefaultCanary, CanaryThreshold: redrive.DefaultCanaryThreshold, RedriveWatch: Duration(dlq.DefaultRedriveWatch),
			CacheTTL: Duration(dlq.DefaultCacheTTL)},
		Auth: Auth{
			SessionIdle: Duration(access.DefaultSessionIdle), SessionAbsolute: Duration(access.DefaultSessionAbsolute),
			AuditPayloadReads: true, AuditAnchorInterval: Duration(access.DefaultAnchorInterval),
			Proxy: Proxy{UserHeader: access.DefaultProxyUserHeader, GroupsHeader: access.DefaultProxyGroupsHeader},
		},
	}
}

// loadFile merges a JSON config file into c; unknown fields are an error so
// that a typo does not silently do nothing.
func (c *Config) loadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// loadEnv applies the documented environment variables.
func (c *Config) loadEnv(getenv func(string) string) error {
	set := func(dst *string, key string) {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			*dst = v
		}
	}
	set(&c.Addr, "CONSOLE_ADDR")
	set(&c.DataDir, "CONSOLE_DATA_DIR")
	set(&c.LogLevel, "CONSOLE_LOG_LEVEL")
	set(&c.RabbitMQ.URL, "RABBITMQ_URL")
	set(&c.RabbitMQ.ManagementURL, "RABBITMQ_MANAGEMENT_URL")
	if v := strings.TrimSpace(getenv("RABBITMQ_VHOSTS")); v != "" {
		c.RabbitMQ.VHosts = splitList(v)
	}
	set(&c.Demo.KafkaAddr, "DEMO_KAFKA_ADDR")
	set(&c.Metrics.Auth, "CONSOLE_METRICS_AUTH")
	set(&c.Tracing.GRPCAddr, "CONSOLE_TRACING_GRPC_ADDR")
	if c.Tracing.GRPCAddr == grpcAddrOff {
		c.Tracing.GRPCAddr = ""
	}
	set(&c.Alerting.ExternalURL, "CONSOLE_EXTERNAL_URL")
	if v := strings.TrimSpace(getenv("CONSOLE_ALERTING_INTERVAL")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("CONSOLE_ALERTING_INTERVAL %q: %w", v, err)
		}
		c.Alerting.Interval = Duration(d)
	}
	c.AdminPassword = getenv("CONSOLE_ADMIN_PASSWORD")
	c.auditKeyEnv = getenv("CONSOLE_AUDIT_KEY")
	if v := strings.TrimSpace(getenv("KAFKA_BROKERS")); v != "" {
		c.Kafka = []KafkaCluster{{Name: "default", Brokers: splitList(v)}}
	}
	if v := strings.TrimSpace(getenv("CONSOLE_POLL_INTERVAL")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("CONSOLE_POLL_INTERVAL %q: %w", v, err)
		}
		c.PollInterval = Duration(d)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
		errs = append(errs, fmt.Errorf("addr %q must be host:port or :port", c.Addr))
	}
	if strings.TrimSpace(c.DataDir) == "" {
		errs = append(errs, errors.New("data_dir must not be empty"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level %q must be debug, info, warn or error", c.LogLevel))
	}
	seen := map[string]bool{}
	for i, k := range c.Kafka {
		switch {
		case k.Name == "":
			errs = append(errs, fmt.Errorf("kafka[%d]: name is required", i))
		case seen[k.Name]:
			errs = append(errs, fmt.Errorf("kafka[%d]: duplicate cluster name %q", i, k.Name))
		}
		seen[k.Name] = true
		if len(k.Brokers) == 0 {
			errs = append(errs, fmt.Errorf("kafka cluster %q: brokers are required", k.Name))
		}
		for _, b := range k.Brokers {
			if _, _, err := net.SplitHostPort(b); err != nil {
				errs = append(errs, fmt.Errorf("kafka cluster %q: broker %q must be host:port", k.Name, b))
			}
		}
	}
	if c.RabbitMQ.URL != "" {
		// amqp.ParseURI is what connects, and gives the vhost the console
		// takes custody in by default.
		if _, err := amqp.ParseURI(c.RabbitMQ.URL); err != nil {
			errs = append(errs, fmt.Errorf("rabbitmq url must be amqp:// or amqps://"))
		}
	}
	if c.RabbitMQ.ManagementURL != "" {
		if u, err := url.Parse(c.RabbitMQ.ManagementURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			errs = append(errs, fmt.Errorf("rabbitmq management_url must be http:// or https://"))
		}
	}
	for _, v := range c.RabbitMQ.VHosts {
		if strings.TrimSpace(v) == "" || (v == "*" && len(c.RabbitMQ.VHosts) > 1) {
			errs = append(errs, fmt.Errorf("rabbitmq vhosts %q: want vhost names, or [\"*\"] alone for every vhost", c.RabbitMQ.VHosts))
			break
		}
	}
	if c.PollInterval < Duration(time.Second) {
		errs = append(errs, fmt.Errorf("poll_interval %s must be at least 1s", time.Duration(c.PollInterval)))
	}
	if c.History.RawRetention < Duration(time.Hour) || c.History.RollupRetention < c.History.RawRetention {
		errs = append(errs, fmt.Errorf("history: raw_retention must be at least 1h and rollup_retention at least raw_retention"))
	}
	if c.Lag.Window < 2 || c.Lag.MinDistance < 0 || c.Lag.AllowedLag < 0 {
		errs = append(errs, fmt.Errorf("lag: window must be at least 2, min_distance and allowed_lag not negative"))
	}
	if c.Metrics.Auth != MetricsAuthToken && c.Metrics.Auth != MetricsAuthNone {
		errs = append(errs, fmt.Errorf("metrics.auth %q must be %q (a scrape token) or %q (anyone who can reach /metrics)", c.Metrics.Auth, MetricsAuthToken, MetricsAuthNone))
	}
	if c.OTLP.MaxSeries < 1 || c.History.MaxSeries < 1 {
		errs = append(errs, fmt.Errorf("otlp.max_series and history.max_series must be positive"))
	}
	if c.OTLP.MaxBody < 64<<10 || c.OTLP.MaxBody > 1<<30 {
		errs = append(errs, fmt.Errorf("otlp.max_body must be between 64 KiB (65536) and 1 GiB"))
	}
	if c.DLQ.KafkaPayloadCap < 1024 || c.DLQ.RabbitPayloadCap < 1024 || c.DLQ.Retention < Duration(time.Hour) {
		errs = append(errs, fmt.Errorf("dlq: payload caps must be at least 1024 bytes and retention at least 1h"))
	}
	if c.DLQ.MaxRedrives < 1 || c.DLQ.MaxRate < 1 {
		errs = append(errs, fmt.Errorf("dlq: max_redrives and max_rate must be at least 1"))
	}
	if c.DLQ.CanaryDefault < 0 || c.DLQ.CanaryThreshold < 0 || c.DLQ.RedriveWatch <= 0 {
		errs = append(errs, fmt.Errorf("dlq: canary_default and canary_threshold must not be negative, redrive_watch must be positive"))
	}
	if c.DLQ.CacheTTL < 0 {
		errs = append(errs, fmt.Errorf("dlq: cache_ttl must not be negative"))
	}
	// The collector and the indexers read the patterns with the same
	// matcher, so what passes here is what they accept.
	if _, err := delivery.NewDLQMatcher(c.DLQ.Patterns, nil); err != nil {
		errs = append(errs, fmt.Errorf("dlq: %w", err))
	}
	if c.StartupTimeout <= 0 {
		errs = append(errs, fmt.Errorf("startup_timeout must be positive"))
	}
	if _, _, err := net.SplitHostPort(c.Demo.KafkaAddr); err != nil {
		errs = append(errs, fmt.Errorf("demo kafka_addr %q must be host:port", c.Demo.KafkaAddr))
	}
	if c.Auth.SessionIdle < Duration(time.Minute) || c.Auth.SessionAbsolute < c.Auth.SessionIdle {
		errs = append(errs, fmt.Errorf("auth: session_idle must be at least 1m and session_absolute at least session_idle"))
	}
	if c.Auth.Proxy.Enabled {
		if len(c.Auth.Proxy.TrustedCIDRs) == 0 {
			errs = append(errs, fmt.Errorf("auth.proxy: trusted_cidrs is required when the proxy mode is enabled"))
		}
		for _, cidr := range c.Auth.Proxy.TrustedCIDRs {
			if _, _, err := net.ParseCIDR(cidr); err != nil {
				errs = append(errs, fmt.Errorf("auth.proxy: trusted_cidrs entry %q is not a CIDR", cidr))
			}
		}
		if c.Auth.Proxy.UserHeader == "" {
			errs = append(errs, fmt.Errorf("auth.proxy: user_header must not be empty"))
		}
	}
	for typ, paths := range c.PII {
		if typ != "*" && !delivery.ValidEventType(typ) {
			errs = append(errs, fmt.Errorf("pii: %q is not an event type (dotted lower-case ending in .vN) or \"*\" (every type)", typ))
		}
		if len(paths) == 0 {
			errs = append(errs, fmt.Errorf("pii: %q lists no fields", typ))
		}
		for _, p := range paths {
			if err := access.ValidPIIRule(p); err != nil {
				errs = append(errs, fmt.Errorf("pii: %q: %s", typ, delivery.ErrorMessage(err)))
			}
		}
	}
	// Checked here, before anything is created: a password EnsureAdmin
	// would refuse must not leave a half-made data dir behind.
	if n := len(c.AdminPassword); n > 0 && (n < access.MinPasswordLen || n > access.MaxPasswordLen) {
		errs = append(errs, fmt.Errorf("CONSOLE_ADMIN_PASSWORD must be %d to %d bytes long", access.MinPasswordLen, access.MaxPasswordLen))
	}
	errs = append(errs, c.auditProblems(c.auditKeyEnv)...)
	errs = append(errs, c.Tracing.problems()...)
	errs = append(errs, c.Alerting.problems()...)
	if c.Demo.Rate < 0 || c.Demo.Rate > 10000 {
		errs = append(errs, fmt.Errorf("demo rate %v must be between 0 and 10000 events/s", c.Demo.Rate))
	}
	if len(errs) == 0 {
		return nil
	}
	// One line, so that a bad start ends with exactly one error line.
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

// problems lists what is wrong with the tracing section.
func (t Tracing) problems() []error {
	var errs []error
	if t.GRPCAddr != "" {
		if _, port, err := net.SplitHostPort(t.GRPCAddr); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("tracing.grpc_addr %q must be host:port or :port, or empty for no gRPC receiver", t.GRPCAddr))
		}
	}
	if t.MaxAge < Duration(time.Hour) || t.MaxBytes < 16<<20 {
		errs = append(errs, fmt.Errorf("tracing: max_age must be at least 1h and max_bytes at least 16 MiB (16777216)"))
	}
	if t.MaxAttrs < 1 || t.MaxAttrLen < 64 {
		errs = append(errs, fmt.Errorf("tracing: max_attrs must be at least 1 and max_attr_len at least 64"))
	}
	if t.Forward.Endpoint != "" {
		if u, err := url.Parse(t.Forward.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("tracing.forward.endpoint must be an http:// or https:// OTLP/HTTP traces URL"))
		}
		if !t.Store {
			errs = append(errs, fmt.Errorf("tracing.forward needs tracing.store: the receivers forward what they receive"))
		}
	}
	if t.Forward.Queue < 1 {
		errs = append(errs, fmt.Errorf("tracing.forward.queue must be at least 1"))
	}
	for k := range t.Forward.Headers {
		if strings.TrimSpace(k) == "" || strings.ContainsAny(k, " \t\r\n:") {
			errs = append(errs, fmt.Errorf("tracing.forward.headers: %q is not a header name", k))
		}
	}
	return errs
}

// redactURL hides the password of a URL for logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable url)"
	}
	return u.Redacted()
}

// vhosts returns the RabbitMQ vhosts the console watches and takes DLQ
// custody in (RabbitMQ.VHosts): the listed ones, or url's vhost ("/" when
// url is empty); all is true for ["*"]. url is the AMQP URL in use, which
// in demo mode may be the implicit default.
func (r RabbitMQ) vhosts(url string) (vhosts []string, all bool) {
	switch {
	case len(r.VHosts) == 1 && r.VHosts[0] == "*":
		return nil, true
	case len(r.VHosts) > 0:
		return r.VHosts, false
	case url == "":
		return []string{"/"}, false
	}
	u, err := amqp.ParseURI(url)
	if err != nil {
		// Validate refused it already; "/" is AMQP's default vhost.
		return []string{"/"}, false
	}
	return []string{u.Vhost}, false
}
