#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# The one command for the libvmres contention benchmarks:
#   builds in Release (build/bench-release, plus one folder per extra RCU
#   flavor), runs the suite, writes google-benchmark JSON into
#   build/bench-results/, turns it into tables (docs/performance.md, between
#   the GENERATED markers) and plots (docs/img/*.png, gnuplot).
#
# Usage: scripts/bench.sh [--quick | --full] [--no-build] [--no-doc]
#   --quick  (default) under a minute of running: short runs, no
#            repetitions, live ranges up to 10^5, RCU flavors memb + qsbr.
#   --full   medians of 5 repetitions, live ranges up to 10^6, RCU flavors
#            memb, qsbr, bp and mb; under 10 minutes on a 2-core machine.
#   --no-build  reuse the existing build folders.
#   --no-doc    leave docs/ alone (results and plots stay in build/).
#
# Needs: cmake, a C/C++ compiler, liburcu-dev, libck-dev, libbenchmark-dev,
# python3 and gnuplot (Debian: apt-get install gnuplot-nox) for the plots.
set -euo pipefail

mode=quick
build=1
doc=1
for arg in "$@"; do
	case "$arg" in
	--quick) mode=quick ;;
	--full) mode=full ;;
	--no-build) build=0 ;;
	--no-doc) doc=0 ;;
	-h | --help)
		sed -n '3,20p' "$0"
		exit 0
		;;
	*)
		echo "bench.sh: unknown argument '$arg' (try --help)" >&2
		exit 2
		;;
	esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
results="$root/build/bench-results"
jobs=${VMRES_BENCH_JOBS:-2}

if [ "$mode" = quick ]; then
	flavors=(memb qsbr)
	run_args=(--benchmark_min_time=0.1 --vmres_max_ranges=100000 --vmres_max_threads=8
		--vmres_window_s=0.15)
	mix=()
else
	flavors=(memb qsbr bp mb)
	run_args=(--benchmark_min_time=0.2 --benchmark_repetitions=5
		--benchmark_report_aggregates_only=true
		--vmres_max_ranges=1000000 --vmres_max_threads=8 --vmres_window_s=0.25)
	# The machine is shared and its load drifts over minutes: interleave the
	# repetitions of the contention workloads in random order, so ours and
	# each baseline see the same background on average.
	mix=(--benchmark_enable_random_interleaving=true)
fi
# The lookup workload is what the flavors change; its variants that tell
# the flavors apart: ours, the rwlock baseline, the ceiling under load.
flavor_filter='addr_lookup_under_hotplug/(vmres_rcu|rwlock|unsync_ceiling_busy_writer)/'

build_dir() { # flavor
	if [ "$1" = memb ]; then echo "$root/build/bench-release"; else echo "$root/build/bench-release-$1"; fi
}

configure_and_build() { # flavor targets...
	local flavor=$1 dir
	shift
	dir=$(build_dir "$flavor")
	cmake -S "$root" -B "$dir" -DVMRES_BUILD_TESTS=OFF -DVMRES_BUILD_BENCH=ON \
		-DCMAKE_BUILD_TYPE=Release -DVMRES_RCU_FLAVOR="$flavor" >/dev/null
	cmake --build "$dir" -j "$jobs" --target "$@"
}

if [ "$build" = 1 ]; then
	configure_and_build memb bench_id bench_addr bench_system
	for f in "${flavors[@]}"; do
		[ "$f" = memb ] || configure_and_build "$f" bench_addr
	done
fi

rm -rf "$results"
mkdir -p "$results"

run() { # name binary args...
	local name=$1 bin=$2
	shift 2
	echo "== $name: $(basename "$bin") $*"
	"$bin" "$@" --benchmark_out="$results/$name.json" --benchmark_out_format=json
}

cmdline="scripts/bench.sh --$mode"
start=$(date +%s)
main=$(build_dir memb)/bench
run id "$main/bench_id" "${run_args[@]}" "${mix[@]}" --benchmark_filter='id_churn|id_scattered'
run id_memory "$main/bench_id" "${run_args[@]}" --benchmark_filter=memory
run addr "$main/bench_addr" "${run_args[@]}" "${mix[@]}" --benchmark_filter=addr_lookup
# Not interleaved: each size builds its layout once (10^6 ranges take seconds).
run addr_scaling "$main/bench_addr" "${run_args[@]}" --benchmark_filter='addr_alloc_scaling|memory'
run system "$main/bench_system" "${run_args[@]}" "${mix[@]}"
for f in "${flavors[@]}"; do
	[ "$f" = memb ] && continue
	run "flavor_$f" "$(build_dir "$f")/bench/bench_addr" "${run_args[@]}" "${mix[@]}" \
		--benchmark_filter="$flavor_filter"
done
end=$(date +%s)

# What the report needs to say where and how the numbers were taken.
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
python3 - "$results/meta.json" <<EOF
import json, sys
json.dump({
    "mode": "$mode",
    "command": "$cmdline",
    "run_args": "${run_args[*]}",
    "flavors": "${flavors[*]}",
    "nproc": $(nproc),
    "cpu_model": """$cpu""",
    "kernel": "$(uname -r)",
    "date_utc": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
    "git_rev": "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)",
    "run_seconds": $((end - start)),
}, open(sys.argv[1], "w"), indent=1)
EOF
echo "== suite ran in $((end - start)) s; JSON in $results"

report_args=(--results "$results" --plots "$results/plots")
[ "$doc" = 1 ] && report_args+=(--doc "$root/docs/performance.md")
python3 "$root/scripts/bench_report.py" "${report_args[@]}"

if command -v gnuplot >/dev/null 2>&1; then
	for gp in "$results"/plots/*.gp; do
		(cd "$results/plots" && gnuplot "$(basename "$gp")")
	done
	if [ "$doc" = 1 ]; then
		mkdir -p "$root/docs/img"
		cp "$results"/plots/*.png "$root/docs/img/"
		echo "== plots in docs/img/"
	else
		echo "== plots in $results/plots/"
	fi
else
	echo "gnuplot not found: no plots drawn. Install it with" \
		"'apt-get install gnuplot-nox' (Debian/Ubuntu) and rerun with --no-build." >&2
fi
