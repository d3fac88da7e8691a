/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Internal entry points of the address allocator (src/addr*.c), for the
 * tests and the benchmarks that link the static vmres_internal library.
 * Not installed, not part of the ABI.
 */
#ifndef VMRES_INTERNAL_ADDR_TREE_H
#define VMRES_INTERNAL_ADDR_TREE_H

#include <stddef.h>
#include <stdint.h>

#include <vmres/addr.h>

/*
 * vmres__addr_lookup_unsynchronized() - vmres_addr_lookup() without RCU
 * @a:       the allocator
 * @addr:    the address to resolve
 * @out:     receives the allocated range holding @addr (may be NULL)
 * @tag_out: receives its tag (may be NULL)
 *
 * The same code and the same results as vmres_addr_lookup() (0,
 * VMRES_E_INVALID_ARGUMENT for a NULL @a, VMRES_E_OUT_OF_RANGE outside the
 * span, VMRES_E_NOT_FOUND in free space), but it takes no RCU read-side lock:
 * it loads the current root once and walks it with plain (dependency-ordered)
 * loads. The baseline the benchmarks compare RCU lookups against.
 *
 * Context: the caller guarantees that no node it walks is freed meanwhile:
 * either no writer runs (a frozen tree), or every writer call
 * (vmres_addr_alloc/free) is excluded by the caller's own lock (a
 * pthread_rwlock held for reading here, for writing around the writer).
 * A writer still retires replaced nodes through call_rcu, whose callback may
 * free them as soon as the writer leaves its read-side section (before it
 * returns, before the caller drops its lock); lock-excluded readers are safe
 * all the same: a reader that takes the lock after the writer loads the new
 * version and never reaches a node that writer replaced.
 * The calling thread need not be registered with RCU.
 */
int vmres__addr_lookup_unsynchronized(struct vmres_addr_allocator *a, uint64_t addr,
				      struct vmres_range *out, uint64_t *tag_out);

/*
 * vmres__addr_check() - verify every invariant of the current tree
 * @a: the allocator; no writer may run concurrently (readers may)
 *
 * Checks invariants 1-6 of src/addr.c: BST order and disjoint sorted ranges
 * inside the span, AVL balance and stored heights, the augmented fields
 * (min start, max end, largest inner gap) recomputed bottom-up from the
 * subtree's ranges (not with vmres__addr_node_update(), which it checks), the
 * version's totals (range count, byte sum modulo 2^64, retire capacity).
 *
 * Return: 0 if all hold, otherwise the (positive) number of the first
 * invariant found broken; prints a line describing it to stderr. -1 if @a
 * is NULL.
 *
 * Context: a registered thread, no concurrent writer on @a.
 */
int vmres__addr_check(struct vmres_addr_allocator *a);

/*
 * vmres__addr_height() - height of the current tree (0 when empty)
 * @a: the allocator
 *
 * Context: a registered thread, no concurrent writer on @a.
 */
unsigned vmres__addr_height(struct vmres_addr_allocator *a);

/*
 * vmres__addr_pool_drain() - give every pooled spare back to the memory hook
 * @a: the allocator
 *
 * Versions replaced by writers come back, after their grace period, as
 * "spares" (the version's memory and the nodes it retired) in a per-allocator
 * pool that later writers take their memory from (src/addr.c, "Pool").
 * Tests and benchmarks that count the memory a tree holds call
 * vmres_rcu_barrier() then this. destroy calls it too.
 * Return: the blocks given back (nodes and versions).
 *
 * Context: a registered thread, no other call on @a running.
 */
uint64_t vmres__addr_pool_drain(struct vmres_addr_allocator *a);

/*
 * vmres__addr_allocator_free() - vmres_addr_allocator_destroy() without its
 * rcu_barrier(): frees @a (NULL: nothing happens) and all it holds
 * @a: the allocator
 *
 * For a caller that destroys several allocators: one vmres__rcu_barrier()
 * after the last call on each of them, then this for each (the system's
 * destroy). Context: that of destroy, after such a barrier.
 */
void vmres__addr_allocator_free(struct vmres_addr_allocator *a);

/*
 * vmres__addr_pool_disable() - retired versions go straight back to the hook
 * @a: the allocator, before it is shared with other threads
 *
 * For an allocator whose hook must see every block again soon after its
 * retire: a system's per-kind allocators (src/system_reserve.c).
 */
void vmres__addr_pool_disable(struct vmres_addr_allocator *a);

/*
 * vmres__addr_validate() - the argument errors of vmres_addr_alloc(), in its
 * documented order, for an allocator of [@first, @last]: none depends on
 * what is allocated. 0 or the error. The system layer's first phase uses it
 * on a kind's span. Any thread; reads only its arguments.
 */
int vmres__addr_validate(uint64_t first, uint64_t last, const struct vmres_addr_request *req);

/* Bytes of one tree node: what each allocated range costs, allocator aside. */
size_t vmres__addr_node_size(void);

#endif /* VMRES_INTERNAL_ADDR_TREE_H */
