/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * ID allocator internals that tests and benchmarks may call. Every function
 * here needs a quiescent allocator: no other call on it may run meanwhile.
 */
#ifndef VMRES_INTERNAL_ID_H
#define VMRES_INTERNAL_ID_H

#include <stdbool.h>
#include <stdint.h>

#include <vmres/id.h>

/*
 * struct vmres__id_stats - what vmres__id_check() counted
 * @intervals:  free intervals in the list (DEL'd ones not counted)
 * @nodes:      nodes reachable from the head, the NEVER tail's node included
 * @free_ids:   IDs free (both kinds)
 * @never_ids:  IDs never handed out since creation
 */
struct vmres__id_stats {
	uint64_t intervals;
	uint64_t nodes;
	uint64_t free_ids;
	uint64_t never_ids;
};

/*
 * vmres__id_check() - verify the list and index invariants on a quiet allocator
 * @ids:   the allocator
 * @stats: receives the counts, or NULL
 *
 * Return: 0 when every invariant holds, else minus the number of the first
 * invariant found broken (numbered at the tops of src/id.c and
 * src/id_index.c), after
 * printing a line about it to stderr.
 */
int vmres__id_check(struct vmres_id_allocator *ids, struct vmres__id_stats *stats);

/*
 * vmres__id_foreach_free() - visit the free intervals in increasing order
 * @ids:   the allocator
 * @visit: called with each interval [lo, hi] and whether it was never handed out
 * @ctx:   passed to @visit
 */
void vmres__id_foreach_free(struct vmres_id_allocator *ids,
			    void (*visit)(void *ctx, uint32_t lo, uint32_t hi, bool never),
			    void *ctx);

/*
 * vmres__id_head_inline() - the freed ID the head link holds inline, if any
 * @ids: the allocator
 * @id:  receives it (untouched when there is none)
 *
 * The smallest free ID may sit in the head link itself rather than in a
 * node (src/internal/id_list.h): a free in front of every interval puts it
 * there without memory. Tests use this to know which frees need a node.
 * Return: whether the head holds one.
 */
bool vmres__id_head_inline(struct vmres_id_allocator *ids, uint32_t *id);

/*
 * vmres__id_steps() - list links and index nodes this thread's searches
 * visited so far (free, alloc_at and is_allocated search; alloc, and a free
 * decided at the front of the list, do not).
 * Counted only where the library was built with VMRES_TEST_COUNTERS (the
 * tests' copy, vmres_internal_test); elsewhere it always returns 0.
 */
uint64_t vmres__id_steps(void);

/*
 * vmres__id_pool_drain() - give every pooled node back to the memory hook
 * @ids: the allocator
 *
 * Retired nodes whose callback has run wait in per-height pools for reuse
 * (src/id_index.c). Tests that make the hook fail call vmres_rcu_barrier()
 * then this, so that the next node an operation needs is really asked of the
 * hook. destroy calls it too. Return: the number of nodes given back.
 */
uint64_t vmres__id_pool_drain(struct vmres_id_allocator *ids);

/*
 * vmres__id_allocator_free() - vmres_id_allocator_destroy() without its
 * rcu_barrier(): frees @ids (NULL: nothing happens) and all it holds
 * @ids: the allocator
 *
 * For a caller that destroys several allocators: one vmres__rcu_barrier()
 * after the last call on each of them, then this for each (the system's
 * destroy). Context: that of destroy, after such a barrier.
 */
void vmres__id_allocator_free(struct vmres_id_allocator *ids);

/*
 * vmres__id_pool_disable() - retired nodes go straight back to the hook
 * @ids: the allocator, before it is shared with other threads
 *
 * For an allocator whose hook must see every block again soon after its
 * retire: a system's per-kind allocators, whose hook hands out rollback
 * reserve blocks that must flow back to the reserve (system_reserve.c).
 */
void vmres__id_pool_disable(struct vmres_id_allocator *ids);

#endif /* VMRES_INTERNAL_ID_H */
