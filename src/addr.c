/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * RCU address allocator: a persistent, augmented AVL tree of the allocated
 * ranges, updated copy-on-write and published with one compare-and-swap.
 *
 * Algorithm
 *   The allocator holds one RCU-protected pointer to a "version" (struct
 *   addr_version, src/internal/addr_node.h): the root of an AVL tree of the
 *   allocated ranges keyed by start, plus the range count and byte total.
 *   Free space is implicit: the gaps between ranges and the span's edges.
 *   Every node also stores its subtree's lowest start, highest end and
 *   largest inner gap, so a fit search prunes every subtree without a long
 *   enough gap and descends in O(log n) (src/addr_fit.c).
 *   Readers (lookup, foreach, stats) enter an RCU read-side critical
 *   section, load the version pointer once and walk that tree: it never
 *   changes under them. Writers (alloc, free) read the current version under
 *   RCU, check the request against it, then build the new tree by copying
 *   the root-to-leaf path they change (and the few nodes a rotation moves):
 *   src/addr_tree.c. They publish a new version with a CAS on the version
 *   pointer. The loser of a race gives back what it built (nobody saw it)
 *   and starts again from the new version; the winner hands the old
 *   version, with the list of its nodes the new tree no longer reaches, to
 *   call_rcu, whose callback pools or frees them once every reader that
 *   could see them has left ("Reclamation", "Pool" below).
 *
 *   Why AVL: a persistent tree must copy every node it changes, so the tree
 *   with the shortest paths and the fewest nodes touched per update wins. AVL
 *   height is <= 1.44 log2(n+2) (red-black: 2 log2(n+1)), its insert touches
 *   only the search path and its rebalancing is local (at most 3 nodes per
 *   level), and its balance data is a height the augmentation recomputes
 *   anyway. Red-black recolouring walks up sibling paths (more copies);
 *   weight balance needs subtree sizes and rebuilds larger pieces.
 *
 * References
 *   Driscoll, Sarnak, Sleator, Tarjan: "Making data structures persistent"
 *   (1989) for path copying; Cormen et al., ch. 14 "Augmenting data
 *   structures"; Linux mm/vmalloc.c (subtree_max_size, augmented rbtree
 *   first fit); McKenney, "Is Parallel Programming Hard", ch. 9 (RCU);
 *   Clements, Kaashoek, Zeldovich: "Scalable address spaces using RCU
 *   balanced trees" (ASPLOS 2012).
 *
 * Invariants (vmres__addr_check() verifies 1-6; code names them)
 *   1. Ranges are disjoint, lie inside [first, last], and an in-order walk
 *      meets them sorted by start (BST order on start).
 *   2. version->ranges is the node count, version->bytes the sum of
 *      end - start + 1 modulo 2^64.
 *   3. Every node's height is 1 + the max of its children's, and the two
 *      differ by at most 1 (AVL); the height stays < VMRES__ADDR_MAX_HEIGHT.
 *   4. min_start, max_end and gap_max are those of the node's subtree
 *      (recomputed from the children by vmres__addr_node_update()).
 *   5. A node or version reachable from the published pointer is never
 *      written again (except a version's writer-only retire fields, by the
 *      one writer that replaced it); writers change only "fresh" nodes that
 *      they allocated in this attempt, and clear "fresh" before publishing.
 *   6. version->retire_cap >= VMRES__ADDR_RETIRE_BOUND(root height): room
 *      for every node the next update can make unreachable ("retire bound":
 *      an update copies or drops at most one node per level on its path,
 *      insert and remove both follow one root-to-leaf path, plus at most a
 *      sibling and its inner child per level for rotations).
 *   7. A node or version is freed or pooled only after a grace period that
 *      began after it stopped being reachable from the published pointer,
 *      or, never having been published, by the writer that built it (or
 *      back into the spare it came from).
 *   8. Pool: a spare is pushed only by reclaim_version(), after a grace
 *      period that began after the spare was last popped (or replaced as a
 *      version); pops run inside a read-side critical section. So a popper
 *      that read top == S keeps S from coming back until it leaves its
 *      section: its CAS succeeds only if S was never popped meanwhile, and
 *      the S->pool_next it read is current (no ABA). A spare's memory is
 *      freed only by a callback or by destroy, never while in the pool.
 *
 * Linearization points
 *   alloc/free success: the successful CAS on a->version (the new version
 *   becomes visible to every reader that dereferences afterwards).
 *   alloc failure (IN_USE, EXHAUSTED), free failure (NOT_FOUND): the
 *   dereference of a->version that the failed check ran on.
 *   lookup, foreach, stats: their one dereference of a->version.
 *   Argument errors are not ordered with anything.
 *
 * No ABA on the CAS
 *   A writer compares against the version it dereferenced inside its
 *   read-side critical section; that version cannot be freed, so its address
 *   cannot be reused for a newer version, before the writer leaves the
 *   section (invariant 7). A successful CAS therefore means "nothing was
 *   published since I read v", and the tree built from v is current.
 *
 * Memory order
 *   The CAS (full barrier) orders every store into the fresh nodes and the
 *   new version before the pointer is visible; readers' dereference (an
 *   address-dependent/acquire load) pairs with it. Writers read the old tree
 *   through the same dereference. call_rcu orders the frees after the grace
 *   period (vmres__rcu_callback_enter() annotates it under TSAN).
 *
 * Reclamation
 *   One call_rcu per successful update: the replaced version carries the
 *   array of nodes its successor dropped (invariant 6 sizes the array).
 *   After the grace period the callback keeps the version, nodes inside, as
 *   a "spare" in the allocator's pool, or frees them all through the memory
 *   hook when the pool is full (VMRES__ADDR_POOL_CAP) or turned off.
 *   destroy() waits with vmres__rcu_barrier() for every queued callback,
 *   then frees the pool and the tree.
 *
 * Pool
 *   Why: with every update mallocing its path and liburcu's worker freeing
 *   the old paths on another CPU a 10 ms round at a time, a profile of a
 *   steady writer found ~5 % of its time in the tree code and the rest in
 *   glibc, futexes and page faults (docs/performance.md). A writer pops one
 *   spare (a Treiber stack [Treiber 1986], invariant 8 against ABA) once its
 *   check has passed, takes its fresh nodes from the spare before the hook,
 *   and, if the spare's room fits the new tree (invariant 6), publishes the
 *   spare itself as the new version (its leftover nodes go to the hook once
 *   the CAS succeeds, back into the spare if it fails). A
 *   spare the writer does not publish (the update failed, or the spare is
 *   too small to be a version) goes back through call_rcu with the nodes it
 *   still holds (a grace period: invariant 8); an empty, too small one is
 *   marked to be freed rather than pooled. A lost race or a failure gives
 *   the nodes taken from the spare back to it and the hook's to the hook.
 *   The system's per-kind allocators turn the pool off: their hook lends
 *   rollback-reserve blocks that must flow back (src/system_reserve.c).
 */
