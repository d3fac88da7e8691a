/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * RCU address allocator: port I/O space, 32- and 64-bit MMIO windows. An
 * augmented balanced interval tree, updated copy-on-write and published with
 * one atomic pointer swap; readers never wait. See docs/design.md, "The address allocator".
 *
 * Calls that may run at the same time (any registered threads):
 *   lookup, foreach, stats   - wait-free readers, with anything but destroy
 *   alloc, free              - lock-free writers, with each other and readers
 *   destroy                  - with nothing on the same allocator
 */
#ifndef VMRES_ADDR_H
#define VMRES_ADDR_H

#include <stdint.h>

#include <vmres/error.h>
#include <vmres/export.h>
#include <vmres/mem.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vmres_addr_allocator; /* opaque */

/**
 * enum vmres_policy - where an allocation is placed
 * @VMRES_FIRST_MATCH: the lowest aligned start that fits
 * @VMRES_LAST_MATCH:  the highest aligned start that fits
 * @VMRES_EXACT_MATCH: exactly at the request's addr
 */
enum vmres_policy { VMRES_FIRST_MATCH, VMRES_LAST_MATCH, VMRES_EXACT_MATCH };

/**
 * struct vmres_addr_request - one allocation request
 * @size:   bytes, > 0
 * @align:  power of two; 1 means none
 * @policy: placement
 * @addr:   VMRES_EXACT_MATCH: the start wanted
 * @tag:    the caller's owner tag, given back by lookups
 */
struct vmres_addr_request {
	uint64_t size;
	uint64_t align;
	enum vmres_policy policy;
	uint64_t addr;
	uint64_t tag;
};

/**
 * struct vmres_addr_stats - one snapshot's totals
 * @ranges:          allocated ranges
 * @allocated_bytes: bytes in them (saturates at UINT64_MAX)
 * @largest_free:    the largest free block (saturates at UINT64_MAX)
 */
struct vmres_addr_stats {
	uint64_t ranges;
	uint64_t allocated_bytes;
	uint64_t largest_free;
};

/**
 * vmres_addr_allocator_create() - create an address allocator over a span
 * @first: lowest address of the span
 * @last:  highest address of the span, inclusive ([0, UINT64_MAX] is valid)
 * @out:   receives the allocator
 *
 * Same as vmres_addr_allocator_create_ex() with the process-wide memory hook.
 *
 * Return: 0; VMRES_E_INVALID_ARGUMENT if @out is NULL; VMRES_E_INVALID_RANGE
 * if @first > @last; VMRES_E_NOMEM if the memory hook fails. On error *@out
 * is untouched.
 *
 * Context: any thread.
 */
VMRES_API int vmres_addr_allocator_create(uint64_t first, uint64_t last,
					  struct vmres_addr_allocator **out);

/**
 * vmres_addr_allocator_create_ex() - create an address allocator with a memory hook
 * @first: lowest address of the span
 * @last:  highest address of the span, inclusive
 * @mem:   memory hook to copy and use for everything this allocator needs,
 *         or NULL for the process-wide default (vmres_mem_set_default())
 * @out:   receives the allocator
 *
 * The allocator starts empty: the whole span is free. Each allocated range
 * costs one tree node (72 bytes on x86-64, see docs/design.md, "The address allocator"); each
 * update also needs a small version record. After a grace period, the
 * version an update replaced and the nodes it dropped are kept for reuse by
 * later updates, up to about 600 KB per allocator, or freed through @mem
 * (from liburcu's call_rcu thread, or from a writer reusing kept memory, so
 * @mem->free must be callable from any thread). Everything goes back to
 * @mem at destroy.
 *
 * Return: 0; VMRES_E_INVALID_ARGUMENT if @out is NULL or @mem lacks alloc or
 * free; VMRES_E_INVALID_RANGE if @first > @last; VMRES_E_NOMEM if @mem's
 * alloc returns NULL. On error *@out is untouched.
 *
 * Context: any thread.
 */
VMRES_API int vmres_addr_allocator_create_ex(uint64_t first, uint64_t last,
					     const struct vmres_mem_ops *mem,
					     struct vmres_addr_allocator **out);

/**
 * vmres_addr_allocator_destroy() - free an allocator and all its memory
 * @a: the allocator, or NULL (no-op)
 *
 * Waits for every node retired by earlier updates to be reclaimed (an RCU
 * barrier), then frees the nodes kept for reuse, the tree and the allocator.
 * Ranges still allocated simply disappear.
 *
 * Context: a registered thread outside any RCU read-side critical section
 * (not from a foreach callback); blocks for a grace period. No other call
 * on @a may run at the same time or afterwards.
 */
VMRES_API void vmres_addr_allocator_destroy(struct vmres_addr_allocator *a);

