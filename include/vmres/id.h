/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Lock-free ID allocator: integer resources (legacy IRQs/GSIs, MSI GSIs,
 * device instance IDs, KVM memory slots). The smallest free ID is handed out
 * first. See docs/design.md, "The ID allocator" for the algorithm and its argument.
 *
 * Every call is lock-free (no mutex, no thread waits for another) and
 * linearizable: any concurrent history equals some sequential order of the
 * same calls that respects real time. In particular no ID is ever held by two
 * callers, and alloc returns the smallest ID free at one instant during the
 * call. An answer about another thread's IDs (is_allocated, IN_USE,
 * ALREADY_FREED) was true at that instant and may be stale on return.
 *
 * Contention: alloc and free CAS one shared word when they work at the front
 * of the free list. A call that loses that race twice pauses for some
 * microseconds (256 CPU spin hints, 6 us on our Intel test machine, doubling
 * per further loss to 4096) so that the winner runs on with the word in its
 * cache; this trades one call's latency for the throughput of all.
 * Uncontended calls never pause.
 *
 * Memory: one node per free interval (72 bytes plus 8 per index level,
 * about 75 on average; a run of IDs freed in descending order shares one),
 * except that the smallest free ID, when it was freed in front of every
 * interval, needs none: the allocator's head holds it. free makes at most one
 * node, alloc_at at most one, alloc none. Nodes of
 * emptied intervals are not all given back to the memory hook: they are
 * kept in the allocator for reuse by later calls, at most about 4/3 as many
 * as the range has IDs and 3.3 MB in all, none for a range under 32 IDs
 * (docs/design.md, "Node pools"), and go back to the hook at destroy.
 *
 * Calls that may run at the same time (any registered threads):
 *   alloc, alloc_at, free, is_allocated  - with each other, freely
 *   create                               - with anything (new object)
 *   destroy                              - with nothing on the same allocator
 */
#ifndef VMRES_ID_H
#define VMRES_ID_H

#include <stdbool.h>
#include <stdint.h>

#include <vmres/error.h>
#include <vmres/export.h>
#include <vmres/mem.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vmres_id_allocator; /* opaque */

/**
 * vmres_id_allocator_create() - make an allocator for the IDs [first, last]
 * @first: lowest ID handed out
 * @last:  highest ID handed out (inclusive; UINT32_MAX allowed)
 * @out:   receives the allocator
 *
 * Uses the process-wide memory hook (vmres_mem_set_default()). Makes two
 * allocations: the allocator and the node for [@first, @last]. The full
 * range [0, UINT32_MAX] and one-ID ranges are valid.
 *
 * Return: 0; VMRES_E_INVALID_ARGUMENT if @out is NULL, or if the memory hook
 * gives a block that is not 16-aligned for the allocator object (see
 * vmres_id_allocator_create_ex()); VMRES_E_INVALID_RANGE if @first > @last;
 * VMRES_E_NOMEM (nothing allocated). *@out is written only on success.
 *
 * Context: any thread. The new allocator is private until the caller hands
 * the pointer to other threads (which must synchronise with this call).
 */
VMRES_API int vmres_id_allocator_create(uint32_t first, uint32_t last,
					struct vmres_id_allocator **out);

/**
 * vmres_id_allocator_create_ex() - vmres_id_allocator_create() with a memory hook
 * @first: lowest ID handed out
 * @last:  highest ID handed out (inclusive)
 * @mem:   the hook this allocator uses for all its memory, copied; NULL for
 *         the process-wide default
 * @out:   receives the allocator
 *
 * @mem must return blocks aligned for any object type (16 bytes on x86-64:
 * the allocator uses 16-byte atomic operations on them); its free may be
 * called from liburcu's call_rcu thread. A block that is not 16-aligned is
 * given back at once: here that gives VMRES_E_INVALID_ARGUMENT (allocator
 * object) or VMRES_E_NOMEM (first node); in alloc_at and free, VMRES_E_NOMEM
 * with nothing changed.
 *
 * Return: as vmres_id_allocator_create(); also VMRES_E_INVALID_ARGUMENT if
 * @mem lacks alloc or free or gives a misaligned block for the allocator
 * object (a misaligned first node gives VMRES_E_NOMEM, as above).
 *
 * Context: any thread.
 */
