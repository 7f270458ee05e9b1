package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"switchyard/access"
	"switchyard/browse"
	"switchyard/collector"
	"switchyard/delivery"
	"switchyard/delivery/rabbitmq"
	"switchyard/demo"
	"switchyard/dlq"
	"switchyard/dlqstore"
	"switchyard/indexer"
	"switchyard/redrive"
	"switchyard/sqldb"
	"switchyard/tracing"
	"switchyard/tsdb"
	"switchyard/web"
)

// Main is the running console: ParseFlags, then Run (which returns once
// everything is up), then Close (graceful: drains HTTP requests, stops the
// collectors and demo services, closes the store).
type Main struct {
	Config   Config
	DemoMode bool
	// URL is the console's address once Run has returned.
	URL string
	// AdminPassword is set when Run created the admin user with a generated
	// password (printed once).
	AdminPassword string

	stdout, stderr io.Writer
	getenv         func(string) string
	configPath     string
	logger         *slog.Logger

	db       *sql.DB
	tsdb     *tsdb.Store
	dlq      dlqstore.Backend
	dlqCache *dlq.Cache // nil: dlq.cache_ttl 0, or no index
	jobs     *redrive.Engine
	senders  *senders
	indexers indexerStatus
	service  *collector.ServiceMetrics
	audit    access.AuditLog
	anchorer *access.Anchorer // nil until Run succeeded
	ln       net.Listener
	server   *web.Server
	platform *demo.Platform
	clients  []*kgo.Client
	tracer   *sdktrace.TracerProvider
	// traces is the span store (nil: tracing.store off); recv the
	// receiver both OTLP transports hand exports to, fwd its forwarder
	// (nil: no tracing.forward.endpoint), grpc the OTLP/gRPC receiver on
	// grpcLn (nil: tracing.grpc_addr empty).
	traces *tracing.Store
	recv   *tracing.Receiver
	fwd    *tracing.Forwarder
	grpc   *tracing.GRPCServer
	grpcLn net.Listener
	// demoTel are the demo services' own providers (demoTelemetry).
	demoTel  []interface{ Shutdown(context.Context) error }
	cancel   context.CancelFunc
	wg       sync.WaitGroup // components (collector, demo, history…)
	serverWG sync.WaitGroup // the HTTP server
	closed   bool

	// logOut holds the log back while Run starts (see startLog); pending
	// are the components goRun starts once nothing in Run can fail any
	// more, so that a failed start leaves no component running, logging
	// or consuming a queue.
	logOut  *startLog
	pending []func()
	// rabbit is what the banner says about RabbitMQ custody.
	rabbit rabbitCustody
}

// NewMain returns a Main with the default configuration.
func NewMain(stdout, stderr io.Writer, getenv func(string) string) *Main {
	return &Main{Config: defaultConfig(), stdout: stdout, stderr: stderr, getenv: getenv}
}

// ParseFlags reads the config file (--config), the environment and the
// flags, in that order of precedence (flags win), and validates the result.
func (m *Main) ParseFlags(args []string) error {
	name := "serve"
	if m.DemoMode {
		name = "demo"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(m.stderr)
	configPath := fs.String("config", m.getenv("CONSOLE_CONFIG"), "JSON config file (CONSOLE_CONFIG)")
	addr := fs.String("addr", "", "HTTP listen address (CONSOLE_ADDR, default :8080)")
	dataDir := fs.String("data-dir", "", "data directory (CONSOLE_DATA_DIR, default ./data)")
	brokers := fs.String("kafka-brokers", "", "comma-separated Kafka bootstrap brokers of cluster \"default\" (KAFKA_BROKERS)")
	rabbitURL := fs.String("rabbitmq-url", "", "RabbitMQ AMQP URL (RABBITMQ_URL)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (CONSOLE_LOG_LEVEL)")
	demoAddr := fs.String("demo-kafka-addr", "", "embedded Kafka listen address in demo mode (DEMO_KAFKA_ADDR, default 127.0.0.1:9092)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	c := defaultConfig()
	if m.DemoMode {
		// The demo's services trace every event, about 900 MB of spans an
		// hour: a demo left running keeps the last 256 MiB unless the
		// config says otherwise.
		c.Tracing.MaxBytes = demoTraceMaxBytes
	}
	if *configPath != "" {
		if err := c.loadFile(*configPath); err != nil {
			return err
		}
		m.configPath = *configPath
	}
	if err := c.loadEnv(m.getenv); err != nil {
		return err
	}
	override := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	override(&c.Addr, *addr)
	override(&c.DataDir, *dataDir)
	override(&c.RabbitMQ.URL, *rabbitURL)
	override(&c.LogLevel, *logLevel)
	override(&c.Demo.KafkaAddr, *demoAddr)
	if *brokers != "" {
		c.Kafka = []KafkaCluster{{Name: "default", Brokers: splitList(*brokers)}}
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	key, err := c.readAuditKey(c.auditKeyEnv)
	if err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	c.AuditKey = key
	if !m.DemoMode && len(c.Kafka) == 0 && c.RabbitMQ.URL == "" {
		return errors.New("invalid configuration: no broker configured: set KAFKA_BROKERS or RABBITMQ_URL (or run `console demo`)")
	}
	m.Config = c
	return nil
}

func (m *Main) newLogger() *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(m.Config.LogLevel))
	return slog.New(slog.NewJSONHandler(m.logWriter(), &slog.HandlerOptions{Level: lvl}))
}

// logWriter is where logs go: stderr, through the start gate once Run
// has begun.
func (m *Main) logWriter() io.Writer {
	if m.logOut == nil {
		return m.stderr
	}
	return m.logOut
}

// demoLogger keeps the demo services' routine failures (a few per second,
// by design) out of the console's log unless debug logging is on.
func (m *Main) demoLogger() *slog.Logger {
	lvl := slog.LevelWarn
	if m.Config.LogLevel == "debug" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewJSONHandler(m.logWriter(), &slog.HandlerOptions{Level: lvl})).With("component", "demo")
}

