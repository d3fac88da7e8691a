/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The copy-on-write AVL tree of the address allocator (src/addr_tree.c), on
 * its worst cases: minimal AVL trees (Fibonacci trees, every inner node
 * leaning the same way), where a remove rotates at many levels. For every
 * range of every such tree up to height 16, one remove and one insert next
 * to it are built against the published version exactly as a writer builds
 * them, and the nodes they make unreachable are counted against the retire
 * bound (invariant 6 of src/addr.c): room the replaced version must have.
 * The public path is checked too: freeing and reallocating every range of
 * those trees in turn never fails (a bound violation would read
 * VMRES_E_NOMEM), and leaves a valid tree (checked after each remove for
 * the smaller trees, after every seventh in the larger).
 */
#include "vmres_test.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal/addr_node.h"
#include "internal/addr_tree.h"
#include "internal/mem.h"

#define MAX_H 16
#define CHECK_EVERY_H 13
#define CHECK_STRIDE 7 /* prime: the sampled ranges fall at every depth */

struct fib_node {
	uint64_t key;
	unsigned depth;
};

/*
 * Minimal AVL tree of height @h over keys base.. in order; appends its nodes.
 * Every inner node leans: to the left if @lean_left. With @zigzag the
 * children lean the other way, so a remove on the short side needs a double
 * rotation (copying the sibling and its inner child) at every level.
 */
static uint64_t fib_shape(unsigned h, bool lean_left, bool zigzag, uint64_t base, unsigned depth,
			  struct fib_node *out, size_t *n)
{
	unsigned hl = h - 1, hr = h - 2 + (h == 1);
	bool child = zigzag ? !lean_left : lean_left;
	uint64_t left;

	if (h == 0)
		return 0;
	if (!lean_left) {
		hl = hr;
		hr = h - 1;
	}
	left = fib_shape(hl, child, zigzag, base, depth + 1, out, n);
	out[(*n)++] = (struct fib_node){ base + left, depth };
	return left + 1 + fib_shape(hr, child, zigzag, base + left + 1, depth + 1, out, n);
}

static int by_depth(const void *x, const void *y)
{
	const struct fib_node *a = x, *b = y;

	return a->depth != b->depth ? (a->depth > b->depth) - (a->depth < b->depth)
				    : (a->key > b->key) - (a->key < b->key);
}

/* Range of key k: [4k + 8, 4k + 9]; the gaps between them are 2 bytes. */
static struct vmres_range key_range(uint64_t k)
{
	return (struct vmres_range){ 4 * k + 8, 4 * k + 9 };
}

/* One writer attempt on the published version, abandoned; returns nodes replaced. */
static unsigned build_once(struct vmres_addr_allocator *a, bool insert, uint64_t start)
{
	struct addr_build *b = calloc(1, sizeof(*b));
	struct addr_version *v;
	unsigned replaced;

	assert_non_null(b);
	vmres__rcu_read_lock();
	v = vmres__rcu_dereference(a->version);
	b->mem = &a->mem;
	b->replace_cap = v->retire_cap;
	if (insert) {
		struct addr_node *leaf = vmres__addr_node_new(b);

		assert_non_null(leaf);
		leaf->start = start;
		leaf->end = start;
		vmres__addr_tree_insert(b, v->root, leaf);
	} else {
		vmres__addr_tree_remove(b, v->root, start);
	}
	assert_false(b->nomem);
	assert_true(b->n_replaced <= VMRES__ADDR_RETIRE_BOUND(vmres__addr_node_height(v->root)));
	assert_true(b->n_fresh <= VMRES__ADDR_BUILD_MAX);
	replaced = b->n_replaced;
	for (unsigned i = 0; i < b->n_fresh; i++)
		vmres__mem_free(b->mem, b->fresh[i], sizeof(struct addr_node));
	vmres__rcu_read_unlock();
	free(b);
	return replaced;
}

/* Every range of one minimal tree: the writer's build, then the public path. */
static void check_minimal_tree(unsigned h, unsigned shape)
{
	static struct fib_node nodes[1 << 12];
	struct vmres_addr_allocator *a = NULL;
	unsigned worst_remove = 0, worst_insert = 0;
	size_t n = 0;
	struct vmres_range out;

	fib_shape(h, shape & 1, shape & 2, 0, 0, nodes, &n);
	assert_true(n < sizeof(nodes) / sizeof(nodes[0]));
	qsort(nodes, n, sizeof(nodes[0]), by_depth); /* level order: no rotation */
	assert_int_equal(vmres_addr_allocator_create(0, 8 * n + 64, &a), 0);
	for (size_t i = 0; i < n; i++) {
		struct vmres_range r = key_range(nodes[i].key);
		struct vmres_addr_request q = { 2, 1, VMRES_EXACT_MATCH, r.start, 0 };

		assert_int_equal(vmres_addr_alloc(a, &q, &out), 0);
	}
	assert_int_equal(vmres__addr_check(a), 0);
	assert_int_equal(vmres__addr_height(a), h); /* minimal: n = F(h + 2) - 1 */
	for (uint64_t k = 0; k < n; k++) {
		unsigned rm = build_once(a, false, key_range(k).start);
		unsigned in = build_once(a, true, key_range(k).start - 1);

		worst_remove = rm > worst_remove ? rm : worst_remove;
		worst_insert = in > worst_insert ? in : worst_insert;
	}
	for (uint64_t k = 0; k < n; k++) {
		struct vmres_addr_request q = { 2, 1, VMRES_EXACT_MATCH, key_range(k).start, 0 };

		/* the public path: no spurious NOMEM */
		assert_int_equal(vmres_addr_free(a, key_range(k)), 0);
		/*
		 * The whole tree after the remove: after every one up to height
		 * CHECK_EVERY_H, every CHECK_STRIDE-th above it. The check is
		 * O(n), and at heights 14-16 (1000-2600 ranges) checking every
		 * step was 94 % of the test's time (about 190 s under TSAN on
		 * a loaded 2-CPU machine).
		 */
		if (h <= CHECK_EVERY_H || k % CHECK_STRIDE == 0)
			assert_int_equal(vmres__addr_check(a), 0);
		assert_int_equal(vmres_addr_alloc(a, &q, &out), 0);
	}
	assert_int_equal(vmres__addr_check(a), 0);
	/* n ranges: no AVL tree of them is taller than the minimal one of height h. */
	assert_true(vmres__addr_height(a) <= h);
	if (h == MAX_H)
		printf("[addr] minimal AVL (%s%s), height %u, %zu ranges: a remove replaces <= %u "
		       "nodes, an insert <= %u; bound %u\n",
		       shape & 1 ? "left" : "right", shape & 2 ? ", zigzag" : "", h, n,
		       worst_remove, worst_insert, VMRES__ADDR_RETIRE_BOUND(h));
	vmres_addr_allocator_destroy(a);
}

static void test_addr_tree_retire_bound_on_minimal_avl_trees(void **state)
{
	(void)state;
	for (unsigned shape = 0; shape < 4; shape++)
		for (unsigned h = 1; h <= MAX_H; h++)
			check_minimal_tree(h, shape);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_tree_retire_bound_on_minimal_avl_trees),
	};

	return cmocka_run_group_tests(tests, vmres_test_group_setup, vmres_test_group_teardown);
}
