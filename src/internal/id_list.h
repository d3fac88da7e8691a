/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The ID allocator's list and index: node layout, link encoding and the
 * functions src/id.c (the list algorithm, whose top comment gives the
 * argument), src/id_index.c (skip-list index and node lifetime) and
 * src/id_check.c (the invariant checker tests call) share.
 *
 * A link is a struct vmres__pair changed only by double-width CAS:
 *   w0  pointer to the next node | ID_LINK_* flags (nodes are 16-aligned)
 *   w1  the interval OF THE NODE w0 POINTS TO: lo << 32 | hi (0 when w0 has
 *       no node)
 * So a node's free interval lives in its predecessor's link, and every change
 * to that interval is a CAS on the same word as any insertion in front of it.
 *
 * The head link alone is stored otherwise, so that it can also hold one
 * freed ID below every interval (the "inline" ID: a free in front of the list
 * and the alloc that takes it back need no node):
 *   w0  pointer to the first node | ID_LINK_* flags, ID_HEAD_INLINE among
 *       them when the inline ID is there
 *   w1  the first node's lo << 32 | the inline ID (0 when absent); the first
 *       node's hi is its key (invariant 3), read from the node. So the low
 *       half of w1 is 0 when ID_HEAD_INLINE is clear, and w1 is 0 when
 *       there is neither a node nor an inline ID.
 * id_head_decode() turns it into a link like any other plus the inline ID,
 * id_head_encode() back. src/id.c works on decoded links, except the front
 * CASes it names ("The front fast paths"), which rely on the stored form.
 */
#ifndef VMRES_INTERNAL_ID_LIST_H
#define VMRES_INTERNAL_ID_LIST_H

#include <stddef.h>
#include <stdint.h>

#include <vmres/id.h>

#include "atomic.h"
#include "rcu.h"
#include "rcu_stack.h"

/* The interval behind w0 is gone: its last ID was taken (logical deletion). */
#define ID_LINK_DEL ((uint64_t)1)
/* This link's owner is being unlinked: the link never changes again. */
#define ID_LINK_FROZEN ((uint64_t)2)
/* The interval behind w0 was never handed out (else: handed out, then freed). */
#define ID_LINK_NEVER ((uint64_t)4)
/* Head link only: it holds a freed ID below every interval (src/id.c). */
#define ID_HEAD_INLINE ((uint64_t)8)
#define ID_LINK_FLAGS ((uint64_t)15)

/*
 * Index levels above the list. A node gets level k with probability 4^-k,
 * so 12 levels keep searches logarithmic up to about 4^12 = 16M intervals.
 */
#define ID_INDEX_LEVELS 12
/* On a node's up[l]: the node is leaving index level l + 1 (Harris mark). */
#define ID_UP_MARK ((uintptr_t)1)
/*
 * Retired nodes each allocator keeps for reuse (src/id_index.c) instead of
 * giving them back to the memory hook: of height h, up to C >> 2h, where C is
 * the range's size capped at ID_POOL_CAP (a height whose cap is below
 * ID_POOL_BATCH does not pool). They go back at destroy.
 */
#define ID_POOL_CAP 32768
/* Retired nodes handed to one call_rcu() (src/id_index.c). */
#define ID_POOL_BATCH 32

/*
 * struct id_node - one free interval
 * @link:   the list link to the next node, carrying the next node's interval
 * @rcu:    for call_rcu() once the node is unreachable
 * @owner:  the allocator, whose memory hook frees the node
 * @key:    the interval's hi; it never changes (invariant 3), so it orders
 *          the index
 * @height: index levels the node is entered in, 0..ID_INDEX_LEVELS
 * @refs:   atomic: 1 while the node is in the list, +1 while its inserter
 *          builds its index tower; whoever drops the last one frees it
 * @batch_len: atomic: once retired, the nodes from this one down its batch
 *          (src/id_index.c); shares its place with @refs, dead by then
 * @pool_next: atomic: the next node of its batch or pool, once retired
 * @batch_tail: atomic: once retired, the last node of its batch
 * @up:     up[l]: the next node at index level l + 1 | ID_UP_MARK
 */
struct id_node {
	struct vmres__pair link; /* first member: 16-byte aligned */
	struct rcu_head rcu;
	struct vmres_id_allocator *owner;
	uint32_t key;
	uint32_t height;
	union {
		uint64_t refs;
		uint64_t batch_len;
	};
	uintptr_t pool_next;
	uintptr_t batch_tail;
	uintptr_t up[];
};

/* Bytes that keep two hot words off one cache line (blocks are 16-aligned). */
#define ID_CACHE_LINE 64

/*
 * struct id_pool - retired nodes of one height (src/id_index.c)
 * @pending: atomic: top of the stack of nodes retired since the last batch
 *           left for call_rcu(), 0 when empty
 * @stack:   the LIFO of reusable nodes, counted in nodes
 *           (src/internal/rcu_stack.h)
 */
struct id_pool {
	uintptr_t pending;
	struct vmres__rcu_stack stack;
	/* 64 bytes per class; the block is only 16-aligned, so a class may
	 * share a line with a neighbour class, never with the hot fields. */
	char pad[ID_CACHE_LINE - sizeof(uintptr_t) - sizeof(struct vmres__rcu_stack)];
};

struct vmres_id_allocator {
	struct vmres__pair head;	    /* link to the first node; never frozen */
	uintptr_t head_up[ID_INDEX_LEVELS]; /* index levels start here; never marked */
	uint64_t index_top;		    /* atomic: levels in use (only grows); a search hint */
	uint32_t first;
	uint32_t last;
	struct vmres_mem_ops mem;
	uint64_t pool_cap;    /* atomic: C of ID_POOL_CAP's comment, or 0: no pooling */
	uint64_t height_salt; /* set at create, then constant: src/id_index.c */
	/* Keeps the pools' writes off the lines every call reads above. */
	char pool_gap[ID_CACHE_LINE];
	/* Pools of retired nodes, one per height (src/id_index.c, invariant 11). */
	struct id_pool pool[ID_INDEX_LEVELS + 1];
};