// Run opens the store, starts the demo platform (demo mode), checks that the
// configured brokers answer, starts the collectors and the HTTP server, and
// returns. Any failure is one error naming what failed, and nothing else
// is logged (see startLog).
func (m *Main) Run(ctx context.Context) (err error) {
	c := m.Config
	m.logOut = newStartLog(m.stderr, c.LogLevel == "debug")
	defer func() {
		if err != nil {
			m.logOut.failed()
		}
	}()
	m.logger = m.newLogger()
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel

	if err := os.MkdirAll(c.DataDir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	db, err := openConsoleDB(ctx, c.DataDir)
	if err != nil {
		return err
	}
	m.db = db
	audit, err := access.NewAuditWith(db, access.AuditOptions{Key: c.AuditKey})
	if err != nil {
		return err
	}
	// A log keyed with another key (or keyed, and no key now) stops the
	// start here rather than failing every audited request later.
	if err := audit.CheckKey(ctx); err != nil {
		return fmt.Errorf("audit log: %s", delivery.ErrorMessage(err))
	}
	m.audit = audit
	users, err := access.NewStore(db, access.Options{
		SessionIdle:     time.Duration(c.Auth.SessionIdle),
		SessionAbsolute: time.Duration(c.Auth.SessionAbsolute),
		Proxy: access.ProxyOptions{
			Enabled: c.Auth.Proxy.Enabled, UserHeader: c.Auth.Proxy.UserHeader,
			GroupsHeader: c.Auth.Proxy.GroupsHeader, TrustedCIDRs: c.Auth.Proxy.TrustedCIDRs,
		},
		Audit: audit,
	})
	if err != nil {
		return err
	}
	generated, created, err := users.EnsureAdmin(ctx, c.AdminPassword)
	if err != nil {
		return fmt.Errorf("admin user: %w", err)
	}

	// Listen before starting anything slow, so a port in use fails at once.
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", c.Addr, unwrapSyscall(err))
	}
	m.ln = ln
	if c.Tracing.Store && c.Tracing.GRPCAddr != "" {
		gln, err := net.Listen("tcp", c.Tracing.GRPCAddr)
		if err != nil {
			return fmt.Errorf("listen %s (tracing.grpc_addr): %w", c.Tracing.GRPCAddr, unwrapSyscall(err))
		}
		m.grpcLn = gln
	}
	if c.Tracing.Store {
		st, err := tracing.Open(ctx, filepath.Join(c.DataDir, "traces.db"), tracing.Options{
			MaxAge: time.Duration(c.Tracing.MaxAge), MaxBytes: c.Tracing.MaxBytes,
			Limits: tracing.Limits{MaxAttrs: c.Tracing.MaxAttrs, MaxAttrLen: c.Tracing.MaxAttrLen},
			Logger: m.logger.With("component", "traces"), WriterCacheKB: m.demoCacheKB(16 << 10),
		})
		if err != nil {
			return fmt.Errorf("span store: %w", err)
		}
		m.traces = st
	}

	if err := m.setupTracing(ctx); err != nil {
		return err
	}

	clusters := c.Kafka
	rabbitURL := c.RabbitMQ.URL
	var demoIndexed demoIndexedOffsets
	if m.DemoMode {
		if rabbitURL == "" {
			rabbitURL = defaultRabbitURL
		}
		tel, err := m.demoTelemetry(ctx, users)
		if err != nil {
			return err
		}
		p, err := demo.Start(ctx, demo.Options{
			DataDir: c.DataDir, KafkaAddr: c.Demo.KafkaAddr, RabbitURL: rabbitURL, Rate: c.Demo.Rate,
			Logger: m.demoLogger(), Telemetry: tel, IndexedUpTo: demoIndexed.upTo,
		})
		if err != nil {
			return err
		}
		m.platform = p
		clusters = append([]KafkaCluster{{Name: demo.ClusterName, Brokers: p.KafkaBrokers()}}, clusters...)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var sources []*collector.KafkaSource
	// The store is ready when it takes writes, not merely answers: a full
	// disk fails logins while a ping still succeeds.
	ready := []web.ReadyCheck{{Name: "store", Critical: true, Check: sqldb.NewProber(db, sqldb.ProberOptions{}).Check}}
	if m.traces != nil {
		// Not critical: without spans the console still operates.
		ready = append(ready, web.ReadyCheck{Name: "traces", Check: sqldb.NewProber(m.traces.DB(), sqldb.ProberOptions{}).Check})
	}
	for _, k := range clusters {
		cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ClientID("switchyard-console"))
		if err != nil {
			return fmt.Errorf("kafka cluster %q: %w", k.Name, err)
		}
		m.clients = append(m.clients, cl)
		src, err := collector.NewKafkaSource(k.Name, cl, collector.KafkaOptions{DLQPatterns: c.DLQ.Patterns})
		if err != nil {
			return fmt.Errorf("kafka cluster %q: %w", k.Name, err)
		}
		pctx, pcancel := context.WithTimeout(ctx, time.Duration(c.StartupTimeout))
		err = src.Ping(pctx)
		pcancel()
		if err != nil {
			return fmt.Errorf("kafka cluster %q (%s) unreachable: %w", k.Name, strings.Join(k.Brokers, ","), err)
		}
		sources = append(sources, src)
		ready = append(ready, web.ReadyCheck{Name: "kafka:" + k.Name, Check: src.Ping})
	}
	if c.RabbitMQ.URL != "" {
		url := c.RabbitMQ.URL
		if err := rabbitmq.Ping(ctx, url, time.Duration(c.StartupTimeout)); err != nil {
			return fmt.Errorf("rabbitmq (%s) unreachable: %w", redactURL(url), err)
		}
		ready = append(ready, web.ReadyCheck{Name: "rabbitmq", Check: func(ctx context.Context) error { return rabbitmq.Ping(ctx, url, 3*time.Second) }})
	} else if m.DemoMode && m.platform != nil {
		ready = append(ready, web.ReadyCheck{Name: "rabbitmq", Check: func(ctx context.Context) error { return rabbitmq.Ping(ctx, rabbitURL, 3*time.Second) }})
	}

	rabbitSources, rabbitReady, err := m.rabbitSources(ctx, rabbitURL)
	if err != nil {
		return err
	}
	ready = append(ready, rabbitReady...)

	// History, lag evaluation and the services' metrics.
	store, err := tsdb.Open(ctx, tsdb.Options{
		Dir: filepath.Join(c.DataDir, "tsdb"), RawRetention: time.Duration(c.History.RawRetention),
		RollupRetention: time.Duration(c.History.RollupRetention), MaxSeries: c.History.MaxSeries,
		Logger: m.logger.With("component", "tsdb"),
	})
	if err != nil {
		return err
	}
	m.tsdb = store
	m.goRun(runCtx, "tsdb", store.Run)
	windows, err := collector.NewSQLiteWindowStore(ctx, db)
	if err != nil {
		return err
	}
	eval, err := collector.NewEvaluator(collector.EvaluatorOptions{
		Window: c.Lag.Window, MinDistance: time.Duration(c.Lag.MinDistance), AllowedLag: c.Lag.AllowedLag, Store: windows,
	})
	if err != nil {
		return err
	}
	if err := eval.Restore(ctx); err != nil {
		m.logger.Warn("some lag windows could not be restored", "err", err)
	}
	svc, err := collector.NewServiceMetrics(collector.ServiceMetricsOptions{MaxSeries: c.OTLP.MaxSeries, Registerer: reg})
	if err != nil {
		return err
	}
	m.service = svc
	history := collector.NewHistory(collector.HistoryOptions{Store: store, Service: svc, Interval: time.Duration(c.PollInterval), Logger: m.logger.With("component", "history")})
	m.goRun(runCtx, "history", history.Run)

	poller, err := collector.NewPoller(collector.PollerOptions{
		Sources: sources, Rabbit: rabbitSources, Evaluator: eval, Recorder: history,
		Interval: time.Duration(c.PollInterval), Logger: m.logger.With("component", "collector"),
	})
	if err != nil {
		return err
	}
	reg.MustRegister(collector.NewExporter(poller))
	m.goRun(runCtx, "collector", poller.Run)
	if m.platform != nil {
		m.goRun(runCtx, "demo", m.platform.Run)
	}

	if err := m.startDLQ(ctx, runCtx, clusters, rabbitURL, rabbitSources, reg); err != nil {
		return err
	}
	if st, ok := m.dlq.(*dlqstore.Store); ok {
		demoIndexed.store.Store(st)
	}
	if err := m.startTraces(runCtx, users, reg); err != nil {
		return err
	}
	alerts, err := m.startAlerting(runCtx, db, store, reg, poller.ScopeOptions)
	if err != nil {
		return err
	}

	pii := c.PII
	if len(pii) == 0 && m.DemoMode {
		pii = demo.PIIRules()
	}
	masker, err := access.NewMasker(access.PIIRules(pii))
	if err != nil {
		return fmt.Errorf("pii rules: %w", err)
	}
	clients := map[string]*kgo.Client{}
	for i, k := range clusters {
		clients[k.Name] = m.clients[i]
	}
	browser, err := browse.New(browse.Options{Clients: clients, Masker: masker})
	if err != nil {
		return err
	}
	deadLetters, err := dlq.New(dlq.Options{Store: m.dlq, Jobs: m.jobs, Masker: masker, Audit: m.audit,
		AuditReads: c.Auth.AuditPayloadReads, Indexers: m.indexers, RedriveWatch: time.Duration(c.DLQ.RedriveWatch),
		Cache: m.dlqCache})
	if err != nil {
		return err
	}
	proxy := users.ProxyOptions()
	var traces web.Traces // nil without a span store, not a typed nil
	if m.traces != nil {
		// The trace pages mask span attributes with the payloads' PII rules.
		traces = tracing.NewService(m.traces, tracing.ServiceOptions{Policy: access.Policy{}, Masker: masker})
	}
	var fixes web.DemoFixes // nil outside demo mode, not a typed nil
	if m.platform != nil {
		fixes = m.platform.Fixes()
	}
	srv, err := web.New(web.Options{
		Logger: m.logger.With("component", "web"), Gatherer: reg, Registerer: reg, MetricsPublic: c.Metrics.Auth == MetricsAuthNone,
		Auth: users, Policy: access.Policy{}, Store: users, Audit: users.Audit(), Clusters: poller,
		Browser: browser, AuditPayloadReads: c.Auth.AuditPayloadReads, SecureCookies: c.Auth.SecureCookies,
		ProxyUserHeader: proxy.UserHeader, ProxyGroupsHeader: proxy.GroupsHeader,
		Series: store, OTLP: svc, TraceReceiver: m.traceReceiver(), MaxOTLPBody: c.OTLP.MaxBody, PollInterval: time.Duration(c.PollInterval), DLQ: deadLetters,
		Ready: ready, Version: version, TracerProvider: m.tracerProvider(), Demo: fixes, Traces: traces, Alerts: alerts,
		ExternalURL: strings.TrimRight(c.Alerting.ExternalURL, "/"),
	})
	if err != nil {
		return err
	}
	m.server = srv
	m.serverWG.Add(1)
	go func() {
		defer m.serverWG.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
			m.logger.Error("http server stopped", "error", err)
		}
	}()
	if m.grpc != nil {
		m.serverWG.Add(1)
		go func() {
			defer m.serverWG.Done()
			if err := m.grpc.Serve(m.grpcLn); err != nil {
				m.logger.Error("otlp grpc receiver stopped", "error", err)
			}
		}()
	}

	m.URL = "http://" + displayAddr(ln.Addr().String())
	if err := m.startAnchors(runCtx); err != nil {
		return err
	}
	m.startComponents()
	m.awaitCustody(ctx)
	m.logOut.started()
	m.printBanner(clusters, generated, created)
	return nil
}

