/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Address allocator, exhaustively against the reference model (addr_model.h)
 * on small "cell" layouts: a span is cut into 7 or 8 cells, and every state
 * where each cell is free or belongs to a range of consecutive cells is built
 * (hundreds of states per layout). In each state every lookup, FIRST, LAST
 * and EXACT request (sizes and alignments chosen around the cell edges, up to
 * 2^64 - 1 and 2^63) and every free of a range between two edges is compared
 * with the model, and the allocator is restored after each success.
 *
 * Layouts: one-byte cells touching 0, touching UINT64_MAX, straddling 2^63;
 * and the whole 64-bit space with one-byte cells at both ends and two huge
 * middle cells split at 2^63, so a range or gap can be 2^63 or 2^64 - 2 long.
 */
#include "vmres_test.h"

#include <inttypes.h>
#include <stdio.h>

#include "internal/addr_tree.h"

#include "addr_model.h"

#define CELLS_MAX 8
#define POINTS_MAX (4 * CELLS_MAX)

struct layout {
	const char *name;
	unsigned n;
	uint64_t lo[CELLS_MAX]; /* cell i is [lo[i], lo[i + 1] - 1]; the last ends at last */
	uint64_t last;
};

struct exhaust {
	const struct layout *l;
	uint64_t points[POINTS_MAX]; /* cell edges and their neighbours */
	unsigned n_points;
	struct model m;
	unsigned long states;
	unsigned long checks;
};

static uint64_t cell_end(const struct layout *l, unsigned i)
{
	return i + 1 < l->n ? l->lo[i + 1] - 1 : l->last;
}

static const uint64_t sizes[] = {
	1,
	2,
	3,
	4,
	5,
	8,
	9,
	1ull << 62,
	(1ull << 63) - 3,
	1ull << 63,
	(1ull << 63) + 1,
	MAX64 - 4,
	MAX64 - 1,
	MAX64,
};
static const uint64_t aligns[] = { 1, 2, 4, 8, 1ull << 62, 1ull << 63 };

#define N_SIZES (sizeof(sizes) / sizeof(sizes[0]))
#define N_ALIGNS (sizeof(aligns) / sizeof(aligns[0]))

static void check_alloc(struct exhaust *x, struct vmres_addr_allocator *a,
			const struct vmres_addr_request *q)
{
	struct vmres_range got = { 1, 2 }, want = { 1, 2 };
	int rc_got = vmres_addr_alloc(a, q, &got);
	int rc_want = model_alloc(&x->m, q, &want);

	x->checks++;
	if (rc_got != rc_want || got.start != want.start || got.end != want.end) {
		fprintf(stderr,
			"%s state %lu: alloc size %#" PRIx64 " align %#" PRIx64
			" policy %d addr %#" PRIx64 ": got %d [%#" PRIx64 ", %#" PRIx64
			"], want %d [%#" PRIx64 ", %#" PRIx64 "]\n",
			x->l->name, x->states, q->size, q->align, (int)q->policy, q->addr, rc_got,
			got.start, got.end, rc_want, want.start, want.end);
		fail();
	}
	if (rc_got)
		return;
	assert_int_equal(vmres__addr_check(a), 0);
	assert_int_equal(vmres_addr_free(a, got), 0); /* back to the state */
	assert_int_equal(model_free(&x->m, want), 0);
}

static void check_requests(struct exhaust *x, struct vmres_addr_allocator *a)
{
	for (unsigned s = 0; s < N_SIZES; s++) {
		for (unsigned k = 0; k < N_ALIGNS; k++) {
			struct vmres_addr_request q = { sizes[s], aligns[k], VMRES_FIRST_MATCH, 0,
							x->states };

			check_alloc(x, a, &q);
			q.policy = VMRES_LAST_MATCH;
			check_alloc(x, a, &q);
			q.policy = VMRES_EXACT_MATCH;
			for (unsigned p = 0; p < x->n_points; p++) {
				q.addr = x->points[p] & ~(aligns[k] - 1);
				if (q.addr == x->points[p] || p % 2)
					check_alloc(x, a, &q);
			}
		}
	}
}

/* Every free between two edge points; a success is undone by an EXACT alloc. */
static void check_frees(struct exhaust *x, struct vmres_addr_allocator *a)
{
	for (unsigned i = 0; i < x->n_points; i++) {
		for (unsigned j = 0; j < x->n_points; j++) {
			struct vmres_range r = { x->points[i], x->points[j] };
			struct vmres_range back;
			uint64_t tag = 0;
			int want = r.start > r.end ? VMRES_E_INVALID_RANGE : VMRES_E_NOT_FOUND;

			for (size_t k = 0; k < x->m.n && want == VMRES_E_NOT_FOUND; k++)
				if (x->m.r[k].start == r.start && x->m.r[k].end == r.end) {
					want = 0;
					tag = x->m.r[k].tag;
				}
			x->checks++;
			assert_int_equal(vmres_addr_free(a, r), want);
			if (want)
				continue;
			assert_int_equal(vmres__addr_check(a), 0);
			assert_int_equal(vmres_addr_alloc(a,
							  &(struct vmres_addr_request){
								  r.end - r.start + 1, 1,
								  VMRES_EXACT_MATCH, r.start, tag },
							  &back),
					 0);
		}
	}
}

