/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The ID allocator's skip-list index, and node lifetime.
 *
 * Algorithm. Above the list of src/id.c (the truth: "level 0") sit
 * ID_INDEX_LEVELS lock-free sorted lists of the same nodes, ordered by the
 * node's key (its interval's hi, which never changes), each node in levels
 * 1..height with height geometric (p = 1/4). The index only gives a search
 * a place to START: the link of a node P whose key is below the wanted ID.
 * The list search then goes on from P's link exactly as from the head, so a
 * stale index can cost steps but never change an answer. Index levels are
 * Harris lists [1] with the mark on the leaving node's own up[l]; searches
 * snip marked nodes as they pass (helping), as in Fraser's skip list [2].
 *
 * Invariants (continuing those of src/id.c):
 *  8. Each index level is sorted by key (equal keys possible for a moment:
 *     a dying node and the new node of the same ID).
 *  9. A node enters an index level only after it is in the list, and only
 *     by its builder, before the builder drops its reference; a marked up[l]
 *     never changes again. (The builder may still link n at level l just
 *     after the unlink winner marked up[l], between its CAS on n->up[l] and
 *     the one on the predecessor: harmless, as the final search of
 *     invariant 10 runs after the builder's drop and snips it.)
 * 10. A node is freed (call_rcu) only when both its list reference and its
 *     builder reference are gone, and after a final index search found it at
 *     no level: it is then unreachable from the head at every level.
 * 11. Node pools (no ABA). A node enters its allocator's pool of its height
 *     only from node_free_rcu(), the call_rcu callback, i.e. after a full
 *     grace period since it was retired; every pop runs inside an RCU
 *     read-side section (vmres__id_node_alloc()'s callers in src/id.c hold
 *     the read lock; create pops from pools it has just emptied, touching no
 *     node). A popped node leaves its popper's hands only by a retire
 *     (call_rcu: after publishing it, or vmres__id_node_discard() if unused),
 *     so it can come back to a pool, or go to the hook, only after a grace
 *     period that began after the pop. That grace period cannot end while a
 *     concurrent popper that loaded it as the pool head is still in its read
 *     section. So the (head, head->pool_next) pair a popper read is never
 *     recycled or freed under it: its CAS succeeds only if the head is still
 *     the same incarnation with the same next. Only vmres__id_pool_drain()
 *     frees pooled nodes at once, and it runs with no other call (destroy,
 *     quiescent tests). A pool's count is raised before a push and lowered after
 *     a pop, so it is never below the pool's size, which stays <= the cap.
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
 * Pools. Nodes cost malloc/free on every free and every alloc that empties a
 * node, and the callback thread frees what other threads allocated. So the
 * callback keeps up to ID_POOL_CAP nodes per height class (node size depends
 * on the height) in a lock-free LIFO (Treiber stack [3]) per allocator, which
 * vmres__id_node_alloc() pops before asking the hook; a full pool sends the
 * node to the hook as before. A reused node is set up exactly as a fresh one.
 * destroy drains the pools through the hook after its rcu_barrier().
 *
 * [1] T. Harris, "A pragmatic implementation of non-blocking linked-lists",
 *     DISC 2001.
 * [2] K. Fraser, "Practical lock-freedom", PhD thesis, Cambridge, 2004.
 * [3] R. K. Treiber, "Systems programming: coping with parallelism",
 *     IBM Research Report RJ 5118, 1986.
 */
#include <stddef.h>
#include <stdint.h>

#include "internal/atomic.h"
#include "internal/id.h"
#include "internal/id_list.h"
#include "internal/mem.h"
#include "internal/rcu.h"

/* initial-exec: a plain %fs-relative access, no __tls_get_addr call. */
__attribute__((tls_model("initial-exec"))) _Thread_local uint64_t vmres__id_search_steps;

static size_t node_size(uint32_t height)
{
	return offsetof(struct id_node, up) + (size_t)height * sizeof(uintptr_t);
}

/* Geometric height, p = 1/4, from a per-thread xorshift generator. */
static uint32_t random_height(void)
{
	static __attribute__((tls_model("initial-exec"))) _Thread_local uint64_t state;
	uint64_t x = state;
	uint32_t h = 0;

	if (!x)
		x = ((uint64_t)(uintptr_t)&state * 0x9e3779b97f4a7c15ull) | 1;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	state = x;
	while (h < ID_INDEX_LEVELS && (x & 3) == 0) {
		h++;
		x >>= 2;
	}
	return h;
}

void vmres__id_pool_init(struct vmres_id_allocator *ids)
{
	for (int h = 0; h <= ID_INDEX_LEVELS; h++) {
		ids->pool[h].head = 0;
		ids->pool[h].count = 0;
	}
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
	uintptr_t *head = &ids->pool[height].head;

	for (;;) {
		/* Acquire: pairs with pool_push()'s CAS, so the node's pool_next
		 * and the callback's happens-before edge are visible. */
		uintptr_t top = vmres__uptr_load_acquire(head);

		if (!top)
			return NULL;
		/* Relaxed: written before the push CAS that published top (seen by
		 * the acquire above); not recycled under us (invariant 11). */
		uintptr_t next = vmres__uptr_load_relaxed(&((struct id_node *)top)->pool_next);

		/* Full barrier; succeeds only if top is still the head (no ABA,
		 * invariant 11); orders our reuse of the node after it. */
		if (vmres__uptr_cas(head, top, next)) {
			/* Full barrier; after the pop, keeps count >= size. */
			vmres__u64_faa(&ids->pool[height].count, (uint64_t)-1);
			return (struct id_node *)top;
		}
	}
}

/* Pushes @n on its height's pool unless that is full; false if full. */
static bool pool_push(struct vmres_id_allocator *ids, struct id_node *n)
{
	uintptr_t *head = &ids->pool[n->height].head;
	uint64_t *count = &ids->pool[n->height].count;

	/* Relaxed: constant once @ids is shared. */
	uint64_t cap = vmres__u64_load_relaxed(&ids->pool_cap);

	/* Full barrier: reserve a place before the push (count >= size <= cap). */
	if (vmres__u64_faa(count, 1) >= cap) {
		vmres__u64_faa(count, (uint64_t)-1); /* full barrier; undo */
		return false;
	}
	for (;;) {
		/* Relaxed: the CAS below orders it; a stale value fails the CAS. */
		uintptr_t top = vmres__uptr_load_relaxed(head);

		/* Relaxed: published by the release of the CAS below; pairs with
		 * pool_pop()'s relaxed load after its acquire of the head. */
		vmres__uptr_store_relaxed(&n->pool_next, top);
		/* Full barrier (release): publishes n and its pool_next; pairs
		 * with pool_pop()'s acquire load of the head. */
		if (vmres__uptr_cas(head, top, (uintptr_t)n))
			return true;
	}
}

uint64_t vmres__id_pool_drain(struct vmres_id_allocator *ids)
{
	uint64_t drained = 0;

	/* No other call runs (documented), so no popper can hold a node. */
	for (uint32_t h = 0; h <= ID_INDEX_LEVELS; h++) {
		struct id_node *n;

		while ((n = pool_pop(ids, h))) {
			vmres__mem_free(&ids->mem, n, node_size(h));
			drained++;
		}
	}
	return drained;
}

struct id_node *vmres__id_node_alloc(struct vmres_id_allocator *ids, uint32_t key, bool indexed)
{
	uint32_t height = indexed ? random_height() : 0;
	struct id_node *n = pool_pop(ids, height); /* keeps invariant 11 */

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

static void node_free_rcu(struct rcu_head *head)
{
	vmres__rcu_callback_enter();
	struct id_node *n =
		(struct id_node *)(void *)((char *)head - offsetof(struct id_node, rcu));

	/* A grace period passed since the retire: keeps invariant 11. */
	if (!pool_push(n->owner, n))
		vmres__mem_free(&n->owner->mem, n, node_size(n->height));
	/* Orders the push or free before destroy's vmres__rcu_barrier() under
	 * TSAN. */
	vmres__rcu_callback_exit();
}

void vmres__id_node_discard(struct vmres_id_allocator *ids, struct id_node *n)
{
	(void)ids;
	/* Not at once: n may have come from a pool (invariant 11). */
	vmres__call_rcu(&n->rcu, node_free_rcu);
}

/* The slot holding level @l + 1's pointer out of @pred (NULL: the head). */
static uintptr_t *up_slot(struct vmres_id_allocator *ids, struct id_node *pred, int l)
{
	return pred ? &pred->up[l] : &ids->head_up[l];
}

/*
 * Walks the index top-down. At each level l it stops at the first node that
 * is not below @key, or, with @target, at the first node past @key's equals
 * (so @target, marked, is snipped on the way). Marked nodes it passes are
 * snipped (invariant 9); a failed snip restarts from the top. preds[l] gets
 * the node (NULL: the head) whose up slot points to succs[l].
 */
static void index_find(struct vmres_id_allocator *ids, uint32_t key, const struct id_node *target,
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
			struct id_node *c = (struct id_node *)cur;
			uintptr_t next = vmres__uptr_load_acquire(&c->up[l]);

			vmres__id_search_steps++;
			if (next & ID_UP_MARK) {
				/* Full barrier; snip c, keeps invariant 8. */
				if (!vmres__uptr_cas(slot, cur, next & ~ID_UP_MARK))
					goto retry;
				cur = next & ~ID_UP_MARK;
				continue;
			}
			if (c->key < key || (target && c != target && c->key == key)) {
				pred = c;
				slot = &c->up[l];
				cur = next;
				continue;
			}
			break;
		}
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
	index_find(ids, n->key, NULL, preds, succs);
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
			index_find(ids, n->key, NULL, preds, succs); /* something moved */
		}
	}
