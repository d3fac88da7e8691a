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
 * The rollback reserve: two classes of blocks (system_reserve.c). Small
 * blocks fit tree and list nodes, large ones the address allocator's version
 * records (which grow with the tree's height). A class's blocks are cut from
 * chunks: its base chunk, whose arena is taken from the embedder's hook at
 * create, and the chunks refills open later (and shrinks close). Each chunk
 * is a lock-free stack (Treiber) of its block indices; the head packs a
 * version in its high 32 bits against ABA, the index + 1 (0 = empty, all
 * ones = closed) in the low 32.
 */
#define VMRES__RESERVE_SMALL_BLOCK 128u
#define VMRES__RESERVE_SMALL_COUNT 256u
#define VMRES__RESERVE_LARGE_BLOCK 2048u
#define VMRES__RESERVE_LARGE_COUNT 16u
#define VMRES__RESERVE_CLASSES 2

_Static_assert(VMRES__RESERVE_SMALL_BLOCK *VMRES__RESERVE_SMALL_COUNT +
			       VMRES__RESERVE_LARGE_BLOCK * VMRES__RESERVE_LARGE_COUNT ==
		       VMRES_SYSTEM_RESERVE_BYTES,
	       "the reserve's classes add up to what system.h promises");

struct vmres__reserve_chunk {
	struct vmres__reserve_chunk *older;	  /* atomic: the next chunk of the class's list */
	struct vmres__reserve_chunk *closed_next; /* the next on the class's closed stack */
	unsigned char *arena; /* atomic: count blocks, 16-aligned; NULL closed */
	uint64_t *next;	      /* next[i]: the link below block i while it is stacked */
	uint32_t count;
	uint64_t head; /* version << 32 | (top index + 1), or | CLOSED */
};

struct vmres__reserve_class {
	size_t block;
	uint32_t target; /* blocks at create: refills keep it, shrinks come back to it */
	struct vmres__reserve_chunk *chunks; /* atomic: open chunks, newest first, base last */
	struct vmres__reserve_chunk *closed; /* closed headers for reuse (busy holder only) */
	uint64_t stacked;		     /* atomic: free blocks, open chunks */
	uintptr_t busy;			     /* atomic: 1 while a refill or shrink runs */
	uintptr_t again;		     /* atomic: 1 when a shrink was asked for while busy */
	struct vmres__reserve_chunk base;
};

struct vmres__reserve {
	struct vmres__reserve_class cls[VMRES__RESERVE_CLASSES]; /* by block size */
	uint64_t next_small[VMRES__RESERVE_SMALL_COUNT];
	uint64_t next_large[VMRES__RESERVE_LARGE_COUNT];
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

/*
 * Pause points for tests that force an interleaving whose window holds no
 * call of the memory hook (where a test's hook could stop a thread). Only
 * the copy of the library the tests link (VMRES_TEST_COUNTERS) has them; a
 * test installs vmres__reserve_test_point before it starts the threads it
 * stops, and clears it after joining them.
 */
enum vmres__reserve_point {
	VMRES__RESERVE_AT_POP,	 /* reserve_take(): on @chunk, before popping it */
	VMRES__RESERVE_REOPENED, /* class_refill(): reused header @chunk just opened */
};
#ifdef VMRES_TEST_COUNTERS
extern void (*vmres__reserve_test_point)(enum vmres__reserve_point point,
					 struct vmres__reserve_chunk *chunk);
/* Relaxed: installed before the test starts the threads it stops. */
#define VMRES__RESERVE_POINT(point, chunk)                                              \
	do {                                                                            \
		void (*fn_)(enum vmres__reserve_point, struct vmres__reserve_chunk *) = \
			__atomic_load_n(&vmres__reserve_test_point, __ATOMIC_RELAXED);  \
		if (fn_)                                                                \
			fn_((point), (chunk));                                          \
	} while (0)
#else
#define VMRES__RESERVE_POINT(point, chunk) ((void)0)
#endif

/* Checkers for tests (quiescent callers only): blocks now stacked in class
 * @cls, and all of its blocks (stacked or lent), over all its chunks. */
unsigned vmres__reserve_free_blocks(struct vmres_system *sys, unsigned cls);
unsigned vmres__reserve_blocks(struct vmres_system *sys, unsigned cls);

#endif /* VMRES_INTERNAL_SYSTEM_H */