/* Build the model's state in @a (empty), check everything, empty @a again. */
static void check_state(struct exhaust *x, struct vmres_addr_allocator *a)
{
	struct vmres_addr_stats st;
	struct vmres_range out;

	x->states++;
	for (size_t k = 0; k < x->m.n; k++) {
		struct mrange r = x->m.r[k];

		assert_int_equal(vmres_addr_alloc(a,
						  &(struct vmres_addr_request){
							  r.end - r.start + 1, 1, VMRES_EXACT_MATCH,
							  r.start, r.tag },
						  &out),
				 0);
	}
	assert_int_equal(vmres__addr_check(a), 0);
	compare_all(a, &x->m);
	for (unsigned p = 0; p < x->n_points; p++) {
		struct vmres_range g = { 0, 0 }, w = { 0, 0 };
		uint64_t tg = 1, tw = 1;

		assert_int_equal(vmres_addr_lookup(a, x->points[p], &g, &tg),
				 model_lookup(&x->m, x->points[p], &w, &tw));
		assert_true(g.start == w.start && g.end == w.end && tg == tw);
	}
	check_requests(x, a);
	check_frees(x, a);
	compare_all(a, &x->m); /* everything was undone */
	for (size_t k = 0; k < x->m.n; k++)
		assert_int_equal(
			vmres_addr_free(a, (struct vmres_range){ x->m.r[k].start, x->m.r[k].end }),
			0);
	assert_int_equal(vmres_addr_stats(a, &st), 0);
	assert_int_equal(st.ranges, 0);
	/* qsbr: outside any read section here; lets the versions retired above go. */
	vmres_thread_quiescent();
}

/* Cell i onwards: free, or the start of a range over cells i..j. */
static void enumerate(struct exhaust *x, struct vmres_addr_allocator *a, unsigned i)
{
	const struct layout *l = x->l;

	if (i == l->n) {
		check_state(x, a);
		return;
	}
	enumerate(x, a, i + 1);
	for (unsigned j = i; j < l->n; j++) {
		size_t n = x->m.n;

		if (l->lo[i] == 0 && cell_end(l, j) == MAX64)
			continue; /* 2^64 bytes: no request size can make it */
		model_insert(&x->m,
			     (struct mrange){ l->lo[i], cell_end(l, j), 0x7a6700 + i * 16 + j });
		enumerate(x, a, j + 1);
		x->m.n = n; /* the range inserted last is the highest */
	}
}

static void run_layout(const struct layout *l)
{
	struct exhaust x = { .l = l, .m = { .first = l->lo[0], .last = l->last } };
	struct vmres_addr_allocator *a = NULL;

	for (unsigned i = 0; i < l->n; i++) {
		x.points[x.n_points++] = l->lo[i] - 1;
		x.points[x.n_points++] = l->lo[i];
		x.points[x.n_points++] = cell_end(l, i);
		x.points[x.n_points++] = cell_end(l, i) + 1;
	}
	assert_int_equal(vmres_addr_allocator_create(l->lo[0], l->last, &a), 0);
	enumerate(&x, a, 0);
	vmres_addr_allocator_destroy(a);
	printf("[addr] exhaustive %s: %lu states, %lu checks\n", l->name, x.states, x.checks);
	free(x.m.r);
}

static void test_addr_exhaustive_small_layouts(void **state)
{
	(void)state;
	static const struct layout layouts[] = {
		{ "[0, 6]", 7, { 0, 1, 2, 3, 4, 5, 6 }, 6 },
		{ "[2^64 - 7, 2^64 - 1]",
		  7,
		  { MAX64 - 6, MAX64 - 5, MAX64 - 4, MAX64 - 3, MAX64 - 2, MAX64 - 1, MAX64 },
		  MAX64 },
		{ "[2^63 - 4, 2^63 + 2]",
		  7,
		  { (1ull << 63) - 4, (1ull << 63) - 3, (1ull << 63) - 2, (1ull << 63) - 1,
		    1ull << 63, (1ull << 63) + 1, (1ull << 63) + 2 },
		  (1ull << 63) + 2 },
		{ "[0, 2^64 - 1] in 8 cells",
		  8,
		  { 0, 1, 2, 3, 1ull << 63, MAX64 - 2, MAX64 - 1, MAX64 },
		  MAX64 },
	};

	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		run_layout(&layouts[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_exhaustive_small_layouts),
	};

	return cmocka_run_group_tests(tests, vmres_test_group_setup, vmres_test_group_teardown);
}
