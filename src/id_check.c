/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Debug walkers over a quiet ID allocator: the invariant checker and the
 * free-interval visitor tests use to compare against a model. Not
 * concurrent: the caller guarantees no other call on the allocator runs.
 * The invariant numbers are those of the comments at the top of src/id.c
 * (1-7, 12, 13) and src/id_index.c (8-11).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal/id.h"
#include "internal/id_list.h"

static int id_check_fail(int invariant, const char *what, uint32_t lo, uint32_t hi)
{
	fprintf(stderr, "vmres__id_check: invariant %d broken: %s [%" PRIu32 ", %" PRIu32 "]\n",
		invariant, what, lo, hi);
	return -invariant;
}

/*
 * At rest, index level l holds exactly the list's nodes of height > l, in
 * list order, none marked (invariants 8 to 10: dying nodes were removed
 * before their operation returned).
 */
static int id_check_level(struct vmres_id_allocator *ids, struct id_node **order, uint64_t n, int l)
{
	uintptr_t cur = vmres__uptr_load_acquire(&ids->head_up[l]);
	uint64_t i = 0;

	for (;;) {
		while (i < n && order[i]->height <= (uint32_t)l)
			i++;
		if (cur & ID_UP_MARK)
			return id_check_fail(9, "marked index pointer at rest", (uint32_t)l, 0);
		if (!cur && i == n)
			break;
		if (!cur || i == n || (struct id_node *)cur != order[i])
			return id_check_fail(8, "index level differs from the list", (uint32_t)l,
					     (uint32_t)i);
		/* Acquire: pairs with the CAS that linked the next node at this level. */
		cur = vmres__uptr_load_acquire(&((struct id_node *)cur)->up[l]);
		i++;
	}
	return 0;
}

static int id_check_index(struct vmres_id_allocator *ids, uint64_t n)
{
	/* A debug aid outside the allocator's memory: plain malloc, not the hook. */
	struct id_node **order = malloc((n ? n : 1) * sizeof(*order));
	struct vmres__pair link = vmres__pair_load(&ids->head); /* only w0 is read */
	int rc = 0;

	if (!order)
		return 0; /* cannot check the index without memory; the list was checked */
	for (uint64_t i = 0; i < n; i++) {
		order[i] = id_link_node(link.w0);
		link = vmres__pair_load(&order[i]->link);
	}
	for (int l = 0; l < ID_INDEX_LEVELS && !rc; l++)
		rc = id_check_level(ids, order, n, l);
	free(order);
	return rc;
}

int vmres__id_check(struct vmres_id_allocator *ids, struct vmres__id_stats *stats)
{
	struct vmres__id_stats st = { 0 };
	struct vmres__pair raw = vmres__pair_load(&ids->head);
	uint32_t inl;
	struct vmres__pair link = id_head_decode(raw, &inl);
	bool in_front_dead = false;
	uint64_t floor = ids->first; /* the smallest ID the next interval may hold */
	int rc;

	if (link.w0 & ID_LINK_FROZEN)
		return id_check_fail(5, "head link frozen", 0, 0);
	if (!id_link_node(link.w0) && id_bounds_lo(raw.w1) != 0)
		return id_check_fail(1, "head with no node but a lo", id_bounds_lo(raw.w1), 0);
	if (link.w0 & ID_HEAD_INLINE) {
		if (inl < ids->first || inl > ids->last)
			return id_check_fail(12, "inline ID outside the range", inl, inl);
		st.intervals++;
		st.free_ids++;
		floor = (uint64_t)inl + 1;
	} else if (inl) {
		return id_check_fail(12, "inline ID without its flag", inl, inl);
	}
	for (;;) {
		struct id_node *x = id_link_node(link.w0);
		uint32_t lo = id_bounds_lo(link.w1);
		uint32_t hi = id_bounds_hi(link.w1);

		if (!x) {
			if (link.w1 != 0)
				return id_check_fail(1, "end link with bounds", lo, hi);
			break;
		}
		st.nodes++;
		if (lo > hi || lo < floor || hi > ids->last)
			return id_check_fail(2, "interval unsorted or outside the range", lo, hi);
		if ((link.w0 & ID_LINK_DEL) && lo != hi)
			return id_check_fail(3, "deleted interval of more than one ID", lo, hi);
		if (x->key != hi)
			return id_check_fail(3, "interval hi differs from the node's key", lo, hi);
		if (x->height > ID_INDEX_LEVELS)
			return id_check_fail(8, "node taller than the index", lo, hi);

		if (!(link.w0 & ID_LINK_DEL)) {
			st.intervals++;
			st.free_ids += (uint64_t)hi - lo + 1;
			if (link.w0 & ID_LINK_NEVER)
				st.never_ids += (uint64_t)hi - lo + 1;
		}
		floor = (uint64_t)hi + 1;
		in_front_dead = link.w0 & ID_LINK_DEL;
		link = vmres__pair_load(&x->link);
		if ((link.w0 & ID_LINK_FROZEN) && !in_front_dead)
			return id_check_fail(5, "frozen link of a live node", lo, hi);
		if (link.w0 & ID_HEAD_INLINE)
			return id_check_fail(12, "inline flag on a node's link", lo, hi);
	}
	rc = id_check_index(ids, st.nodes);
	if (rc)
		return rc;
	if (stats)
		*stats = st;
	return 0;
}

void vmres__id_foreach_free(struct vmres_id_allocator *ids,
			    void (*visit)(void *ctx, uint32_t lo, uint32_t hi, bool never),
			    void *ctx)
{
	uint32_t inl;
	struct vmres__pair link = id_head_decode(vmres__pair_load(&ids->head), &inl);
	struct id_node *x;

	if (link.w0 & ID_HEAD_INLINE)
		visit(ctx, inl, inl, false);
	while ((x = id_link_node(link.w0)) != NULL) {
		if (!(link.w0 & ID_LINK_DEL))
			visit(ctx, id_bounds_lo(link.w1), id_bounds_hi(link.w1),
			      link.w0 & ID_LINK_NEVER);
		link = vmres__pair_load(&x->link);
	}
}

bool vmres__id_head_inline(struct vmres_id_allocator *ids, uint32_t *id)
{
	struct vmres__pair raw = vmres__pair_load(&ids->head);

	if (!(raw.w0 & ID_HEAD_INLINE))
		return false;
	*id = (uint32_t)raw.w1;
	return true;
}

uint64_t vmres__id_steps(void)
{
#ifdef VMRES_TEST_COUNTERS
	return vmres__id_search_steps;
#else
	return 0; /* not counted in this build: tests check for a nonzero count */
#endif
}
