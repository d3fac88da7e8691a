#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz/README.md) with clang, ASAN and
# UBSAN into OUT (default build-fuzz): the library's sources compiled with
# -fsanitize=fuzzer-no-link, then fuzz_id, fuzz_addr and fuzz_sys.
# Not part of the CMake build or of CI.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mkdir -p "${1:-$root/build-fuzz}" && cd "${1:-$root/build-fuzz}" && pwd)
cc=${CC_FUZZ:-clang}

# Generated headers (vmres/version.h) come from a plain configure.
cmake -S "$root" -B "$out/cfg" -DCMAKE_C_COMPILER="$cc" >/dev/null
flags=(-O1 -g -std=c11 -mcx16 -fno-strict-aliasing -DVMRES_RCU_FLAVOR_MEMB=1
	'-DVMRES_RCU_FLAVOR_NAME="memb"' -I"$root/include" -I"$out/cfg/include" -I"$root/src"
	-fno-sanitize-recover=undefined)
mkdir -p "$out/obj"
for src in "$root"/src/*.c; do
	"$cc" "${flags[@]}" -fsanitize=fuzzer-no-link,address,undefined -c "$src" \
		-o "$out/obj/$(basename "$src" .c).o"
done
rm -f "$out/libvmres_fuzz.a"
ar rcs "$out/libvmres_fuzz.a" "$out"/obj/*.o
for t in fuzz_id fuzz_addr fuzz_sys; do
	"$cc" "${flags[@]}" -fsanitize=fuzzer,address,undefined "$root/tests/fuzz/$t.c" \
		"$out/libvmres_fuzz.a" -lurcu-memb -lurcu-common -lpthread -o "$out/$t"
done
echo "built $out/fuzz_id $out/fuzz_addr $out/fuzz_sys"
