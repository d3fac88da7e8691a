/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Counts of locked read-modify-writes, for benchmarks (src/internal/atomic_count.h). */
#include "internal/atomic.h"

#ifdef VMRES_COUNT_ATOMICS
_Thread_local struct vmres__atomic_counts vmres__atomic_counted;
#endif

bool vmres__atomic_counts_get(struct vmres__atomic_counts *out)
{
#ifdef VMRES_COUNT_ATOMICS
	*out = vmres__atomic_counted;
	return true;
#else
	*out = (struct vmres__atomic_counts){ 0, 0, 0, 0 };
	return false;
#endif
}