#include <assert.h>
#include <string.h>

#include <vmres/addr.h>

#include "internal/addr_node.h"
#include "internal/addr_tree.h"
#include "internal/mem.h"

static size_t version_size(uint32_t retire_cap)
{
	return sizeof(struct addr_version) + (size_t)retire_cap * sizeof(struct addr_node *);
}

static struct addr_version *version_new(struct vmres_addr_allocator *a, struct addr_node *root)
{
	/* keeps invariant 6 */
	uint32_t cap = VMRES__ADDR_RETIRE_BOUND(vmres__addr_node_height(root));
	struct addr_version *v = vmres__mem_alloc(&a->mem, version_size(cap));

	if (!v)
		return NULL;
	memset(v, 0, sizeof(*v));
	v->root = root;
	v->owner = a;
	v->retire_cap = cap;
	return v;
}

static void version_free(struct addr_version *v)
{
	vmres__mem_free(&v->owner->mem, v, version_size(v->retire_cap));
}

/* A version no reader or popper can reach, with the nodes it holds. */
static void version_free_all(struct addr_version *v)
{
	for (uint32_t i = 0; i < v->retire_count; i++)
		vmres__mem_free(&v->owner->mem, v->retired[i], sizeof(struct addr_node));
	version_free(v);
}

/* What a spare weighs against VMRES__ADDR_POOL_CAP: its nodes and its own
 * block, counted in nodes. Fixed while the spare is pooled. */