func (m *Main) printBanner(clusters []KafkaCluster, generated string, created bool) {
	w := m.stdout
	fmt.Fprintf(w, "Switchyard console %s\n", version)
	fmt.Fprintf(w, "  URL:       %s\n", m.URL)
	switch {
	case created && generated != "":
		m.AdminPassword = generated
		fmt.Fprintf(w, "  Login:     admin / %s   (generated now and shown only once; set CONSOLE_ADMIN_PASSWORD to choose it)\n", generated)
	case created:
		fmt.Fprintln(w, "  Login:     admin / the password in CONSOLE_ADMIN_PASSWORD")
	default:
		fmt.Fprintln(w, "  Login:     admin / the password printed on first start (or CONSOLE_ADMIN_PASSWORD then)")
	}
	fmt.Fprintf(w, "  Data dir:  %s\n", m.Config.DataDir)
	for _, k := range clusters {
		fmt.Fprintf(w, "  Kafka:     %s at %s\n", k.Name, strings.Join(k.Brokers, ","))
	}
	if m.platform != nil {
		fmt.Fprintf(w, "  Demo:      embedded Kafka on %s (any Kafka client can join: kcat -b %s -L)\n", m.platform.KafkaBrokers()[0], m.platform.KafkaBrokers()[0])
	}
	switch {
	case m.recv != nil && m.grpcLn != nil:
		fmt.Fprintf(w, "  Traces:    OTLP/HTTP %s/v1/traces, OTLP/gRPC %s (an API token that may ingest)\n", m.URL, displayAddr(m.grpcLn.Addr().String()))
	case m.recv != nil:
		fmt.Fprintf(w, "  Traces:    OTLP/HTTP %s/v1/traces (an API token that may ingest)\n", m.URL)
	}
	m.rabbit.print(w)
}

