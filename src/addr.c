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
 *   pointer. The loser of a race frees what it built (nobody saw it) and
 *   starts again from the new version; the winner hands the old version,
 *   with the list of its nodes the new tree no longer reaches, to call_rcu,
 *   which frees them once every reader that could see them has left.
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
 *   7. A node or version is freed only after a grace period that began
 *      after it stopped being reachable from the published pointer, or,
 *      never having been published, by the writer that built it.
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
 *   array of nodes its successor dropped (invariant 6 sizes the array) and
 *   the callback frees them and the version together. destroy() waits with
 *   vmres__rcu_barrier() for every queued callback, then frees the tree.
 */
#include <string.h>

#include <vmres/addr.h>

#include "internal/addr_node.h"
#include "internal/addr_tree.h"
#include "internal/mem.h"

static size_t version_size(uint32_t retire_cap)
{
	return sizeof(struct addr_version) + (size_t)retire_cap * sizeof(struct addr_node *);
}

static struct addr_version *version_new(const struct vmres_mem_ops *mem, struct addr_node *root)
{
	/* keeps invariant 6 */
	uint32_t cap = VMRES__ADDR_RETIRE_BOUND(vmres__addr_node_height(root));
	struct addr_version *v = vmres__mem_alloc(mem, version_size(cap));

	if (!v)
		return NULL;
	memset(v, 0, sizeof(*v));
	v->root = root;
	v->mem = mem;
	v->retire_cap = cap;
	return v;
}

static void version_free(struct addr_version *v)
{
	vmres__mem_free(v->mem, v, version_size(v->retire_cap));
}

static void reclaim_version(struct rcu_head *head)
{
	struct addr_version *v;

	vmres__rcu_callback_enter(); /* pairs with every reader's unlock (TSAN) */
	v = caa_container_of(head, struct addr_version, rcu);
	for (uint32_t i = 0; i < v->retire_count; i++)
		vmres__mem_free(v->mem, v->retired[i], sizeof(struct addr_node));
	version_free(v);	    /* keeps invariant 7 */
	vmres__rcu_callback_exit(); /* pairs with destroy's vmres__rcu_barrier() (TSAN) */
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
	a->version = version_new(&a->mem, NULL);
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
	struct vmres_mem_ops ops;

	if (!a)
		return;
	/* Every version replaced so far is queued: let the callbacks run first. */
	vmres__rcu_barrier();
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
	/* keeps invariant 7: fresh nodes were never published */
	for (unsigned i = 0; i < b->n_fresh; i++)
		vmres__mem_free(b->mem, b->fresh[i], sizeof(struct addr_node));
	b->n_fresh = 0;
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
	struct addr_version *nv;
	uint64_t size = c->end - c->start + 1; /* modulo 2^64: invariant 2 */

	if (b->nomem) {
		build_abandon(b);
		return VMRES_E_NOMEM;
	}
	nv = version_new(&a->mem, root);
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
		version_free(nv);
		build_abandon(b);
		return 0;
	}
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

/* The lock-free update loop shared by alloc and free. */
static int update(struct vmres_addr_allocator *a, const struct vmres_addr_request *req,
		  const struct vmres_range *to_free, struct vmres_range *out)
{
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
			b.mem = &a->mem;
			b.n_fresh = b.n_replaced = 0;
			b.replace_cap = v->retire_cap;
			b.nomem = false;
			rc = try_publish(a, v, &c, &b);
		}
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

/* Argument errors, in the documented order; none depends on the tree. */
static int alloc_validate(const struct vmres_addr_allocator *a,
			  const struct vmres_addr_request *req)
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
	if (req->addr < a->first || req->addr > a->last || req->size - 1 > a->last - req->addr)
		return VMRES_E_OUT_OF_RANGE;
	return VMRES_OK;
}

int vmres_addr_alloc(struct vmres_addr_allocator *a, const struct vmres_addr_request *req,
		     struct vmres_range *out)
{
	int rc;

	if (!a || !req || !out)
		return VMRES_E_INVALID_ARGUMENT;
	rc = alloc_validate(a, req);
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
