/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Copy-on-write (persistent) AVL insert and remove for the address allocator.
 *
 * A writer never stores into a published node (invariant 5 of src/addr.c).
 * Before it changes a node it "owns" it: a node this attempt allocated
 * (fresh) is changed in place; a published node is copied into a fresh one
 * and recorded as replaced (it becomes garbage once the new version is
 * published). Insert and remove recurse along one root-to-leaf path, so the
 * recursion is never deeper than the tree height; rebalancing happens on the
 * way back up, at fresh path nodes, copying the sibling (and its inner
 * child) a rotation needs.
 *
 * Errors: every function may set b->nomem (an allocation failed, or the
 * replace bound was reached); callers check it after each call, and the
 * caller of the top-level functions gives back every b->fresh node (to the
 * spare it came from, or to the memory hook). Published
 * nodes were never touched, so nothing needs undoing.
 *
 * The AVL algorithm is the textbook one (Adelson-Velsky & Landis 1962;
 * Knuth TAOCP vol. 3, 6.2.3); path copying is Driscoll, Sarnak, Sleator &
 * Tarjan, "Making data structures persistent" (1989).
 */
#include <string.h>

#include "internal/addr_node.h"
#include "internal/mem.h"

struct addr_node *vmres__addr_node_new(struct addr_build *b)
{
	struct addr_node *n;

	if (b->nomem || b->n_fresh >= VMRES__ADDR_BUILD_MAX) {
		b->nomem = true;
		return NULL;
	}
	if (b->spare && b->spare->retire_count && b->from_spare == b->n_fresh) {
		/* A pooled node: nobody reaches it (a grace period passed). */
		n = b->spare->retired[--b->spare->retire_count];
		b->from_spare++;
	} else {
		n = vmres__mem_alloc(b->mem, sizeof(*n));
		if (!n) {
			b->nomem = true;
			return NULL;
		}
	}
	memset(n, 0, sizeof(*n));
	n->fresh = 1;
	b->fresh[b->n_fresh++] = n;
	return n;
}

/* A node this attempt may change: @n itself if fresh, else a fresh copy. */
static struct addr_node *own(struct addr_build *b, struct addr_node *n)
{
	struct addr_node *copy;

	if (n->fresh)
		return n;
	if (b->n_replaced >= b->replace_cap) {
		b->nomem = true; /* cannot happen: see the retire bound in addr.c */
		return NULL;
	}
	copy = vmres__addr_node_new(b);
	if (!copy)
		return NULL;
	*copy = *n;
	copy->fresh = 1;
	b->replaced[b->n_replaced++] = n; /* unreachable once published */
	return copy;
}

/* Record a published node that the new version drops without a copy. */
static void drop(struct addr_build *b, struct addr_node *n)
{
	if (n->fresh)
		return; /* cannot happen: removed nodes are published ones */
	if (b->n_replaced >= b->replace_cap) {
		b->nomem = true;
		return;
	}
	b->replaced[b->n_replaced++] = n;
}

void vmres__addr_node_update(struct addr_node *n)
{
	const struct addr_node *l = n->left, *r = n->right;
	uint64_t gap = 0;
	unsigned hl = vmres__addr_node_height(l), hr = vmres__addr_node_height(r);

	n->height = (uint8_t)(1 + (hl > hr ? hl : hr));
	n->min_start = l ? l->min_start : n->start;
	n->max_end = r ? r->max_end : n->end;
	/* keeps invariant 4: l->max_end < n->start and n->end < r->min_start (1) */
	if (l)
		gap = vmres__u64_max(l->gap_max, n->start - l->max_end - 1);
	if (r)
		gap = vmres__u64_max(gap, vmres__u64_max(r->gap_max, r->min_start - n->end - 1));
	n->gap_max = gap;
}

/* @n fresh, n->left non-NULL: the left child becomes the subtree's root. */
static struct addr_node *rotate_right(struct addr_build *b, struct addr_node *n)
{
	struct addr_node *l = own(b, n->left);

	if (!l)
		return NULL;
	n->left = l->right;
	vmres__addr_node_update(n);
	l->right = n;
	vmres__addr_node_update(l);
	return l;
}

