#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# The contention benchmarks on a machine with more cores than this one, in
# one short call: the 8- and 16-thread figures that a 2-CPU machine cannot
# give (docs/performance.md, "The machine, and how far to trust these
# numbers"). Made for the device machine that a session may be lent: it
# starts bare, reaches no network and has no liburcu or google-benchmark.
#
#   scripts/device_bench.sh pack
#       Here: builds the Release benchmarks (build/bench-release) and copies
#       them, every shared library they load and the dynamic loader itself
#       into build/device/ (about 6 MB), so they run there whatever that
#       machine's libc is.
#   scripts/device_bench.sh run OUTDIR [MAX_THREADS]
#       There (or here, to try it): runs bench_floor at 1..MAX_THREADS
#       threads, then id_churn and addr_lookup_under_hotplug sweeping
#       1, 2, 4, ... MAX_THREADS threads (default 16), with our allocator and
#       the baselines of the issues' targets side by side. Writes one text
#       log and google-benchmark JSON files into OUTDIR. 72 s at 16 threads
#       on a 2-CPU machine (the runs are timed, so more cores take no longer).
#
# With the device tool: run `scripts/device_bench.sh pack` here, then call
# run with command `bash scripts/device_bench.sh run "$OUT"`, carry
# ["build/device"] and timeout_s 420; the files come back from $OUT.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bundle="$root/build/device"
benches=(bench_id bench_addr bench_floor)

pack() {
	cmake -S "$root" -B "$root/build/bench-release" -DVMRES_BUILD_TESTS=OFF \
		-DVMRES_BUILD_BENCH=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build "$root/build/bench-release" -j "$(nproc)" --target "${benches[@]}"
	rm -rf "$bundle"
	mkdir -p "$bundle/bin" "$bundle/lib"
	for b in "${benches[@]}"; do
		cp "$root/build/bench-release/bench/$b" "$bundle/bin/"
		# Every library the loader resolves, the loader included.
		ldd "$bundle/bin/$b" | awk '/=> \//{print $3} $1 ~ /^\/.*ld-linux/{print $1}' |
			while read -r lib; do cp -L "$lib" "$bundle/lib/"; done
	done
	git -C "$root" rev-parse --short HEAD >"$bundle/git_rev" 2>/dev/null || echo unknown >"$bundle/git_rev"
	du -sh "$bundle"
}

run() {
	local out=${1:?usage: device_bench.sh run OUTDIR [MAX_THREADS]} max=${2:-16}
	local loader="" t f
	for f in "$bundle"/lib/ld-linux-*; do
		[ -e "$f" ] && loader=$f
	done
	[ -n "$loader" ] || {
		echo "device_bench.sh: no bundle in $bundle; run 'device_bench.sh pack' first" >&2
		exit 2
	}
	mkdir -p "$out"
	# Both google-benchmark runs: 3 interleaved repetitions, medians, JSON.
	local common=(--vmres_max_threads="$max" --benchmark_repetitions=3
		--benchmark_report_aggregates_only=true --benchmark_enable_random_interleaving=true
		--benchmark_out_format=json)
	exe() { # binary args...: through the bundled loader and libraries
		local b=$1
		shift
		"$loader" --library-path "$bundle/lib" "$bundle/bin/$b" "$@"
	}
	{
		echo "== $(date -u +%FT%TZ) git $(cat "$bundle/git_rev"), nproc $(nproc)," \
			"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), max threads $max"
		echo "== bench_floor: M pairs/s, all threads; 3 rounds"
		for r in 1 2 3; do
			for ((t = 1; t <= max; t *= 2)); do
				exe bench_floor "$t" mutex 0.3
				exe bench_floor "$t" cas 1 0.3
				exe bench_floor "$t" cas 3 0.3
			done
		done
		echo "== id_churn"
		exe bench_id "${common[@]}" --benchmark_min_time=0.2 \
			--benchmark_filter='id_churn/(vmres|rustvmm_set_mutex)/(10|100000)/' \
			--benchmark_out="$out/id_churn.json"
		echo "== addr_lookup_under_hotplug"
		exe bench_addr "${common[@]}" --vmres_window_s=0.25 \
			--benchmark_filter='addr_lookup_under_hotplug/(vmres_rcu|rwlock|rwlock_writer_pref|mutex|unsync_ceiling|unsync_ceiling_busy_writer)/' \
			--benchmark_out="$out/addr_lookup.json"
		echo "== done $(date -u +%FT%TZ)"
	} 2>&1 | tee "$out/device_bench.log"
}

case "${1:-}" in
pack) pack ;;
run)
	shift
	run "$@"
	;;
*)
	sed -n '3,25p' "$0"
	exit 2
	;;
esac
