/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Lock-free ID allocator: a sorted list of free intervals, smallest ID first.
 *
 * Algorithm. The free IDs of [first, last] form a sorted singly linked list
 * of disjoint intervals of two kinds: NEVER (never handed out since creation:
 * at first [first, last]; later what of it is left, and the pieces alloc_at
 * leaves) and FREED (handed out, then given back). A held ID lies in no
 * interval. alloc takes the lo of the first interval; alloc_at(id) takes id
 * out of the interval holding it; free(id) lowers the lo of a FREED interval
 * starting at id + 1, or else inserts the one-ID FREED interval [id, id];
 * is_allocated(id) looks for an interval holding id. "The free list is empty,
 * so take next_id" needs no second structure: next_id is the lo of the last
 * NEVER interval, and taking it is the same CAS as taking any first lo.
 *
 * The link carries the interval it points to. Each link is a 16-byte pair
 * (src/internal/id_list.h): w0 = next node | flags, w1 = [lo, hi] of THAT
 * next node X. X's interval lives in its predecessor's link, so every change
 * is one double-width CAS (cmpxchg16b) on one link L(P):
 *   take lo          (X, [lo, hi])   -> (X, [lo + 1, hi])
 *   take the last    (X, [x, x])     -> (X | DEL, [x, x])   logical deletion
 *   take id > lo     (X, [lo, hi])   -> (A, [lo, id - 1]) where the new node
 *                    A, still private, links (X, [id + 1, hi]), or
 *                    (X | DEL, [hi, hi]) when id == hi: a split is one CAS
 *   free, merge      (X, [id + 1, hi]) -> (X, [id, hi])      X is FREED
 *   free, insert     (X, b)          -> (N, [id, id]), N privately links (X, b)
 * Since the first interval is described by the head link itself, alloc and an
 * insertion in front of the first interval are CASes on the same word: alloc
 * can never take lo while a smaller ID was freed in front of it. No instant
 * exists where IDs of a split interval are missing or present twice. A node's
 * hi never changes, so it keys the skip-list index (src/id_index.c) that
 * gives searches a starting point in O(log F).
 *
 * The inline ID. The head link can also hold one FREED ID u below every
 * interval, with no node (ID_HEAD_INLINE; stored as src/internal/id_list.h
 * says). id_link_load() decodes it for searches and id_link_cas() encodes
 * it back, so they see a link like any other plus u; the CASes that take or
 * put u at the front (alloc's inline branch, id_alloc_front(),
 * id_free_front()) work on the stored form. It makes the commonest churn
 * cheap: a free in front of the first interval and the alloc that takes
 * that ID back are then one CAS each on the head, with no node made,
 * indexed, unlinked or retired. On
 * the head link H = (X, b) + u, where b = [lo, hi] is X's interval:
 *   free(id), id < lo, no u   (X, b) -> (X, b) + id
 *   free(id), id < u          (X, [u + 1, hi]) + u -> (X, [u, hi]) + id if X
 *                             is FREED; else (X, b) + u -> (N, [u, u]) + id,
 *                             N privately linking (X, b): u is demoted
 *   free(id), u < id < lo     as with no u (lower lo, or insert N = [id, id]
 *                             after H); u stays
 *   alloc, or alloc_at(u)     (X, b) + u -> (X, b)
 * Every other CAS on H (take lo, split, DEL, unlink) keeps u as it is.
 *
 * The front fast paths. The stored head word alone (src/internal/id_list.h:
 * w0 = X | flags, w1 = X's lo << 32 | u) decides alloc when u is there, and
 * free(id) when there is no u, no DEL and id is below X's lo (or there is no
 * X). Such calls load the head once and try one CAS on it whose new value is
 * computed from the loaded value alone (id_alloc_front(), id_free_front()),
 * before and outside any RCU read-side section: they read no node. If that
 * CAS fails they take the full path. The new values are those the full
 * paths would CAS from the same head value (with no u and id < lo, X's
 * hi >= lo > id, so vmres__id_index_start() returns the head and
 * id_search() stops there), so the fast paths add no state and no
 * transition; invariant 13 says why they need no RCU.
 *
 * Physical deletion follows Harris [1] with the mark moved onto the link
 * pointing to the dead node, as in Linden and Jonsson [2]. To unlink a DEL'd
 * X, a thread freezes X's own link (FROZEN: no CAS succeeds on it again),
 * then CASes L(P) from (X | DEL, [x, x]) to a copy of X's frozen link without
 * FROZEN. Whoever meets a DEL link does this (helping); a search that meets a
 * FROZEN link starts again, and on the way finds and helps the deletion.
 *
 * Memory. The winner of the unlink CAS gives the node to src/id_index.c,
 * which takes it out of the index and retires it with call_rcu(). Every
 * traversal is inside an RCU read-side critical section, so a node a
 * traversal reads is neither freed nor reused under it (no ABA on w0 for
 * them). The front fast paths read no node and hold no read lock; their
 * snapshot of the head word can meet an ABA (X freed and reused), which
 * invariant 13 shows is harmless.
 * Retired nodes go to call_rcu() in batches, and the callback keeps them in
 * bounded per-height pools for reuse by later operations (invariant 11 and
 * "Pools" in src/id_index.c), or frees them through the hook. destroy frees
 * the list, waits for retired nodes (rcu_barrier(); their callback uses the
 * allocator's memory hook), then frees the pending and pooled nodes.
 *
 * Invariants (named in the code; vmres__id_check() tests 1-3, 5, 8-10, 12):
 *  1. Links change only by a successful double-width CAS of both words; a
 *     link's w1 is the interval of the node its w0 points to (0 if none).
 *  2. Sorted: along the chain from the head, intervals (for a DEL'd node its
 *     last interval [hi, hi]) are non-empty, inside [first, last] and
 *     strictly increasing, so disjoint.
 *  3. A node's hi never changes (it is its index key); its lo rises when an
 *     ID is taken, and falls only when free(lo - 1) extends a FREED interval
 *     or a demote joins the inline ID u = lo - 1 to it (12); DEL is never
 *     undone; a node's kind (the NEVER flag) never changes.
 *  4. Abstraction: an ID is free iff it lies in the interval of a link
 *     reachable from the head that has no DEL; it lies in a NEVER interval
 *     iff it was never handed out since creation.
 *  5. Freeze before unlink: a link is frozen only after the link pointing to
 *     its owner has DEL, and a node is unlinked only after its link is
 *     frozen. So a link read unfrozen belonged, at that instant, to a node
 *     reachable from the head. The head link is never frozen.
 *  6. A link with DEL changes only by the unlink of the DEL'd node, by being
 *     frozen, or (the head) by an alloc taking the inline ID, which keeps the
 *     DEL; nothing is inserted in front of a DEL'd node.
 *  7. Reclamation: only the winner of the unlink CAS retires a node, and only
 *     once it is unreachable from the head (invariant 10 for the index).
 * 12. The inline ID (numbered after src/id_index.c's 8-11): only the head
 *     link has ID_HEAD_INLINE. When set, its ID u is a FREED ID inside
 *     [first, last] and below every interval of the list (for a DEL'd first
 *     node, below its [hi, hi]); invariant 4 counts u as free, and FREED. u
 *     appears only by a free(u) whose CAS saw the head without DEL and its
 *     lo above u, or by a demote that puts a smaller freed ID in its place.
 *     The stored w1 holds the first node's lo and u (0 for either when
 *     absent); the first node's hi is its key (invariant 3), so the stored
 *     word and that key are the whole link.
 * 13. Front fast paths: a CAS on a list link made outside a read-side
 *     section is on the head link only, compares its whole stored word with
 *     a value loaded before, and writes a value that depends on nothing else
 *     (the same node pointer and kind, and lo, u and id). What it needs to
 *     be right is all in the word: u below every interval (12); or no u, no
 *     DEL and id below X's lo, so by 2 and 4 id is held; or no u and no X,
 *     so no ID is free and id is held. A DEL'd head is refused: a merge into
 *     a dead interval would break 3, 4 and 6. So if the CAS succeeds,
 *     the head held exactly that value at that instant, whatever happened
 *     between the load and the CAS (even X unlinked, freed and its memory
 *     reused as a new first node with the same lo), and the new value is
 *     the right successor of the state at that instant. The pointer it
 *     writes is the one the head holds, so no unlinked node is made
 *     reachable again (7).
 *
 * Linearization points.
 *  - alloc: the CAS on the head link that takes the inline ID u, if the head
 *    has one: by 12, u is the smallest free ID at that instant. Else the CAS
 *    that takes lo: the head had no u and pointed to X without DEL, so by 2
 *    and 4 X's lo is the smallest free ID. EXHAUSTED: the load of the head
 *    link that shows neither u nor a node.
 *  - alloc_at, free (success): their one successful CAS (for alloc_at(u),
 *    the one that clears u; for a free that puts id inline or demotes u, the
 *    one on the head that does it). The front fast paths' CAS is this CAS.
 *  - Answers drawn from a search without a CAS (alloc_at IN_USE, free
 *    NEVER_ALLOCATED / ALREADY_FREED, is_allocated): the load of the last
 *    link L(P) of the search. The search reached P because P's hi was below
 *    id (shown by the link in front of P, or P's index key): by 3 it still
 *    is; by 2 so is every interval before P; by 5 P is reachable at that
 *    load since L(P) was unfrozen; and L(P) itself shows whether the interval
 *    after P holds id. So at that instant id is free exactly when L(P) says.
 *    If L(P) is the head link it also shows u: id is free, and FREED, if it
 *    is u; held if it is below lo and not u. If P is a node, any u is below
 *    P's interval at that instant (12), so it is not id.
 *
 * Lock-freedom. A loop goes round again only after a CAS failed, or after it
 * met a DEL or FROZEN link; each means another operation's CAS succeeded (on
 * the head, a change of the inline ID alone fails a CAS too). No thread
 * waits for another: whoever meets a deletion finishes it. A front fast path
 * makes one attempt, then the full path runs. After lost races on a hot
 * link a thread backs off (a bounded pause, not a wait for anyone; see
 * ID_BACKOFF_FIRST). Retiring a node is a push on a pending stack (a CAS
 * loop that fails only when another retire succeeded) and, once per batch,
 * call_rcu(): a wait-free enqueue once liburcu's callback thread exists;
 * create makes sure it does, since making it takes a mutex.
 *
 * [1] T. Harris, "A pragmatic implementation of non-blocking linked-lists",
 *     DISC 2001.
 * [2] J. Linden, B. Jonsson, "A skiplist-based concurrent priority queue with
 *     minimal memory contention", OPODIS 2013.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include <vmres/id.h>

#include "internal/atomic.h"
#include "internal/id.h"
#include "internal/id_list.h"
#include "internal/mem.h"
#include "internal/rcu.h"

/*
 * Where a search stopped: @pred is the link L(P), @seen its value (decoded if
 * @pred is the head link), @inl the head's inline ID (0 elsewhere; meaningful
 * only with ID_HEAD_INLINE in @seen.w0).
 */
struct id_pos {
	struct vmres__pair *pred;
	struct vmres__pair seen;
	uint32_t inl;
};

/*
 * Loads link @pred (snapshot; pairs with the CAS that last wrote it): decoded
 * if it is the head link, *@inl then its inline ID, else 0. Caller holds the
 * RCU read lock (id_head_decode() reads the first node).
 */
static struct vmres__pair id_link_load(struct vmres_id_allocator *ids, struct vmres__pair *pred,
				       uint32_t *inl)
{
	struct vmres__pair v = vmres__pair_load(pred);

	if (pred == &ids->head)
		return id_head_decode(v, inl);
	*inl = 0;
	return v;
}

/*
 * CAS on link @pred from @seen to @want (both decoded; @seen_inl and @want_inl
 * the head's inline IDs, ignored elsewhere). Full barrier, sequentially
 * consistent: publishes whatever the caller wrote into a new node first, and
 * pairs with the loads of every later reader of the link.
 */
static bool id_link_cas(struct vmres_id_allocator *ids, struct vmres__pair *pred,
			struct vmres__pair seen, uint32_t seen_inl, struct vmres__pair want,
			uint32_t want_inl)
{
	if (pred == &ids->head) {
		/* The stored form drops hi: it must be the node's key (12). */
		assert(!id_link_node(want.w0) ||
		       id_link_node(want.w0)->key == id_bounds_hi(want.w1));
		seen = id_head_encode(seen, seen_inl);
		want = id_head_encode(want, want_inl);
	}
	assert(pred == &ids->head || !(want.w0 & ID_HEAD_INLINE)); /* 12 */
	return vmres__pair_cas(pred, seen, want);
}

/*
 * Backoff after a lost CAS race on a hot link, in spin-wait hints
 * (vmres__cpu_relax()). A call retries at once after its first loss (one
 * loss is often a one-off); its second loss pauses ID_BACKOFF_FIRST hints,
 * and each further one doubles that, up to ID_BACKOFF_CAP. A `pause` takes
 * about 24 ns on the Intel machine of docs/performance.md: 6 us, then at
 * most 100 us, there (2-3 times that where `pause` takes 140 cycles).
 *
 * Why so long: every alloc and every free in front of the list CASes the
 * head link, so two threads that alternate move its line between CPUs on
 * every call (several times the cost of the call itself). A loser that
 * stays away for microseconds leaves the winner a hundred calls or more with
 * the line in its own cache; the longer the pause, the smaller the share of
 * time spent alternating. With 1 to 64 hints two threads on 2 CPUs made
 * 4.4-6.0 M churn pairs/s; with 128 to 2048, 9-11 M; with this setting
 * 11-12 M, close to one thread alone, and longer pauses gained nothing more
 * ("Backoff" in docs/performance.md). Only a call that lost races pauses;
 * an uncontended call never does.
 */
#define ID_BACKOFF_FIRST 256u
#define ID_BACKOFF_CAP 4096u

/*
 * Pauses for @spins hints (none after a call's first loss, when @spins is
 * still 0), then moves @spins to ID_BACKOFF_FIRST or doubles it, up to
 * ID_BACKOFF_CAP. Not a wait for anyone: the retry does not depend on
 * another thread's progress.
 */
static void id_backoff(unsigned int *spins)
{
	for (unsigned int i = 0; i < *spins; i++)
		vmres__cpu_relax();
	if (*spins < ID_BACKOFF_CAP)
		*spins = *spins ? *spins * 2 : ID_BACKOFF_FIRST;
}

/* Sets FROZEN on @link (invariant 5) and returns its final value. */
static struct vmres__pair link_freeze(struct vmres__pair *link)
{
	for (;;) {
		/* Snapshot; pairs with the CAS of whoever changed it last. */
		struct vmres__pair v = vmres__pair_load(link);
		struct vmres__pair frozen = { v.w0 | ID_LINK_FROZEN, v.w1 };

		if (v.w0 & ID_LINK_FROZEN)
			return v;
		/* Full barrier; fails if the owner's successor changed meanwhile. */
		if (vmres__pair_cas(link, v, frozen))
			return frozen;
	}
}

/*
 * Unlinks the DEL'd node behind @pred, which was seen as @seen (with inline ID
 * @inl if @pred is the head). Harmless if another thread already did it: then
 * the CAS fails (invariants 6 and 7). On the head it also fails if the inline
 * ID was taken meanwhile: the node stays DEL'd for the next thread to meet it.
 */
static void id_unlink(struct vmres_id_allocator *ids, struct vmres__pair *pred,
		      struct vmres__pair seen, uint32_t inl)
{
	struct id_node *x = id_link_node(seen.w0);
	struct vmres__pair frozen = link_freeze(&x->link);
	/* The head keeps its inline ID: it stays below X's successor too. */
	struct vmres__pair repl = { (frozen.w0 & ~ID_LINK_FROZEN) | (seen.w0 & ID_HEAD_INLINE),
				    frozen.w1 };

	/* Full barrier; keeps invariant 2: X's successor keeps its interval. */
	if (id_link_cas(ids, pred, seen, inl, repl, inl))
		vmres__id_node_unlinked(ids, x); /* keeps invariant 7 */
}

/*
 * Finds the link L(P) whose interval is the first with hi >= @id, or the
 * link with no node after the last interval. Starts where the index says,
 * helps every deletion it meets, so the result has neither DEL nor FROZEN.
 * Caller holds the RCU read lock.
 */
static void id_search(struct vmres_id_allocator *ids, uint32_t id, struct id_pos *pos)
{
	struct vmres__pair seen;
	uint32_t inl;
	struct vmres__pair *pred = vmres__id_index_start(ids, id, &seen, &inl);

	for (;;) {
		struct id_node *x = id_link_node(seen.w0);

		if (seen.w0 & ID_LINK_FROZEN) {
			/* P is dying (invariant 5): start again, helping on the way. */
			pred = vmres__id_index_start(ids, id, &seen, &inl);
			continue;
		}
		if (x && (seen.w0 & ID_LINK_DEL)) {
			id_unlink(ids, pred, seen, inl);
		} else if (x && id_bounds_hi(seen.w1) < id) {
			pred = &x->link;
		} else {
			pos->pred = pred;
			pos->seen = seen;
			pos->inl = inl;
			return;
		}
		/* Snapshot; pairs with the CAS that last wrote the link. */
		seen = id_link_load(ids, pred, &inl);
		VMRES__ID_COUNT_STEP();
	}
}

/*
 * Takes @id out of the interval behind @pos (which holds it) with one CAS:
 *   lo == hi   DEL (the node dies)
 *   id == lo   lo + 1
 *   otherwise  the new node *@spare takes [lo, id - 1] in front of X; X keeps
 *              [id + 1, hi], or dies (DEL) when id == hi. X's hi never
 *              changes (invariant 3), so it can key the index.
 * Return: true if the CAS succeeded.
 */
static bool id_take(struct vmres_id_allocator *ids, const struct id_pos *pos, uint32_t id,
		    struct id_node **spare)
{
	uint32_t lo = id_bounds_lo(pos->seen.w1);
	uint32_t hi = id_bounds_hi(pos->seen.w1);
	struct vmres__pair want = pos->seen;
	struct vmres__pair a_link;
	struct id_node *a;

	/* Every new value of the link keeps the head's inline ID, if any: the
	 * first interval's lo never falls here, so it stays below (invariant 12). */
	if (lo == hi) {
		/* Logical deletion; keeps invariant 6 from here on. */
		want.w0 |= ID_LINK_DEL;
		if (!id_link_cas(ids, pos->pred, pos->seen, pos->inl, want, pos->inl))
			return false;
		id_unlink(ids, pos->pred, want, pos->inl);
		return true;
	}
	if (id == lo) {
		want.w1 = id_bounds_make(lo + 1, hi); /* keeps invariant 3 */
		/* Full barrier; conflicts with every insertion in front of X. */
		return id_link_cas(ids, pos->pred, pos->seen, pos->inl, want, pos->inl);
	}
	/* A is private until the CAS publishes it (release in the CAS). */
	a = *spare;
	a_link.w0 = (pos->seen.w0 & ~ID_HEAD_INLINE) | (id == hi ? ID_LINK_DEL : 0);
	a_link.w1 = id == hi ? id_bounds_make(hi, hi) : id_bounds_make(id + 1, hi);
	a->link = a_link;
	want.w0 = (uint64_t)(uintptr_t)a | (pos->seen.w0 & (ID_LINK_NEVER | ID_HEAD_INLINE));
	want.w1 = id_bounds_make(lo, id - 1); /* keeps invariant 2 */
	/* Full barrier; the split is this one CAS. */
	if (!id_link_cas(ids, pos->pred, pos->seen, pos->inl, want, pos->inl))
		return false;
	*spare = NULL;
	if (id == hi)
		id_unlink(ids, &a->link, a_link, 0); /* X died in A's link */
	vmres__id_index_insert(ids, a);
	return true;
}

static bool id_in_range(const struct vmres_id_allocator *ids, uint32_t id)
{
	return id >= ids->first && id <= ids->last;
}

/* Whether the interval behind @pos holds @id (search ensured hi >= id). */
static bool id_pos_holds(const struct id_pos *pos, uint32_t id)
{
	return id_link_node(pos->seen.w0) && id_bounds_lo(pos->seen.w1) <= id;
}

/* Whether @id is the inline ID of the head link @pos stopped at. */
static bool id_pos_inline(const struct id_pos *pos, uint32_t id)
{
	return (pos->seen.w0 & ID_HEAD_INLINE) && pos->inl == id;
}

/* @pos's link without the inline ID: alloc_at(inline ID) takes it. */
static struct vmres__pair id_inline_taken(const struct id_pos *pos)
{
	return (struct vmres__pair){ pos->seen.w0 & ~ID_HEAD_INLINE, pos->seen.w1 };
}

/*
 * Whether free(@id) can lower the lo of the interval behind @link instead of
 * inserting a node: that interval is a freed one starting right after @id.
 * @link may be decoded or the head's stored form (both hold lo in the high
 * half of w1, and the flags in w0).
 */
static bool id_merges_down(struct vmres__pair link, uint32_t id)
{
	return id_link_node(link.w0) && !(link.w0 & ID_LINK_NEVER) &&
	       id_bounds_lo(link.w1) == (uint64_t)id + 1;
}

/*
 * alloc's take of the inline ID from the stored head @raw, which holds one
 * (invariant 12: it is the smallest free ID), without reading the first
 * node. Return: true if the CAS succeeded (the linearization point).
 */
static bool id_inline_take(struct vmres_id_allocator *ids, struct vmres__pair raw)
{
	/* Full barrier; fails unless the head still holds @raw (pairs with
	 * the CASes that changed it; an ABA in between is harmless,
	 * invariant 13). */
	return vmres__pair_cas(&ids->head, raw, id_head_drop_inline(raw));
}

/*
 * The front fast paths: calls decided by the stored head word alone, made
 * outside any RCU read-side section (invariant 13). Each loads the head once
 * and tries one CAS whose new value is a function of the loaded value only:
 *   alloc, u inline            raw -> raw without u
 *   free(id), no u, the first node X without DEL, id below X's lo (or no X):
 *     X FREED and lo == id + 1 raw -> raw with lo = id    (the merge)
 *     otherwise                raw -> raw + id inline
 * These are exactly what the full paths do from the same head value (see
 * "The front fast paths" at the top of this file).
 * Return: true if the CAS succeeded (the call is done); false if the head
 * does not qualify or the CAS lost, and the caller takes the full path.
 */
static bool id_alloc_front(struct vmres_id_allocator *ids, uint32_t *id_out, bool *lost)
{
	/* Snapshot; pairs with the CAS that last wrote the head link. */
	struct vmres__pair raw = vmres__pair_load(&ids->head);

	if (!(raw.w0 & ID_HEAD_INLINE))
		return false;
	if (!id_inline_take(ids, raw)) {
		*lost = true;
		return false;
	}
	*id_out = (uint32_t)raw.w1;
	return true;
}

static bool id_free_front(struct vmres_id_allocator *ids, uint32_t id, bool *lost)
{
	/* Snapshot; pairs with the CAS that last wrote the head link. */
	struct vmres__pair raw = vmres__pair_load(&ids->head);
	uint32_t lo = id_bounds_lo(raw.w1);
	struct vmres__pair want;

	if ((raw.w0 & (ID_HEAD_INLINE | ID_LINK_DEL)) || (id_link_node(raw.w0) && id >= lo))
		return false;
	if (id_merges_down(raw, id))
		/* Stored form: lo << 32, no inline ID (invariant 12). */
		want = (struct vmres__pair){ raw.w0, (uint64_t)id << 32 };
	else /* the low half of w1 is 0 (all of it with no node) */
		want = (struct vmres__pair){ raw.w0 | ID_HEAD_INLINE, raw.w1 | id };
	/* Full barrier; fails unless the head still holds the loaded value
	 * (an ABA in between is harmless, invariant 13). */
	if (!vmres__pair_cas(&ids->head, raw, want)) { /* linearization point */
		*lost = true;
		return false;
	}
	return true;
}

int vmres_id_allocator_create(uint32_t first, uint32_t last, struct vmres_id_allocator **out)
{
	return vmres_id_allocator_create_ex(first, last, NULL, out);
}

int vmres_id_allocator_create_ex(uint32_t first, uint32_t last, const struct vmres_mem_ops *mem,
				 struct vmres_id_allocator **out)
{
	struct vmres_mem_ops ops;
	struct vmres_id_allocator *ids;
	struct id_node *tail;
	int rc;

	if (!out)
		return VMRES_E_INVALID_ARGUMENT;
	if (first > last)
		return VMRES_E_INVALID_RANGE;
	rc = vmres__mem_resolve(mem, &ops);
	if (rc)
		return rc;
	/* Here, so that no operation is the process's first call_rcu (lock-freedom). */
	vmres__rcu_prepare_callbacks();
	ids = vmres__mem_alloc(&ops, sizeof(*ids));
	if (!ids)
		return VMRES_E_NOMEM;
	if (!vmres__id_aligned(ids)) {
		/* The hook breaks its contract; the head would fault (cmpxchg16b). */
		vmres__mem_free(&ops, ids, sizeof(*ids));
		return VMRES_E_INVALID_ARGUMENT;
	}
	ids->mem = ops;
	ids->first = first;
	ids->last = last;
	for (int l = 0; l < ID_INDEX_LEVELS; l++)
		ids->head_up[l] = 0;
	ids->index_top = 0;
	/* Any odd constant mixed with the address: allocators differ. */
	ids->height_salt = (uint64_t)(uintptr_t)ids * 0x9e3779b97f4a7c15ull;
	vmres__id_pool_init(ids); /* empty before the first pop below */
	/* The never-handed-out [first, last]; not indexed (nothing lies past it). */
	tail = vmres__id_node_alloc(ids, last, false);
	if (!tail) {
		vmres__mem_free(&ops, ids, sizeof(*ids));
		return VMRES_E_NOMEM;
	}
	/* Published to other threads by however the caller hands @ids over. */
	ids->head = id_head_encode((struct vmres__pair){ (uint64_t)(uintptr_t)tail | ID_LINK_NEVER,
							 id_bounds_make(first, last) },
				   0);
	*out = ids;
	return VMRES_OK;
}

void vmres_id_allocator_destroy(struct vmres_id_allocator *ids)
{
	if (!ids)
		return;
	/* Retired nodes' callbacks read ids->mem and fill the pools: wait for
	 * them first, then give the list and the pooled nodes back. */
	vmres__rcu_barrier();
	vmres__id_allocator_free(ids);
}

void vmres__id_allocator_free(struct vmres_id_allocator *ids)
{
	struct vmres_mem_ops ops;
	struct id_node *n;

	if (!ids)
		return;
	/* No other call runs (documented), so the chain is stable. */
	n = id_link_node(vmres__pair_load(&ids->head).w0);
	while (n) {
		struct id_node *next = id_link_node(vmres__pair_load(&n->link).w0);

		vmres__id_node_free_now(ids, n);
		n = next;
	}
	vmres__id_pool_drain(ids);
	ops = ids->mem;
	vmres__mem_free(&ops, ids, sizeof(*ids));
}

int vmres_id_alloc(struct vmres_id_allocator *ids, uint32_t *id_out)
{
	unsigned int spins = 0;
	bool lost = false;
	int rc;

	if (!ids || !id_out)
		return VMRES_E_INVALID_ARGUMENT;
	if (id_alloc_front(ids, id_out, &lost))
		return VMRES_OK;
	if (lost)
		id_backoff(&spins);
	vmres__rcu_read_lock();
	for (;;) {
		/* Snapshot; pairs with the CAS that last wrote the head link. */
		struct vmres__pair raw = vmres__pair_load(&ids->head);
		struct id_pos pos = { .pred = &ids->head };
		uint32_t lo;

		if (raw.w0 & ID_HEAD_INLINE) {
			if (id_inline_take(ids, raw)) { /* linearization point */
				*id_out = (uint32_t)raw.w1;
				rc = VMRES_OK;
				break;
			}
			id_backoff(&spins);
			continue;
		}
		pos.seen = id_head_decode(raw, &pos.inl);
		lo = id_bounds_lo(pos.seen.w1);
		if (!id_link_node(pos.seen.w0)) {
			rc = VMRES_E_EXHAUSTED; /* linearization point */
			break;
		}
		if (pos.seen.w0 & ID_LINK_DEL) {
			id_unlink(ids, pos.pred, pos.seen, pos.inl);
			continue;
		}
		if (id_take(ids, &pos, lo, NULL)) { /* linearization point */
			*id_out = lo;
			rc = VMRES_OK;
			break;
		}
		id_backoff(&spins);
	}
	vmres__rcu_read_unlock();
	return rc;
}

int vmres_id_alloc_at(struct vmres_id_allocator *ids, uint32_t id)
{
	struct id_node *spare = NULL;
	struct id_pos pos;
	int rc;

	if (!ids)
		return VMRES_E_INVALID_ARGUMENT;
	if (!id_in_range(ids, id))
		return VMRES_E_OUT_OF_RANGE;
	vmres__rcu_read_lock();
	for (;;) {
		id_search(ids, id, &pos);
		if (id_pos_inline(&pos, id)) {
			/* Full barrier; fails if the head changed since the search's
			 * last load of it (a concurrent alloc may have taken id). */
			if (id_link_cas(ids, pos.pred, pos.seen, pos.inl, id_inline_taken(&pos),
					0)) { /* linearization point */
				rc = VMRES_OK;
				break;
			}
			continue;
		}
		if (!id_pos_holds(&pos, id)) {
			rc = VMRES_E_IN_USE; /* linearization point: the last load */
			break;
		}
		if (id_bounds_lo(pos.seen.w1) < id && !spare) {
			/* A split or a take at hi: the new node holds [lo, id - 1]. */
			spare = vmres__id_node_alloc(ids, id - 1, true);
			if (!spare) {
				rc = VMRES_E_NOMEM;
				break;
			}
		}
		if (id_take(ids, &pos, id, &spare)) { /* linearization point */
			rc = VMRES_OK;
			break;
		}
	}
	vmres__rcu_read_unlock();
	if (spare)
		vmres__id_node_discard(ids, spare); /* never published */
	return rc;
}

int vmres_id_free(struct vmres_id_allocator *ids, uint32_t id)
{
	struct id_node *spare = NULL;
	unsigned int spins = 0;
	bool lost = false;
	struct id_pos pos;
	int rc;

	if (!ids)
		return VMRES_E_INVALID_ARGUMENT;
	if (!id_in_range(ids, id))
		return VMRES_E_OUT_OF_RANGE;
	if (id_free_front(ids, id, &lost))
		return VMRES_OK;
	if (lost)
		id_backoff(&spins);
	vmres__rcu_read_lock();
	for (;;) {
		bool at_head;
		uint32_t key, want_inl;
		struct vmres__pair want;

		id_search(ids, id, &pos);
		if (id_pos_inline(&pos, id)) { /* linearization point: the last load */
			rc = VMRES_E_ALREADY_FREED;
			break;
		}
		if (id_pos_holds(&pos, id)) { /* linearization point: the last load */
			rc = (pos.seen.w0 & ID_LINK_NEVER) ? VMRES_E_NEVER_ALLOCATED
							   : VMRES_E_ALREADY_FREED;
			break;
		}
		at_head = pos.pred == &ids->head;
		want_inl = pos.inl;
		if (id_merges_down(pos.seen, id)) {
			/* Keeps invariant 3 (lo falls, hi stays); an inline ID is
			 * below id, as id + 1 is the lo it lowers (invariant 12). */
			want = (struct vmres__pair){
				pos.seen.w0, id_bounds_make(id, id_bounds_hi(pos.seen.w1))
			};
		} else if (at_head && !(pos.seen.w0 & ID_HEAD_INLINE)) {
			/* In front of every interval: id becomes the inline ID. */
			want = (struct vmres__pair){ pos.seen.w0 | ID_HEAD_INLINE, pos.seen.w1 };
			want_inl = id;
		} else if (at_head && id < pos.inl && id_merges_down(pos.seen, pos.inl)) {
			/* id goes inline; the old inline ID joins the interval after it. */
			want = (struct vmres__pair){
				pos.seen.w0, id_bounds_make(pos.inl, id_bounds_hi(pos.seen.w1))
			};
			want_inl = id;
		} else {
			/* A node N: [id, id], or, if id goes inline in front of the
			 * old inline ID u, [u, u] (keeps invariants 2 and 12). */
			key = at_head && id < pos.inl ? pos.inl : id;
			if (spare && spare->key != key) {
				vmres__id_node_discard(ids, spare); /* another race's shape */
				spare = NULL;
			}
			if (!spare) {
				spare = vmres__id_node_alloc(ids, key, true);
				if (!spare) {
					rc = VMRES_E_NOMEM;
					break;
				}
			}
			/* N is private until the CAS publishes it (release in the CAS). */
			spare->link =
				(struct vmres__pair){ pos.seen.w0 & ~ID_HEAD_INLINE, pos.seen.w1 };
			want = (struct vmres__pair){ (uint64_t)(uintptr_t)spare |
							     (pos.seen.w0 & ID_HEAD_INLINE),
						     id_bounds_make(key, key) };
			if (key != id)
				want_inl = id;
		}
		/* Full barrier; keeps invariant 2 (P's interval < id < the next one). */
		if (id_link_cas(ids, pos.pred, pos.seen, pos.inl, want,
				want_inl)) { /* linearization point */
			if (spare && id_link_node(want.w0) == spare) {
				vmres__id_index_insert(ids, spare);
				spare = NULL;
			}
			rc = VMRES_OK;
			break;
		}
		id_backoff(&spins);
	}
	vmres__rcu_read_unlock();
	if (spare)
		vmres__id_node_discard(ids, spare); /* never published */
	return rc;
}

bool vmres_id_is_allocated(struct vmres_id_allocator *ids, uint32_t id)
{
	struct id_pos pos;

	if (!ids || !id_in_range(ids, id))
		return false;
	vmres__rcu_read_lock();
	id_search(ids, id, &pos); /* linearization point: its last load */
	vmres__rcu_read_unlock();
	return !id_pos_inline(&pos, id) && !id_pos_holds(&pos, id);
}