static struct addr_node *rotate_left(struct addr_build *b, struct addr_node *n)
{
	struct addr_node *r = own(b, n->right);

	if (!r)
		return NULL;
	n->right = r->left;
	vmres__addr_node_update(n);
	r->left = n;
	vmres__addr_node_update(r);
	return r;
}

static int balance_factor(const struct addr_node *n)
{
	return (int)vmres__addr_node_height(n->left) - (int)vmres__addr_node_height(n->right);
}

/*
 * Restore invariant 3 at fresh node @n whose children are balanced and differ
 * in height by at most 2; returns the subtree's new root, augmented.
 */
static struct addr_node *rebalance(struct addr_build *b, struct addr_node *n)
{
	int bf = balance_factor(n);
	struct addr_node *child;

	if (bf > 1) {
		if (balance_factor(n->left) < 0) {
			child = own(b, n->left);
			if (!child)
				return NULL;
			n->left = rotate_left(b, child);
			if (b->nomem)
				return NULL;
		}
		return rotate_right(b, n);
	}
	if (bf < -1) {
		if (balance_factor(n->right) > 0) {
			child = own(b, n->right);
			if (!child)
				return NULL;
			n->right = rotate_right(b, child);
			if (b->nomem)
				return NULL;
		}
		return rotate_left(b, n);
	}
	vmres__addr_node_update(n);
	return n;
}

/* @leaf: fresh, its range disjoint from every range in @root (checked by the caller). */
struct addr_node *vmres__addr_tree_insert(struct addr_build *b, struct addr_node *root,
					  struct addr_node *leaf)
{
	struct addr_node *n, *sub;

	if (!root) {
		vmres__addr_node_update(leaf);
		return leaf;
	}
	n = own(b, root);
	if (!n)
		return NULL;
	if (leaf->start < n->start) {
		sub = vmres__addr_tree_insert(b, n->left, leaf);
		if (b->nomem)
			return NULL;
		n->left = sub;
	} else {
		sub = vmres__addr_tree_insert(b, n->right, leaf);
		if (b->nomem)
			return NULL;
		n->right = sub;
	}
	return rebalance(b, n);
}

/* Remove the lowest node of non-empty @root; *min_out gets it (published, dropped). */
static struct addr_node *remove_min(struct addr_build *b, struct addr_node *root,
				    struct addr_node **min_out)
{
	struct addr_node *n, *sub;

	if (!root->left) {
		*min_out = root;
		drop(b, root);
		return root->right;
	}
	n = own(b, root);
	if (!n)
		return NULL;
	sub = remove_min(b, n->left, min_out);
	if (b->nomem)
		return NULL;
	n->left = sub;
	return rebalance(b, n);
}

/* The target found: splice it out, its in-order successor taking its place. */
static struct addr_node *remove_here(struct addr_build *b, struct addr_node *target)
{
	struct addr_node *succ = NULL, *right, *n;

	if (!target->left || !target->right) {
		drop(b, target);
		return target->left ? target->left : target->right;
	}
	right = remove_min(b, target->right, &succ);
	if (b->nomem)
		return NULL;
	n = own(b, target);
	if (!n)
		return NULL;
	n->start = succ->start;
	n->end = succ->end;
	n->tag = succ->tag;
	n->right = right;
	return rebalance(b, n);
}

/* @start: the start of a range in @root (checked by the caller). */
struct addr_node *vmres__addr_tree_remove(struct addr_build *b, struct addr_node *root,
					  uint64_t start)
{
	struct addr_node *n, *sub;

	if (!root) {
		b->nomem = true; /* cannot happen: the caller found the range */
		return NULL;
	}
	if (root->start == start)
		return remove_here(b, root);
	n = own(b, root);
	if (!n)
		return NULL;
	if (start < n->start) {
		sub = vmres__addr_tree_remove(b, n->left, start);
		if (b->nomem)
			return NULL;
		n->left = sub;
	} else {
		sub = vmres__addr_tree_remove(b, n->right, start);
		if (b->nomem)
			return NULL;
		n->right = sub;
	}
	return rebalance(b, n);
}