// startDLQ opens the dead-letter index and starts one indexer per Kafka
// cluster and one for RabbitMQ (when an AMQP URL is known), plus hourly
// retention of resolved and discarded entries.
// canaryDefault is the engine's default canary of dlq.canary_default,
// where 0 turns it off.
func canaryDefault(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

func (m *Main) startDLQ(ctx, runCtx context.Context, clusters []KafkaCluster, rabbitURL string, rabbitSources []*collector.RabbitSource, reg prometheus.Registerer) error {
	c := m.Config
	store, err := dlqstore.Open(ctx, filepath.Join(c.DataDir, "dlq.db"), dlqstore.Options{Logger: m.logger.With("component", "dlqstore"), MaxRedrives: c.DLQ.MaxRedrives,
		CacheKB: m.demoCacheKB(8 << 10)})
	if err != nil {
		return err
	}
	m.dlq = store
	// Entries stored before the search index had its present columns are
	// put into it in the background; searches say so until it is done.
	m.goRun(runCtx, "dlq search index rebuild", store.RebuildText)
	// The engine's changes invalidate the landing page's shared reads.
	if m.dlqCache, err = dlq.NewCache(dlq.CacheOptions{TTL: time.Duration(c.DLQ.CacheTTL)}); err != nil {
		return err
	}
	// The senders' spans (each redriven message's) are the console's own.
	tel, err := delivery.NewTelemetry(nil, m.tracerProvider())
	if err != nil {
		return err
	}
	m.senders = newSenders(clusters, rabbitURL, m.logger.With("component", "redrive"), tel)
	jobs, err := redrive.New(redrive.Options{
		Store: m.dlqCache.WatchJobs(store), Policy: access.Policy{}, Audit: m.audit, Sender: m.senders.sender, Fetch: redrive.KafkaFetcher(m.senders.clusters),
		MaxRate: c.DLQ.MaxRate, EditEnabled: c.DLQ.EditRedrive, Registerer: reg, Logger: m.logger.With("component", "redrive"),
		CanaryDefault: canaryDefault(c.DLQ.CanaryDefault), CanaryThreshold: c.DLQ.CanaryThreshold,
		// Each job run is a span of the console's own, the parent of its
		// senders' redrive spans.
		TracerProvider: m.tracerProvider(),
	})
	if err != nil {
		return err
	}
	m.jobs = jobs
	m.goRun(runCtx, "redrive jobs", jobs.Run)
	metrics, err := indexer.NewMetrics(reg)
	if err != nil {
		return err
	}
	for _, k := range clusters {
		ki, err := indexer.NewKafkaIndexer(indexer.KafkaOptions{
			Cluster: k.Name, Brokers: k.Brokers, Store: store, Patterns: c.DLQ.Patterns, Topics: c.DLQ.Topics,
			PayloadCap: c.DLQ.KafkaPayloadCap, Metrics: metrics, Logger: m.logger.With("component", "indexer"), // the indexer adds broker and cluster
		})
		if err != nil {
			return err
		}
		m.indexers = append(m.indexers, ki)
		m.goRun(runCtx, "indexer "+k.Name, ki.Run)
	}
	if rabbitURL != "" {
		if err := m.startRabbitIndexer(ctx, runCtx, rabbitURL, rabbitSources, store, metrics); err != nil {
			return err
		}
	}
	gauges := collector.NewDLQGauges(store, m.tsdb, 30*time.Second, m.logger.With("component", "dlq-gauges"))
	if err := reg.Register(gauges); err != nil {
		return err
	}
	m.goRun(runCtx, "dlq gauges", gauges.Run)
	m.goRun(runCtx, "dlq retention", func(ctx context.Context) error {
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			if n, err := store.Purge(ctx, time.Now().Add(-time.Duration(c.DLQ.Retention))); err != nil && ctx.Err() == nil {
				m.logger.Warn("dlq retention", "err", err)
			} else if n > 0 {
				m.logger.Info("dlq retention purged resolved entries", "entries", n)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	return nil
}

// indexerStatus joins every indexer's per-source status for the pages.
type indexerStatus []interface{ Status() []indexer.SourceStatus }

// Status lists the sources of all indexers.
func (s indexerStatus) Status() []indexer.SourceStatus {
	var out []indexer.SourceStatus
	for _, x := range s {
		out = append(out, x.Status()...)
	}
	return out
}

// rabbitSources returns the RabbitMQ management source: the configured one
// (which must answer at start), or in demo mode the local default when it
// answers.
func (m *Main) rabbitSources(ctx context.Context, rabbitURL string) ([]*collector.RabbitSource, []web.ReadyCheck, error) {
	c := m.Config
	mgmt, required := c.RabbitMQ.ManagementURL, true
	if mgmt == "" && m.DemoMode {
		mgmt, required = defaultRabbitManagement, false
	}
	if mgmt == "" {
		return nil, nil, nil
	}
	// The dashboards show the vhosts the indexer takes custody in, no more.
	vhosts, all := c.RabbitMQ.vhosts(rabbitURL)
	if all {
		vhosts = nil
	}
	src, err := collector.NewRabbitSource("rabbitmq", mgmt, collector.RabbitOptions{VHosts: vhosts, DLQPatterns: c.DLQ.Patterns})
	if err != nil {
		return nil, nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, time.Duration(c.StartupTimeout))
	err = src.Ping(pctx)
	cancel()
	switch {
	case err != nil && required:
		return nil, nil, fmt.Errorf("rabbitmq management API (%s) unreachable: %w", redactURL(mgmt), err)
	case err != nil:
		m.logger.Info("RabbitMQ management API not reachable; queue dashboards are off", "url", redactURL(mgmt))
		return nil, nil, nil
	}
	return []*collector.RabbitSource{src}, []web.ReadyCheck{{Name: "rabbitmq-management", Check: src.Ping}}, nil
}

// goRun has a component's Run loop started, owned by Main and stopped by
// Close. It starts with the others at the end of Run, once the start can
// no longer fail: a failed start runs none of them.
func (m *Main) goRun(ctx context.Context, name string, run func(context.Context) error) {
	m.pending = append(m.pending, func() {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			if err := run(ctx); err != nil && ctx.Err() == nil {
				m.logger.Error("component stopped", "component", name, "error", err)
			}
		}()
	})
}

// startComponents starts what goRun was given.
func (m *Main) startComponents() {
	for _, start := range m.pending {
		start()
	}
	m.pending = nil
}

// Close shuts down in order: stop the components, flush the demo's
// metrics, stop taking requests and drain in-flight ones, then close
// clients, the embedded Kafka and the stores.
func (m *Main) Close() error {
	if m.closed {
		return nil
	}
	m.closed = true
	var errs []error
	// 1. Stop the components (demo services, collectors, indexers) while
	//    the HTTP server still answers, so that the demo's last metrics
	//    reach the console's own OTLP receiver.
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
	if len(m.demoTel) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		for _, p := range m.demoTel {
			errs = append(errs, p.Shutdown(ctx))
		}
		cancel()
	}
	// 2. Stop taking requests and drain the ones in flight.
	if m.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		errs = append(errs, m.server.Shutdown(ctx))
		cancel()
	} else if m.ln != nil {
		m.ln.Close()
	}
	if m.grpc != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		m.grpc.Stop(ctx)
		cancel()
	}
	if m.grpcLn != nil {
		m.grpcLn.Close() // a failed start never served it; Stop closed it otherwise
	}
	m.serverWG.Wait()
	// The audit chain's head after the last request, out of the database.
	if m.anchorer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := m.anchorer.Anchor(ctx, true); err != nil {
			errs = append(errs, fmt.Errorf("audit chain anchor: %w", err))
		}
		cancel()
	}
	// 3. Close clients, the embedded Kafka, exporters and stores. The
	//    redrive publishers go before the embedded Kafka they may be
	//    connected to (after it, their client dialled the closed broker
	//    and could log a warning on a stop that followed a redrive).
	for _, cl := range m.clients {
		cl.Close()
	}
	if m.senders != nil {
		m.senders.close()
	}
	if m.platform != nil {
		m.platform.Close()
	}
	if m.tracer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, m.tracer.Shutdown(ctx))
		cancel()
	}
	if m.fwd != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, m.fwd.Close(ctx))
		cancel()
	}
	// After the tracer: its last batch goes into the store.
	if m.traces != nil {
		errs = append(errs, m.traces.Close())
	}
	if m.tsdb != nil {
		errs = append(errs, m.tsdb.Close())
	}
	if m.dlq != nil {
		errs = append(errs, m.dlq.Close())
	}
	if m.db != nil {
		errs = append(errs, m.db.Close())
	}
	return errors.Join(errs...)
}

