/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Locked read-modify-writes a thread made through the helpers of
 * src/internal/atomic.h, counted only in a build configured with
 * -DVMRES_COUNT_ATOMICS=ON (bench_id's per-pair counts, docs/performance.md);
 * elsewhere the counting compiles to nothing. Plain thread-local increments:
 * no atomic of their own. A pair load is not counted: on CPUs with AVX it is
 * a plain 16-byte load. C and C++ (bench_id.cc includes it).
 */
#ifndef VMRES_INTERNAL_ATOMIC_COUNT_H
#define VMRES_INTERNAL_ATOMIC_COUNT_H

#include <stdbool.h>
#include <stdint.h>

struct vmres__atomic_counts {
	uint64_t cas;  /* 8-byte CAS (lock cmpxchg), failed ones included */
	uint64_t cas2; /* double-width CAS (lock cmpxchg16b), failed ones included */
	uint64_t faa;  /* fetch-and-add (lock xadd) */
	uint64_t swap; /* exchange (xchg) */
};

/*
 * vmres__atomic_counts_get() - the calling thread's counts so far
 * @out: receives them (all zero where counting is compiled out)
 *
 * Return: whether this build counts (VMRES_COUNT_ATOMICS).
 */
bool vmres__atomic_counts_get(struct vmres__atomic_counts *out);

#endif /* VMRES_INTERNAL_ATOMIC_COUNT_H */