_Static_assert(offsetof(struct id_node, link) == 0, "link must start the node");
_Static_assert(_Alignof(struct id_node) >= 16, "nodes must be 16-aligned for the flags");
_Static_assert(_Alignof(max_align_t) >= 16, "the memory hook must give 16-aligned blocks");

static inline struct id_node *id_link_node(uint64_t w0)
{
	return (struct id_node *)(uintptr_t)(w0 & ~ID_LINK_FLAGS);
}

static inline uint32_t id_bounds_lo(uint64_t w1)
{
	return (uint32_t)(w1 >> 32);
}

static inline uint32_t id_bounds_hi(uint64_t w1)
{
	return (uint32_t)w1;
}

static inline uint64_t id_bounds_make(uint32_t lo, uint32_t hi)
{
	return ((uint64_t)lo << 32) | hi;
}

/*
 * The head link @raw as a link like any other (w1 = [lo, hi] of the first
 * node, 0 when there is none), and in *@inl the inline ID (0 when w0 has no
 * ID_HEAD_INLINE). Reads the first node's key: call inside the RCU read-side
 * section in which @raw was loaded (or on a quiet allocator), so that the
 * node is not reused meanwhile.
 */
static inline struct vmres__pair id_head_decode(struct vmres__pair raw, uint32_t *inl)
{
	const struct id_node *x = id_link_node(raw.w0);

	*inl = (uint32_t)raw.w1;
	return (struct vmres__pair){ raw.w0, x ? id_bounds_make(id_bounds_lo(raw.w1), x->key) : 0 };
}

/* The head link's stored form of the decoded link @v and inline ID @inl. */
static inline struct vmres__pair id_head_encode(struct vmres__pair v, uint32_t inl)
{
	return (struct vmres__pair){ v.w0, ((uint64_t)id_bounds_lo(v.w1) << 32) |
						   ((v.w0 & ID_HEAD_INLINE) ? inl : 0) };
}

/* The stored head link @raw, which holds an inline ID, without it. */
static inline struct vmres__pair id_head_drop_inline(struct vmres__pair raw)
{
	return (struct vmres__pair){ raw.w0 & ~ID_HEAD_INLINE, raw.w1 & ~(uint64_t)UINT32_MAX };
}

/*
 * Whether a block from the memory hook can hold links: cmpxchg16b and the
 * 16-byte load fault on a block that is not 16-aligned, so a hook that
 * breaks its contract is refused rather than left to crash.
 */
static inline bool vmres__id_aligned(const void *p)
{
	return ((uintptr_t)p & 15) == 0;
}

/* src/id_index.c: node lifetime. */

/*
 * A new node for interval key @key, with index levels if @indexed (height from
 * a hash of @key and the allocator's salt):
 * from the pool of that height if it has one, else from the hook. NULL if the
 * hook fails or gives a block that is not 16-aligned. Call inside an RCU
 * read-side section (invariant 11), or before @ids is shared (its pools are
 * empty then).
 */
struct id_node *vmres__id_node_alloc(struct vmres_id_allocator *ids, uint32_t key, bool indexed);
/* Empties the pools and sets their caps; for create, after first and last. */
void vmres__id_pool_init(struct vmres_id_allocator *ids);
/* The most nodes of height @h the pool keeps (pending batches not counted);
 * below ID_POOL_BATCH, that height does not pool at all. */
uint64_t vmres__id_pool_cap(const struct vmres_id_allocator *ids, uint32_t h);
/* Frees a node at once: for destroy only (no other call runs). */
void vmres__id_node_free_now(struct vmres_id_allocator *ids, struct id_node *n);
/*
 * Gives back a node from vmres__id_node_alloc() that was never published:
 * retired like any other (pending stack, then a grace period), as it may have
 * come from a pool whose concurrent pops may still read it (invariant 11);
 * at once where its height does not pool.
 */
void vmres__id_node_discard(struct vmres_id_allocator *ids, struct id_node *n);
/* The winner of @n's unlink CAS gives up the list's reference (invariant 7). */
void vmres__id_node_unlinked(struct vmres_id_allocator *ids, struct id_node *n);

/*
 * Links and index nodes the calling thread's searches visited, counted only
 * in the copy of the library the tests link (built with VMRES_TEST_COUNTERS,
 * CMakeLists.txt): tests check that searches stay logarithmic. The shipped
 * library has none of this state and nothing here on its hot path.
 */
#ifdef VMRES_TEST_COUNTERS
extern _Thread_local uint64_t vmres__id_search_steps;
#define VMRES__ID_COUNT_STEP() ((void)vmres__id_search_steps++)
#else
#define VMRES__ID_COUNT_STEP() ((void)0)
#endif

/* src/id_index.c: the skip-list index over the list (hints only). */

/* After the CAS that put @n in the list: enter it in its index levels. */
void vmres__id_index_insert(struct vmres_id_allocator *ids, struct id_node *n);
/*
 * A link to start a list search for @id from: the link of a node whose key is
 * below @id and whose link was not frozen when looked at, or the head link.
 * *@seen receives the link's value as loaded (the head's decoded), *@inl the
 * head's inline ID if it returns the head link, else 0.
 */
struct vmres__pair *vmres__id_index_start(struct vmres_id_allocator *ids, uint32_t id,
					  struct vmres__pair *seen, uint32_t *inl);

#endif /* VMRES_INTERNAL_ID_LIST_H */