// setupTracing gives the console a TracerProvider for its own spans
// (requests, redrive jobs, broker calls): exporting over OTLP/HTTP when
// OTEL_EXPORTER_OTLP_ENDPOINT (or the traces-specific variable) is set —
// the exporter reads the standard OTEL_* variables itself — and otherwise
// into its own span store, so that it traces itself with nothing else
// running. With neither, there is none.
func (m *Main) setupTracing(ctx context.Context) error {
	var exp sdktrace.SpanExporter
	switch {
	case m.otlpEndpointSet():
		e, err := otlptracehttp.New(ctx)
		if err != nil {
			return fmt.Errorf("otlp trace exporter: %w", err)
		}
		exp = e
	case m.traces != nil:
		exp = tracing.NewLocalExporter(m.traces, m.traces.Limits())
	default:
		return nil
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName("switchyard-console"), semconv.ServiceVersion(version)))
	if err != nil {
		return fmt.Errorf("otel resource: %w", err)
	}
	m.tracer = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return nil
}

// otlpEndpointSet says whether the standard variables name an OTLP
// endpoint for traces.
func (m *Main) otlpEndpointSet() bool {
	return m.getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || m.getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// startTraces builds what receives spans: the forwarder (with
// tracing.forward.endpoint), the receiver both transports hand exports
// to, and the OTLP/gRPC receiver (with tracing.grpc_addr), authenticated
// by the same access store and policy as HTTP; and runs the span store's
// retention.
func (m *Main) startTraces(runCtx context.Context, users *access.Store, reg prometheus.Registerer) error {
	if m.traces == nil {
		return nil
	}
	c := m.Config.Tracing
	if c.Forward.Endpoint != "" {
		fwd, err := tracing.NewForwarder(tracing.ForwardOptions{Endpoint: c.Forward.Endpoint, Headers: c.Forward.Headers,
			QueueSize: c.Forward.Queue, Registerer: reg, Logger: m.logger.With("component", "trace-forward")})
		if err != nil {
			return err
		}
		m.fwd = fwd
	}
	recv, err := tracing.NewReceiver(m.traces, tracing.ReceiverOptions{Forward: m.fwd, Registerer: reg, Logger: m.logger.With("component", "traces")})
	if err != nil {
		return err
	}
	m.recv = recv
	if m.grpcLn != nil {
		// The web server, built later, counts exports by account; gRPC
		// serves only once it exists.
		count := func(account, outcome string) { m.server.CountIngest(account, outcome) }
		g, err := tracing.NewGRPCServer(tracing.GRPCOptions{Receiver: recv, Auth: users, Policy: access.Policy{},
			MaxMessage: m.Config.OTLP.MaxBody, Logger: m.logger.With("component", "otlp-grpc"), Count: count})
		if err != nil {
			return err
		}
		m.grpc = g
	}
	st := m.traces
	m.goRun(runCtx, "trace retention", func(ctx context.Context) error {
		st.RunRetention(ctx, time.Minute)
		return nil
	})
	return nil
}

// traceReceiver is nil (not a typed nil) without a span store.
func (m *Main) traceReceiver() web.TraceReceiver {
	if m.recv == nil {
		return nil
	}
	return m.recv
}

// demoTelemetry gives each demo service providers of its own, so that each
// reports its own service.name, as separate platform services would: its
// event metrics go over OTLP/HTTP to this console's own receiver,
// authenticated with a token of a service account that may only ingest;
// its spans the same way to the console's own /v1/traces when the span
// store is on (else, when OTEL_EXPORTER_OTLP_* names an endpoint, there).
func (m *Main) demoTelemetry(ctx context.Context, users access.Directory) (func(string) (metric.MeterProvider, trace.TracerProvider), error) {
	tok, err := access.EnsureServiceAccount(ctx, users, "demo-services", []access.Action{access.ActionIngest}, 7*24*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("demo service account: %w", err)
	}
	host := displayAddr(m.ln.Addr().String())
	meters := map[string]metric.MeterProvider{}
	tracers := map[string]trace.TracerProvider{}
	for _, svc := range demo.Services() {
		res := resource.NewSchemaless(semconv.ServiceName(svc))
		exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL("http://"+host+"/v1/metrics"),
			otlpmetrichttp.WithHeaders(map[string]string{"Authorization": "Bearer " + tok}))
		if err != nil {
			return nil, fmt.Errorf("demo metrics exporter: %w", err)
		}
		mp := sdkmetric.NewMeterProvider(
			sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(10*time.Second))),
			sdkmetric.WithResource(res))
		meters[svc] = mp
		m.demoTel = append(m.demoTel, mp)
		var texp *otlptrace.Exporter
		switch {
		case m.traces != nil:
			// Into the console's own receiver, like the metrics, so
			// that the demo's stories are in its span store.
			texp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL("http://"+host+"/v1/traces"),
				otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer " + tok}))
		case m.tracer != nil:
			texp, err = otlptracehttp.New(ctx)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("demo otlp trace exporter: %w", err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(texp), sdktrace.WithResource(res))
		tracers[svc] = tp
		m.demoTel = append(m.demoTel, tp)
	}
	return func(svc string) (metric.MeterProvider, trace.TracerProvider) { return meters[svc], tracers[svc] }, nil
}

