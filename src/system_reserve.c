/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The memory hook a system gives its per-kind allocators, and the reserve a
 * rollback falls back on.
 *
 * Why: vmres_system_allocate_ex() promises "all or nothing", so when a
 * request fails it must give back what the batch already took. But a free
 * needs memory too (the address allocator copies a tree path, the ID
 * allocator may insert a free-list node). If the embedder's hook has just
 * failed (that is often why the batch failed), the frees would fail the same
 * way and the batch would stay half taken.
 *
 * How: the per-kind allocators do not get the embedder's hook directly but
 * kind_mem_alloc()/kind_mem_free() below (ctx = the system). Outside a
 * rollback they pass straight through. A thread that is rolling back
 * (rollback_depth > 0, thread-local, set by vmres__rollback_enter()) and
 * whose hook returns NULL gets a block from the system's reserve instead:
 * from the smallest class whose blocks fit the request (128-byte blocks for
 * tree and list nodes, 2 KiB blocks for the address allocator's version
 * records, which grow with the tree's height), or from the larger class when
 * the smaller is empty. A block comes back to its class when the allocator
 * frees it, which may be much later and from liburcu's call_rcu thread;
 * kind_mem_free() knows a reserve block by its address (inside an arena).
 * Each class is one arena taken from the hook at create and given back at
 * destroy, after the per-kind allocators (and their RCU callbacks) are gone.
 *
 * Each class's free blocks are a Treiber stack of indices into its arena
 * (R. K. Treiber, "Systems programming: coping with parallelism", IBM RJ
 * 5118, 1986). The links live in next[], outside the blocks, so a popper
 * that lost a race never reads memory an allocator is using.
 *
 * Invariants (per class):
 *   1. head = version << 32 | (top + 1), top the index of the block on top,
 *      0 when empty; next[i] is the link (index + 1, or 0) below block i
 *      while i is on the stack.
 *   2. Every push and every pop bumps the version, so a CAS that read head
 *      before another thread popped and pushed the same top fails (ABA);
 *      the version wraps after 2^32 stack operations in the window between
 *      one thread's load and its CAS, which a rollback never stays in.
 *   3. A block is either on the stack or owned by exactly one allocator
 *      node; it is handed out only to a thread inside a rollback.
 *   4. The arena outlives every block: vmres__reserve_fini() runs after the
 *      per-kind allocators are destroyed (their destroy waits for RCU
 *      callbacks), so no kind_mem_free() of a block can come later.
 *
 * Linearization points: a push or a pop at its successful CAS on head.
 * Both are lock-free: a CAS fails only because another push or pop
 * succeeded.
 */
#include <stdint.h>

#include <vmres/error.h>

#include "internal/addr_node.h"
#include "internal/atomic.h"
#include "internal/id_list.h"
#include "internal/mem.h"
#include "internal/system.h"

/*
 * Every block the per-kind allocators ask for fits a class (a larger one
 * could only fail), and blocks keep the arena's alignment, which the ID
 * allocator's nodes need (16 bytes, id_list.h).
 */
_Static_assert(sizeof(struct addr_node) <= VMRES__RESERVE_SMALL_BLOCK, "tree nodes fit");
_Static_assert(sizeof(struct addr_version) + VMRES__ADDR_BUILD_MAX * sizeof(struct addr_node *) <=
		       VMRES__RESERVE_LARGE_BLOCK,
	       "the largest version record fits");
_Static_assert(offsetof(struct id_node, up) + ID_INDEX_LEVELS * sizeof(uintptr_t) <=
		       VMRES__RESERVE_LARGE_BLOCK,
	       "the tallest ID node fits");
_Static_assert(VMRES__RESERVE_SMALL_BLOCK % _Alignof(struct id_node) == 0 &&
		       VMRES__RESERVE_LARGE_BLOCK % _Alignof(struct id_node) == 0,
	       "blocks keep the arena's 16-byte alignment");

/* > 0 while this thread gives back a failed batch's resources. */
static _Thread_local unsigned rollback_depth;

void vmres__rollback_enter(void)
{
	rollback_depth++;
}

void vmres__rollback_leave(void)
{
	rollback_depth--;
}

void vmres__system_count(struct vmres_system *sys, size_t counter_offset)
{
	uint64_t *counter = (uint64_t *)(void *)((char *)&sys->counters + counter_offset);

	/* A statistic: the full barrier of faa orders nothing anyone relies on. */
	vmres__u64_faa(counter, 1);
}

static uint64_t head_pack(uint64_t old_head, uint64_t top_plus_one)
{
	/* keeps invariant 2: every successful CAS installs a new version */
	return (((old_head >> 32) + 1) << 32) | top_plus_one;
}

static void reserve_push(struct vmres__reserve_class *c, uint32_t index)
{
	for (;;) {
		/* Acquire: pairs with the CAS of the push or pop that wrote it. */
		uint64_t old = vmres__u64_load_acquire(&c->head);

		/*
		 * The link is published by the CAS below (a full barrier), which
		 * pairs with the acquire load of head in reserve_pop(); keeps
		 * invariant 1.
		 */
		vmres__u64_store_relaxed(&c->next[index], old & 0xffffffffu);
		if (vmres__u64_cas(&c->head, old, head_pack(old, (uint64_t)index + 1)))
			return;
	}
}

static void *reserve_pop(struct vmres__reserve_class *c)
{
	for (;;) {
		/*
		 * Acquire: pairs with the CAS in reserve_push() that put top there,
		 * so next[top] and the block's last owner's writes are visible.
		 */
		uint64_t old = vmres__u64_load_acquire(&c->head);
		uint64_t top_plus_one = old & 0xffffffffu;

		if (!top_plus_one)
			return NULL;
		/*
		 * May be stale if another thread pops top first; then head's version
		 * has moved and the CAS fails (invariant 2).
		 */
		uint64_t below = vmres__u64_load_relaxed(&c->next[top_plus_one - 1]);

		if (vmres__u64_cas(&c->head, old, head_pack(old, below)))
			return c->arena + (size_t)(top_plus_one - 1) * c->block;
	}
}

static bool in_arena(const struct vmres__reserve_class *c, const void *p)
{
	uintptr_t base = (uintptr_t)c->arena;
	uintptr_t q = (uintptr_t)p;

	return c->arena && q >= base && q - base < c->block * c->count;
}

/* Smallest class first; a larger block serves a small request too. */
static void *reserve_take(struct vmres__reserve *r, size_t size)
{
	for (unsigned i = 0; i < VMRES__RESERVE_CLASSES; i++) {
		void *p;

		if (size > r->cls[i].block)
			continue;
		p = reserve_pop(&r->cls[i]); /* keeps invariant 3 */
		if (p)
			return p;
	}
	return NULL;
}

static void *kind_mem_alloc(void *ctx, size_t size)
{
	struct vmres_system *sys = ctx;
	void *p = vmres__mem_alloc(&sys->user_mem, size);

	if (p || !rollback_depth)
		return p;
	p = reserve_take(&sys->reserve, size);
	if (p)
		VMRES__COUNT(sys, reserve_fallbacks);
	return p;
}

static void kind_mem_free(void *ctx, void *p, size_t size)
{
	struct vmres_system *sys = ctx;

	for (unsigned i = 0; i < VMRES__RESERVE_CLASSES; i++) {
		struct vmres__reserve_class *c = &sys->reserve.cls[i];

		if (in_arena(c, p)) {
			size_t offset = (size_t)((unsigned char *)p - c->arena);

			reserve_push(c, (uint32_t)(offset / c->block));
			return;
		}
	}
	vmres__mem_free(&sys->user_mem, p, size);
}

static int class_init(struct vmres_system *sys, struct vmres__reserve_class *c, size_t block,
		      uint32_t count, uint64_t *next)
{
	*c = (struct vmres__reserve_class){ .block = block, .count = count, .next = next };
	c->arena = vmres__mem_alloc(&sys->user_mem, block * count);
	if (!c->arena)
		return VMRES_E_NOMEM;
	/* Not shared yet: plain stores; create publishes sys to other threads. */
	for (uint32_t i = 0; i < count; i++) {
		next[i] = c->head & 0xffffffffu;
		c->head = head_pack(c->head, (uint64_t)i + 1);
	}
	return VMRES_OK;
}

int vmres__reserve_init(struct vmres_system *sys)
{
	struct vmres__reserve *r = &sys->reserve;
	int err;

	err = class_init(sys, &r->cls[0], VMRES__RESERVE_SMALL_BLOCK, VMRES__RESERVE_SMALL_COUNT,
			 r->next_small);
	if (!err)
		err = class_init(sys, &r->cls[1], VMRES__RESERVE_LARGE_BLOCK,
				 VMRES__RESERVE_LARGE_COUNT, r->next_large);
	if (err) {
		vmres__reserve_fini(sys);
		return err;
	}
	sys->kind_mem = (struct vmres_mem_ops){ kind_mem_alloc, kind_mem_free, sys };
	return VMRES_OK;
}

void vmres__reserve_fini(struct vmres_system *sys)
{
	/* keeps invariant 4: the per-kind allocators are gone by now */
	for (unsigned i = 0; i < VMRES__RESERVE_CLASSES; i++) {
		struct vmres__reserve_class *c = &sys->reserve.cls[i];

		vmres__mem_free(&sys->user_mem, c->arena, c->block * c->count);
		c->arena = NULL;
	}
}

unsigned vmres__reserve_free_blocks(struct vmres_system *sys, unsigned cls)
{
	struct vmres__reserve_class *c = &sys->reserve.cls[cls];
	/* Acquire: pairs with the last push's CAS (its next[] link is visible). */
	uint64_t at = vmres__u64_load_acquire(&c->head) & 0xffffffffu;
	unsigned count = 0;

	/* Test checker: callers make sure nothing pushes or pops meanwhile. */
	while (at && count <= c->count) {
		count++;
		at = vmres__u64_load_relaxed(&c->next[at - 1]);
	}
	return count;
}