static uint64_t spare_units(const struct addr_version *v)
{
	return (uint64_t)v->retire_count + (version_size(v->retire_cap) + sizeof(struct addr_node) -
					    1) / sizeof(struct addr_node);
}

/* Pushes @v as a spare unless the pool is off or full. In a callback only. */
static bool pool_put(struct vmres_addr_allocator *a, struct addr_version *v)
{
	if (a->pool_off || v->discard) /* pool_off: constant once @a is shared */
		return false;
	if (!vmres__rcu_stack_reserve(&a->pool, spare_units(v), VMRES__ADDR_POOL_CAP))
		return false;
	/* v alone is the chain; the push publishes its retired[] too. */
	vmres__rcu_stack_push(&a->pool, (uintptr_t)v, &v->pool_next);
	return true;
}

/* Pops a spare, or NULL. Inside a read-side critical section (invariant 8). */
static struct addr_version *pool_take(struct vmres_addr_allocator *a)
{
	struct addr_version *s;

	if (a->pool_off)
		return NULL;
	s = (struct addr_version *)vmres__rcu_stack_pop(&a->pool,
							offsetof(struct addr_version, pool_next));
	if (s) {
		/* A pop outside a section could meet a spare that came back (ABA). */
		assert(vmres__rcu_read_ongoing());
		vmres__rcu_stack_unreserve(&a->pool, spare_units(s)); /* s is ours */
	}
	return s;
}

static void reclaim_version(struct rcu_head *head)
{
	struct addr_version *v;

	vmres__rcu_callback_enter(); /* pairs with every reader's unlock (TSAN) */
	v = caa_container_of(head, struct addr_version, rcu);
	if (!pool_put(v->owner, v)) /* keeps invariants 7 and 8 */
		version_free_all(v);
	vmres__rcu_callback_exit(); /* pairs with destroy's vmres__rcu_barrier() (TSAN) */
}

uint64_t vmres__addr_pool_drain(struct vmres_addr_allocator *a)
{
	uint64_t blocks = 0;
	struct addr_version *s;

	/*
	 * No other call runs (documented): nobody else pops, so no pop here can
	 * meet a spare that came back (no ABA) and none needs a read-side
	 * section, which an offline qsbr thread calling destroy could not be in.
	 * Callbacks still queued may push meanwhile; destroy drains after its
	 * barrier.
	 */
	while ((s = (struct addr_version *)vmres__rcu_stack_pop(
			&a->pool, offsetof(struct addr_version, pool_next))) != NULL) {
		vmres__rcu_stack_unreserve(&a->pool, spare_units(s)); /* s is ours */
		blocks += (uint64_t)s->retire_count + 1;
		version_free_all(s);
	}
	return blocks;
}

void vmres__addr_pool_disable(struct vmres_addr_allocator *a)
{
	a->pool_off = true; /* before @a is shared; whatever shares it orders it */
}

/* Post-order, recursion bounded by the height (invariant 3). */
static void tree_free(const struct vmres_mem_ops *mem, struct addr_node *n)
{
	if (!n)
		return;
	tree_free(mem, n->left);
	tree_free(mem, n->right);
	vmres__mem_free(mem, n, sizeof(*n));
}

int vmres_addr_allocator_create_ex(uint64_t first, uint64_t last, const struct vmres_mem_ops *mem,
				   struct vmres_addr_allocator **out)
{
	struct vmres_mem_ops ops;
	struct vmres_addr_allocator *a;
	int rc;

