/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A bounded intrusive LIFO (Treiber stack) of memory reused after a grace
 * period: the ID allocator's node pools (src/id_index.c) and the address
 * allocator's pool of spare versions (src/addr.c).
 *
 * Elements link through a uintptr_t field of their own (its offset is given
 * to pop). The discipline that makes the pop's CAS free of ABA is the
 * callers': elements are pushed only from call_rcu callbacks, after a grace
 * period that began after the element was last popped, and popped only
 * inside an RCU read-side critical section. So an element a popper read as
 * the top cannot come back before that popper leaves its section: its CAS
 * succeeds only if the element never left, and the next link it read is
 * current (src/id_index.c invariant 11, src/addr.c invariant 8).
 *
 * @count bounds what the stack holds, in the caller's units: room is
 * reserved before a push and given back after a pop, so @count is never
 * below what the stack holds and what it holds never exceeds the cap.
 */
#ifndef VMRES_INTERNAL_RCU_STACK_H
#define VMRES_INTERNAL_RCU_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "atomic.h"

struct vmres__rcu_stack {
	uintptr_t head; /* atomic: the top element, 0 when empty */
	uint64_t count; /* atomic: units reserved (see above) */
};

/* Reserves @units of room under @cap before a push; false (nothing
 * reserved) when they do not fit. */
static inline bool vmres__rcu_stack_reserve(struct vmres__rcu_stack *s, uint64_t units,
					    uint64_t cap)
{
	/* Full barrier; reserve before the push, so count >= what is held. */
	if (vmres__u64_faa(&s->count, units) + units <= cap)
		return true;
	vmres__u64_faa(&s->count, (uint64_t)0 - units); /* full barrier; undo */
	return false;
}

/* Gives back @units of room after a pop. */
static inline void vmres__rcu_stack_unreserve(struct vmres__rcu_stack *s, uint64_t units)
{
	/* Full barrier; after the pop, so count stays >= what is held. */
	vmres__u64_faa(&s->count, (uint64_t)0 - units);
}

/*
 * Pushes the private chain @first .. @last (linked already, @last's link at
 * @last_next) with one CAS. From a call_rcu callback only, after
 * vmres__rcu_stack_reserve().
 */
static inline void vmres__rcu_stack_push(struct vmres__rcu_stack *s, uintptr_t first,
					 uintptr_t *last_next)
{
	for (;;) {
		/* Relaxed: the CAS below orders it; a stale top fails the CAS. */
		uintptr_t top = vmres__uptr_load_relaxed(&s->head);

		/* Relaxed: published by the release of the CAS below; pairs
		 * with vmres__rcu_stack_pop()'s load after its acquire. */
		vmres__uptr_store_relaxed(last_next, top);
		/* Full barrier (release): publishes the chain and everything
		 * written into it; pairs with vmres__rcu_stack_pop()'s acquire. */
		if (vmres__uptr_cas(&s->head, top, first))
			return;
	}
}

/*
 * Starts loading the new top @next (its first line and its link's line) into
 * the cache, for the next pop, which reads the link, and for that pop's
 * caller, which rewrites the element. A pooled element waited out a grace
 * period (about 10 ms with liburcu's callback thread), so its lines are
 * usually gone from the core's caches, and the pop's load of the link was
 * the miss that cost most of an ID allocation (docs/performance.md). A
 * prefetch is a hint: no access and no fault, so it is harmless if @next is
 * popped by another thread first, or freed by a drain.
 */
static inline void vmres__rcu_stack_prefetch(uintptr_t next, size_t next_off)
{
	if (!next)
		return;
	__builtin_prefetch((const void *)next, 1);
	__builtin_prefetch((const void *)(next + next_off), 1);
}

/*
 * Pops the top element, or returns 0. Inside an RCU read-side critical
 * section (see the top of this file). @next_off: offset of the link field.
 * The caller gives the element's units back with vmres__rcu_stack_unreserve().
 */
static inline uintptr_t vmres__rcu_stack_pop(struct vmres__rcu_stack *s, size_t next_off)
{
	for (;;) {
		/* Acquire: pairs with vmres__rcu_stack_push()'s CAS, so the
		 * element's link and contents are visible. */
		uintptr_t top = vmres__uptr_load_acquire(&s->head);

		if (!top)
			return 0;
		/* Relaxed: written before the push that published top; top
		 * cannot come back while we are in our section, so a stale
		 * value belongs to a CAS that fails. */
		uintptr_t next = vmres__uptr_load_relaxed((const uintptr_t *)(top + next_off));

		/* Full barrier; succeeds only if top never left (no ABA, see
		 * above); orders the caller's reuse of the element after it. */
		if (vmres__uptr_cas(&s->head, top, next)) {
			vmres__rcu_stack_prefetch(next, next_off);
			return top;
		}
	}
}

#endif /* VMRES_INTERNAL_RCU_STACK_H */