done:
	/* Full barrier: the builder's last link is visible before the drop. */
	if (vmres__u64_faa(&n->refs, (uint64_t)-1) == 1) {
		index_find(ids, n->key, n, NULL, NULL); /* keeps invariant 10 */
		vmres__call_rcu(&n->rcu, node_free_rcu);
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
		vmres__call_rcu(&n->rcu, node_free_rcu);
		return;
	}
	index_mark(n);
	/* Full barrier: marks are visible before the drop. */
	if (vmres__u64_faa(&n->refs, (uint64_t)-1) == 1) {
		index_find(ids, n->key, n, NULL, NULL); /* keeps invariant 10 */
		vmres__call_rcu(&n->rcu, node_free_rcu);
	}
}

struct vmres__pair *vmres__id_index_start(struct vmres_id_allocator *ids, uint32_t id,
					  struct vmres__pair *seen)
{
	struct id_node *preds[ID_INDEX_LEVELS];

	/* Snapshot; pairs with the CAS that last wrote the head link. */
	*seen = vmres__pair_load(&ids->head);
	if (!(seen->w0 & ~ID_LINK_FLAGS) || id_bounds_hi(seen->w1) >= id)
		return &ids->head; /* the first interval reaches @id: no index needed */
	index_find(ids, id, NULL, preds, NULL);
	for (int l = 0; l < ID_INDEX_LEVELS && preds[l]; l++) {
		/* Snapshot; pairs with the CAS that last wrote the link. */
		*seen = vmres__pair_load(&preds[l]->link);
		if (!(seen->w0 & ID_LINK_FROZEN))
			return &preds[l]->link;
		/* preds[l] is dying: try the predecessor one level up. */
	}
	*seen = vmres__pair_load(&ids->head);
	return &ids->head;
}
