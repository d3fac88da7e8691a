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
 * the smaller is empty. A block comes back to its chunk when the allocator
 * frees it, which may be much later and from liburcu's call_rcu thread;
 * kind_mem_free() knows a reserve block by its address (inside an open
 * chunk's arena). Each class starts with one chunk, its base, whose arena is
 * taken from the hook at create and stays open; everything is given back
 * at destroy, after the per-kind allocators (and their RCU callbacks) are
 * gone.
 *
 * Refills and shrinks. A block a rollback took becomes a node of a tree or
 * list, and it comes back only when an update replaces that node: in a tree
 * that hardly changes (boot devices' BARs) that may be never. Without
 * refills, a few hundred short outages of the hook drained the reserve for
 * good, and every rollback after them leaked. So when the hook works again
 * (an allocation outside a rollback succeeds) and a class has a quantum
 * (a quarter of its target, the blocks it had at create) or more fewer
 * free blocks than its target, the thread that sets the class's busy flag
 * opens one more chunk of a quantum of blocks: it reuses a closed chunk's
 * header or makes a new one, and takes its arena from the hook. The others
 * go on without waiting. Lent blocks come back to their own chunks, so a
 * class may later have a quantum or more free blocks above its target (many
 * retired nodes may wait for a grace period during an outage, then come
 * back together): then, after a push, the thread that sets busy closes
 * chunks that are wholly free, other than the base, while the class stays
 * at or above its target, and gives their arenas back to the hook. A push
 * that finds busy held sets the class's again flag, and the holder makes
 * one more pass when it leaves; a refill checks the count again when it
 * leaves. So the last block to come back always leads to a pass
 * (class_shrink(), class_refill()). A chunk stays open while any of
 * its blocks is lent, so a class holds at most its target plus a quantum
 * per lent block (plus one quantum), and less than a quantum above its
 * target once every block is back. A closed chunk leaves the list for the
 * class's closed stack, where its header (48 bytes and 8 per block) waits
 * for reuse until destroy: the list holds only open chunks (and the base),
 * so the walks of kind_mem_free(), which every free through the hook makes,
 * and of reserve_take() cost what is open now, not the most ever opened
 * (bench_system's system_hook_pair: after 300 refills and everything back,
 * a hook alloc and free took 720-790 ns when closed headers stayed listed,
 * 28-39 ns now, as on a fresh system).
 *
 * Each chunk's free blocks are a Treiber stack of indices into its arena
 * (R. K. Treiber, "Systems programming: coping with parallelism", IBM RJ
 * 5118, 1986). The links live in next[], outside the blocks, so a popper
 * that lost a race never reads memory an allocator is using, and a chunk's
 * arena can go while its header stays.
 *
 * Invariants (per class):
 *   1. Per open chunk: head = version << 32 | (top + 1), top the index of
 *      the block on top, 0 when empty; next[i] is the link (index + 1, or
 *      0) below block i while i is on the stack. A closed chunk's head has
 *      CLOSED in its low 32 bits and its arena is NULL.
 *   2. Every push, pop, close and open bumps the chunk's version, so a CAS
 *      that read head before another thread changed it and changed it back
 *      fails (ABA); the version wraps after 2^32 operations in the window
 *      between one thread's load and its CAS, which a rollback never stays
 *      in.
 *   3. A block is either on its chunk's stack or owned by exactly one
 *      allocator node; it is handed out only to a thread inside a rollback.
 *      A chunk is closed only by a CAS from a head whose stack holds all of
 *      its blocks, so no block of a closed chunk is owned, and none is
 *      pushed or popped until it opens again.
 *   4. Chunks outlive every block: vmres__reserve_fini() runs after the
 *      per-kind allocators are destroyed (the system's destroy waits for
 *      every RCU callback first), so no kind_mem_free() of a block can
 *      come later.
 *   5. Only the thread holding busy opens or closes a chunk, or changes the
 *      list or the closed stack. A chunk joins the list at its head before
 *      it opens (a new one: as it opens, since no walker can reach it yet),
 *      and leaves it only once closed; so a chunk that has a block lent is
 *      listed from before that block's pop until after its push. Leaving
 *      rewrites its predecessor's older link and not its own, which stays
 *      until the header joins again; so a walker standing on a chunk that
 *      left still reaches every chunk that was listed and older, and one on
 *      a chunk that joined again restarts from the head: a walker that
 *      starts after a block's pop reaches the block's chunk. count never
 *      changes. An open's stores (arena, next[]) come before the release
 *      that opens head; a reader that sees the head open (acquire) sees
 *      that arena. Links are published by release stores and read with
 *      acquire loads, so a header reached through one is whole.
 *   6. stacked counts the free blocks of open chunks, exactly when no push,
 *      pop, open or close is under way (each updates it after its CAS or
 *      store); it is only a hint for when to refill or shrink.
 *
 * Linearization points: a push or a pop at its successful CAS on a chunk's
 * head; an open at the release store of the head, a close at its CAS. Push
 * and pop are lock-free: a CAS fails only because another push, pop, close
 * or open succeeded. Refills and shrinks wait for nobody: a thread that finds
 * busy set leaves a shrink to the holder and a refill to a later call.
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

#ifdef VMRES_TEST_COUNTERS
void (*vmres__reserve_test_point)(enum vmres__reserve_point point,
				  struct vmres__reserve_chunk *chunk);
#endif

#define CLOSED 0xffffffffu /* the low 32 bits of a closed chunk's head */

static uint64_t head_pack(uint64_t old_head, uint64_t low)
{
	/* keeps invariant 2: every successful CAS or store installs a new version */
	return (((old_head >> 32) + 1) << 32) | low;
}

static void chunk_push(struct vmres__reserve_chunk *ch, uint32_t index)
{
	for (;;) {
		/* Acquire: not needed by the push itself (the CAS compares old);
		 * pairs with the CAS of the push or pop that wrote it. */
		uint64_t old = vmres__u64_load_acquire(&ch->head);

		/*
		 * The link is published by the CAS below (a full barrier), which
		 * pairs with the acquire load of head in chunk_pop(); keeps
		 * invariant 1. The chunk is open: index is owned (invariant 3).
		 */
		vmres__u64_store_relaxed(&ch->next[index], old & 0xffffffffu);
		if (vmres__u64_cas(&ch->head, old, head_pack(old, (uint64_t)index + 1)))
			return;
	}
}

static void *chunk_pop(struct vmres__reserve_chunk *ch, size_t block)
{
	for (;;) {
		/*
		 * Acquire: pairs with the CAS in chunk_push() that put top there,
		 * or the open that stacked it, so next[top] and the block's last
		 * owner's writes are visible.
		 */
		uint64_t old = vmres__u64_load_acquire(&ch->head);
		uint64_t top_plus_one = old & 0xffffffffu;

		if (!top_plus_one || top_plus_one == CLOSED)
			return NULL;
		/*
		 * May be stale if another thread pops top first (or closes and
		 * reopens the chunk); then head's version has moved and the CAS
		 * fails (invariant 2).
		 */
		uint64_t below = vmres__u64_load_relaxed(&ch->next[top_plus_one - 1]);

		if (vmres__u64_cas(&ch->head, old, head_pack(old, below))) {
			/* Relaxed: the open stored it before the head we acquired, and
			 * no close can come while we own a block (invariant 3). */
			unsigned char *arena = vmres__ptr_load_relaxed((void *const *)&ch->arena);

			return arena + (size_t)(top_plus_one - 1) * block;
		}
	}
}

/* @p's block index in @ch, or -1 if @p is not a block of open @ch (invariant 5). */
static int64_t chunk_index(struct vmres__reserve_chunk *ch, size_t block, const void *p)
{
	/*
	 * Acquire: pairs with the open's release, so arena is this opening's. A
	 * block of @ch is owned by our caller, so @ch stays open meanwhile; any
	 * other p was allocated by the hook after every close of @ch that gave
	 * an arena holding p back, so we see that close (or a later open). That
	 * needs a hook whose free of an address happens before its reuse, as
	 * with any allocator that does not hand out memory still in use.
	 */
	uint64_t head = vmres__u64_load_acquire(&ch->head);
	uintptr_t base, q = (uintptr_t)p;

	if ((head & 0xffffffffu) == CLOSED)
		return -1;
	base = (uintptr_t)vmres__ptr_load_relaxed((void *const *)&ch->arena);
	return q >= base && q - base < block * ch->count ? (int64_t)((q - base) / block) : -1;
}

static struct vmres__reserve_chunk *first_chunk(struct vmres__reserve_class *c)
{
	/* Acquire: pairs with the release that linked the chunk, so it is
	 * whole (invariant 5). */
	return vmres__ptr_load_acquire((void *const *)&c->chunks);
}

static struct vmres__reserve_chunk *older_chunk(struct vmres__reserve_chunk *ch)
{
	/* Acquire: pairs with the release that wrote the link (invariant 5). */
	return vmres__ptr_load_acquire((void *const *)&ch->older);
}

/* Links @ch at the head of the list. Busy held (invariant 5). */
static void list_push(struct vmres__reserve_class *c, struct vmres__reserve_chunk *ch)
{
	/* Relaxed load: only the busy holder writes the list. Release stores:
	 * pair with older_chunk() and first_chunk(). */
	vmres__ptr_store_release((void **)&ch->older,
				 vmres__ptr_load_relaxed((void *const *)&c->chunks));
	vmres__ptr_store_release((void **)&c->chunks, ch);
}

static void count_stacked(struct vmres__reserve_class *c, int64_t delta)
{
	/* A hint (invariant 6): the full barrier of faa orders nothing here. */
	vmres__u64_faa(&c->stacked, (uint64_t)delta);
}

static int64_t free_blocks_hint(struct vmres__reserve_class *c)
{
	/* Relaxed: a hint (invariant 6); a stale value only moves a refill or a
	 * shrink to a later call, or lets a pass close a chunk while blocks
	 * counted as free are lent (the class is at or above its target again
	 * once they are back). Signed: pops may count before their pushes. */
	return (int64_t)vmres__u64_load_relaxed(&c->stacked);
}

/* Blocks per refill chunk; also how far a class strays from its target. */
static uint32_t quantum(const struct vmres__reserve_class *c)
{
	return c->target / 4 ? c->target / 4 : 1;
}

/* Smallest class first; a larger block serves a small request too. */
static void *reserve_take(struct vmres__reserve *r, size_t size)
{
	for (unsigned i = 0; i < VMRES__RESERVE_CLASSES; i++) {
		struct vmres__reserve_class *c = &r->cls[i];

		if (size > c->block)
			continue;
		for (struct vmres__reserve_chunk *ch = first_chunk(c); ch; ch = older_chunk(ch)) {
			VMRES__RESERVE_POINT(VMRES__RESERVE_AT_POP, ch);
			void *p = chunk_pop(ch, c->block); /* keeps invariant 3 */

			if (p) {
				count_stacked(c, -1);
				return p;
			}
		}
	}
	return NULL;
}

/* Sets busy, or returns false if another thread holds it. */
static bool busy_enter(struct vmres__reserve_class *c)
{
	/* Full barrier (acquire): pairs with the last holder's swap in
	 * busy_leave(), so its opens, closes and list change are seen. */
	return vmres__uptr_cas(&c->busy, 0, 1);
}

static void busy_leave(struct vmres__reserve_class *c)
{
	/* Full barrier (release): pairs with the next holder's CAS; a full
	 * barrier so that class_shrink()'s swap of again comes after it. */
	(void)vmres__uptr_swap(&c->busy, 0);
}

/*
 * Opens the closed (or new, unpublished) chunk @ch with an arena from the
 * hook: every block stacked. Busy held (invariant 5). Returns 0, or
 * VMRES_E_NOMEM, or VMRES_E_INVALID_ARGUMENT for an arena that is not
 * 16-aligned (given back at once), as the ID allocator answers such a hook.
 */
static int chunk_open(struct vmres_system *sys, struct vmres__reserve_class *c,
		      struct vmres__reserve_chunk *ch)
{
	unsigned char *arena = vmres__mem_alloc(&sys->user_mem, c->block * ch->count);
	uint64_t head = vmres__u64_load_relaxed(&ch->head); /* closed: only we change it */
	uint64_t top = 0;

	if (!arena)
		return VMRES_E_NOMEM;
	if ((uintptr_t)arena % 16) { /* blocks must keep 16-byte alignment */
		vmres__mem_free(&sys->user_mem, arena, c->block * ch->count);
		return VMRES_E_INVALID_ARGUMENT;
	}
	/* Relaxed: published by the release below (invariant 5). A popper that
	 * read the head before the close may read next[] now; its CAS fails. */
	vmres__ptr_store_relaxed((void **)&ch->arena, arena);
	for (uint32_t i = 0; i < ch->count; i++) {
		vmres__u64_store_relaxed(&ch->next[i], top);
		top = (uint64_t)i + 1;
	}
	/* Release: opens the chunk; pairs with the acquire loads of head in
	 * chunk_pop() and chunk_index(). */
	vmres__u64_store_release(&ch->head, head_pack(head, top));
	count_stacked(c, ch->count);
	return VMRES_OK;
}

/*
 * Closes @ch if all of its blocks are on its stack, and gives its arena
 * back. Busy held (invariant 5). The walk reads the links of stacked blocks,
 * which nobody writes while they stay stacked, and the CAS succeeds only if
 * head did not move since the load, so the walk saw the whole stack.
 */
static bool chunk_close(struct vmres_system *sys, struct vmres__reserve_class *c,
			struct vmres__reserve_chunk *ch)
{
	/* Acquire: pairs with the CAS of the last push, and through the release
	 * sequence of read-modify-writes on head with the open's release, so
	 * every stacked block's link (the pushes' and the open's) is seen. */
	uint64_t old = vmres__u64_load_acquire(&ch->head);
	uint64_t at = old & 0xffffffffu;
	uint32_t n = 0;
	unsigned char *arena;

	if (at == CLOSED)
		return false;
	while (at && n <= ch->count) {
		n++;
		/* Relaxed: ordered by the acquire above (the pushes' CASes). */
		at = vmres__u64_load_relaxed(&ch->next[at - 1]);
	}
	/* Full barrier: fails if any push or pop came in between (keeps 3). */
	if (n != ch->count || !vmres__u64_cas(&ch->head, old, head_pack(old, CLOSED)))
		return false;
	count_stacked(c, -(int64_t)ch->count);
	arena = vmres__ptr_load_relaxed((void *const *)&ch->arena);
	/* Relaxed: a chunk_index() that loaded head before our CAS may still
	 * read arena, old or NULL; it only compares a pointer with it, and no
	 * pointer it is given lies in an arena we give back. Pops and closes
	 * read it only while the chunk is open (invariant 5). */
	vmres__ptr_store_relaxed((void **)&ch->arena, NULL);
	vmres__mem_free(&sys->user_mem, arena, c->block * ch->count);
	return true;
}

/* A new, closed, unpublished chunk header of @count blocks. */
static struct vmres__reserve_chunk *chunk_header_new(struct vmres_system *sys, uint32_t count)
{
	size_t bytes = sizeof(struct vmres__reserve_chunk) + (size_t)count * sizeof(uint64_t);
	struct vmres__reserve_chunk *ch = vmres__mem_alloc(&sys->user_mem, bytes);

	if (!ch)
		return NULL;
	*ch = (struct vmres__reserve_chunk){ .next = (uint64_t *)(void *)(ch + 1),
					     .count = count,
					     .head = CLOSED };
	return ch;
}

static size_t chunk_header_bytes(const struct vmres__reserve_chunk *ch)
{
	return sizeof(struct vmres__reserve_chunk) + (size_t)ch->count * sizeof(uint64_t);
}

static bool class_short(struct vmres__reserve_class *c)
{
	return (int64_t)c->target - free_blocks_hint(c) >= (int64_t)quantum(c);
}

static bool class_over(struct vmres__reserve_class *c)
{
	return free_blocks_hint(c) - (int64_t)c->target >= (int64_t)quantum(c);
}

static void class_shrink(struct vmres_system *sys, struct vmres__reserve_class *c);

/* A quantum or more blocks short of the target: open one more chunk. */
static void class_refill(struct vmres_system *sys, struct vmres__reserve_class *c)
{
	struct vmres__reserve_chunk *ch;

	if (!busy_enter(c))
		return;
	if (class_short(c)) {
		ch = c->closed; /* a closed header to reuse? */
		if (ch) {
			/* Listed before it opens: a walker that starts after a pop
			 * from it must find it (invariant 5). */
			c->closed = ch->closed_next;
			list_push(c, ch);
			if (chunk_open(sys, c, ch) == VMRES_OK) {
				VMRES__RESERVE_POINT(VMRES__RESERVE_REOPENED, ch);
			} else {
				/* Still closed and at the head: back to the stack (a
				 * later call tries again). Release: as list_push(). */
				vmres__ptr_store_release((void **)&c->chunks, older_chunk(ch));
				ch->closed_next = c->closed;
				c->closed = ch;
			}
		} else if ((ch = chunk_header_new(sys, quantum(c)))) {
			/* New: no walker can reach it before list_push(). */
			if (chunk_open(sys, c, ch) == VMRES_OK)
				list_push(c, ch);
			else
				vmres__mem_free(&sys->user_mem, ch, chunk_header_bytes(ch));
		}
	}
	busy_leave(c);
	/*
	 * Full barrier: a shrink asked for while we held busy (class_shrink()).
	 * Or blocks came back while we opened the chunk: their pushers read the
	 * count before our add and so asked for nothing, but we read it after
	 * both adds (each a full-barrier faa), so whichever add came last, its
	 * thread sees the class over its target and shrinks.
	 */
	if (vmres__uptr_swap(&c->again, 0) || class_over(c))
		class_shrink(sys, c);
}

/*
 * After a push: while the class is a quantum or more above its target,
 * close wholly free chunks. A thread that finds busy held sets again and
 * leaves the work to the holder, which looks again after it leaves: the
 * request's swap comes before its failed CAS, which comes before the
 * holder's busy_leave(), which comes before the holder's swap of again (all
 * full barriers), so no request is lost; a chunk that fills up during a
 * walk that passed it is closed by the pass its last push asks for.
 */
static void class_shrink(struct vmres_system *sys, struct vmres__reserve_class *c)
{
	do {
		if (!class_over(c))
			return;
		if (!busy_enter(c)) {
			/* Full barrier: before the CAS below (see above). */
			(void)vmres__uptr_swap(&c->again, 1);
			if (!busy_enter(c))
				return; /* the holder will see again */
		}
		/* Full barrier: this pass serves every request made so far. */
		(void)vmres__uptr_swap(&c->again, 0);
		/* The link that points to ch: only we write the list (invariant 5). */
		struct vmres__reserve_chunk **slot = &c->chunks;

		for (struct vmres__reserve_chunk *ch = first_chunk(c), *next; ch; ch = next) {
			next = older_chunk(ch);
			if (free_blocks_hint(c) - (int64_t)ch->count < (int64_t)c->target)
				break;
			/* The base stays open. A closed chunk leaves the list; its
			 * own link stays for walkers on it (release: as list_push()). */
			if (ch != &c->base && chunk_close(sys, c, ch)) {
				vmres__ptr_store_release((void **)slot, next);
				ch->closed_next = c->closed;
				c->closed = ch;
			} else {
				slot = &ch->older;
			}
		}
		busy_leave(c);
		/* Full barrier: pairs with a requester's swap (see above). */
	} while (vmres__uptr_swap(&c->again, 0));
}

static void *kind_mem_alloc(void *ctx, size_t size)
{
	struct vmres_system *sys = ctx;
	void *p = vmres__mem_alloc(&sys->user_mem, size);

	if (p && !rollback_depth) {
		/* The hook works: make up for blocks rollbacks lent out. */
		for (unsigned i = 0; i < VMRES__RESERVE_CLASSES; i++)
			if (class_short(&sys->reserve.cls[i]))
				class_refill(sys, &sys->reserve.cls[i]);
	}
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

		/* p's chunk is listed: it was added before p was popped. */
		for (struct vmres__reserve_chunk *ch = first_chunk(c); ch; ch = older_chunk(ch)) {
			int64_t index = chunk_index(ch, c->block, p);

			if (index >= 0) {
				chunk_push(ch, (uint32_t)index);
				count_stacked(c, 1);
				class_shrink(sys, c);
				return;
			}
		}
	}
	vmres__mem_free(&sys->user_mem, p, size);
}

static int class_init(struct vmres_system *sys, struct vmres__reserve_class *c, size_t block,
		      uint32_t count, uint64_t *next)
{
	*c = (struct vmres__reserve_class){ .block = block, .target = count };
	c->base = (struct vmres__reserve_chunk){ .next = next, .count = count, .head = CLOSED };
	c->chunks = &c->base;
	/* Not shared yet: create publishes sys to other threads. */
	return chunk_open(sys, c, &c->base);
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
		struct vmres__reserve_chunk *ch = c->chunks;

		while (ch) {
			struct vmres__reserve_chunk *older = ch->older;

			if (ch->arena) /* open (a base whose create failed has none) */
				vmres__mem_free(&sys->user_mem, ch->arena, c->block * ch->count);
			if (ch != &c->base)
				vmres__mem_free(&sys->user_mem, ch, chunk_header_bytes(ch));
			ch = older;
		}
		c->chunks = NULL;
		while ((ch = c->closed)) { /* closed: no arena */
			c->closed = ch->closed_next;
			vmres__mem_free(&sys->user_mem, ch, chunk_header_bytes(ch));
		}
	}
}

