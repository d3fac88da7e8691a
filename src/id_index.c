/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The ID allocator's skip-list index, and node lifetime.
 *
 * Algorithm. Above the list of src/id.c (the truth: "level 0") sit
 * ID_INDEX_LEVELS lock-free sorted lists of the same nodes, ordered by the
 * node's key (its interval's hi, which never changes), each node in levels
 * 1..height with height geometric (p = 1/4; index_height()). The index only gives a search
 * a place to START: the link of a node P whose key is below the wanted ID.
 * The list search then goes on from P's link exactly as from the head, so a
 * stale index can cost steps but never change an answer. Index levels are
 * Harris lists [1] with the mark on the leaving node's own up[l]; searches
 * snip marked nodes as they pass (helping), as in Fraser's skip list [2].
 *
 * Invariants (continuing those of src/id.c):
 *  8. Each index level is sorted by key (equal keys possible for a moment:
 *     a dying node and the new node of the same ID, not necessarily in the
 *     same order on every level, as their builders race; so a search goes
 *     down a level only from a node whose key is below the one it seeks).
 *  9. A node enters an index level only after it is in the list, and only
 *     by its builder, before the builder drops its reference; a marked up[l]
 *     never changes again. (The builder may still link n at level l just
 *     after the unlink winner marked up[l], between its CAS on n->up[l] and
 *     the one on the predecessor: harmless, as the final search of
 *     invariant 10 runs after the builder's drop and snips it.)
 * 10. A node is freed (call_rcu) only when both its list reference and its
 *     builder reference are gone, and after a final index search found it at
 *     no level: it is then unreachable from the head at every level.
 * 11. Retired nodes and pools (no ABA). Every node_retire() and every
 *     pool_pop() runs inside an RCU read-side section (the callers in
 *     src/id.c hold the read lock; vmres__id_node_discard() takes it; create
 *     pops from pools it has just emptied). A retired node goes on its
 *     height's pending stack; the thread whose push makes the stack's length
 *     a multiple of ID_POOL_BATCH swaps the whole stack out and hands it to
 *     one call_rcu(); the callback, a grace period later, puts the chain on
 *     the pool (or frees it). So a node enters a pool only after a grace
 *     period that began after it was retired, and it was retired only after
 *     it was popped (if it came from a pool). Hence a thread that loaded X
 *     as the top of a pool, or of a pending stack, inside its read section,
 *     cannot see X come back to that place before it leaves the section: X
 *     would have to be popped or swapped out (after the load), retired, and
 *     wait out a grace period that cannot end while the loader is still in
 *     its section. So the top and the fields read from it (pool_next,
 *     batch_tail, batch_len) belong to the incarnation the CAS compares
 *     against: the CAS succeeds only if nothing changed (no ABA), and a stale
 *     read fails it. Nodes on a pending stack or in a pool are never written
 *     except by their pusher before its CAS, by the callback on the chain's
 *     last node before its push CAS, and by the popper after its pop. Only
 *     vmres__id_pool_drain() frees pooled or pending nodes at once, with no
 *     other call running (destroy, quiescent tests). A pool's count is
 *     raised before a push and lowered after a pop, so it is never below the
 *     pool's size, which stays <= vmres__id_pool_cap().
 *
 * Why a start link from the index is sound: P's key is below the ID, and P's
 * interval is always within [.., key], so every interval up to P's is below
 * the ID (invariant 2). If P's link is frozen, P is dying and its link may be
 * a stale copy: the search then uses the predecessor found one level higher,
 * and in the end the head, so it never waits for the thread unlinking P.
 *
 * Lifetime. refs starts at 1 (the list) + 1 if the node has index levels
 * (its builder). The winner of the unlink CAS marks every up[l] and drops the
 * list reference; the builder drops its own when done or when it finds a
 * mark. Whoever drops the last one runs the final search, which snips the
 * node from every level, then retires it with call_rcu(). Every traversal is
 * inside an RCU read-side section, so nothing is freed under a reader.
 *
 * Pools. Without them every free makes a node with malloc() and every alloc
 * that empties an interval retires one to call_rcu(), whose thread frees it:
 * the allocating thread's malloc() then misses its thread cache every time
 * and both threads contend on the arena. Instead, retired nodes gather on a
 * per-allocator, per-height pending stack (a Treiber stack [3]: one CAS per
 * node, on a line of the retiring thread's own allocator); every
 * ID_POOL_BATCH of them go to call_rcu() as one chain, whose callback puts
 * the chain on the height's pool (a Treiber LIFO) with one CAS, touching only
 * the chain's two ends, so the nodes' lines stay with the thread that
 * retired them. vmres__id_node_alloc() pops the pool before asking the hook;
 * a chain that would take the pool past its cap goes back to the hook. Caps
 * follow the range (vmres__id_pool_init()); a height whose cap is below one
 * batch does not pool: its nodes go to call_rcu() and the hook one by one. A
 * reused node is set up exactly as a fresh one. Up to ID_POOL_BATCH - 1
 * nodes per height wait on a pending stack until more retires come (or
 * destroy). destroy drains pending stacks and pools through the hook after
 * its rcu_barrier(). A system's per-kind allocators turn pooling off
 * (vmres__id_pool_disable()): their hook lends rollback-reserve blocks that
 * must flow back soon, so each retired node goes to call_rcu() and the hook.
 *
 * [1] T. Harris, "A pragmatic implementation of non-blocking linked-lists",
 *     DISC 2001.
 * [2] K. Fraser, "Practical lock-freedom", PhD thesis, Cambridge, 2004.
 * [3] R. K. Treiber, "Systems programming: coping with parallelism",
 *     IBM Research Report RJ 5118, 1986.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "internal/atomic.h"
#include "internal/id.h"
#include "internal/id_list.h"
#include "internal/mem.h"
#include "internal/rcu.h"

#ifdef VMRES_TEST_COUNTERS
_Thread_local uint64_t vmres__id_search_steps;
#endif

static size_t node_size(uint32_t height)
{
	return offsetof(struct id_node, up) + (size_t)height * sizeof(uintptr_t);
}

/*
 * A node's index height: geometric, p = 1/4, drawn from a hash of its key and
 * the allocator's salt rather than from a random generator, so the library
 * keeps no per-thread state. Keys are distinct among the nodes in the list
 * (invariant 2), so their heights are as independent as the hash's output;
 * the salt (set at create) keeps one allocator's keys from sharing another's
 * heights. A key gets the same height each time it returns, which changes
 * nothing: the expected search stays O(log F) over any set of keys that is
 * not chosen against the hash.
 */
static uint32_t index_height(const struct vmres_id_allocator *ids, uint32_t key)
{
	/* splitmix64's finaliser (Steele, Lea and Flood, OOPSLA 2014). */
	uint64_t x = (uint64_t)key + ids->height_salt;
	uint32_t h = 0;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	x ^= x >> 31;
	while (h < ID_INDEX_LEVELS && (x & 3) == 0) {
		h++;
		x >>= 2;
	}
	return h;
}

uint64_t vmres__id_pool_cap(const struct vmres_id_allocator *ids, uint32_t h)
{
	/* Relaxed: constant once @ids is shared. */
	return vmres__u64_load_relaxed(&ids->pool_cap) >> (2 * h);
}

/* Whether retired nodes of height @h are batched and pooled at all. */
static bool pool_takes(const struct vmres_id_allocator *ids, uint32_t h)
{
	/* A pool that cannot hold one batch would free every batch it gets. */
	return vmres__id_pool_cap(ids, h) >= ID_POOL_BATCH;
}

void vmres__id_pool_init(struct vmres_id_allocator *ids)
{
	for (int h = 0; h <= ID_INDEX_LEVELS; h++) {
		ids->pool[h].pending = 0;
		ids->pool[h].stack = (struct vmres__rcu_stack){ 0, 0 };
	}
	/* At most as many nodes of height 0 as the range has IDs, 1/4 of that of
	 * height 1, and so on: about 4/3 of the range in all, at most. */
	ids->pool_cap = (uint64_t)ids->last - ids->first + 1;
	if (ids->pool_cap > ID_POOL_CAP)
		ids->pool_cap = ID_POOL_CAP;
}

void vmres__id_pool_disable(struct vmres_id_allocator *ids)
{
	/* Relaxed: set before @ids is shared; whatever shares it orders it. */
	vmres__u64_store_relaxed(&ids->pool_cap, 0);
	vmres__id_pool_drain(ids);
}

/* Pops a node of @height, or NULL. Inside a read-side section (invariant 11). */
static struct id_node *pool_pop(struct vmres_id_allocator *ids, uint32_t height)
{
	struct vmres__rcu_stack *s = &ids->pool[height].stack;
	struct id_node *n =
		(struct id_node *)vmres__rcu_stack_pop(s, offsetof(struct id_node, pool_next));

	if (n)
		vmres__rcu_stack_unreserve(s, 1);
	return n;
}

/* Gives a chain of @first's batch back to the hook (no reader can reach it). */
static uint64_t chain_free(struct vmres_id_allocator *ids, struct id_node *first)
{
	uint64_t freed = 0;

	while (first) {
		/* Relaxed: the chain is private to the caller (see callers). */
		struct id_node *next =
			(struct id_node *)vmres__uptr_load_relaxed(&first->pool_next);

		vmres__mem_free(&ids->mem, first, node_size(first->height));
		first = next;
		freed++;
	}
	return freed;
}

/*
 * The call_rcu() callback of one batch: a grace period has passed since the
 * batch left its pending stack, so no reader holds any of its nodes (keeps
 * invariant 11). Puts the whole chain on the pool with one CAS, touching only
 * its first and last node, or frees it if the pool is full.
 */
static void batch_rcu(struct rcu_head *rh)
{
	vmres__rcu_callback_enter();
	struct id_node *first =
		(struct id_node *)(void *)((char *)rh - offsetof(struct id_node, rcu));
	struct vmres_id_allocator *ids = first->owner;
	struct id_pool *pool = &ids->pool[first->height];
	/* Relaxed: written by the pusher before the CAS that published first,
	 * which the swap that took the batch acquired; call_rcu orders the rest. */
	struct id_node *last = (struct id_node *)vmres__uptr_load_relaxed(&first->batch_tail);
	uint64_t len = vmres__u64_load_relaxed(&first->batch_len);

	if (vmres__rcu_stack_reserve(&pool->stack, len, vmres__id_pool_cap(ids, first->height)))
		vmres__rcu_stack_push(&pool->stack, (uintptr_t)first, &last->pool_next);
	else
		chain_free(ids, first);
	/* Orders the push or free before destroy's vmres__rcu_barrier() (TSAN). */
	vmres__rcu_callback_exit();
}

/* With pooling off: each node goes back to the hook after a grace period. */
static void node_free_rcu(struct rcu_head *head)
{
	vmres__rcu_callback_enter();
	struct id_node *n =
		(struct id_node *)(void *)((char *)head - offsetof(struct id_node, rcu));

	vmres__mem_free(&n->owner->mem, n, node_size(n->height));
	/* Orders the free before destroy's vmres__rcu_barrier() under TSAN. */
	vmres__rcu_callback_exit();
}

/*
 * Retires @n, which no new search can reach (invariants 7 and 10, or never
 * published). Caller holds the RCU read lock (invariant 11). Pooling on: @n
 * goes on its height's pending stack; whoever completes a batch of
 * ID_POOL_BATCH takes the whole stack and hands it to call_rcu() once.
 */
static void node_retire(struct vmres_id_allocator *ids, struct id_node *n)
{
	struct id_pool *pool = &ids->pool[n->height];
	uintptr_t top, tail;
	uint64_t len;

	if (!pool_takes(ids, n->height)) {
		vmres__call_rcu(&n->rcu, node_free_rcu); /* straight back to the hook */
		return;
	}
	for (;;) {
		/* Acquire: pairs with the CAS that pushed top, so its batch
		 * fields below are the ones it was pushed with. */
		top = vmres__uptr_load_acquire(&pool->pending);
		if (top) {
			/* Relaxed: fixed while top is on the stack; top cannot be
			 * reused before we leave the read section (invariant 11),
			 * and a stale stack fails the CAS. */
			tail = vmres__uptr_load_relaxed(&((struct id_node *)top)->batch_tail);
			len = vmres__u64_load_relaxed(&((struct id_node *)top)->batch_len) + 1;
		} else {
			tail = (uintptr_t)n; /* n starts a batch: it is its last node */
			len = 1;
		}
		/* Relaxed: n is ours; published by the release of the CAS below. */
		vmres__uptr_store_relaxed(&n->pool_next, top);
		vmres__uptr_store_relaxed(&n->batch_tail, tail);
		vmres__u64_store_relaxed(&n->batch_len, len);
		/* Full barrier (release): publishes n on the pending stack; pairs
		 * with the acquire above and the swap below. */
		if (vmres__uptr_cas(&pool->pending, top, (uintptr_t)n))
			break;
	}
	if (len % ID_POOL_BATCH)
		return;
	/* Full barrier (acquire): takes every node pushed so far; pairs with
	 * their pushers' CAS. Another thread's later swap may find it empty. */
	top = vmres__uptr_swap(&pool->pending, 0);
	if (top)
		vmres__call_rcu(&((struct id_node *)top)->rcu, batch_rcu);
}

uint64_t vmres__id_pool_drain(struct vmres_id_allocator *ids)
{
	uint64_t drained = 0;

	/* No other call runs (documented), so no reader or popper holds a node. */
	for (uint32_t h = 0; h <= ID_INDEX_LEVELS; h++) {
		struct id_node *n;

		while ((n = pool_pop(ids, h))) {
			vmres__mem_free(&ids->mem, n, node_size(h));
			drained++;
		}
		/* Full barrier: the pending nodes' pushes are visible. */
		drained += chain_free(ids,
				      (struct id_node *)vmres__uptr_swap(&ids->pool[h].pending, 0));
	}
	return drained;
}

struct id_node *vmres__id_node_alloc(struct vmres_id_allocator *ids, uint32_t key, bool indexed)
{
	uint32_t height = indexed ? index_height(ids, key) : 0;
	/* A height that does not pool has an empty pool: skip its line. The pop
	 * runs in the caller's read section (keeps invariant 11). */
	struct id_node *n = pool_takes(ids, height) ? pool_pop(ids, height) : NULL;

	/* A pop outside a section could meet a node that came back (ABA); an
	 * allocator not yet shared has empty pools, so pops nothing here. */
	assert(!n || vmres__rcu_read_ongoing());
	if (!n) {
		n = vmres__mem_alloc(&ids->mem, node_size(height));
		if (!n)
			return NULL;
		if (!vmres__id_aligned(n)) {
			/* untouched: no fault */
			vmres__mem_free(&ids->mem, n, node_size(height));
			return NULL;
		}
	}
	/* Fresh or reused, the same state (a reused node's old readers are
	 * gone: a grace period passed since its retire, invariant 11). */
	n->link = (struct vmres__pair){ 0, 0 };
	n->owner = ids;
	n->key = key;
	n->height = height;
	n->refs = height ? 2 : 1;
	for (uint32_t l = 0; l < height; l++)
		n->up[l] = 0;
	return n;
}

void vmres__id_node_free_now(struct vmres_id_allocator *ids, struct id_node *n)
{
	vmres__mem_free(&ids->mem, n, node_size(n->height));
}

void vmres__id_node_discard(struct vmres_id_allocator *ids, struct id_node *n)
{
	if (!pool_takes(ids, n->height)) {
		/* Never in a pool of its height: nobody else can have seen it. */
		vmres__id_node_free_now(ids, n);
		return;
	}
	/* Not at once: n may have come from a pool (invariant 11). */
	vmres__rcu_read_lock();
	node_retire(ids, n);
	vmres__rcu_read_unlock();
}

/* The slot holding level @l + 1's pointer out of @pred (NULL: the head). */
static uintptr_t *up_slot(struct vmres_id_allocator *ids, struct id_node *pred, int l)
{
	return pred ? &pred->up[l] : &ids->head_up[l];
}

/*
 * One step of a walk along level @l + 1: @slot points to *@cur (not 0).
 * Loads the up[l] of *@cur's node into *@next. If that node is marked, snips
 * it (invariant 9) and moves *@cur past it. Returns 1 when the node is live
 * (*@next is its successor), 0 after a snip (look at *@cur again), -1 when
 * the snip lost a race (start again from the top).
 */
static inline int index_visit(int l, uintptr_t *slot, uintptr_t *cur, uintptr_t *next)
{
	struct id_node *c = (struct id_node *)*cur;

	/* Acquire: pairs with the CAS that linked c's successor, so its key,
	 * height and up[] are visible. */
	*next = vmres__uptr_load_acquire(&c->up[l]);
	VMRES__ID_COUNT_STEP();
	if (!(*next & ID_UP_MARK))
		return 1;
	/* Full barrier; snip c, keeps invariant 8. */
	if (!vmres__uptr_cas(slot, *cur, *next & ~ID_UP_MARK))
		return -1;
	*cur = *next & ~ID_UP_MARK;
	return 0;
}

/*
 * From @slot, which points to @cur (the first node of level @l + 1 not below
 * @key), walks the nodes whose key is @key and snips every marked one: the
 * final search's target is among them if it is still at this level (it is
 * marked at every level by then). Returns false when a snip lost a race, so
 * the caller starts again from the top.
 */
static bool index_snip_in_run(int l, uint32_t key, uintptr_t *slot, uintptr_t cur)
{
	uintptr_t next;

	while (cur) {
		int v = index_visit(l, slot, &cur, &next);

		if (v < 0)
			return false;
		if (!v)
			continue;
		if (((struct id_node *)cur)->key != key)
			return true;
		slot = &((struct id_node *)cur)->up[l];
		cur = next;
	}
	return true;
}

/*
 * Walks the index top-down. At each level l it stops at the first node that
 * is not below @key. Marked nodes it passes are snipped (invariant 9); a
 * failed snip restarts from the top. preds[l] gets the node (NULL: the head)
 * whose up slot points to succs[l]. With @final (the final search of a node
 * keyed @key, marked at every level), it also walks the run of @key's equals
 * after preds[l] with a cursor of its own, snipping the node wherever it
 * sits in the run, and still goes down from preds[l]: equal keys may sit in
 * one order on one level and in the other order on the next (invariant 8),
 * so a node of the run is no place to go down from; the level below could
 * have the node before it.
 */
static void index_find(struct vmres_id_allocator *ids, uint32_t key, bool final,
		       struct id_node **preds, struct id_node **succs)
{
retry:;
	struct id_node *pred = NULL;

	/* Levels above the hint are empty (relaxed: a stale hint only costs
	 * steps; the final search runs after the raise, see index_raise_top). */
	int top = (int)vmres__u64_load_relaxed(&ids->index_top);

	for (int l = ID_INDEX_LEVELS - 1; l >= 0; l--) {
		uintptr_t *slot = up_slot(ids, pred, l);

		if (l >= top) {
			if (preds)
				preds[l] = NULL;
			if (succs)
				succs[l] = NULL;
			continue;
		}
		/* Acquire: pairs with the CAS that linked the node, so its key,
		 * height and up[] are visible. */
		uintptr_t cur = vmres__uptr_load_acquire(slot);

		if (cur & ID_UP_MARK)
			goto retry; /* pred started leaving this level */
		while (cur) {
			uintptr_t next;
			int v = index_visit(l, slot, &cur, &next);

			if (v < 0)
				goto retry;
			if (!v)
				continue;
			if (((struct id_node *)cur)->key >= key)
				break;
			pred = (struct id_node *)cur;
			slot = &pred->up[l];
			cur = next;
		}
		if (final && !index_snip_in_run(l, key, slot, cur))
			goto retry;
		if (preds)
			preds[l] = pred;
		if (succs)
			succs[l] = (struct id_node *)cur;
	}
}

/*
 * Raises the hint of levels in use to @height before @n is linked there.
 * Full barrier: whoever later runs @n's final search (after the refs drop,
 * itself a full barrier) sees the raised hint and walks every level of @n.
 */
static void index_raise_top(struct vmres_id_allocator *ids, uint32_t height)
{
	for (;;) {
		uint64_t top = vmres__u64_load_relaxed(&ids->index_top);

		if (top >= height || vmres__u64_cas(&ids->index_top, top, height))
			return;
	}
}

void vmres__id_index_insert(struct vmres_id_allocator *ids, struct id_node *n)
{
	struct id_node *preds[ID_INDEX_LEVELS];
	struct id_node *succs[ID_INDEX_LEVELS];

	if (!n->height)
		return;
	index_raise_top(ids, n->height);
	index_find(ids, n->key, false, preds, succs);
	for (uint32_t l = 0; l < n->height; l++) {
		for (;;) {
			/* Acquire: pairs with index_mark()'s CAS, so a mark is seen. */
			uintptr_t old = vmres__uptr_load_acquire(&n->up[l]);
			uintptr_t want = (uintptr_t)succs[l];

			if (old & ID_UP_MARK)
				goto done; /* n is dying: stop building (invariant 9) */
			/* Full barrier; fails only if the unlink winner marked it. */
			if (!vmres__uptr_cas(&n->up[l], old, want))
				goto done;
			/* Full barrier (release): publishes n at level l + 1. */
			if (vmres__uptr_cas(up_slot(ids, preds[l], l), want, (uintptr_t)n))
				break;
			index_find(ids, n->key, false, preds, succs); /* something moved */
		}
	}
done:
	/* Full barrier: the builder's last link is visible before the drop. */
	if (vmres__u64_faa(&n->refs, (uint64_t)-1) == 1) {
		index_find(ids, n->key, true, NULL, NULL); /* keeps invariant 10 */
		node_retire(ids, n);
	}
}

/* Marks every up[l] of @n, top down; after this nobody links n anywhere. */
static void index_mark(struct id_node *n)
{
	for (uint32_t l = n->height; l-- > 0;) {
		for (;;) {
			/* Acquire: pairs with the builder's CAS on up[l]. */
			uintptr_t v = vmres__uptr_load_acquire(&n->up[l]);

			/* Full barrier; the mark pairs with the builder's CAS on up[l]. */
			if ((v & ID_UP_MARK) || vmres__uptr_cas(&n->up[l], v, v | ID_UP_MARK))
				break;
		}
	}
}

void vmres__id_node_unlinked(struct vmres_id_allocator *ids, struct id_node *n)
{
	if (!n->height) {
		/* The list's reference was the only one: no index, no builder. */
		node_retire(ids, n);
		return;
	}
	index_mark(n);
	/* Full barrier: marks are visible before the drop. */
	if (vmres__u64_faa(&n->refs, (uint64_t)-1) == 1) {
		index_find(ids, n->key, true, NULL, NULL); /* keeps invariant 10 */
		node_retire(ids, n);
	}
}

struct vmres__pair *vmres__id_index_start(struct vmres_id_allocator *ids, uint32_t id,
					  struct vmres__pair *seen, uint32_t *inl)
{
	struct id_node *preds[ID_INDEX_LEVELS];

	/* Snapshot; pairs with the CAS that last wrote the head link. */
	*seen = id_head_decode(vmres__pair_load(&ids->head), inl);
	if (!(seen->w0 & ~ID_LINK_FLAGS) || id_bounds_hi(seen->w1) >= id)
		return &ids->head; /* the first interval reaches @id: no index needed */
	index_find(ids, id, false, preds, NULL);
	for (int l = 0; l < ID_INDEX_LEVELS && preds[l]; l++) {
		/* Snapshot; pairs with the CAS that last wrote the link. */
		*seen = vmres__pair_load(&preds[l]->link);
		if (!(seen->w0 & ID_LINK_FROZEN)) {
			*inl = 0;
			return &preds[l]->link;
		}
		/* preds[l] is dying: try the predecessor one level up. */
	}
	/* Snapshot; pairs with the CAS that last wrote the head link. */
	*seen = id_head_decode(vmres__pair_load(&ids->head), inl);
	return &ids->head;
}
