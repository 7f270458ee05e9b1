#!/usr/bin/env bash
# make bench: run every benchmark that has a bare-client baseline in the same run and print
# our figure beside the baseline with the ratio (median of COUNT runs; shared machines are noisy).
# A benchmark pairs up by name: Benchmark<Thing>/delivery (ours) vs Benchmark<Thing>/bare-<client>.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${BENCH_COUNT:-3}"
# package and iterations per run: Kafka (in-process kfake) is fast, RabbitMQ waits for disk confirms.
RUNS="${BENCH_RUNS:-./delivery/kafka/:10000x ./delivery/rabbitmq/:1000x}"
mkdir -p .bench
raw=.bench/raw.txt
: >"$raw"
for run in $RUNS; do
	pkg=${run%%:*}
	n=${run##*:}
	go test -tags sqlite_fts5 -run '^$' -bench . -benchtime "$n" -count "$COUNT" "$pkg" | tee -a "$raw"
done
echo
awk '
/^pkg: / { pkg = $2; sub(/^switchyard\//, "", pkg) }
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	n = split(name, parts, "/"); variant = parts[n]
	group = pkg " " substr(name, 1, length(name) - length(variant) - 1)
	for (i = 2; i < NF; i++) if ($(i+1) == "msgs/s") { v = $i
		key = group SUBSEP variant; cnt[key]++; vals[key, cnt[key]] = v; groups[group] = 1; variants[group, variant] = 1 }
}
function median(key,   k, i, j, t, a) {
	k = cnt[key]; for (i = 1; i <= k; i++) a[i] = vals[key, i] + 0
	for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
END {
	printf "%-44s %14s %14s %-14s %7s\n", "benchmark (median msgs/s)", "switchyard", "baseline", "baseline is", "ratio"
	for (g in groups) {
		ours = (g SUBSEP "delivery") in cnt ? median(g SUBSEP "delivery") : 0
		for (gv in variants) { split(gv, p, SUBSEP); if (p[1] != g || p[2] !~ /^bare/) continue
			base = median(g SUBSEP p[2])
			printf "%-44s %14.0f %14.0f %-14s %6.2fx\n", g, ours, base, p[2], (base > 0 ? ours / base : 0)
		}
	}
}' "$raw"