/**
 * vmres_addr_alloc() - allocate an address range
 * @a:   the allocator
 * @req: size, alignment, placement policy, wanted address (EXACT) and tag
 * @out: receives the allocated range [start, start + size - 1]
 *
 * VMRES_FIRST_MATCH gives the lowest aligned start whose whole range is
 * free, VMRES_LAST_MATCH the highest, VMRES_EXACT_MATCH exactly @req->addr.
 * The answers are exact: if an aligned fit exists anywhere in the span it is
 * found, whatever the alignment. Cost: O(log n) for align 1 or when the gap
 * found first is at least size + align - 1 long; in general O((k+1) log n),
 * k the number of earlier gaps long enough for the size but without an
 * aligned fit.
 *
 * Return: 0, or the first of these that applies:
 * VMRES_E_INVALID_ARGUMENT if @a, @req or @out is NULL;
 * VMRES_E_INVALID_SIZE if @req->size is 0;
 * VMRES_E_INVALID_ALIGNMENT if @req->align is 0 or not a power of two;
 * VMRES_E_INVALID_ARGUMENT if @req->policy is not a known policy;
 * VMRES_E_UNALIGNED_ADDRESS (EXACT) if @req->addr is not a multiple of align;
 * VMRES_E_OUT_OF_RANGE (EXACT) if [addr, addr + size - 1] is not inside the
 * span, including when it would wrap past UINT64_MAX;
 * VMRES_E_IN_USE (EXACT) if the range overlaps an allocated one;
 * VMRES_E_EXHAUSTED (FIRST, LAST) if no aligned fit exists;
 * VMRES_E_NOMEM if the memory hook failed: nothing changed.
 * On error *@out is untouched and the allocator is as it was.
 *
 * Context: any registered thread, concurrently with any call but destroy.
 * Lock-free: a racing writer makes this one rebuild its path and retry.
 * Linearizable: readers see the range appear at one instant (the publish);
 * the IN_USE and EXHAUSTED answers are true of one instant's state.
 */
VMRES_API int vmres_addr_alloc(struct vmres_addr_allocator *a, const struct vmres_addr_request *req,
			       struct vmres_range *out);

/**
 * vmres_addr_free() - free an allocated range
 * @a: the allocator
 * @r: exactly a range vmres_addr_alloc() returned and not yet freed
 *
 * The freed space merges with the free space around it (free space is not
 * stored: it is whatever lies between allocated ranges).
 *
 * Return: 0; VMRES_E_INVALID_ARGUMENT if @a is NULL; VMRES_E_INVALID_RANGE if
 * @r.start > @r.end; VMRES_E_NOT_FOUND if @r is not exactly one allocated
 * range (a double free, part of a range, a range spanning two, free space);
 * VMRES_E_NOMEM if the memory hook failed. On error nothing changes.
 *
 * Context: any registered thread, concurrently with any call but destroy.
 * Lock-free and linearizable as vmres_addr_alloc(); of two threads freeing
 * the same range, one gets 0 and the other VMRES_E_NOT_FOUND.
 */
VMRES_API int vmres_addr_free(struct vmres_addr_allocator *a, struct vmres_range r);

/**
 * vmres_addr_lookup() - find the allocated range holding an address
 * @a:       the allocator
 * @addr:    the address
 * @out:     receives the range (may be NULL)
 * @tag_out: receives its tag (may be NULL)
 *
 * Return: 0; VMRES_E_INVALID_ARGUMENT if @a is NULL; VMRES_E_OUT_OF_RANGE if
 * @addr is outside the span; VMRES_E_NOT_FOUND if @addr is free.
 *
 * Context: any registered thread, concurrently with any call but destroy.
 * Wait-free (an RCU read-side section, O(log n) loads, no store to shared
 * memory, no allocation): the answer is the allocator's state at one
 * instant, never a half-applied update. By the time the call returns the
 * range may be freed and allocated again with another tag: whatever the
 * tag names must be kept alive by the caller (vmres_system_lookup()).
 */
VMRES_API int vmres_addr_lookup(struct vmres_addr_allocator *a, uint64_t addr,
				struct vmres_range *out, uint64_t *tag_out);

/**
 * vmres_addr_foreach() - visit every allocated range in address order
 * @a:   the allocator
 * @fn:  called with @ctx, each range and its tag; nonzero stops the walk
 * @ctx: passed to @fn
 *
 * Walks one snapshot: the ranges allocated at one instant, even while other
 * threads allocate and free. @fn runs inside an RCU read-side critical
 * section: it may call any vmres_addr_* function but destroy (its own
 * updates are not in the snapshot being walked), must not call
 * vmres_rcu_barrier() or block for a grace period, and should be short (a
 * long walk delays reclamation, not writers).
 *
 * Return: 0 after the whole walk, the first nonzero value @fn returned, or
 * VMRES_E_INVALID_ARGUMENT if @a or @fn is NULL.
 *
 * Context: any registered thread, concurrently with any call but destroy.
 * Wait-free apart from @fn itself; no allocation.
 */
VMRES_API int vmres_addr_foreach(struct vmres_addr_allocator *a,
				 int (*fn)(void *ctx, struct vmres_range r, uint64_t tag),
				 void *ctx);

/**
 * vmres_addr_stats() - totals of one snapshot
 * @a:   the allocator
 * @out: receives the number of ranges, their bytes and the largest free
 *       block; a value that would be 2^64 reads UINT64_MAX
 *
 * Return: 0, or VMRES_E_INVALID_ARGUMENT if @a or @out is NULL.
 *
 * Context: any registered thread, concurrently with any call but destroy.
 * Wait-free, O(1): the three values belong to the same instant.
 */
#if defined(__cplusplus) && defined(__GNUC__) && !defined(__clang__)
/* The pinned name is both a struct and a function; g++ -Wshadow objects in C++. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#endif
VMRES_API int vmres_addr_stats(struct vmres_addr_allocator *a, struct vmres_addr_stats *out);
#if defined(__cplusplus) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* VMRES_ADDR_H */
