/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Readers of the address allocator: lookup, foreach, stats. The argument
 * (algorithm, invariants, linearization points) is at the top of src/addr.c.
 *
 * Each reader enters one RCU read-side critical section, loads the version
 * pointer once (vmres__rcu_dereference, pairing with the writer's CAS that
 * published it) and walks that version only: by invariant 5 it never changes
 * and by invariant 7 it is not freed before the reader leaves, so the reader
 * sees one instant of the allocator. No locks, no retries, no stores to
 * shared memory, no allocation: wait-free, bounded by the tree height
 * (lookup, stats) or the number of ranges (foreach).
 */
#include <vmres/addr.h>

#include "internal/addr_node.h"
#include "internal/addr_tree.h"

static int lookup_in(const struct vmres_addr_allocator *a, const struct addr_version *v,
		     uint64_t addr, struct vmres_range *out, uint64_t *tag_out)
{
	const struct addr_node *n;

	if (addr < a->first || addr > a->last)
		return VMRES_E_OUT_OF_RANGE;
	n = vmres__addr_find_le(v->root, addr);
	if (!n || n->end < addr)
		return VMRES_E_NOT_FOUND;
	if (out)
		*out = (struct vmres_range){ n->start, n->end };
	if (tag_out)
		*tag_out = n->tag;
	return VMRES_OK;
}

int vmres_addr_lookup(struct vmres_addr_allocator *a, uint64_t addr, struct vmres_range *out,
		      uint64_t *tag_out)
{
	const struct addr_version *v;
	int rc;

	if (!a)
		return VMRES_E_INVALID_ARGUMENT;
	vmres__rcu_read_lock();
	/* Linearization point; pairs with the publishing CAS in addr.c. */
	v = vmres__rcu_dereference(a->version);
	rc = lookup_in(a, v, addr, out, tag_out);
	vmres__rcu_read_unlock();
	return rc;
}

int vmres__addr_lookup_unsynchronized(struct vmres_addr_allocator *a, uint64_t addr,
				      struct vmres_range *out, uint64_t *tag_out)
{
	if (!a)
		return VMRES_E_INVALID_ARGUMENT;
	/* No read-side section: the caller excludes writers or frees (see header). */
	return lookup_in(a, vmres__rcu_dereference(a->version), addr, out, tag_out);
}

/* In-order walk with an explicit stack (invariant 3 bounds its depth). */
static int walk(const struct addr_node *n, int (*fn)(void *ctx, struct vmres_range r, uint64_t tag),
		void *ctx)
{
	const struct addr_node *stack[VMRES__ADDR_MAX_HEIGHT];
	unsigned depth = 0;
	int rc;

	for (;;) {
		while (n) {
			stack[depth++] = n;
			n = n->left;
		}
		if (!depth)
			return 0;
		n = stack[--depth];
		rc = fn(ctx, (struct vmres_range){ n->start, n->end }, n->tag);
		if (rc)
			return rc;
		n = n->right;
	}
}

int vmres_addr_foreach(struct vmres_addr_allocator *a,
		       int (*fn)(void *ctx, struct vmres_range r, uint64_t tag), void *ctx)
{
	const struct addr_version *v;
	int rc;

	if (!a || !fn)
		return VMRES_E_INVALID_ARGUMENT;
	vmres__rcu_read_lock();
	/* One snapshot: the only load of the version pointer; pairs with the CAS. */
	v = vmres__rcu_dereference(a->version);
	rc = walk(v->root, fn, ctx);
	vmres__rcu_read_unlock();
	return rc;
}

int vmres_addr_stats(struct vmres_addr_allocator *a, struct vmres_addr_stats *out)
{
	const struct addr_version *v;

	if (!a || !out)
		return VMRES_E_INVALID_ARGUMENT;
	vmres__rcu_read_lock();
	/* Linearization point; pairs with the publishing CAS in addr.c. */
	v = vmres__rcu_dereference(a->version);
	out->ranges = v->ranges;
	/* invariant 2: 0 bytes with ranges allocated means exactly 2^64 */
	out->allocated_bytes = v->ranges && !v->bytes ? UINT64_MAX : v->bytes;
	out->largest_free = vmres__addr_largest_free(v->root, a->first, a->last);
	vmres__rcu_read_unlock();
	return VMRES_OK;
}
