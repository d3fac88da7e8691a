/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Read-only searches of one address-allocator tree: predecessor lookup,
 * first/last aligned fit, largest free block. They run on a published
 * (immutable) tree or on a writer's snapshot, store nothing and allocate
 * nothing, so readers stay wait-free.
 *
 * Free space is never stored: the gaps are computed from the ranges. A
 * subtree rooted at n covers a "region" [lo, hi]: lo is the end of its
 * in-order predecessor plus one (or the span's first address), hi the start
 * of its successor minus one (or the span's last address). Its free gaps are
 * the left edge [lo, n->min_start - 1], the inner gaps (the largest is
 * n->gap_max, invariant 4) and the right edge [n->max_end + 1, hi]. Because
 * every range lies inside the span and the ranges are disjoint (invariant 1),
 * lo <= n->min_start and n->max_end <= hi, so none of these computations
 * wraps, and with at least one range in the region every gap size is
 * < 2^64. Only the empty span-wide gap can be 2^64 bytes: gaps are handled as
 * inclusive [start, end] pairs and compared through "length - 1".
 *
 * Fit search (first fit; last fit is its mirror image): an in-order walk of
 * the gaps, pruning every subtree whose largest gap (inner or edge) is
 * smaller than the size: a necessary condition for any fit. Each gap reached
 * gets the exact aligned check. When the check fails (the gap is long
 * enough but its aligned start is too late), the walk simply continues with
 * the next gap in address order, so the result is exact: the lowest (or
 * highest) aligned start whose range is free. Any gap of length
 * >= size + align - 1 passes the exact check, so with align == 1 the first
 * gap reached fits and the search is one root-to-leaf descent, O(log n);
 * in general it costs O((k + 1) log n) where k is the number of gaps before
 * the answer whose length lies in [size, size + align - 2] and which hold no
 * aligned fit. The recursion follows one path down per gap tried and is
 * never deeper than the tree height.
 */
#include "internal/addr_node.h"

const struct addr_node *vmres__addr_find_le(const struct addr_node *root, uint64_t key)
{
	const struct addr_node *n = root, *best = NULL;

	while (n) {
		if (n->start <= key) {
			best = n;
			n = n->right;
		} else {
			n = n->left;
		}
	}
	return best;
}

struct fit {
	uint64_t size_m1; /* size - 1 */
	uint64_t size;
	uint64_t mask; /* align - 1 */
	uint64_t found;
};

/* Lowest aligned A with [A, A + size - 1] inside [gs, ge] (gs <= ge). */
static bool gap_fit_first(struct fit *f, uint64_t gs, uint64_t ge)
{
	uint64_t a;

	if (ge - gs < f->size_m1 || gs > UINT64_MAX - f->mask)
		return false;
	a = (gs + f->mask) & ~f->mask;
	if (a > ge || ge - a < f->size_m1)
		return false;
	f->found = a;
	return true;
}

/* Highest aligned A with [A, A + size - 1] inside [gs, ge] (gs <= ge). */
static bool gap_fit_last(struct fit *f, uint64_t gs, uint64_t ge)
{
	uint64_t a;

	if (ge - gs < f->size_m1)
		return false;
	a = (ge - f->size_m1) & ~f->mask;
	if (a < gs)
		return false;
	f->found = a;
	return true;
}

/* The largest gap of @n's region [lo, hi]: a necessary condition for a fit. */
static uint64_t region_best(const struct addr_node *n, uint64_t lo, uint64_t hi)
{
	return vmres__u64_max(n->gap_max, vmres__u64_max(n->min_start - lo, hi - n->max_end));
}

static bool fit_first(struct fit *f, const struct addr_node *n, uint64_t lo, uint64_t hi)
{
	if (region_best(n, lo, hi) < f->size)
		return false; /* prune: no gap here is long enough */
	if (n->left) {
		if (fit_first(f, n->left, lo, n->start - 1))
			return true;
	} else if (n->start > lo && gap_fit_first(f, lo, n->start - 1)) {
		return true;
	}
	/* continuation: everything left of n failed the exact check */
	if (n->right)
		return fit_first(f, n->right, n->end + 1, hi);
	return n->end < hi && gap_fit_first(f, n->end + 1, hi);
}

static bool fit_last(struct fit *f, const struct addr_node *n, uint64_t lo, uint64_t hi)
{
	if (region_best(n, lo, hi) < f->size)
		return false;
	if (n->right) {
		if (fit_last(f, n->right, n->end + 1, hi))
			return true;
	} else if (n->end < hi && gap_fit_last(f, n->end + 1, hi)) {
		return true;
	}
	if (n->left)
		return fit_last(f, n->left, lo, n->start - 1);
	return n->start > lo && gap_fit_last(f, lo, n->start - 1);
}

bool vmres__addr_fit(const struct addr_node *root, uint64_t first, uint64_t last, uint64_t size,
		     uint64_t align, enum vmres_policy policy, uint64_t *start_out)
{
	struct fit f = { .size_m1 = size - 1, .size = size, .mask = align - 1 };
	bool ok;

	if (!root)
		ok = policy == VMRES_LAST_MATCH ? gap_fit_last(&f, first, last)
						: gap_fit_first(&f, first, last);
	else
		ok = policy == VMRES_LAST_MATCH ? fit_last(&f, root, first, last)
						: fit_first(&f, root, first, last);
	if (ok)
		*start_out = f.found;
	return ok;
}

uint64_t vmres__addr_largest_free(const struct addr_node *root, uint64_t first, uint64_t last)
{
	if (!root) /* the whole span; 2^64 saturates */
		return last - first == UINT64_MAX ? UINT64_MAX : last - first + 1;
	return region_best(root, first, last);
}