	if (!out)
		return VMRES_E_INVALID_ARGUMENT;
	rc = vmres__mem_resolve(mem, &ops);
	if (rc)
		return rc;
	if (first > last)
		return VMRES_E_INVALID_RANGE;
	a = vmres__mem_alloc(&ops, sizeof(*a));
	if (!a)
		return VMRES_E_NOMEM;
	memset(a, 0, sizeof(*a));
	a->first = first;
	a->last = last;
	a->mem = ops;
	a->version = version_new(a, NULL);
	if (!a->version) {
		vmres__mem_free(&ops, a, sizeof(*a));
		return VMRES_E_NOMEM;
	}
	/* Writers retire through call_rcu: start its worker here, not mid-update. */
	vmres__rcu_prepare_callbacks();
	*out = a;
	return VMRES_OK;
}

int vmres_addr_allocator_create(uint64_t first, uint64_t last, struct vmres_addr_allocator **out)
{
	return vmres_addr_allocator_create_ex(first, last, NULL, out);
}

void vmres_addr_allocator_destroy(struct vmres_addr_allocator *a)
{
	if (!a)
		return;
	/* Every version replaced so far is queued: let the callbacks run first. */
	vmres__rcu_barrier();
	vmres__addr_allocator_free(a);
}

void vmres__addr_allocator_free(struct vmres_addr_allocator *a)
{
	struct vmres_mem_ops ops;

	if (!a)
		return;
	vmres__addr_pool_drain(a);
	tree_free(&a->mem, a->version->root);
	version_free(a->version);
	ops = a->mem;
	vmres__mem_free(&ops, a, sizeof(*a));
}

/* --- writers ------------------------------------------------------------- */

/* What a writer's check decided, and what to build. */
struct addr_change {
	bool insert;
	uint64_t start;
	uint64_t end;
	uint64_t tag;
};

static void build_abandon(struct addr_build *b)
{
	/* keeps invariant 7: fresh nodes were never published; the first
	 * from_spare came from the spare (vmres__addr_node_new()) and go back */
	for (unsigned i = 0; i < b->n_fresh; i++) {
		if (i < b->from_spare && b->spare->retire_count < b->spare->retire_cap)
			b->spare->retired[b->spare->retire_count++] = b->fresh[i];
		else
			vmres__mem_free(b->mem, b->fresh[i], sizeof(struct addr_node));
	}
	b->n_fresh = 0;
	b->from_spare = 0;
}

/*
 * The new version's memory: the spare itself when its room fits @root
 * (invariant 6), else the hook's. The spare's leftover nodes move to
 * b->leftover: freed once the CAS publishes (publish_done()), put back if it
 * fails (version_untake()), so a call that then fails returns to the hook
 * only what it got from it.
 */
static struct addr_version *version_take(struct vmres_addr_allocator *a, struct addr_build *b,
					 struct addr_node *root)
{
	struct addr_version *s = b->spare;

	if (!s || s->retire_cap < VMRES__ADDR_RETIRE_BOUND(vmres__addr_node_height(root)))
		return version_new(a, root);
	/* retire_count <= retire_cap <= VMRES__ADDR_BUILD_MAX: it fits */
	memcpy(b->leftover, s->retired, s->retire_count * sizeof(s->retired[0]));
	b->n_leftover = s->retire_count;
	s->retire_count = 0;
	/* Private to this writer; pool_next is left alone (invariant 8). */
	s->root = root;
	s->ranges = 0;
	s->bytes = 0;
	s->discard = false;
	b->spare = NULL;
	return s;
}

/* The new version was not published: back to the hook, or to being the
 * spare with its leftover nodes (build_abandon() then refills the rest). */