// tracerProvider is nil (not a typed nil) when self-tracing is off.
func (m *Main) tracerProvider() trace.TracerProvider {
	if m.tracer == nil {
		return nil
	}
	return m.tracer
}

// displayAddr turns a listen address into something a browser can open.
func displayAddr(a string) string {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return a
	}
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// unwrapSyscall drops the net.OpError noise around "address already in use".
func unwrapSyscall(err error) error {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err
	}
	return err
}

// demoIndexedOffsets tells the demo's Kafka retention how far the DLQ
// indexer has read, so that it never trims a dead letter the console has
// not stored. The demo starts before the store opens: until then there is
// no answer, and retention leaves the DLQ topics alone.
type demoIndexedOffsets struct {
	store atomic.Pointer[dlqstore.Store]
}

func (d *demoIndexedOffsets) upTo(ctx context.Context) (map[string]map[int32]int64, error) {
	s := d.store.Load()
	if s == nil {
		return nil, errors.New("the dead-letter store is not open yet")
	}
	offs, err := s.KafkaOffsets(ctx, demo.ClusterName)
	if err != nil {
		return nil, err
	}
	out := map[string]map[int32]int64{}
	for tp, next := range offs {
		if out[tp.Topic] == nil {
			out[tp.Topic] = map[int32]int64{}
		}
		out[tp.Topic][tp.Partition] = next
	}
	return out, nil
}

// demoTraceMaxBytes is tracing.max_bytes by default in demo mode.
const demoTraceMaxBytes = 256 << 20

// demoCacheKB is the SQLite page cache a store gets in demo mode, kb; 0
// (the store's default, sized for a production platform) otherwise. The
// demo's platform is small, and a console left running a demo all day
// should stay within a couple of hundred megabytes.
func (m *Main) demoCacheKB(kb int) int {
	if m.DemoMode {
		return kb
	}
	return 0
}