unsigned vmres__reserve_free_blocks(struct vmres_system *sys, unsigned cls)
{
	struct vmres__reserve_class *c = &sys->reserve.cls[cls];
	unsigned count = 0;

	/* Test checker: callers make sure nothing pushes or pops meanwhile. */
	for (struct vmres__reserve_chunk *ch = first_chunk(c); ch; ch = older_chunk(ch)) {
		/* Acquire: pairs with the last push's CAS (its next[] link is visible). */
		uint64_t at = vmres__u64_load_acquire(&ch->head) & 0xffffffffu;
		unsigned n = 0;

		if (at == CLOSED)
			continue;
		while (at && n <= ch->count) {
			n++;
			at = vmres__u64_load_relaxed(&ch->next[at - 1]);
		}
		count += n;
	}
	return count;
}

unsigned vmres__reserve_blocks(struct vmres_system *sys, unsigned cls)
{
	struct vmres__reserve_class *c = &sys->reserve.cls[cls];
	unsigned count = 0;

	/* Test checker, quiescent callers: the blocks of open chunks. */
	for (struct vmres__reserve_chunk *ch = first_chunk(c); ch; ch = older_chunk(ch))
		if ((vmres__u64_load_relaxed(&ch->head) & 0xffffffffu) != CLOSED)
			count += ch->count;
	return count;
}