static void version_untake(struct addr_build *b, struct addr_version *nv, bool was_spare)
{
	if (!was_spare) {
		version_free(nv);
		return;
	}
	memcpy(nv->retired, b->leftover, b->n_leftover * sizeof(b->leftover[0]));
	nv->retire_count = b->n_leftover;
	b->n_leftover = 0;
	b->spare = nv;
}

/* The spare became the published version: its leftover nodes go to the hook. */
static void publish_done(struct addr_build *b)
{
	while (b->n_leftover)
		vmres__mem_free(b->mem, b->leftover[--b->n_leftover], sizeof(struct addr_node));
}

static struct addr_node *build_tree(struct addr_build *b, const struct addr_version *v,
				    const struct addr_change *c)
{
	struct addr_node *leaf;

	if (!c->insert)
		return vmres__addr_tree_remove(b, v->root, c->start);
	if (vmres__addr_node_height(v->root) >= VMRES__ADDR_MAX_HEIGHT - 1) {
		b->nomem = true; /* keeps invariant 3: the stacks are bounded */
		return NULL;
	}
	leaf = vmres__addr_node_new(b);
	if (!leaf)
		return NULL;
	leaf->start = c->start;
	leaf->end = c->end;
	leaf->tag = c->tag;
	leaf->fresh = 1;
	return vmres__addr_tree_insert(b, v->root, leaf);
}

/*
 * One attempt to replace @v by a new version with change @c applied. Inside a read-side
 * critical section. Return: 1 published, 0 lost the race (retry), or
 * VMRES_E_NOMEM with nothing published.
 */
static int try_publish(struct vmres_addr_allocator *a, struct addr_version *v,
		       const struct addr_change *c, struct addr_build *b)
{
	struct addr_node *root = build_tree(b, v, c);
	struct addr_version *nv, *spare = b->spare;
	uint64_t size = c->end - c->start + 1; /* modulo 2^64: invariant 2 */

	if (b->nomem) {
		build_abandon(b);
		return VMRES_E_NOMEM;
	}
	nv = version_take(a, b, root);
	if (!nv) {
		build_abandon(b);
		return VMRES_E_NOMEM;
	}
	nv->ranges = c->insert ? v->ranges + 1 : v->ranges - 1;
	nv->bytes = c->insert ? v->bytes + size : v->bytes - size;
	for (unsigned i = 0; i < b->n_fresh; i++)
		b->fresh[i]->fresh = 0; /* keeps invariant 5: immutable from now on */
	/*
	 * Linearization point. Full barrier: orders the node and version stores
	 * above before the new pointer is visible; pairs with the
	 * vmres__rcu_dereference() of readers and of other writers.
	 */
	if (!vmres__rcu_cmpxchg(&a->version, v, nv)) {
		version_untake(b, nv, nv == spare);
		build_abandon(b);
		return 0;
	}
	publish_done(b);
	/* Only the CAS winner writes v's retire fields (invariant 5); keeps 6. */
	memcpy(v->retired, b->replaced, b->n_replaced * sizeof(b->replaced[0]));
	v->retire_count = b->n_replaced;
	vmres__call_rcu(&v->rcu, reclaim_version); /* keeps invariant 7 */
	return 1;
}

/* Decide the change an alloc makes against @v (no allocation, no store). */
static int alloc_check(const struct vmres_addr_allocator *a, const struct addr_version *v,
		       const struct vmres_addr_request *req, struct addr_change *c)
{
	const struct addr_node *prev;
	uint64_t start;

	if (req->policy == VMRES_EXACT_MATCH) {
		start = req->addr;
		prev = vmres__addr_find_le(v->root, req->addr + (req->size - 1));
		if (prev && prev->end >= req->addr)
			return VMRES_E_IN_USE;
	} else if (!vmres__addr_fit(v->root, a->first, a->last, req->size, req->align, req->policy,
				    &start)) {
		return VMRES_E_EXHAUSTED;
	}
	*c = (struct addr_change){ true, start, start + (req->size - 1), req->tag };
	return VMRES_OK;
}

