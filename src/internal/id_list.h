/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The ID allocator's list: node layout and link encoding, shared by
 * src/id.c (the algorithm, whose top comment gives the argument) and
 * src/id_check.c (the invariant checker tests call).
 *
 * A link is a struct vmres__pair changed only by double-width CAS:
 *   w0  pointer to the next node | ID_LINK_* flags (nodes are 16-aligned)
 *   w1  the interval OF THE NODE w0 POINTS TO: lo << 32 | hi (0 when w0 has
 *       no node)
 * So a node's free interval lives in its predecessor's link, and every change
 * to that interval is a CAS on the same word as any insertion in front of it.
 */
#ifndef VMRES_INTERNAL_ID_LIST_H
#define VMRES_INTERNAL_ID_LIST_H

#include <stddef.h>
#include <stdint.h>

#include <vmres/id.h>

#include "atomic.h"
#include "rcu.h"

/* The interval behind w0 is gone: its last ID was taken (logical deletion). */
#define ID_LINK_DEL ((uint64_t)1)
/* This link's owner is being unlinked: the link never changes again. */
#define ID_LINK_FROZEN ((uint64_t)2)
/* The interval behind w0 was never handed out (else: handed out, then freed). */
#define ID_LINK_NEVER ((uint64_t)4)
#define ID_LINK_FLAGS ((uint64_t)7)

struct id_node {
	struct vmres__pair link; /* first member: 16-byte aligned */
	struct rcu_head rcu;
	struct vmres_id_allocator *owner; /* its memory hook, for the RCU callback */
};

struct vmres_id_allocator {
	struct vmres__pair head; /* link to the first node; never frozen */
	/*
	 * The node created with the allocator for the never-handed-out
	 * interval [first, last]. Embedded so create makes one allocation;
	 * once unlinked it is simply never freed on its own.
	 */
	struct id_node tail;
	uint32_t first;
	uint32_t last;
	struct vmres_mem_ops mem;
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

#endif /* VMRES_INTERNAL_ID_LIST_H */
