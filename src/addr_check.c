/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The address allocator's invariant checker (invariants 1-6 of src/addr.c),
 * for tests. Recursion bounded by the tree height; no allocation.
 */
#include <inttypes.h>
#include <stdio.h>

#include "internal/addr_node.h"
#include "internal/addr_tree.h"

struct check {
	const struct vmres_addr_allocator *a;
	bool have_prev;
	uint64_t prev_end;
	uint64_t count;
	uint64_t bytes;
	int broken;
};

static void fail(struct check *c, int inv, const struct addr_node *n, const char *what)
{
	if (c->broken)
		return;
	c->broken = inv;
	fprintf(stderr, "addr invariant %d broken at [%#" PRIx64 ", %#" PRIx64 "]: %s\n", inv,
		n ? n->start : 0, n ? n->end : 0, what);
}

static void check_node_fields(struct check *c, const struct addr_node *n)
{
	struct addr_node copy = *n;

	vmres__addr_node_update(&copy);
	if (copy.height != n->height)
		fail(c, 3, n, "stored height differs from the children's");
	if (vmres__addr_node_height(n->left) > vmres__addr_node_height(n->right) + 1 ||
	    vmres__addr_node_height(n->right) > vmres__addr_node_height(n->left) + 1)
		fail(c, 3, n, "AVL balance");
	if (n->height >= VMRES__ADDR_MAX_HEIGHT)
		fail(c, 3, n, "height over the stack bound");
	if (copy.min_start != n->min_start || copy.max_end != n->max_end)
		fail(c, 4, n, "min_start/max_end");
	if (copy.gap_max != n->gap_max)
		fail(c, 4, n, "gap_max");
	if (n->fresh)
		fail(c, 5, n, "published node still marked fresh");
}

static void check_range(struct check *c, const struct addr_node *n)
{
	if (n->start > n->end)
		fail(c, 1, n, "start > end");
	if (n->start < c->a->first || n->end > c->a->last)
		fail(c, 1, n, "outside the span");
	if (c->have_prev && n->start <= c->prev_end)
		fail(c, 1, n, "overlaps or precedes its predecessor");
	c->have_prev = true;
	c->prev_end = n->end;
	c->count++;
	c->bytes += n->end - n->start + 1;
}

static void check_tree(struct check *c, const struct addr_node *n)
{
	if (!n)
		return;
	check_tree(c, n->left);
	check_range(c, n);
	check_node_fields(c, n);
	check_tree(c, n->right);
}

int vmres__addr_check(struct vmres_addr_allocator *a)
{
	const struct addr_version *v;
	struct check c = { .a = a };

	if (!a)
		return -1;
	vmres__rcu_read_lock();
	/* Pairs with the publishing CAS in addr.c: the tree is initialised. */
	v = vmres__rcu_dereference(a->version);
	check_tree(&c, v->root);
	if (c.count != v->ranges || c.bytes != v->bytes)
		fail(&c, 2, NULL, "version totals");
	if (v->retire_cap < VMRES__ADDR_RETIRE_BOUND(vmres__addr_node_height(v->root)))
		fail(&c, 6, NULL, "retire capacity below the bound");
	vmres__rcu_read_unlock();
	return c.broken;
}

unsigned vmres__addr_height(struct vmres_addr_allocator *a)
{
	unsigned h;

	vmres__rcu_read_lock();
	/* Pairs with the publishing CAS in addr.c. */
	h = vmres__addr_node_height(vmres__rcu_dereference(a->version)->root);
	vmres__rcu_read_unlock();
	return h;
}

size_t vmres__addr_node_size(void)
{
	return sizeof(struct addr_node);
}
