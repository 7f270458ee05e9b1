#!/usr/bin/env bash
# make bench: run every benchmark that has a bare-client baseline in the same run and print
# our figure beside the baseline with the ratio (median of COUNT runs; shared machines are noisy).
# A benchmark pairs up by name: Benchmark<Thing>/delivery (ours) vs Benchmark<Thing>/bare-<client>.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${BENCH_COUNT:-3}"
# package:iterations:pattern[:count] per run (count defaults to COUNT). Kafka (in-process kfake) is fast, RabbitMQ waits for disk
# confirms, a collection cycle over 2,000 partitions takes tens of milliseconds; the dead-letters
# landing page under load (20 operators, indexing at 1,000/s) first seeds 200,000 entries, then
# runs the page with its shared cache (switchyard), without it (switchyard-uncached) and bare.
# Traces: OTLP/HTTP ingest of 512-span requests, the assembly of a 5,000-span story, and
# searches over 2,000,000 stored spans (seeded once per run; its bytes/span is in the raw output).
# History: bytes per series-minute of 14 days of rollups beside bare rows and beside zstd of the same buckets.
# Dead-letter search over 1,000,000 entries: 300 searches of each kind, so that p99 is the third
# slowest rather than the slowest of a few (one scheduling hiccup on a shared machine); the bare
# scans, seconds each, run 20 times.
# Alerting: one evaluation cycle of 1,000 rules over 10,000 series beside the same reads as bare
# history selects, and the preview of one rule over 14 days of rollups beside the bare rollup read.
RUNS="${BENCH_RUNS:-./delivery/kafka/:10000x:. ./delivery/rabbitmq/:1000x:. ./collector/:20x:CollectCycle ./tsdb/:200x:Query24hOneSeries|AppendCycle ./tsdb/:1x:RollupDisk ./web/:200x:2000Partitions|200Groups|GzipBody ./web/:2000x:DeadLettersUnderLoad ./dlqstore/:1x:Capture|TextCatchup ./dlqstore/:300x:Search/.*/switchyard ./dlqstore/:20x:Search/.*/bare ./indexer/:1x:IndexKafka ./redrive/:1x:Redrive ./web/:60x:OTLPTraceIngest ./tracing/:100x:TraceAssembly ./tracing/:300x:SpanSearch ./alerting/:10x:AlertCycle ./alerting/:30x:AlertPreview14d ./demo/:1x:DemoRSS$:1}"
mkdir -p .bench
raw=.bench/raw.txt
: >"$raw"
for run in $RUNS; do
	IFS=: read -r pkg n pattern count <<<"$run"
	go test -tags sqlite_fts5 -run '^$' -bench "$pattern" -benchtime "$n" -count "${count:-$COUNT}" -timeout 60m "$pkg" | tee -a "$raw"
done
echo
# Pairs: Benchmark<Thing>/switchyard (or /delivery) is ours, /bare-<client> the baseline.
# Throughput (msgs/s) is compared where reported, else time per op (ms/cycle or ns/op).
awk '
BEGIN { split("first-msgs/s bytes/entry written-bytes/entry bytes/series-minute gb-14d-10k rss-mb rss-slope-mb/h eq-hours catchup-ms cpu-µs/msg captured/s", xs, " "); for (i in xs) extra[xs[i]] = 1 }
/^pkg: / { pkg = $2; sub(/^switchyard\//, "", pkg) }
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	n = split(name, parts, "/"); variant = parts[n]
	group = pkg " " substr(name, 1, length(name) - length(variant) - 1)
	if (variant !~ /^(switchyard|switchyard-.*|delivery|bare-.*)$/) { group = pkg " " name; variant = "standalone" }
	unit = ""; v = ""
	for (i = 2; i < NF; i++) if ($(i+1) == "msgs/s") { v = $i; unit = "msgs/s" }
	if (unit == "") for (i = 2; i < NF; i++) if ($(i+1) == "p99-ms") { v = $i; unit = "p99 ms" }
	if (unit == "") for (i = 2; i < NF; i++) if ($(i+1) == "ms/cycle") { v = $i; unit = "ms/cycle" }
	if (unit == "") for (i = 2; i < NF; i++) if ($(i+1) in extra) { v = $i; unit = $(i+1); break }
	if (unit == "") for (i = 2; i < NF; i++) if ($(i+1) == "ns/op") { v = $i / 1e6; unit = "ms/op" }
	add(group, variant, unit, v)
	# Size and memory figures get rows of their own beside the main one.
	for (i = 2; i < NF; i++) if (($(i+1) in extra) && $(i+1) != unit) add(group " [" $(i+1) "]", variant, $(i+1), $i)
}
function add(group, variant, unit, v,   key) {
	key = group SUBSEP variant; cnt[key]++; vals[key, cnt[key]] = v; units[group] = unit
	groups[group] = 1; variants[group, variant] = 1
}
function median(key,   k, i, j, t, a) {
	k = cnt[key]; for (i = 1; i <= k; i++) a[i] = vals[key, i] + 0
	for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
END {
	printf "%-56s %-9s %12s %12s  %-14s %s\n", "benchmark (median)", "unit", "switchyard", "baseline", "baseline is", "ours vs baseline"
	for (g in groups) {
		u = units[g]
		if ((g SUBSEP "standalone") in cnt) { printf "%-56s %-9s %12.3f %12s  %-14s %s\n", g, u, median(g SUBSEP "standalone"), "-", "-", "no baseline"; continue }
		# Ours is /switchyard or /delivery; /switchyard-<how> is ours run another way
		# (the landing page with its cache off), a row of its own against the same baseline.
		for (ov in variants) { split(ov, o, SUBSEP); if (o[1] != g || o[2] !~ /^(switchyard|delivery)/) continue
			ours = median(g SUBSEP o[2]); label = g
			if (o[2] ~ /^switchyard-/) label = g " (" substr(o[2], 12) ")"
			based = 0
			for (gv in variants) { split(gv, p, SUBSEP); if (p[1] != g || p[2] !~ /^bare/) continue
				based = 1; base = median(g SUBSEP p[2])
				if (u == "msgs/s") verdict = sprintf("%.2fx the throughput", (base > 0 ? ours / base : 0))
				else if (u ~ /bytes|gb|mb/) verdict = sprintf("%.2fx the size", (base > 0 ? ours / base : 0))
				else verdict = sprintf("%.2fx the time", (base > 0 ? ours / base : 0))
				printf "%-56s %-9s %12.3f %12.3f  %-14s %s\n", label, u, ours, base, p[2], verdict
			}
			# A figure only ours reports (bytes written, catch-up) still gets its row.
			if (!based) printf "%-56s %-9s %12.3f %12s  %-14s %s\n", label, u, ours, "-", "-", "no baseline"
		}
	}
}' "$raw" | sort
