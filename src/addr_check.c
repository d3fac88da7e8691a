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

/*
 * What a subtree's augmented fields must be, computed from its ranges
 * themselves, bottom-up, and not with vmres__addr_node_update(): a bug in
 * that function would otherwise check itself and pass.
 */
struct subtree {
	unsigned height;
	uint64_t min_start, max_end, gap_max;
};

static struct subtree check_tree(struct check *c, const struct addr_node *n)
{
	struct subtree t = { 0, 0, 0, 0 }, l, r;

	if (!n)
		return t;
	l = check_tree(c, n->left);
	check_range(c, n);
	r = check_tree(c, n->right);
	t.height = 1 + (l.height > r.height ? l.height : r.height);
	t.min_start = n->left ? l.min_start : n->start;
	t.max_end = n->right ? r.max_end : n->end;
	/* The largest hole between two neighbouring ranges of the subtree. */
	t.gap_max = vmres__u64_max(l.gap_max, r.gap_max);
	if (n->left && l.max_end < n->start)
		t.gap_max = vmres__u64_max(t.gap_max, n->start - l.max_end - 1);
	if (n->right && n->end < r.min_start)
		t.gap_max = vmres__u64_max(t.gap_max, r.min_start - n->end - 1);
	if (t.height != n->height)
		fail(c, 3, n, "stored height differs from the subtree's");
	if (l.height > r.height + 1 || r.height > l.height + 1)
		fail(c, 3, n, "AVL balance");
	if (n->height >= VMRES__ADDR_MAX_HEIGHT)
		fail(c, 3, n, "height over the stack bound");
	if (t.min_start != n->min_start || t.max_end != n->max_end)
		fail(c, 4, n, "min_start/max_end");
	if (t.gap_max != n->gap_max)
		fail(c, 4, n, "gap_max");
	if (n->fresh)
		fail(c, 5, n, "published node still marked fresh");
	return t;
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
	(void)check_tree(&c, v->root);
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
