/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The system allocator's insides, shared by src/system.c (create, destroy,
 * lookup, the per-kind callbacks), src/system_batch.c (all-or-nothing
 * batches and rollback) and src/system_reserve.c (the memory hook the
 * per-kind allocators use, with its rollback reserve).
 */
#ifndef VMRES_INTERNAL_SYSTEM_H
#define VMRES_INTERNAL_SYSTEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vmres/addr.h>
#include <vmres/id.h>
#include <vmres/system.h>

#define vmres__container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/*
 * The rollback reserve: VMRES__RESERVE_BLOCKS blocks of VMRES__RESERVE_BLOCK
 * bytes cut from one arena taken from the embedder's hook at create. A
 * lock-free stack (Treiber) of block indices; the head packs a version in
 * its high 32 bits against ABA, the index + 1 (0 = empty) in the low 32.
 */
#define VMRES__RESERVE_BLOCK 256u
#define VMRES__RESERVE_BLOCKS (VMRES_SYSTEM_RESERVE_BYTES / VMRES__RESERVE_BLOCK)

struct vmres__reserve {
	unsigned char *arena;		      /* VMRES_SYSTEM_RESERVE_BYTES, 16-byte aligned */
	uint64_t head;			      /* version << 32 | (top index + 1) */
	uint64_t next[VMRES__RESERVE_BLOCKS]; /* below each pushed block */
};

/*
 * One kind: the "ResourceAllocator" handed out by vmres_system_allocator().
 * @ops comes first only by habit; the callbacks find their kind with
 * vmres__container_of(self, struct vmres__system_kind, ops).
 */
struct vmres__system_kind {
	struct vmres_allocator ops;
	struct vmres_system *sys;
	enum vmres_kind kind;
	struct vmres_range span;
	struct vmres_addr_allocator *addr; /* address kinds, else NULL */
	struct vmres_id_allocator *ids;	   /* ID kinds, else NULL */
};

struct vmres_system {
	struct vmres_mem_ops user_mem; /* the embedder's hook (copied) */
	struct vmres_mem_ops kind_mem; /* what the per-kind allocators get */
	struct vmres_layout layout;
	struct vmres__system_kind kinds[VMRES_KIND_COUNT];
	struct vmres__reserve reserve;
	struct vmres_system_counters counters; /* atomic (vmres__u64_faa) */
};

/* src/system.c */
struct vmres__system_kind *vmres__system_kind_of(struct vmres_allocator *a);
bool vmres__system_owns_callback(const struct vmres_allocator *a);
int vmres__system_check_request(const struct vmres_system *sys, const struct vmres_request *req);
int vmres__system_check_resource(const struct vmres_system *sys, const struct vmres_resource *res);

/* src/system_reserve.c */
int vmres__reserve_init(struct vmres_system *sys);
void vmres__reserve_fini(struct vmres_system *sys);
void vmres__rollback_enter(void);
void vmres__rollback_leave(void);
void vmres__system_count(struct vmres_system *sys, size_t counter_offset);

#define VMRES__COUNT(sys, field) \
	vmres__system_count((sys), offsetof(struct vmres_system_counters, field))

/* Checkers for tests: blocks currently in the reserve's free stack. */
unsigned vmres__reserve_free_blocks(struct vmres_system *sys);

#endif /* VMRES_INTERNAL_SYSTEM_H */
