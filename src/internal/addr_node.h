/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The address allocator's data layout, shared by src/addr.c (API, publish,
 * reclamation), src/addr_tree.c (copy-on-write AVL updates), src/addr_fit.c
 * (read-only searches) and src/addr_check.c (invariant checker). The
 * algorithm and its invariants are described at the top of src/addr.c.
 */
#ifndef VMRES_INTERNAL_ADDR_NODE_H
#define VMRES_INTERNAL_ADDR_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vmres/addr.h>

#include "rcu.h"
#include "rcu_stack.h"

/*
 * The deepest tree the fixed-size writer and foreach stacks allow. An AVL
 * tree of height h holds at least F(h+2)-1 nodes (Fibonacci); height 64 needs
 * ~2.7e13 nodes, i.e. ~2 PB of 72-byte nodes: unreachable. An insert into a
 * tree of height VMRES__ADDR_MAX_HEIGHT - 1 still fails with VMRES_E_NOMEM
 * rather than overflow a stack (keeps invariant 3).
 */
#define VMRES__ADDR_MAX_HEIGHT 64

/*
 * Nodes one writer may copy (fresh) or replace (retired) in one update: the
 * search path (at most one node per level) plus, per level, the sibling and
 * its inner child a rotation copies. See "retire bound" in src/addr.c.
 */
#define VMRES__ADDR_RETIRE_BOUND(height) (3u * (unsigned)(height) + 3u)
#define VMRES__ADDR_BUILD_MAX VMRES__ADDR_RETIRE_BOUND(VMRES__ADDR_MAX_HEIGHT)

/*
 * struct addr_node - one allocated range, a node of a persistent AVL tree
 *
 * Immutable once published (invariant 5): readers follow left/right with
 * plain loads, ordered after the acquire of the version pointer.
 * @start, @end:  the allocated range, inclusive; the BST key is @start
 * @tag:          the caller's owner tag
 * @left, @right: children (NULL for none)
 * @min_start:    lowest start in this subtree
 * @max_end:      highest end in this subtree
 * @gap_max:      size of the largest free gap strictly between two ranges of
 *                this subtree (0 if none); such a gap is <= 2^64 - 2
 *                (ranges [0, 0] and [2^64 - 1, 2^64 - 1])
 * @height:       1 for a leaf
 * @fresh:        built by the running writer and not yet published: the
 *                writer may still change it in place (cleared before publish)
 */
struct addr_node {
	uint64_t start;
	uint64_t end;
	uint64_t tag;
	struct addr_node *left;
	struct addr_node *right;
	uint64_t min_start;
	uint64_t max_end;
	uint64_t gap_max;
	uint8_t height;
	uint8_t fresh;
};

/*
 * struct addr_version - one published state of the allocator
 *
 * The allocator's RCU-protected pointer names the current version; replacing
 * it is the linearization point of every writer. Readers use only @root,
 * @ranges and @bytes. The other fields belong to the writer that replaces
 * this version (exactly one: the CAS winner) and to the RCU callback.
 * @root:         the tree
 * @ranges:       number of nodes in @root
 * @bytes:        sum of the range sizes modulo 2^64 (0 with @ranges > 0
 *                means exactly 2^64: the whole 64-bit space is allocated)
 * @rcu:          queued by the writer that replaced this version
 * @owner:        the allocator, whose pool the callback may fill
 * @retire_cap:   room in @retired: VMRES__ADDR_RETIRE_BOUND(root height)
 * @retire_count: nodes of @root the replacing writer made unreachable
 * @discard:      set on a spare given back too small to become a version:
 *                the callback frees it instead of pooling it
 * @pool_next:    atomic: the next version in the owner's pool, once pooled
 * @retired:      those nodes, freed or pooled with this version after a
 *                grace period
 *
 * A version that went through a grace period after it was replaced is a
 * "spare": a block of memory holding @retire_count free nodes, which the
 * pool (src/addr.c, "Pool") hands to later writers.
 */
struct addr_version {
	struct addr_node *root;
	uint64_t ranges;
	uint64_t bytes;
	struct rcu_head rcu;
	struct vmres_addr_allocator *owner;
	uint32_t retire_cap;
	uint32_t retire_count;
	bool discard;
	uintptr_t pool_next;
	struct addr_node *retired[];
};

/* Bytes that keep two hot words off one cache line. */
#define VMRES__ADDR_CACHE_LINE 64
/*
 * What the pool keeps at most, in nodes: each spare counts its nodes plus its
 * own block rounded up to whole nodes. Beyond it, retired versions go back to
 * the memory hook. About 600 KB at most.
 */
#define VMRES__ADDR_POOL_CAP 8192

struct vmres_addr_allocator {
	struct addr_version *version; /* RCU-protected: vmres__rcu_dereference/cmpxchg */
	uint64_t first;
	uint64_t last;
	struct vmres_mem_ops mem;
	bool pool_off; /* set before sharing: retired versions go to the hook */
	/* Keeps the pool's writes off the line every reader loads above. */
	char pool_gap[VMRES__ADDR_CACHE_LINE];
	struct vmres__rcu_stack pool; /* spares, cap VMRES__ADDR_POOL_CAP units */
};

/*
 * struct addr_build - what one writer attempt has built and replaced
 * @mem:        where fresh nodes come from when @spare has none
 * @spare:      a spare from the pool (private to this writer) or NULL; fresh
 *              nodes come from it first
 * @from_spare: how many of @fresh (the first ones) came from @spare
 * @leftover:   the nodes @spare still held when it became the new version:
 *              freed after a successful CAS, put back after a failed one
 * @fresh:      every node allocated by this attempt (freed if it fails/loses)
 * @replaced:   every published node this attempt makes unreachable
 * @replace_cap: at most this many may be replaced (the old version's room)
 * @nomem:      an allocation failed (or a bound was hit): abandon the attempt
 */
struct addr_build {
	const struct vmres_mem_ops *mem;
	struct addr_version *spare;
	unsigned from_spare;
	unsigned n_leftover;
	unsigned n_fresh;
	unsigned n_replaced;
	unsigned replace_cap;
	bool nomem;
	struct addr_node *fresh[VMRES__ADDR_BUILD_MAX];
	struct addr_node *replaced[VMRES__ADDR_BUILD_MAX];
	struct addr_node *leftover[VMRES__ADDR_BUILD_MAX];
};

static inline unsigned vmres__addr_node_height(const struct addr_node *n)
{
	return n ? n->height : 0;
}

static inline uint64_t vmres__u64_max(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* Recompute @n's height and augmented fields from its children (invariants 3, 4). */
void vmres__addr_node_update(struct addr_node *n);

/* --- copy-on-write updates (src/addr_tree.c); results valid unless b->nomem */
struct addr_node *vmres__addr_tree_insert(struct addr_build *b, struct addr_node *root,
					  struct addr_node *fresh_leaf);
struct addr_node *vmres__addr_tree_remove(struct addr_build *b, struct addr_node *root,
					  uint64_t start);
struct addr_node *vmres__addr_node_new(struct addr_build *b);

/* --- read-only searches (src/addr_fit.c); no allocation, no stores */
const struct addr_node *vmres__addr_find_le(const struct addr_node *root, uint64_t key);
bool vmres__addr_fit(const struct addr_node *root, uint64_t first, uint64_t last, uint64_t size,
		     uint64_t align, enum vmres_policy policy, uint64_t *start_out);
uint64_t vmres__addr_largest_free(const struct addr_node *root, uint64_t first, uint64_t last);

#endif /* VMRES_INTERNAL_ADDR_NODE_H */