VMRES_API int vmres_id_allocator_create_ex(uint32_t first, uint32_t last,
					   const struct vmres_mem_ops *mem,
					   struct vmres_id_allocator **out);

/**
 * vmres_id_allocator_destroy() - free the allocator and everything it holds
 * @ids: the allocator, or NULL (nothing happens)
 *
 * Waits for nodes retired under RCU to be freed (an RCU barrier), then
 * gives the cached nodes back to the hook, so no memory of this allocator
 * is left once it returns.
 *
 * Context: a registered thread, outside any RCU read-side section; no other
 * call on @ids may run at the same time or after. Blocks.
 */
VMRES_API void vmres_id_allocator_destroy(struct vmres_id_allocator *ids);

/**
 * vmres_id_alloc() - take the smallest free ID
 * @ids:    the allocator
 * @id_out: receives the ID
 *
 * Lock-free and linearizable: the ID returned was the smallest free one at
 * the call's linearization point, whether it was freed before or never
 * handed out. Allocates no memory. Never wraps: a range ending at UINT32_MAX
 * is exhausted like any other.
 *
 * Return: 0; VMRES_E_INVALID_ARGUMENT for NULL @ids or @id_out;
 * VMRES_E_EXHAUSTED if no ID is free (*@id_out untouched).
 *
 * Context: any registered thread. A concurrent caller sees the ID either
 * free or held, never both; an ID freed concurrently may or may not be the
 * one returned.
 */
VMRES_API int vmres_id_alloc(struct vmres_id_allocator *ids, uint32_t *id_out);

/**
 * vmres_id_alloc_at() - take one given ID
 * @ids: the allocator
 * @id:  the ID wanted, freed before or never handed out
 *
 * For restoring a VM or fixed legacy IRQs. Taking an ID from the middle or
 * the top of a free interval makes one node (the part below it); taking
 * the interval's lowest ID makes none. Search cost O(log F) for F free
 * intervals.
 *
 * Return: 0; VMRES_E_INVALID_ARGUMENT for NULL @ids; VMRES_E_OUT_OF_RANGE if
 * @id is outside [first, last]; VMRES_E_IN_USE if @id is held;
 * VMRES_E_NOMEM (nothing changed).
 *
 * Context: any registered thread. Of several concurrent alloc_at (or alloc)
 * calls that could return @id, exactly one gets it; the others get IN_USE
 * (or another ID).
 */
VMRES_API int vmres_id_alloc_at(struct vmres_id_allocator *ids, uint32_t id);

/**
 * vmres_id_free() - give an ID back
 * @ids: the allocator
 * @id:  an ID held by the caller
 *
 * Makes one node unless @id + 1 starts a freed interval (then it extends
 * it) or @id is below every free ID (then the allocator's head holds it; an
 * ID it held before moves into a node, or into a freed interval starting
 * right after that ID). Search cost O(log F) for F free intervals. The library cannot tell
 * which caller holds @id: freeing an ID another thread holds is a caller
 * bug it does not detect.
 *
 * Return: 0; VMRES_E_INVALID_ARGUMENT for NULL @ids; VMRES_E_OUT_OF_RANGE if
 * @id is outside [first, last]; VMRES_E_NEVER_ALLOCATED if @id was never
 * handed out since creation (by alloc or alloc_at); VMRES_E_ALREADY_FREED if
 * it was handed out and is free again; VMRES_E_NOMEM (nothing changed).
 *
 * Context: any registered thread. Once it returns 0, @id may be handed out
 * again by a concurrent alloc or alloc_at.
 */
VMRES_API int vmres_id_free(struct vmres_id_allocator *ids, uint32_t id);

/**
 * vmres_id_is_allocated() - whether an ID is held right now
 * @ids: the allocator
 * @id:  any value
 *
 * A lookup: takes no memory from the hook and changes no ID's state; it may
 * finish a deletion another call started (helping), which retires a node
 * with call_rcu(). O(log F).
 *
 * Return: true exactly when @id is held at the call's linearization point;
 * false for NULL @ids and for IDs outside the range.
 *
 * Context: any registered thread. The answer about an ID other threads may
 * take or free can be stale by the time it returns.
 */
VMRES_API bool vmres_id_is_allocated(struct vmres_id_allocator *ids, uint32_t id);

#ifdef __cplusplus
}
#endif

#endif /* VMRES_ID_H */