static int free_check(const struct addr_version *v, struct vmres_range r, struct addr_change *c)
{
	const struct addr_node *n = vmres__addr_find_le(v->root, r.start);

	if (!n || n->start != r.start || n->end != r.end)
		return VMRES_E_NOT_FOUND;
	*c = (struct addr_change){ false, r.start, r.end, 0 };
	return VMRES_OK;
}

/*
 * Gives back a spare this writer did not publish: after a grace period
 * (invariant 8), to the pool with the nodes it holds, or, empty and too
 * small to become a version of a tree of @height, to the hook.
 */
static void spare_release(struct addr_version *s, unsigned height)
{
	s->discard = !s->retire_count && s->retire_cap < VMRES__ADDR_RETIRE_BOUND(height);
	vmres__call_rcu(&s->rcu, reclaim_version);
}

/* The lock-free update loop shared by alloc and free. */
static int update(struct vmres_addr_allocator *a, const struct vmres_addr_request *req,
		  const struct vmres_range *to_free, struct vmres_range *out)
{
	struct addr_version *spare = NULL;
	struct addr_build b;
	struct addr_change c;
	struct addr_version *v;
	int rc;

	for (;;) {
		vmres__rcu_read_lock();
		/* Pairs with the CAS that published v: its tree is initialised. */
		v = vmres__rcu_dereference(a->version);
		rc = req ? alloc_check(a, v, req, &c) : free_check(v, *to_free, &c);
		if (rc == VMRES_OK) {
			if (!spare)
				spare = pool_take(a); /* in the section: invariant 8 */
			b.mem = &a->mem;
			b.spare = spare;
			b.from_spare = 0;
			b.n_leftover = 0;
			b.n_fresh = b.n_replaced = 0;
			b.replace_cap = v->retire_cap;
			b.nomem = false;
			rc = try_publish(a, v, &c, &b);
			spare = b.spare; /* NULL once published as the new version */
		}
		if (rc != 0 && spare) /* done with it; in the section (TSAN's view of call_rcu) */
			spare_release(spare, vmres__addr_node_height(v->root));
		vmres__rcu_read_unlock();
		if (rc != 0)
			break; /* published (1) or failed (< 0) */
	}
	if (rc < 0)
		return rc;
	if (out)
		*out = (struct vmres_range){ c.start, c.end };
	return VMRES_OK;
}

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

int vmres__addr_validate(uint64_t first, uint64_t last, const struct vmres_addr_request *req)
{
	if (req->size == 0)
		return VMRES_E_INVALID_SIZE;
	if (!is_pow2(req->align))
		return VMRES_E_INVALID_ALIGNMENT;
	if (req->policy != VMRES_FIRST_MATCH && req->policy != VMRES_LAST_MATCH &&
	    req->policy != VMRES_EXACT_MATCH)
		return VMRES_E_INVALID_ARGUMENT;
	if (req->policy != VMRES_EXACT_MATCH)
		return VMRES_OK;
	if (req->addr & (req->align - 1))
		return VMRES_E_UNALIGNED_ADDRESS;
	/* [addr, addr + size - 1] inside [first, last], without wrapping */
	if (req->addr < first || req->addr > last || req->size - 1 > last - req->addr)
		return VMRES_E_OUT_OF_RANGE;
	return VMRES_OK;
}

int vmres_addr_alloc(struct vmres_addr_allocator *a, const struct vmres_addr_request *req,
		     struct vmres_range *out)
{
	int rc;

	if (!a || !req || !out)
		return VMRES_E_INVALID_ARGUMENT;
	rc = vmres__addr_validate(a->first, a->last, req);
	if (rc)
		return rc;
	return update(a, req, NULL, out);
}

int vmres_addr_free(struct vmres_addr_allocator *a, struct vmres_range r)
{
	if (!a)
		return VMRES_E_INVALID_ARGUMENT;
	if (r.start > r.end)
		return VMRES_E_INVALID_RANGE;
	return update(a, NULL, &r, NULL);
}
