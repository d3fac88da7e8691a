/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* The ID allocator, one thread: semantics, errors, boundaries, a model, NOMEM. */
#include "vmres_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/atomic_count.h"
#include "internal/id.h"
#include "internal/id_list.h"

static struct vmres_id_allocator *make(uint32_t first, uint32_t last)
{
	struct vmres_id_allocator *ids = NULL;

	assert_int_equal(vmres_id_allocator_create(first, last, &ids), VMRES_OK);
	assert_non_null(ids);
	return ids;
}

static uint32_t alloc_ok(struct vmres_id_allocator *ids)
{
	uint32_t id = 0xdeadbeef;

	assert_int_equal(vmres_id_alloc(ids, &id), VMRES_OK);
	return id;
}

static void check_ok(struct vmres_id_allocator *ids)
{
	assert_int_equal(vmres__id_check(ids, NULL), 0);
}

/* A hook with 8-aligned blocks on demand; defined with its test below. */
static void *align8_alloc(void *ctx, size_t size);
static void align8_free(void *ctx, void *p, size_t size);

static void test_id_create_rejects_bad_arguments(void **state)
{
	(void)state;
	struct vmres_id_allocator *ids = (void *)&ids;
	struct vmres_mem_ops none = { NULL, NULL, NULL };
	struct vmres_mem_ops no_free = { align8_alloc, NULL, NULL };
	struct vmres_mem_ops no_alloc = { NULL, align8_free, NULL };

	assert_int_equal(vmres_id_allocator_create(0, 10, NULL), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_id_allocator_create(11, 10, &ids), VMRES_E_INVALID_RANGE);
	assert_int_equal(vmres_id_allocator_create(UINT32_MAX, 0, &ids), VMRES_E_INVALID_RANGE);
	assert_int_equal(vmres_id_allocator_create_ex(0, 10, &none, &ids),
			 VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_id_allocator_create_ex(0, 10, &no_free, &ids),
			 VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_id_allocator_create_ex(0, 10, &no_alloc, &ids),
			 VMRES_E_INVALID_ARGUMENT);
	assert_ptr_equal(ids, (void *)&ids); /* untouched on failure */
	vmres_id_allocator_destroy(NULL);    /* allowed, does nothing */
}

static void test_id_null_allocator_and_out_pointer(void **state)
{
	(void)state;
	struct vmres_id_allocator *ids = make(0, 3);
	uint32_t id;

	assert_int_equal(vmres_id_alloc(NULL, &id), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_id_alloc(ids, NULL), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_id_alloc_at(NULL, 1), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_id_free(NULL, 1), VMRES_E_INVALID_ARGUMENT);
	assert_false(vmres_id_is_allocated(NULL, 1));
	/* None of that took an ID. */
	assert_int_equal(alloc_ok(ids), 0);
	vmres_id_allocator_destroy(ids);
}

static void test_id_smallest_first(void **state)
{
	(void)state;
	struct vmres_id_allocator *ids = make(1, 100);

	for (uint32_t i = 1; i <= 10; i++)
		assert_int_equal(alloc_ok(ids), i);
	assert_int_equal(vmres_id_free(ids, 7), VMRES_OK);
	assert_int_equal(vmres_id_free(ids, 3), VMRES_OK);
	assert_int_equal(vmres_id_free(ids, 5), VMRES_OK);
	check_ok(ids);
	assert_int_equal(alloc_ok(ids), 3);
	assert_int_equal(alloc_ok(ids), 5);
	assert_int_equal(alloc_ok(ids), 7);
	assert_int_equal(alloc_ok(ids), 11);
	assert_int_equal(alloc_ok(ids), 12);
	check_ok(ids);
	vmres_id_allocator_destroy(ids);
}

static void test_id_out_of_range(void **state)
{
	(void)state;
	struct vmres_id_allocator *ids = make(10, 20);

	assert_int_equal(vmres_id_alloc_at(ids, 9), VMRES_E_OUT_OF_RANGE);
	assert_int_equal(vmres_id_alloc_at(ids, 21), VMRES_E_OUT_OF_RANGE);
	assert_int_equal(vmres_id_alloc_at(ids, UINT32_MAX), VMRES_E_OUT_OF_RANGE);
	assert_int_equal(vmres_id_free(ids, 9), VMRES_E_OUT_OF_RANGE);
	assert_int_equal(vmres_id_free(ids, 21), VMRES_E_OUT_OF_RANGE);
	assert_int_equal(vmres_id_free(ids, 0), VMRES_E_OUT_OF_RANGE);
	assert_false(vmres_id_is_allocated(ids, 9));
	assert_false(vmres_id_is_allocated(ids, 21));
	assert_int_equal(alloc_ok(ids), 10);
	vmres_id_allocator_destroy(ids);
}

static void test_id_free_error_codes(void **state)
{
	(void)state;
	struct vmres_id_allocator *ids = make(0, 9);

	assert_int_equal(vmres_id_free(ids, 0), VMRES_E_NEVER_ALLOCATED);
	assert_int_equal(vmres_id_free(ids, 9), VMRES_E_NEVER_ALLOCATED);
	assert_int_equal(alloc_ok(ids), 0);
	assert_true(vmres_id_is_allocated(ids, 0));
	assert_int_equal(vmres_id_free(ids, 1), VMRES_E_NEVER_ALLOCATED);
	assert_int_equal(vmres_id_free(ids, 0), VMRES_OK);
	assert_false(vmres_id_is_allocated(ids, 0));
	assert_int_equal(vmres_id_free(ids, 0), VMRES_E_ALREADY_FREED);
	/* Taken again, held again, freed again. */
	assert_int_equal(alloc_ok(ids), 0);
	assert_int_equal(vmres_id_alloc_at(ids, 0), VMRES_E_IN_USE);
	assert_int_equal(vmres_id_free(ids, 0), VMRES_OK);
	assert_int_equal(vmres_id_free(ids, 0), VMRES_E_ALREADY_FREED);
	check_ok(ids);
	vmres_id_allocator_destroy(ids);
}

static void test_id_exhausted_without_wrapping(void **state)
{
	(void)state;
	struct vmres_id_allocator *ids = make(UINT32_MAX - 2, UINT32_MAX);
	uint32_t id = 123;

	assert_int_equal(alloc_ok(ids), UINT32_MAX - 2);
	assert_int_equal(alloc_ok(ids), UINT32_MAX - 1);
	assert_int_equal(alloc_ok(ids), UINT32_MAX);
	assert_int_equal(vmres_id_alloc(ids, &id), VMRES_E_EXHAUSTED);
	assert_int_equal(id, 123);
	assert_int_equal(vmres_id_alloc(ids, &id), VMRES_E_EXHAUSTED);
	assert_int_equal(vmres_id_alloc_at(ids, UINT32_MAX), VMRES_E_IN_USE);
	assert_int_equal(vmres_id_free(ids, UINT32_MAX), VMRES_OK);
	assert_int_equal(alloc_ok(ids), UINT32_MAX);
	assert_int_equal(vmres_id_alloc(ids, &id), VMRES_E_EXHAUSTED);
	check_ok(ids);
	vmres_id_allocator_destroy(ids);
}

static void test_id_full_range_boundaries(void **state)
{
	(void)state;
	struct vmres_id_allocator *ids = make(0, UINT32_MAX);
	struct vmres__id_stats st;

	assert_int_equal(vmres__id_check(ids, &st), 0);
	assert_int_equal(st.free_ids, (uint64_t)UINT32_MAX + 1);
	assert_int_equal(alloc_ok(ids), 0);
	assert_int_equal(vmres_id_alloc_at(ids, UINT32_MAX), VMRES_OK);
	assert_true(vmres_id_is_allocated(ids, UINT32_MAX));
	assert_false(vmres_id_is_allocated(ids, UINT32_MAX - 1));
	assert_int_equal(vmres_id_free(ids, UINT32_MAX - 1), VMRES_E_NEVER_ALLOCATED);
	assert_int_equal(vmres_id_free(ids, UINT32_MAX), VMRES_OK);
	assert_int_equal(vmres_id_free(ids, UINT32_MAX), VMRES_E_ALREADY_FREED);
	assert_int_equal(vmres_id_free(ids, 0), VMRES_OK);
	assert_int_equal(alloc_ok(ids), 0);
	assert_int_equal(alloc_ok(ids), 1);
	assert_int_equal(vmres__id_check(ids, &st), 0);
	assert_int_equal(st.free_ids, (uint64_t)UINT32_MAX - 1);
	vmres_id_allocator_destroy(ids);
}

static void one_id_range(uint32_t only)
{
	struct vmres_id_allocator *ids = make(only, only);
	uint32_t id;

	assert_false(vmres_id_is_allocated(ids, only));
	assert_int_equal(vmres_id_free(ids, only), VMRES_E_NEVER_ALLOCATED);
	assert_int_equal(alloc_ok(ids), only);
	assert_int_equal(vmres_id_alloc(ids, &id), VMRES_E_EXHAUSTED);
	assert_int_equal(vmres_id_alloc_at(ids, only), VMRES_E_IN_USE);
	assert_int_equal(vmres_id_free(ids, only), VMRES_OK);
	assert_int_equal(vmres_id_free(ids, only), VMRES_E_ALREADY_FREED);
	assert_int_equal(vmres_id_alloc_at(ids, only), VMRES_OK);
	assert_int_equal(vmres_id_alloc(ids, &id), VMRES_E_EXHAUSTED);
	if (only > 0)
		assert_int_equal(vmres_id_alloc_at(ids, only - 1), VMRES_E_OUT_OF_RANGE);
	if (only < UINT32_MAX)
		assert_int_equal(vmres_id_free(ids, only + 1), VMRES_E_OUT_OF_RANGE);
	check_ok(ids);
	vmres_id_allocator_destroy(ids);
}

static void test_id_one_id_ranges(void **state)
{
	(void)state;
	one_id_range(0);
	one_id_range(42);
	one_id_range(UINT32_MAX);
}

/* The never-handed-out tail is [5, 99] after five allocs; poke it. */
static void test_id_alloc_at_around_the_tail(void **state)
{
	(void)state;
	struct vmres_id_allocator *ids = make(0, 99);
	uint32_t id;

	for (uint32_t i = 0; i < 5; i++)
		assert_int_equal(alloc_ok(ids), i);
	/* Before the tail: held, then freed, then taken back. */
	assert_int_equal(vmres_id_alloc_at(ids, 2), VMRES_E_IN_USE);
	assert_int_equal(vmres_id_free(ids, 2), VMRES_OK);
	assert_int_equal(vmres_id_alloc_at(ids, 2), VMRES_OK);
	assert_int_equal(vmres_id_free(ids, 2), VMRES_OK);
	/* Inside the tail: splits it; the pieces stay never-handed-out. */
	assert_int_equal(vmres_id_alloc_at(ids, 50), VMRES_OK);
	check_ok(ids);
	assert_true(vmres_id_is_allocated(ids, 50));
	assert_false(vmres_id_is_allocated(ids, 49));
	assert_false(vmres_id_is_allocated(ids, 51));
	assert_int_equal(vmres_id_free(ids, 30), VMRES_E_NEVER_ALLOCATED);
	assert_int_equal(vmres_id_free(ids, 70), VMRES_E_NEVER_ALLOCATED);
	assert_int_equal(vmres_id_alloc_at(ids, 50), VMRES_E_IN_USE);
	/* At the tail's first and last IDs. */
	assert_int_equal(vmres_id_alloc_at(ids, 5), VMRES_OK);
	assert_int_equal(vmres_id_alloc_at(ids, 99), VMRES_OK);
	assert_int_equal(vmres_id_alloc_at(ids, 49), VMRES_OK);
	assert_int_equal(vmres_id_alloc_at(ids, 51), VMRES_OK);
	/* After the range. */
	assert_int_equal(vmres_id_alloc_at(ids, 100), VMRES_E_OUT_OF_RANGE);
	assert_int_equal(vmres_id_free(ids, 50), VMRES_OK);
	assert_int_equal(vmres_id_free(ids, 50), VMRES_E_ALREADY_FREED);
	check_ok(ids);
	/* alloc now walks: freed 2, then 6..48, freed 50, then 52..98. */
	assert_int_equal(alloc_ok(ids), 2);
	for (uint32_t i = 6; i <= 48; i++)
		assert_int_equal(alloc_ok(ids), i);
	assert_int_equal(alloc_ok(ids), 50);
	for (uint32_t i = 52; i <= 98; i++)
		assert_int_equal(alloc_ok(ids), i);
	assert_int_equal(vmres_id_alloc(ids, &id), VMRES_E_EXHAUSTED);
	check_ok(ids);
	vmres_id_allocator_destroy(ids);
}

/* alloc_at splitting repeatedly: every second ID, then alloc fills the holes. */
static void test_id_alloc_at_splits_many(void **state)
{
	(void)state;
	struct vmres_id_allocator *ids = make(0, 199);
	struct vmres__id_stats st;
	uint32_t id;

	for (uint32_t i = 1; i < 200; i += 2)
		assert_int_equal(vmres_id_alloc_at(ids, i), VMRES_OK);
	assert_int_equal(vmres__id_check(ids, &st), 0);
	assert_int_equal(st.intervals, 100);
	assert_int_equal(st.never_ids, 100);
	for (uint32_t i = 0; i < 200; i += 2)
		assert_int_equal(alloc_ok(ids), i);
	assert_int_equal(vmres_id_alloc(ids, &id), VMRES_E_EXHAUSTED);
	for (uint32_t i = 0; i < 200; i++)
		assert_true(vmres_id_is_allocated(ids, i));
	vmres_id_allocator_destroy(ids);
}

/*
 * 100,000 free IDs: free, alloc_at and is_allocated anywhere in them visit a
 * logarithmic number of nodes, not a walk along the list (which would be
 * about 50,000 steps on average).
 */
static void test_id_searches_stay_logarithmic(void **state)
{
	(void)state;
	const uint32_t n = 200000;
	struct vmres_id_allocator *ids = make(0, n - 1);
	struct vmres__id_stats st;
	uint64_t rng = 12345, before, steps;
	uint32_t id;

	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(alloc_ok(ids), i);
	for (uint32_t i = 0; i < n; i += 2)
		assert_int_equal(vmres_id_free(ids, i), VMRES_OK);
	assert_int_equal(vmres__id_check(ids, &st), 0);
	assert_int_equal(st.free_ids, n / 2);
	before = vmres__id_steps();
	for (int k = 0; k < 1000; k++) {
		id = (uint32_t)vmres_test_rand_below(&rng, n);
		if (id % 2) {
			assert_int_equal(vmres_id_free(ids, id), VMRES_OK);
			assert_int_equal(vmres_id_alloc_at(ids, id), VMRES_OK);
		} else {
			assert_false(vmres_id_is_allocated(ids, id));
			assert_int_equal(vmres_id_alloc_at(ids, id), VMRES_OK);
			assert_int_equal(vmres_id_free(ids, id), VMRES_OK);
		}
	}
	steps = vmres__id_steps() - before;
	assert_true(steps > 0); /* counted: the tests' copy has VMRES_TEST_COUNTERS */
	steps /= 2000;
	printf("average search: %llu steps over %u free IDs\n", (unsigned long long)steps, n / 2);
	assert_true(steps < 200);
	assert_int_equal(vmres__id_check(ids, &st), 0);
	assert_int_equal(st.free_ids, n / 2);
	vmres_id_allocator_destroy(ids);
}

/*
 * Nodes made by alloc_at (the piece [lo, id - 1] of a split) are indexed too:
 * 100,000 of them, then lookups anywhere stay logarithmic.
 */
static void test_id_split_nodes_are_indexed(void **state)
{
	(void)state;
	const uint32_t n = 200000;
	struct vmres_id_allocator *ids = make(0, n - 1);
	struct vmres__id_stats st;
	uint64_t rng = 777, before, steps;

	for (uint32_t i = 1; i < n; i += 2)
		assert_int_equal(vmres_id_alloc_at(ids, i), VMRES_OK);
	assert_int_equal(vmres__id_check(ids, &st), 0);
	assert_int_equal(st.intervals, n / 2);
	before = vmres__id_steps();
	for (int k = 0; k < 1000; k++) {
		uint32_t id = (uint32_t)vmres_test_rand_below(&rng, n);

		assert_int_equal(vmres_id_is_allocated(ids, id), id % 2 == 1);
	}
	steps = vmres__id_steps() - before;
	assert_true(steps > 0); /* counted: the tests' copy has VMRES_TEST_COUNTERS */
	steps /= 1000;
	printf("average search: %llu steps over %u split nodes\n", (unsigned long long)steps,
	       n / 2);
	assert_true(steps < 200);
	vmres_id_allocator_destroy(ids);
}

/* Asserts whether the head holds an inline ID and which one; then the checker. */
static void assert_inline(struct vmres_id_allocator *ids, bool present, uint32_t want)
{
	uint32_t id = 0;

	assert_int_equal(vmres__id_head_inline(ids, &id), present);
	if (present)
		assert_int_equal(id, want);
	check_ok(ids);
}

/*
 * The head link's inline ID (src/internal/id_list.h): a free in front of
 * every interval goes there without memory; every call answers for it; a
 * smaller free pushes it into a node, or into a freed first interval
 * starting right after it (no memory either); with no interval left at all;
 * at UINT32_MAX. The hook fails wherever the rules say no node is needed.
 */
static void test_id_inline_head(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_mem_ops ops;
	struct vmres_id_allocator *ids = NULL;
	struct vmres__id_stats st;
	uint32_t id;

	vmres_test_mem_init(&mem);
	ops = vmres_test_mem_ops(&mem);
	assert_int_equal(vmres_id_allocator_create_ex(0, 99, &ops, &ids), VMRES_OK);
	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(alloc_ok(ids), i);
	vmres_test_mem_fail_after(&mem, 0); /* nothing below needs memory... */
	assert_int_equal(vmres_id_free(ids, 5), VMRES_OK);
	assert_inline(ids, true, 5);
	assert_false(vmres_id_is_allocated(ids, 5));
	assert_true(vmres_id_is_allocated(ids, 4));
	assert_int_equal(vmres_id_free(ids, 5), VMRES_E_ALREADY_FREED);
	assert_int_equal(vmres_id_alloc_at(ids, 5), VMRES_OK);
	assert_inline(ids, false, 0);
	assert_true(vmres_id_is_allocated(ids, 5));
	assert_int_equal(vmres_id_alloc_at(ids, 5), VMRES_E_IN_USE);
	assert_int_equal(vmres_id_free(ids, 5), VMRES_OK);
	assert_int_equal(vmres_test_mem_failures(&mem), 0);
	/* ...but this: 5 is inline and 10 starts a never interval. */
	assert_int_equal(vmres_id_free(ids, 9), VMRES_E_NOMEM);
	assert_int_equal(vmres_test_mem_failures(&mem), 1);
	vmres_test_mem_fail_after(&mem, -1);
	assert_true(vmres_id_is_allocated(ids, 9));
	assert_int_equal(vmres_id_free(ids, 9), VMRES_OK); /* a node after the inline 5 */
	assert_inline(ids, true, 5);
	assert_int_equal(alloc_ok(ids), 5);
	assert_inline(ids, false, 0);
	assert_int_equal(alloc_ok(ids), 9);
	assert_int_equal(alloc_ok(ids), 10);

	/* Demotions: 7 inline; 6 in front of it makes 7 a node; 4 in front of
	 * 6 needs none (6 lowers the lo of freed [7, 7]). */
	assert_int_equal(vmres_id_free(ids, 7), VMRES_OK);
	assert_int_equal(vmres_id_free(ids, 6), VMRES_OK);
	assert_inline(ids, true, 6);
	vmres_test_mem_fail_after(&mem, 0);
	assert_int_equal(vmres_id_free(ids, 4), VMRES_OK);
	vmres_test_mem_fail_after(&mem, -1);
	assert_int_equal(vmres_test_mem_failures(&mem), 1);
	assert_inline(ids, true, 4);
	assert_int_equal(vmres__id_check(ids, &st), 0);
	assert_int_equal(st.intervals, 3); /* 4 inline, freed [6, 7], never [11, 99] */
	assert_int_equal(st.nodes, 2);
	assert_int_equal(vmres_id_free(ids, 7), VMRES_E_ALREADY_FREED);
	assert_int_equal(vmres_id_free(ids, 50), VMRES_E_NEVER_ALLOCATED);
	for (uint32_t want = 4; want <= 11; want++) {
		if (want == 5 || (want >= 8 && want <= 10))
			continue; /* held */
		assert_int_equal(alloc_ok(ids), want);
	}
	assert_inline(ids, false, 0);
	vmres_id_allocator_destroy(ids);
	vmres_rcu_barrier();
	assert_int_equal(vmres_test_mem_live_blocks(&mem), 0);

	/* No interval left: the inline ID is the only free one. */
	ids = make(0, 3);
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(alloc_ok(ids), i);
	assert_int_equal(vmres_id_alloc(ids, &id), VMRES_E_EXHAUSTED);
	assert_int_equal(vmres_id_free(ids, 2), VMRES_OK);
	assert_inline(ids, true, 2);
	assert_int_equal(alloc_ok(ids), 2);
	assert_int_equal(vmres_id_alloc(ids, &id), VMRES_E_EXHAUSTED);
	assert_int_equal(vmres_id_free(ids, 3), VMRES_OK);
	assert_int_equal(vmres_id_free(ids, 1), VMRES_OK); /* 3 becomes a node */
	assert_int_equal(vmres_id_free(ids, 2), VMRES_OK); /* lowers [3, 3] to [2, 3] */
	assert_inline(ids, true, 1);
	assert_int_equal(vmres__id_check(ids, &st), 0);
	assert_int_equal(st.intervals, 2);
	assert_int_equal(st.free_ids, 3);
	for (uint32_t want = 1; want <= 3; want++)
		assert_int_equal(alloc_ok(ids), want);
	assert_int_equal(vmres_id_alloc(ids, &id), VMRES_E_EXHAUSTED);
	vmres_id_allocator_destroy(ids);

	/* At the top of the ID space. */
	ids = make(UINT32_MAX - 2, UINT32_MAX);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(alloc_ok(ids), UINT32_MAX - 2 + i);
	assert_int_equal(vmres_id_free(ids, UINT32_MAX), VMRES_OK);
	assert_inline(ids, true, UINT32_MAX);
	assert_false(vmres_id_is_allocated(ids, UINT32_MAX));
	assert_int_equal(vmres_id_free(ids, UINT32_MAX - 1), VMRES_OK);
	assert_inline(ids, true, UINT32_MAX - 1);
	assert_int_equal(vmres_id_free(ids, UINT32_MAX - 2), VMRES_OK);
	assert_inline(ids, true, UINT32_MAX - 2);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(alloc_ok(ids), UINT32_MAX - 2 + i);
	assert_int_equal(vmres_id_alloc(ids, &id), VMRES_E_EXHAUSTED);
	assert_inline(ids, false, 0);
	vmres_id_allocator_destroy(ids);
}

/* A freed ID merges into a freed interval starting right after it: no node. */
static void test_id_descending_frees_coalesce(void **state)
{
	(void)state;
	struct vmres_id_allocator *ids = make(0, 99);
	struct vmres__id_stats st;

	for (uint32_t i = 0; i < 20; i++)
		assert_int_equal(alloc_ok(ids), i);
	for (uint32_t i = 10; i-- > 0;)
		assert_int_equal(vmres_id_free(ids, i), VMRES_OK);
	assert_int_equal(vmres__id_check(ids, &st), 0);
	/* 0 inline in the head, freed [1, 9] and never [20, 99]: each free
	 * went inline and the one before it joined [.., 9] (9 made the node). */
	assert_int_equal(st.intervals, 3);
	assert_int_equal(st.nodes, 2);
	assert_int_equal(vmres_id_free(ids, 5), VMRES_E_ALREADY_FREED);
	assert_int_equal(vmres_id_free(ids, 0), VMRES_E_ALREADY_FREED);
	/* Ascending frees do not merge (a node's hi never changes). */
	for (uint32_t i = 10; i < 20; i++)
		assert_int_equal(vmres_id_free(ids, i), VMRES_OK);
	assert_int_equal(vmres__id_check(ids, &st), 0);
	assert_int_equal(st.intervals, 13);
	assert_int_equal(st.free_ids, 100);
	/* Smallest first across all of them, then the tail. */
	for (uint32_t i = 0; i < 25; i++)
		assert_int_equal(alloc_ok(ids), i);
	check_ok(ids);
	vmres_id_allocator_destroy(ids);
}

/* ---- differential test against a bitmap model ---------------------------- */

struct model {
	uint32_t first;
	uint32_t size;
	bool *held;
	bool *ever;
	/* filled from vmres__id_foreach_free() */
	bool *seen_free;
	bool *seen_never;
	bool sorted;
	int64_t last_hi;
};

static int model_alloc(const struct model *m, uint32_t *id)
{
	for (uint32_t i = 0; i < m->size; i++) {
		if (!m->held[i]) {
			*id = m->first + i;
			return VMRES_OK;
		}
	}
	return VMRES_E_EXHAUSTED;
}

static bool model_in(const struct model *m, uint32_t id)
{
	return id >= m->first && (uint64_t)id - m->first < m->size;
}

static int model_free(const struct model *m, uint32_t id)
{
	if (!model_in(m, id))
		return VMRES_E_OUT_OF_RANGE;
	if (m->held[id - m->first])
		return VMRES_OK;
	return m->ever[id - m->first] ? VMRES_E_ALREADY_FREED : VMRES_E_NEVER_ALLOCATED;
}

static void visit_interval(void *ctx, uint32_t lo, uint32_t hi, bool never)
{
	struct model *m = ctx;

	if ((int64_t)lo <= m->last_hi || !model_in(m, lo) || !model_in(m, hi))
		m->sorted = false;
	m->last_hi = hi;
	for (uint64_t i = lo; i <= hi && model_in(m, (uint32_t)i); i++) {
		m->seen_free[i - m->first] = true;
		m->seen_never[i - m->first] = never;
	}
}

/* The allocator's free intervals are exactly the model's free IDs and kinds. */
static void model_compare(struct model *m, struct vmres_id_allocator *ids)
{
	struct vmres__id_stats st;
	uint64_t free_count = 0;

	assert_int_equal(vmres__id_check(ids, &st), 0);
	memset(m->seen_free, 0, m->size);
	memset(m->seen_never, 0, m->size);
	m->sorted = true;
	m->last_hi = -1;
	vmres__id_foreach_free(ids, visit_interval, m);
	assert_true(m->sorted);
	for (uint32_t i = 0; i < m->size; i++) {
		assert_int_equal(m->seen_free[i], !m->held[i]);
		if (!m->held[i]) {
			assert_int_equal(m->seen_never[i], !m->ever[i]);
			free_count++;
		}
	}
	assert_int_equal(st.free_ids, free_count);
}

struct find_ctx {
	uint32_t id;
	bool found;
	uint32_t lo;
};

static void find_visit(void *ctx, uint32_t lo, uint32_t hi, bool never)
{
	struct find_ctx *f = ctx;

	(void)never;
	if (lo <= f->id && f->id <= hi) {
		f->found = true;
		f->lo = lo;
	}
}

/*
 * Whether alloc_at(@id) makes a node: @id is free and not the lo of its
 * interval (a split, or a take at hi). Interval ends are the allocator's
 * business (freed IDs merge only downwards), so ask it.
 */
static bool alloc_at_needs_node(struct vmres_id_allocator *ids, uint32_t id)
{
	struct find_ctx f = { id, false, 0 };

	vmres__id_foreach_free(ids, find_visit, &f);
	return f.found && f.lo < id;
}

static uint32_t random_id(const struct model *m, uint64_t *rng)
{
	/* Mostly inside, sometimes just outside the range. */
	uint64_t r = vmres_test_rand_below(rng, (uint64_t)m->size + 4);
	uint64_t id = (uint64_t)m->first + r - 2;

	if ((int64_t)id < 0 || id > UINT32_MAX)
		return m->first;
	return (uint32_t)id;
}

/* One random operation on both; every return value compared. */
static void model_step(struct model *m, struct vmres_id_allocator *ids, uint64_t *rng)
{
	uint32_t op = (uint32_t)vmres_test_rand_below(rng, 10);
	uint32_t id = random_id(m, rng);
	uint32_t got = 0, want = 0;
	int rc;

	if (op < 4) {
		int want_rc = model_alloc(m, &want);

		rc = vmres_id_alloc(ids, &got);
		assert_int_equal(rc, want_rc);
		if (rc == VMRES_OK) {
			assert_int_equal(got, want);
			m->held[got - m->first] = m->ever[got - m->first] = true;
		}
	} else if (op < 6) {
		int want_rc = !model_in(m, id)	       ? VMRES_E_OUT_OF_RANGE
			      : m->held[id - m->first] ? VMRES_E_IN_USE
						       : VMRES_OK;

		assert_int_equal(vmres_id_alloc_at(ids, id), want_rc);
		if (want_rc == VMRES_OK)
			m->held[id - m->first] = m->ever[id - m->first] = true;
	} else if (op < 9) {
		int want_rc = model_free(m, id);

		assert_int_equal(vmres_id_free(ids, id), want_rc);
		if (want_rc == VMRES_OK)
			m->held[id - m->first] = false;
	} else {
		assert_int_equal(vmres_id_is_allocated(ids, id),
				 model_in(m, id) && m->held[id - m->first]);
	}
}

static void model_init(struct model *m, uint32_t first, uint32_t size)
{
	m->first = first;
	m->size = size;
	m->held = calloc(size, 1);
	m->ever = calloc(size, 1);
	m->seen_free = calloc(size, 1);
	m->seen_never = calloc(size, 1);
	assert_non_null(m->held);
	assert_non_null(m->ever);
	assert_non_null(m->seen_free);
	assert_non_null(m->seen_never);
}

static void model_fini(struct model *m)
{
	free(m->held);
	free(m->ever);
	free(m->seen_free);
	free(m->seen_never);
}

static void test_id_differential_against_bitmap(void **state)
{
	(void)state;
	uint64_t seed = vmres_test_seed("VMRES_TEST_SEED", "test_id_differential_against_bitmap");
	/* Ranges at 0, in the middle and touching UINT32_MAX, small and larger. */
	static const struct {
		uint32_t first;
		uint32_t size;
	} shapes[] = { { 0, 40 }, { 1000, 300 }, { UINT32_MAX - 63, 64 }, { 7, 1 }, { 0, 2000 } };

	for (uint32_t round = 0; round < 5; round++) {
		uint64_t rng = seed + round;
		struct model m;
		struct vmres_id_allocator *ids;
		uint32_t first = shapes[round].first, size = shapes[round].size;

		model_init(&m, first, size);
		ids = make(first, first + (size - 1));
		for (uint32_t step = 0; step < 6000; step++) {
			model_step(&m, ids, &rng);
			if (step % 97 == 0)
				model_compare(&m, ids);
		}
		model_compare(&m, ids);
		vmres_id_allocator_destroy(ids);
		model_fini(&m);
	}
}

/* ---- allocation failures and leaks ---------------------------------------- */

struct snapshot {
	uint32_t n;
	uint32_t lo[512];
	uint32_t hi[512];
	bool never[512];
};

static void snap_visit(void *ctx, uint32_t lo, uint32_t hi, bool never)
{
	struct snapshot *s = ctx;

	assert_true(s->n < 512);
	s->lo[s->n] = lo;
	s->hi[s->n] = hi;
	s->never[s->n] = never;
	s->n++;
}

static void snap_take(struct vmres_id_allocator *ids, struct snapshot *s)
{
	memset(s, 0, sizeof(*s));
	vmres__id_foreach_free(ids, snap_visit, s);
}

/*
 * Whether free(@id) of a held @id makes a node, by the rules of src/id.c:
 * not if it lowers the lo of the freed interval starting at @id + 1; not if
 * it goes inline in the head (in front of every interval, none inline yet);
 * not if it goes inline in front of the inline ID u, which then lowers the lo
 * of a freed first interval starting at u + 1; else it does.
 */
static bool free_needs_node(struct vmres_id_allocator *ids, uint32_t id)
{
	struct snapshot s;
	uint32_t u = 0;
	bool inl = vmres__id_head_inline(ids, &u);
	uint32_t first = inl ? 1 : 0; /* the first interval in a node */

	snap_take(ids, &s);
	for (uint32_t i = first; i < s.n; i++)
		if (!s.never[i] && s.lo[i] == (uint64_t)id + 1)
			return false;
	if (!inl)
		return !(first == s.n || id < s.lo[first]);
	return !(id < u && first < s.n && !s.never[first] && s.lo[first] == (uint64_t)u + 1);
}

/*
 * Runs @op with every allocation failing: it must return NOMEM and leave the
 * state and the memory counters exactly as they were; then it must succeed.
 */
static void fails_cleanly(struct vmres_id_allocator *ids, struct vmres_test_mem *mem,
			  int (*op)(struct vmres_id_allocator *ids, uint32_t id), uint32_t id,
			  int64_t node_delta)
{
	struct snapshot before, after;
	int64_t blocks, failures;

	/* Pooled nodes would spare the hook: empty the pools (callbacks first). */
	vmres_rcu_barrier();
	vmres__id_pool_drain(ids);
	blocks = vmres_test_mem_live_blocks(mem);
	failures = vmres_test_mem_failures(mem);

	snap_take(ids, &before);
	vmres_test_mem_fail_after(mem, 0);
	assert_int_equal(op(ids, id), VMRES_E_NOMEM);
	vmres_test_mem_fail_after(mem, -1);
	assert_int_equal(vmres_test_mem_failures(mem), failures + 1);
	assert_int_equal(vmres_test_mem_live_blocks(mem), blocks);
	snap_take(ids, &after);
	assert_memory_equal(&before, &after, sizeof(before));
	check_ok(ids);
	assert_int_equal(op(ids, id), VMRES_OK);
	vmres_rcu_barrier(); /* a node the op retired is gone now (or pooled) */
	vmres__id_pool_drain(ids);
	assert_int_equal(vmres_test_mem_live_blocks(mem), blocks + node_delta);
}

static void test_id_nomem_leaves_state_unchanged(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_mem_ops ops;
	struct vmres_id_allocator *ids = NULL;
	uint32_t id;

	vmres_test_mem_init(&mem);
	ops = vmres_test_mem_ops(&mem);
	/* create: the allocator, then its first node. */
	for (int64_t k = 0; k < 2; k++) {
		vmres_test_mem_fail_after(&mem, k);
		assert_int_equal(vmres_id_allocator_create_ex(0, 99, &ops, &ids), VMRES_E_NOMEM);
		assert_null(ids);
		assert_int_equal(vmres_test_mem_live_blocks(&mem), 0);
	}
	vmres_test_mem_fail_after(&mem, -1);
	assert_int_equal(vmres_id_allocator_create_ex(0, 99, &ops, &ids), VMRES_OK);
	assert_int_equal(vmres_test_mem_live_blocks(&mem), 2);

	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(alloc_ok(ids), i);
	/* A free in front of every interval goes inline in the head: no memory. */
	vmres_test_mem_fail_after(&mem, 0);
	assert_int_equal(vmres_id_free(ids, 5), VMRES_OK);
	vmres_test_mem_fail_after(&mem, -1);
	assert_int_equal(vmres_test_mem_failures(&mem), 2);
	assert_true(vmres__id_head_inline(ids, &id));
	assert_int_equal(id, 5);
	/* free: its node, in front of the inline 5 (5 gets the node, 2 goes
	 * inline), between freed IDs, and in front of the inline 2 again. */
	fails_cleanly(ids, &mem, vmres_id_free, 2, 1);
	fails_cleanly(ids, &mem, vmres_id_free, 9, 1);
	fails_cleanly(ids, &mem, vmres_id_free, 0, 1);
	/* alloc_at: the split node, inside the tail... */
	fails_cleanly(ids, &mem, vmres_id_alloc_at, 50, 1);
	fails_cleanly(ids, &mem, vmres_id_alloc_at, 30, 1);
	/* ...and the node taking [lo, hi - 1] at a never-handed-out hi (X dies). */
	fails_cleanly(ids, &mem, vmres_id_alloc_at, 99, 0);

	/* What needs no memory still works while every allocation fails. */
	vmres_test_mem_fail_after(&mem, 0);
	assert_int_equal(vmres_id_free(ids, 4), VMRES_OK);	/* merges into freed 5: [4, 5] */
	assert_int_equal(vmres_id_free(ids, 1), VMRES_OK);	/* merges into freed 2: [1, 2] */
	assert_int_equal(alloc_ok(ids), 0);			/* the inline ID */
	assert_int_equal(alloc_ok(ids), 1);			/* lo of freed [1, 2] */
	assert_int_equal(vmres_id_alloc_at(ids, 4), VMRES_OK);	/* lo of freed [4, 5] */
	assert_int_equal(vmres_id_alloc_at(ids, 5), VMRES_OK);	/* a one-ID freed interval */
	assert_int_equal(vmres_id_alloc_at(ids, 10), VMRES_OK); /* tail lo */
	assert_int_equal(vmres_id_alloc_at(ids, 51), VMRES_OK); /* a piece's lo */
	assert_int_equal(vmres_id_free(ids, 40), VMRES_E_NEVER_ALLOCATED);
	assert_int_equal(vmres_id_free(ids, 9), VMRES_E_ALREADY_FREED);
	assert_int_equal(vmres_id_alloc_at(ids, 7), VMRES_E_IN_USE);
	assert_int_equal(alloc_ok(ids), 2);
	while (vmres_id_alloc(ids, &id) == VMRES_OK)
		;
	assert_int_equal(vmres_test_mem_failures(&mem), 8); /* create 2 + 6 above, none here */
	vmres_test_mem_fail_after(&mem, -1);
	check_ok(ids);

	vmres_id_allocator_destroy(ids);
	vmres_rcu_barrier();
	assert_int_equal(vmres_test_mem_live_blocks(&mem), 0);
	assert_int_equal(vmres_test_mem_live_bytes(&mem), 0);
}

/* Random operations with random allocation failures: same as the model, no leak. */
static void test_id_random_nomem_and_no_leak(void **state)
{
	(void)state;
	uint64_t seed = vmres_test_seed("VMRES_TEST_SEED", "test_id_random_nomem_and_no_leak");
	uint64_t rng = seed;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_mem_ops ops;
	struct vmres_id_allocator *ids = NULL;
	struct model m;

	vmres_test_mem_init(&mem);
	ops = vmres_test_mem_ops(&mem);
	model_init(&m, 100, 400);
	assert_int_equal(vmres_id_allocator_create_ex(100, 499, &ops, &ids), VMRES_OK);
	for (uint32_t step = 0; step < 8000; step++) {
		uint32_t id = random_id(&m, &rng);
		bool fail = vmres_test_rand_below(&rng, 4) == 0;
		int want = model_free(&m, id);
		bool needs_node;
		int rc;

		if (vmres_test_rand_below(&rng, 2)) {
			model_step(&m, ids, &rng);
			continue;
		}
		/* A free or alloc_at that may have to fail for lack of memory. */
		if (fail) {
			/* So that a node it needs is asked of the hook, not a pool. */
			vmres_rcu_barrier();
			vmres__id_pool_drain(ids);
		}
		vmres_test_mem_fail_after(&mem, fail ? 0 : -1);
		if (vmres_test_rand_below(&rng, 2)) {
			needs_node = want == VMRES_OK && free_needs_node(ids, id);
			rc = vmres_id_free(ids, id);
			if (fail && needs_node) {
				assert_int_equal(rc, VMRES_E_NOMEM);
			} else {
				assert_int_equal(rc, want);
				if (want == VMRES_OK)
					m.held[id - m.first] = false;
			}
		} else {
			want = !model_in(&m, id)      ? VMRES_E_OUT_OF_RANGE
			       : m.held[id - m.first] ? VMRES_E_IN_USE
						      : VMRES_OK;
			needs_node = want == VMRES_OK && alloc_at_needs_node(ids, id);
			rc = vmres_id_alloc_at(ids, id);
			/* Only a take past the lo of an interval makes a node. */
			if (fail && needs_node) {
				assert_int_equal(rc, VMRES_E_NOMEM);
			} else {
				assert_int_equal(rc, want);
				if (want == VMRES_OK)
					m.held[id - m.first] = m.ever[id - m.first] = true;
			}
		}
		vmres_test_mem_fail_after(&mem, -1);
		if (step % 61 == 0)
			model_compare(&m, ids);
	}
	model_compare(&m, ids);
	assert_true(vmres_test_mem_failures(&mem) > 0);
	vmres_id_allocator_destroy(ids);
	vmres_rcu_barrier();
	assert_int_equal(vmres_test_mem_live_blocks(&mem), 0);
	model_fini(&m);
}

/* Nodes the allocator holds beyond its own block and its list's nodes. */
static int64_t pooled_blocks(struct vmres_id_allocator *ids, struct vmres_test_mem *mem)
{
	struct vmres__id_stats st;

	assert_int_equal(vmres__id_check(ids, &st), 0);
	return vmres_test_mem_live_blocks(mem) - 1 - (int64_t)st.nodes;
}

/*
 * What the allocator may hold beyond its list on one thread: each height's
 * pool cap, plus fewer than a batch waiting on each height's pending stack.
 */
static int64_t pool_bound(struct vmres_id_allocator *ids)
{
	int64_t bound = 0;

	for (uint32_t h = 0; h <= ID_INDEX_LEVELS; h++)
		bound += (int64_t)vmres__id_pool_cap(ids, h) + ID_POOL_BATCH - 1;
	return bound;
}

/*
 * Each height's pool stays within its own cap (C >> 2h), not just the sum of
 * all caps: enough retires that heights 0-2 overflow their caps, then a
 * barrier so every batch has reached its pool. The pool's count is what the
 * callback reserved, so it bounds what the pool holds.
 */
static void test_id_pool_each_height_within_its_cap(void **state)
{
	(void)state;
	struct vmres_id_allocator *ids = NULL;
	const uint32_t n = 120000; /* 60,000 retires: about 11,000 of height 1 */
	bool over_some_cap = false;

	assert_int_equal(vmres_id_allocator_create(0, (1u << 18) - 1, &ids), VMRES_OK);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(alloc_ok(ids), i);
	for (uint32_t i = 0; i < n; i += 2) /* 60,000 one-ID intervals */
		assert_int_equal(vmres_id_free(ids, i), VMRES_OK);
	for (uint32_t i = 0; i < n; i += 2) /* each take empties one: retired */
		assert_int_equal(vmres_id_alloc_at(ids, i), VMRES_OK);
	vmres_rcu_barrier();
	for (uint32_t h = 0; h <= ID_INDEX_LEVELS; h++) {
		uint64_t held = __atomic_load_n(&ids->pool[h].stack.count, __ATOMIC_RELAXED);
		uint64_t cap = vmres__id_pool_cap(ids, h);

		assert_true(held <= cap);
		if (cap >= ID_POOL_BATCH && held + ID_POOL_BATCH > cap)
			over_some_cap = true; /* this height's retires reached its cap */
	}
	assert_true(over_some_cap); /* else the workload proves nothing */
	vmres_id_allocator_destroy(ids);
}

/*
 * A key whose hash draws the tallest tower: the node gets exactly
 * ID_INDEX_LEVELS levels (its up[] array, the searches' predecessor arrays
 * and the per-height pools are sized for that), works like any other, and
 * the checker passes. The salt is set so that key 5 hashes to 0, whose low
 * bit pairs are all zero.
 */
static void test_id_tallest_tower(void **state)
{
	(void)state;
	struct vmres_id_allocator *ids = NULL;
	struct id_node *n;

	assert_int_equal(vmres_id_allocator_create(0, 999, &ids), VMRES_OK);
	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(alloc_ok(ids), i);
	ids->height_salt = (uint64_t)0 - 5; /* quiet allocator: no other call runs */
	/* 3 goes inline in the head, so 5 needs a node; then 3 is taken back. */
	assert_int_equal(vmres_id_free(ids, 3), VMRES_OK);
	assert_int_equal(vmres_id_free(ids, 5), VMRES_OK);
	assert_int_equal(alloc_ok(ids), 3);
	n = id_link_node(vmres__pair_load(&ids->head).w0);
	assert_int_equal(n->key, 5);
	assert_int_equal(n->height, ID_INDEX_LEVELS);
	check_ok(ids);
	assert_false(vmres_id_is_allocated(ids, 5));
	assert_true(vmres_id_is_allocated(ids, 6));
	assert_int_equal(alloc_ok(ids), 5); /* unlinks the tall node */
	check_ok(ids);
	vmres_id_allocator_destroy(ids);
}

/*
 * Retired nodes wait in batches, then in bounded per-height pools, are reused
 * without asking the hook, and go back to the hook on drain and on destroy.
 */
static void test_id_pool_reuses_bounded_and_drains(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_mem_ops ops;
	struct vmres_id_allocator *ids = NULL;
	int64_t pooled, made, failures, reused = 0;
	uint32_t id;

	vmres_test_mem_init(&mem);
	ops = vmres_test_mem_ops(&mem);
	assert_int_equal(vmres_id_allocator_create_ex(0, 9999, &ops, &ids), VMRES_OK);
	for (uint32_t i = 0; i < 4000; i++)
		assert_int_equal(alloc_ok(ids), i);
	/* 1 stays free, inline in the head: the frees above it need nodes. */
	assert_int_equal(vmres_id_free(ids, 1), VMRES_OK);
	/* Churn: each free makes a one-ID interval's node, alloc_at retires it. */
	made = vmres_test_mem_allocs(&mem);
	for (uint32_t i = 2; i < 4000; i += 2) {
		assert_int_equal(vmres_id_free(ids, i), VMRES_OK);
		assert_int_equal(vmres_id_alloc_at(ids, i), VMRES_OK);
	}
	/* Blocks the hook gave for the 1999 nodes: fewer than 1999 when a batch's
	 * grace period ended during the loop and its nodes were reused (on a slow
	 * machine, or under TSAN), so the bounds below count from this. */
	made = vmres_test_mem_allocs(&mem) - made;
	assert_true(made >= ID_POOL_BATCH && made <= 1999);
	vmres_rcu_barrier();
	pooled = pooled_blocks(ids, &mem);
	/* Every block made was retired and kept (pooled, or pending in a batch
	 * not yet full), except nodes of heights too tall to pool, which went
	 * back to the hook; the caps for a 10,000-ID range are 10,000 >> 2h. */
	assert_true(pooled >= made - (int64_t)(ID_INDEX_LEVELS + 1) * (ID_POOL_BATCH - 1));
	assert_true(pooled <= made);
	assert_true(pooled <= pool_bound(ids));

	/* With the hook failing, frees whose height class has a node still work. */
	failures = vmres_test_mem_failures(&mem);
	vmres_test_mem_fail_after(&mem, 0);
	for (uint32_t i = 2; i < 4000; i += 2) {
		int rc = vmres_id_free(ids, i);

		assert_true(rc == VMRES_OK || rc == VMRES_E_NOMEM);
		if (rc == VMRES_OK) {
			reused++;
			assert_false(vmres_id_is_allocated(ids, i));
		} else {
			assert_true(vmres_id_is_allocated(ids, i));
		}
	}
	vmres_test_mem_fail_after(&mem, -1);
	assert_true(reused > 0);
	assert_int_equal(vmres_test_mem_failures(&mem) - failures, 1999 - reused);
	check_ok(ids);

	/* Drain: exactly the pooled nodes go back to the hook. */
	vmres_rcu_barrier();
	pooled = pooled_blocks(ids, &mem);
	assert_int_equal((int64_t)vmres__id_pool_drain(ids), pooled);
	assert_int_equal(pooled_blocks(ids, &mem), 0);
	/* Nothing pooled: the next node is the hook's, so this free fails (3
	 * is inline in the head, so 7 needs a node). */
	while (vmres_id_alloc(ids, &id) == VMRES_OK)
		;
	assert_int_equal(vmres_id_free(ids, 3), VMRES_OK);
	vmres_rcu_barrier();
	vmres__id_pool_drain(ids);
	vmres_test_mem_fail_after(&mem, 0);
	assert_int_equal(vmres_id_free(ids, 7), VMRES_E_NOMEM);
	vmres_test_mem_fail_after(&mem, -1);
	assert_int_equal(vmres_id_free(ids, 7), VMRES_OK);

	/* Destroy gives back the pools too. */
	for (uint32_t i = 0; i < 9999; i += 3)
		(void)vmres_id_free(ids, i);
	vmres_id_allocator_destroy(ids);
	vmres_rcu_barrier();
	assert_int_equal(vmres_test_mem_live_blocks(&mem), 0);
	assert_int_equal(vmres_test_mem_live_bytes(&mem), 0);
}

/*
 * A small range keeps a small pool, a tiny one none: after 5,000 retires that all reach the
 * callbacks at once (one barrier at the end), the blocks held beyond the list
 * stay within the range-sized caps (the rest went back to the hook). Then,
 * with the pools filled between rounds, churn takes its nodes from the pools.
 */
static void test_id_pool_small_range_stays_small(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_mem_ops ops;
	struct vmres_id_allocator *ids = NULL;
	int64_t allocs = 0;

	vmres_test_mem_init(&mem);
	ops = vmres_test_mem_ops(&mem);
	assert_int_equal(vmres_id_allocator_create_ex(0, 99, &ops, &ids), VMRES_OK);
	assert_int_equal(vmres__id_pool_cap(ids, 0), 100);
	assert_int_equal(vmres__id_pool_cap(ids, 1), 25); /* below a batch: not pooled */
	for (uint32_t i = 0; i < 100; i++)
		assert_int_equal(alloc_ok(ids), i);
	for (uint32_t round = 0; round < 200; round++) {
		if (round == 100) {
			vmres_rcu_barrier(); /* every batch so far reaches its pool */
			assert_true(pooled_blocks(ids, &mem) <= pool_bound(ids));
			allocs = vmres_test_mem_allocs(&mem);
		}
		/* 50 one-ID intervals made, then retired by the allocs. */
		for (uint32_t i = 0; i < 100; i += 2)
			assert_int_equal(vmres_id_free(ids, i), VMRES_OK);
		for (uint32_t i = 0; i < 100; i += 2)
			assert_int_equal(alloc_ok(ids), i);
		if (round >= 100) {
			vmres_rcu_barrier(); /* full batches reach the pools */
			assert_true(pooled_blocks(ids, &mem) <= pool_bound(ids));
		}
	}
	/* The last 100 rounds made 5,000 nodes; the height-0 ones (3/4 of
	 * them) came from the pool, the others from the hook. */
	assert_true(vmres_test_mem_allocs(&mem) - allocs < 2500);
	vmres_id_allocator_destroy(ids);
	vmres_rcu_barrier();
	assert_int_equal(vmres_test_mem_live_blocks(&mem), 0);

	/* 24 IDs (legacy IRQs): no height can hold a batch, nothing is kept. */
	assert_int_equal(vmres_id_allocator_create_ex(0, 23, &ops, &ids), VMRES_OK);
	assert_true(vmres__id_pool_cap(ids, 0) < ID_POOL_BATCH);
	for (uint32_t i = 0; i < 24; i++)
		assert_int_equal(alloc_ok(ids), i);
	for (uint32_t round = 0; round < 100; round++) {
		for (uint32_t i = 0; i < 24; i += 2)
			assert_int_equal(vmres_id_free(ids, i), VMRES_OK);
		for (uint32_t i = 0; i < 24; i += 2)
			assert_int_equal(alloc_ok(ids), i);
	}
	vmres_rcu_barrier();
	assert_int_equal(pooled_blocks(ids, &mem), 0);
	vmres_id_allocator_destroy(ids);
	vmres_rcu_barrier();
	assert_int_equal(vmres_test_mem_live_blocks(&mem), 0);
}

/* The locked instructions this thread made since @before. */
static struct vmres__atomic_counts locked_since(const struct vmres__atomic_counts *before)
{
	struct vmres__atomic_counts now;

	assert_true(vmres__atomic_counts_get(&now)); /* the test copy counts */
	return (struct vmres__atomic_counts){ now.cas - before->cas, now.cas2 - before->cas2,
					      now.faa - before->faa, now.swap - before->swap };
}

static void assert_locked(const struct vmres__atomic_counts *before, uint64_t cas, uint64_t cas2,
			  uint64_t faa, uint64_t swap)
{
	struct vmres__atomic_counts d = locked_since(before);

	assert_int_equal(d.cas, cas);
	assert_int_equal(d.cas2, cas2);
	assert_int_equal(d.faa, faa);
	assert_int_equal(d.swap, swap);
}

/*
 * The locked instructions of each list path on one thread (no CAS can fail),
 * counted by the test copy (VMRES_COUNT_ATOMICS): the costs that
 * docs/performance.md ("Locked instructions per pair, counted") adds up. A
 * change that adds one to these paths fails here on purpose; update that
 * section with it. The salt is chosen so that key 7's node has no index
 * levels (3 salts in 4 give that), so the index adds nothing.
 */
static void test_id_locked_instructions_per_path(void **state)
{
	(void)state;
	struct vmres_id_allocator *ids = NULL;
	struct vmres__atomic_counts before;
	struct id_node *n;

	for (uint64_t salt = 0;; salt++) {
		assert_true(salt < 64);
		ids = make(0, 999);
		for (uint32_t i = 0; i < 10; i++)
			assert_int_equal(alloc_ok(ids), i);
		ids->height_salt = salt; /* quiet allocator: no other call runs */
		/* 3 inline in the head, so 7 gets a node (after 3). */
		assert_int_equal(vmres_id_free(ids, 3), VMRES_OK);
		assert_int_equal(vmres_id_free(ids, 7), VMRES_OK);
		n = id_link_node(vmres__pair_load(&ids->head).w0);
		assert_int_equal(n->key, 7);
		if (n->height == 0)
			break;
		vmres_id_allocator_destroy(ids);
	}
	/* Free into an empty pool: the hook's block, one CAS to insert it. (Key
	 * 7's node was made with the salt unknown; take it back, drain.) */
	assert_int_equal(vmres_id_alloc_at(ids, 7), VMRES_OK);
	vmres_rcu_barrier();
	vmres__id_pool_drain(ids);
	assert_true(vmres__atomic_counts_get(&before));
	assert_int_equal(vmres_id_free(ids, 7), VMRES_OK);
	assert_locked(&before, 0, 1, 0, 0);
	/* Free next to a FREED interval: one CAS lowers its lo. */
	vmres__atomic_counts_get(&before);
	assert_int_equal(vmres_id_free(ids, 6), VMRES_OK);
	assert_locked(&before, 0, 1, 0, 0);
	/* Alloc of the head's inline ID: one CAS, no node. */
	vmres__atomic_counts_get(&before);
	assert_int_equal(alloc_ok(ids), 3);
	assert_locked(&before, 0, 1, 0, 0);
	/* Free in front of every interval: goes inline, one CAS, no node. */
	vmres__atomic_counts_get(&before);
	assert_int_equal(vmres_id_free(ids, 2), VMRES_OK);
	assert_locked(&before, 0, 1, 0, 0);
	assert_int_equal(alloc_ok(ids), 2);
	/* Alloc from an interval that keeps IDs: one CAS raises its lo. */
	vmres__atomic_counts_get(&before);
	assert_int_equal(alloc_ok(ids), 6);
	assert_locked(&before, 0, 1, 0, 0);
	/* Alloc of an interval's last ID: DEL, freeze, unlink (three
	 * double-width CASes), then the retire's push on the pending stack. */
	vmres__atomic_counts_get(&before);
	assert_int_equal(alloc_ok(ids), 7);
	assert_locked(&before, 1, 3, 0, 0);
	/* Alloc from the never-used tail: one CAS. */
	vmres__atomic_counts_get(&before);
	assert_int_equal(alloc_ok(ids), 10);
	assert_locked(&before, 0, 1, 0, 0);
	/* Searches that change nothing lock nothing. */
	vmres__atomic_counts_get(&before);
	assert_true(vmres_id_is_allocated(ids, 7));
	assert_false(vmres_id_is_allocated(ids, 500));
	assert_int_equal(vmres_id_free(ids, 500), VMRES_E_NEVER_ALLOCATED);
	assert_int_equal(vmres_id_alloc_at(ids, 7), VMRES_E_IN_USE);
	assert_locked(&before, 0, 0, 0, 0);
	check_ok(ids);
	vmres_id_allocator_destroy(ids);
}

/* ---- the front fast paths (src/id.c, invariant 13) ----------------------- */

/* The first node of a quiet allocator's list, NULL when there is none. */
static struct id_node *first_node(struct vmres_id_allocator *ids)
{
	return id_link_node(vmres__pair_load(&ids->head).w0);
}

/*
 * [0, 99] with 0..9 handed out, then 7 down to @lo - 1 freed and @lo - 1
 * taken back (1 <= @lo <= 7): the head holds no inline ID, and the first
 * interval is the FREED [@lo, 7] (the frees in front of it went inline and
 * pushed the one before into it), then the NEVER [10, 99].
 */
static struct vmres_id_allocator *make_freed_first(uint32_t lo)
{
	struct vmres_id_allocator *ids = make(0, 99);

	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(alloc_ok(ids), i);
	for (uint32_t i = 8; i-- > lo - 1;)
		assert_int_equal(vmres_id_free(ids, i), VMRES_OK);
	assert_int_equal(alloc_ok(ids), lo - 1);
	assert_inline(ids, false, 0);
	assert_int_equal(first_node(ids)->key, 7);
	assert_int_equal(id_bounds_lo(vmres__pair_load(&ids->head).w1), lo);
	return ids;
}

/*
 * A free in front of every interval, with no inline ID in the head, is
 * decided from the head word alone ("The front fast paths" in src/id.c):
 * one cmpxchg16b, no search step, no read of the first node. The last is
 * shown by giving that node (the NEVER [10, 99], not indexed) a key below
 * the freed ID for the call: a search would step past it and put the ID
 * behind it. Then the ID is inline, every call answers for it, the alloc
 * takes it back with one cmpxchg16b, and the next allocs go in order. The
 * same with no interval left at all (the head has no node).
 */
static void test_id_front_free_fast_path(void **state)
{
	(void)state;
	struct vmres_id_allocator *ids = make(0, 99);
	struct vmres__atomic_counts before;
	struct vmres__id_stats st;
	struct id_node *x;
	uint64_t steps;
	uint32_t key, id;
	int rc;

	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(alloc_ok(ids), i);
	assert_inline(ids, false, 0);
	steps = vmres__id_steps();
	assert_true(vmres__atomic_counts_get(&before));
	assert_int_equal(vmres_id_free(ids, 4), VMRES_OK);
	assert_locked(&before, 0, 1, 0, 0);
	assert_int_equal(vmres__id_steps(), steps);
	assert_inline(ids, true, 4);
	assert_false(vmres_id_is_allocated(ids, 4));
	assert_true(vmres_id_is_allocated(ids, 3));
	assert_true(vmres_id_is_allocated(ids, 5));
	assert_int_equal(vmres_id_free(ids, 4), VMRES_E_ALREADY_FREED);
	assert_int_equal(vmres_id_alloc_at(ids, 5), VMRES_E_IN_USE);
	vmres__atomic_counts_get(&before);
	assert_int_equal(alloc_ok(ids), 4);
	assert_locked(&before, 0, 1, 0, 0);
	assert_inline(ids, false, 0);
	assert_true(vmres_id_is_allocated(ids, 4));

	/* The first node is not read: its key says 0 for the call. */
	x = first_node(ids);
	key = x->key;
	x->key = 0; /* quiet allocator: no other call runs */
	steps = vmres__id_steps();
	rc = vmres_id_free(ids, 8);
	x->key = key;
	assert_int_equal(rc, VMRES_OK);
	assert_int_equal(vmres__id_steps(), steps);
	assert_ptr_equal(first_node(ids), x);
	assert_inline(ids, true, 8);
	assert_int_equal(vmres__id_check(ids, &st), 0);
	assert_int_equal(st.intervals, 2); /* 8 inline, never [10, 99] */
	assert_int_equal(st.nodes, 1);
	assert_int_equal(st.free_ids, 91);
	assert_int_equal(alloc_ok(ids), 8);
	assert_int_equal(alloc_ok(ids), 10);
	assert_int_equal(alloc_ok(ids), 11);
	check_ok(ids);
	vmres_id_allocator_destroy(ids);

	/* No node: every ID handed out. */
	ids = make(0, 1);
	assert_int_equal(alloc_ok(ids), 0);
	assert_int_equal(alloc_ok(ids), 1);
	assert_null(first_node(ids));
	steps = vmres__id_steps();
	vmres__atomic_counts_get(&before);
	assert_int_equal(vmres_id_free(ids, 1), VMRES_OK);
	assert_locked(&before, 0, 1, 0, 0);
	assert_int_equal(vmres__id_steps(), steps);
	assert_inline(ids, true, 1);
	assert_true(vmres_id_is_allocated(ids, 0));
	assert_false(vmres_id_is_allocated(ids, 1));
	assert_int_equal(alloc_ok(ids), 1);
	assert_int_equal(vmres_id_alloc(ids, &id), VMRES_E_EXHAUSTED);
	check_ok(ids);
	vmres_id_allocator_destroy(ids);
}

/*
 * The front fast merge: no inline ID, the first interval FREED [6, 7], and
 * free(5) lowers its lo to 5 in one cmpxchg16b, no node made and no inline
 * ID, with no search step and no read of the first node (its key says 0 for
 * the call). free(4) merges again; allocs then go 4, 5, 6, 7, 10. With a
 * NEVER first interval the same shape must not merge (a NEVER interval
 * holds only IDs never handed out): 9 in front of [10, 99] goes inline.
 */
static void test_id_front_free_merges(void **state)
{
	(void)state;
	struct vmres_id_allocator *ids = make_freed_first(6);
	struct vmres__atomic_counts before;
	struct vmres__id_stats st;
	struct id_node *x = first_node(ids);
	uint32_t key = x->key;
	uint64_t steps;
	int rc;

	steps = vmres__id_steps();
	assert_true(vmres__atomic_counts_get(&before));
	x->key = 0; /* quiet allocator: no other call runs */
	rc = vmres_id_free(ids, 5);
	x->key = key;
	assert_int_equal(rc, VMRES_OK);
	assert_locked(&before, 0, 1, 0, 0);
	assert_int_equal(vmres__id_steps(), steps);
	assert_ptr_equal(first_node(ids), x);
	assert_inline(ids, false, 0);
	assert_int_equal(vmres__id_check(ids, &st), 0);
	assert_int_equal(st.intervals, 2); /* freed [5, 7], never [10, 99] */
	assert_int_equal(st.nodes, 2);
	assert_int_equal(st.free_ids, 93);
	assert_int_equal(st.never_ids, 90);
	assert_false(vmres_id_is_allocated(ids, 5));
	assert_true(vmres_id_is_allocated(ids, 4));
	assert_int_equal(vmres_id_free(ids, 5), VMRES_E_ALREADY_FREED);
	assert_int_equal(vmres_id_free(ids, 4), VMRES_OK);
	assert_ptr_equal(first_node(ids), x);
	assert_inline(ids, false, 0);
	for (uint32_t want = 4; want <= 7; want++)
		assert_int_equal(alloc_ok(ids), want);
	assert_int_equal(alloc_ok(ids), 10);
	check_ok(ids);
	vmres_id_allocator_destroy(ids);

	/* A NEVER first interval starting right after the ID. */
	ids = make(0, 99);
	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(alloc_ok(ids), i);
	x = first_node(ids);
	assert_int_equal(vmres_id_free(ids, 9), VMRES_OK);
	assert_ptr_equal(first_node(ids), x);
	assert_inline(ids, true, 9);
	assert_int_equal(vmres__id_check(ids, &st), 0);
	assert_int_equal(st.intervals, 2); /* 9 inline, never [10, 99] */
	assert_int_equal(st.free_ids, 91);
	assert_int_equal(st.never_ids, 90);
	assert_int_equal(vmres_id_free(ids, 9), VMRES_E_ALREADY_FREED);
	assert_int_equal(vmres_id_free(ids, 10), VMRES_E_NEVER_ALLOCATED);
	assert_int_equal(alloc_ok(ids), 9);
	assert_int_equal(vmres_id_free(ids, 9), VMRES_OK);
	assert_int_equal(alloc_ok(ids), 9);
	assert_int_equal(alloc_ok(ids), 10);
	check_ok(ids);
	vmres_id_allocator_destroy(ids);
}

/*
 * Where the head word does not decide a free, the full path must answer:
 * with an inline ID u (free(u) is ALREADY_FREED; an ID between u and the
 * first interval gets a node or lowers a FREED lo, u staying; one below u
 * goes inline, u demoted), with the ID at or above the first interval's lo
 * (ALREADY_FREED in a FREED interval, NEVER_ALLOCATED in a NEVER one, a
 * node past a FREED one), and below the range (OUT_OF_RANGE, nothing
 * changed, although the head would take it inline).
 */
static void test_id_front_free_not_taken(void **state)
{
	(void)state;
	struct vmres_id_allocator *ids = make(0, 99);
	struct vmres__id_stats st;

	/* An inline ID in the head. */
	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(alloc_ok(ids), i);
	assert_int_equal(vmres_id_free(ids, 5), VMRES_OK);
	assert_inline(ids, true, 5);
	assert_int_equal(vmres_id_free(ids, 5), VMRES_E_ALREADY_FREED);
	assert_inline(ids, true, 5);
	assert_int_equal(vmres_id_free(ids, 8), VMRES_OK); /* a node [8, 8] */
	assert_inline(ids, true, 5);
	assert_int_equal(first_node(ids)->key, 8);
	assert_int_equal(vmres_id_free(ids, 7), VMRES_OK); /* lowers it: [7, 8] */
	assert_inline(ids, true, 5);
	assert_int_equal(vmres_id_free(ids, 3), VMRES_OK); /* demotes 5: node [5, 5] */
	assert_inline(ids, true, 3);
	assert_int_equal(first_node(ids)->key, 5);
	assert_int_equal(vmres_id_free(ids, 4), VMRES_OK); /* lowers [5, 5]: [4, 5] */
	assert_inline(ids, true, 3);
	assert_int_equal(vmres_id_free(ids, 2), VMRES_OK); /* demotes 3 into [4, 5] */
	assert_inline(ids, true, 2);
	assert_int_equal(vmres__id_check(ids, &st), 0);
	assert_int_equal(st.intervals, 4); /* 2 inline, [3, 5], [7, 8], never [10, 99] */
	assert_int_equal(st.free_ids, 96);
	for (uint32_t id = 2; id <= 8; id++)
		assert_int_equal(vmres_id_free(ids, id),
				 id == 6 ? VMRES_OK : VMRES_E_ALREADY_FREED);
	assert_int_equal(vmres_id_free(ids, 9), VMRES_OK);
	for (uint32_t want = 2; want <= 10; want++)
		assert_int_equal(alloc_ok(ids), want);
	check_ok(ids);
	vmres_id_allocator_destroy(ids);

	/* At or above the lo of a NEVER first interval, no inline ID. */
	ids = make(0, 99);
	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(alloc_ok(ids), i);
	assert_int_equal(vmres_id_free(ids, 10), VMRES_E_NEVER_ALLOCATED);
	assert_int_equal(vmres_id_free(ids, 50), VMRES_E_NEVER_ALLOCATED);
	assert_int_equal(vmres_id_free(ids, 99), VMRES_E_NEVER_ALLOCATED);
	assert_inline(ids, false, 0);
	assert_int_equal(alloc_ok(ids), 10);
	vmres_id_allocator_destroy(ids);

	/* At or above the lo of a FREED first interval [6, 7], no inline ID. */
	ids = make_freed_first(6);
	assert_int_equal(vmres_id_free(ids, 6), VMRES_E_ALREADY_FREED);
	assert_int_equal(vmres_id_free(ids, 7), VMRES_E_ALREADY_FREED);
	assert_inline(ids, false, 0);
	assert_int_equal(vmres_id_free(ids, 8), VMRES_OK); /* a node after [6, 7] */
	assert_int_equal(vmres_id_free(ids, 10), VMRES_E_NEVER_ALLOCATED);
	assert_inline(ids, false, 0);
	assert_int_equal(vmres__id_check(ids, &st), 0);
	assert_int_equal(st.intervals, 3); /* [6, 7], [8, 8], never [10, 99] */
	assert_int_equal(st.free_ids, 93);
	for (uint32_t want = 6; want <= 8; want++)
		assert_int_equal(alloc_ok(ids), want);
	assert_int_equal(alloc_ok(ids), 10);
	check_ok(ids);
	vmres_id_allocator_destroy(ids);

	/* Below the range: the head (NEVER [10, 20], no inline ID) is not asked. */
	ids = make(10, 20);
	assert_int_equal(vmres_id_free(ids, 9), VMRES_E_OUT_OF_RANGE);
	assert_int_equal(vmres_id_free(ids, 0), VMRES_E_OUT_OF_RANGE);
	assert_inline(ids, false, 0);
	assert_int_equal(alloc_ok(ids), 10);
	vmres_id_allocator_destroy(ids);
}

/*
 * The head DEL'd, as a thread leaves it that took the last ID of the first
 * interval (FREED [7, 7], so it holds 7) and stopped before the unlink. A
 * free in front of the dying node must not lower its lo (6: the unlink
 * would drop 6 with the node) nor put an ID inline on the DEL'd link (5:
 * invariant 6); the full path finishes the deletion, then puts the ID
 * inline.
 */
static void test_id_front_free_not_on_del_head(void **state)
{
	(void)state;

	for (uint32_t id = 6; id >= 5; id--) {
		struct vmres_id_allocator *ids = make_freed_first(7);
		struct vmres__pair head = vmres__pair_load(&ids->head);

		/* The stalled alloc's take of 7 (its unlink never comes). */
		assert_true(vmres__pair_cas(
			&ids->head, head, (struct vmres__pair){ head.w0 | ID_LINK_DEL, head.w1 }));
		assert_int_equal(vmres_id_free(ids, id), VMRES_OK);
		assert_false(vmres__pair_load(&ids->head).w0 & ID_LINK_DEL);
		assert_false(vmres_id_is_allocated(ids, id));
		assert_true(vmres_id_is_allocated(ids, 7)); /* the stalled thread's */
		assert_inline(ids, true, id);
		assert_int_equal(alloc_ok(ids), id);
		assert_int_equal(alloc_ok(ids), 10);
		assert_int_equal(vmres_id_free(ids, 7), VMRES_OK);
		assert_int_equal(alloc_ok(ids), 7);
		check_ok(ids);
		vmres_id_allocator_destroy(ids);
	}
}

/*
 * A memory hook that breaks its contract: blocks only 8-aligned once
 * @misalign is set. The allocator needs 16 (cmpxchg16b, 16-byte loads fault
 * on anything less): it must refuse such a block, not crash on it.
 */
struct align8_mem {
	int misalign;
	int aligned_first; /* while misalign is set: this many more blocks stay 16-aligned */
	int64_t live;	   /* atomic */
};

static void *align8_alloc(void *ctx, size_t size)
{
	struct align8_mem *m = ctx;
	char *p = malloc(size + 16); /* 16-aligned */

	if (!p)
		return NULL;
	__atomic_fetch_add(&m->live, 1, __ATOMIC_RELAXED); /* frees come from call_rcu */
	if (m->misalign && m->aligned_first > 0) {
		m->aligned_first--; /* single-threaded callers only */
		return p;
	}
	return m->misalign ? p + 8 : p;
}

static void align8_free(void *ctx, void *p, size_t size)
{
	struct align8_mem *m = ctx;

	(void)size;
	__atomic_fetch_sub(&m->live, 1, __ATOMIC_RELAXED);
	free((char *)p - ((uintptr_t)p & 8));
}

/*
 * A hook that, once armed, takes an ID itself (a nested call on the same
 * thread) before it hands out the block: the caller's view of the list goes
 * stale between its search and its CAS, as if another thread had run there.
 */
struct reenter_mem {
	struct vmres_id_allocator *ids;
	bool armed;
	bool nested_free; /* the nested call frees nested_id, else allocs into it */
	int nested_rc;
	uint32_t nested_id;
	int64_t live;			       /* atomic: frees come from call_rcu */
	void (*nested)(struct reenter_mem *m); /* if set: instead of the above */
};

static void *reenter_alloc(void *ctx, size_t size)
{
	struct reenter_mem *m = ctx;
	void *p;

	if (m->armed) {
		m->armed = false;
		if (m->nested)
			m->nested(m);
		else
			m->nested_rc = m->nested_free ? vmres_id_free(m->ids, m->nested_id)
						      : vmres_id_alloc(m->ids, &m->nested_id);
	}
	p = malloc(size);
	if (p)
		__atomic_fetch_add(&m->live, 1, __ATOMIC_RELAXED);
	return p;
}

static void reenter_free(void *ctx, void *p, size_t size)
{
	struct reenter_mem *m = ctx;

	(void)size;
	__atomic_fetch_sub(&m->live, 1, __ATOMIC_RELAXED);
	free(p);
}

/*
 * alloc_at(11) inside the NEVER interval [10, 99] needs a node for the split
 * and asks the hook for it; meanwhile 10 is taken, so 11 becomes the lo and
 * the retry takes it without a node. Then, with 3 inline in the head, free(5)
 * needs a node for [5, 5]; meanwhile 6 is freed, so the retry extends [6, 6]
 * down instead. Neither
 * spare may be freed at once (it may have come from a pool, whose concurrent
 * pops may still read it: invariant 11; the cap is raised so that every
 * height pools), and neither may leak: after destroy and a barrier the hook
 * has every block back.
 */
static void test_id_unused_spare_is_given_back(void **state)
{
	(void)state;
	struct reenter_mem m = { NULL, false, false, -1, 0, 0, NULL };
	struct vmres_mem_ops ops = { reenter_alloc, reenter_free, &m };
	uint32_t id;
	int64_t live;

	assert_int_equal(vmres_id_allocator_create_ex(0, 99, &ops, &m.ids), VMRES_OK);
	m.ids->pool_cap = (uint64_t)1 << 40; /* quiet: every height pools */
	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(alloc_ok(m.ids), i);
	live = __atomic_load_n(&m.live, __ATOMIC_RELAXED);
	m.armed = true;
	assert_int_equal(vmres_id_alloc_at(m.ids, 11), VMRES_OK);
	/* The spare waits for a grace period (a pending batch), not freed now. */
	assert_int_equal(__atomic_load_n(&m.live, __ATOMIC_RELAXED), live + 1);
	assert_false(m.armed); /* the split asked the hook */
	assert_int_equal(m.nested_rc, VMRES_OK);
	assert_int_equal(m.nested_id, 10);
	assert_true(vmres_id_is_allocated(m.ids, 10));
	assert_true(vmres_id_is_allocated(m.ids, 11));
	check_ok(m.ids);
	assert_int_equal(vmres_id_alloc(m.ids, &id), VMRES_OK);
	assert_int_equal(id, 12);

	m.nested_free = true;
	m.nested_id = 6;
	m.nested_rc = -1;
	/* 3 inline in the head: 5 and 6 need nodes (no hook call for 3). */
	assert_int_equal(vmres_id_free(m.ids, 3), VMRES_OK);
	live = __atomic_load_n(&m.live, __ATOMIC_RELAXED);
	m.armed = true;
	assert_int_equal(vmres_id_free(m.ids, 5), VMRES_OK);
	/* [6, 6]'s node, and the spare still waiting. */
	assert_int_equal(__atomic_load_n(&m.live, __ATOMIC_RELAXED), live + 2);
	assert_false(m.armed); /* the insert asked the hook */
	assert_int_equal(m.nested_rc, VMRES_OK);
	assert_false(vmres_id_is_allocated(m.ids, 5));
	assert_false(vmres_id_is_allocated(m.ids, 6));
	check_ok(m.ids);
	for (uint32_t want = 3; want <= 6; want++) {
		if (want == 4)
			continue; /* held since the start */
		assert_int_equal(vmres_id_alloc(m.ids, &id), VMRES_OK);
		assert_int_equal(id, want);
	}
	vmres_id_allocator_destroy(m.ids);
	vmres_rcu_barrier();
	assert_int_equal(__atomic_load_n(&m.live, __ATOMIC_RELAXED), 0);
}

/* Takes the inline ID 2 back and frees 8, which goes inline in its place. */
static void swap_inline_2_for_8(struct reenter_mem *m)
{
	uint32_t id = 0;

	m->nested_rc = vmres_id_alloc(m->ids, &id);
	if (m->nested_rc == VMRES_OK && id != 2)
		m->nested_rc = -1;
	if (m->nested_rc == VMRES_OK)
		m->nested_rc = vmres_id_free(m->ids, 8);
}

/*
 * A spare made for one shape and a retry that needs another: free(5) with 2
 * inline needs a node keyed 5 (after the inline ID); meanwhile 2 is taken and
 * 8 goes inline, so the retry must demote 8 into a node keyed 8. The spare
 * keyed 5 must not be used for it (a node's key is its interval's hi,
 * invariant 3): it is given back, and a node keyed 8 made.
 */
static void test_id_spare_of_another_key_not_used(void **state)
{
	(void)state;
	struct reenter_mem m = { NULL, false, false, -1, 0, 0, swap_inline_2_for_8 };
	struct vmres_mem_ops ops = { reenter_alloc, reenter_free, &m };
	struct vmres__id_stats st;
	uint32_t id = 0;
	int64_t live;

	assert_int_equal(vmres_id_allocator_create_ex(0, 99, &ops, &m.ids), VMRES_OK);
	/* Quiet: every height pools, so the spare waits whatever its height. */
	m.ids->pool_cap = (uint64_t)1 << 40;
	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(alloc_ok(m.ids), i);
	assert_int_equal(vmres_id_free(m.ids, 2), VMRES_OK); /* inline, no node */
	live = __atomic_load_n(&m.live, __ATOMIC_RELAXED);
	m.armed = true;
	assert_int_equal(vmres_id_free(m.ids, 5), VMRES_OK);
	assert_false(m.armed);
	assert_int_equal(m.nested_rc, VMRES_OK);
	/* The node keyed 8, and the spare keyed 5 waiting for a grace period. */
	assert_int_equal(__atomic_load_n(&m.live, __ATOMIC_RELAXED), live + 2);
	assert_true(vmres__id_head_inline(m.ids, &id));
	assert_int_equal(id, 5);
	assert_int_equal(vmres__id_check(m.ids, &st), 0);
	assert_int_equal(st.intervals, 3); /* 5 inline, freed [8, 8], never [10, 99] */
	assert_int_equal(st.nodes, 2);
	assert_int_equal(alloc_ok(m.ids), 5);
	assert_int_equal(alloc_ok(m.ids), 8);
	assert_int_equal(alloc_ok(m.ids), 10);
	vmres_id_allocator_destroy(m.ids);
	vmres_rcu_barrier();
	assert_int_equal(__atomic_load_n(&m.live, __ATOMIC_RELAXED), 0);
}

static void test_id_misaligned_hook_refused(void **state)
{
	(void)state;
	struct align8_mem m = { 1, 0, 0 };
	struct vmres_mem_ops ops = { align8_alloc, align8_free, &m };
	struct vmres_id_allocator *ids = NULL;

	/* The allocator's own block is misaligned: refused, nothing kept. */
	assert_int_equal(vmres_id_allocator_create_ex(0, 99, &ops, &ids), VMRES_E_INVALID_ARGUMENT);
	assert_null(ids);
	assert_int_equal(__atomic_load_n(&m.live, __ATOMIC_RELAXED), 0);

	/* The allocator's block is fine, its first node is not: out of memory,
	 * nothing kept (as documented for vmres_id_allocator_create_ex()). */
	m.aligned_first = 1;
	assert_int_equal(vmres_id_allocator_create_ex(0, 99, &ops, &ids), VMRES_E_NOMEM);
	assert_null(ids);
	assert_int_equal(m.aligned_first, 0); /* the first block was handed out aligned */
	assert_int_equal(__atomic_load_n(&m.live, __ATOMIC_RELAXED), 0);

	/* Later nodes misaligned: those calls fail as if out of memory. */
	m.misalign = 0;
	assert_int_equal(vmres_id_allocator_create_ex(0, 99, &ops, &ids), VMRES_OK);
	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(alloc_ok(ids), i);
	assert_int_equal(vmres_id_free(ids, 3), VMRES_OK); /* inline in the head: no node */
	m.misalign = 1;
	assert_int_equal(vmres_id_free(ids, 5), VMRES_E_NOMEM);
	assert_int_equal(vmres_id_alloc_at(ids, 50), VMRES_E_NOMEM);
	assert_true(vmres_id_is_allocated(ids, 5));
	assert_int_equal(vmres_id_free(ids, 50), VMRES_E_NEVER_ALLOCATED);
	assert_int_equal(__atomic_load_n(&m.live, __ATOMIC_RELAXED), 2);
	assert_int_equal(alloc_ok(ids), 3);  /* the inline ID: needs no node */
	assert_int_equal(alloc_ok(ids), 10); /* needs no node */
	check_ok(ids);
	m.misalign = 0;
	assert_int_equal(vmres_id_free(ids, 5), VMRES_OK);
	assert_int_equal(alloc_ok(ids), 5);
	vmres_id_allocator_destroy(ids);
	vmres_rcu_barrier();
	assert_int_equal(__atomic_load_n(&m.live, __ATOMIC_RELAXED), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_create_rejects_bad_arguments),
		cmocka_unit_test(test_id_null_allocator_and_out_pointer),
		cmocka_unit_test(test_id_smallest_first),
		cmocka_unit_test(test_id_out_of_range),
		cmocka_unit_test(test_id_free_error_codes),
		cmocka_unit_test(test_id_exhausted_without_wrapping),
		cmocka_unit_test(test_id_full_range_boundaries),
		cmocka_unit_test(test_id_one_id_ranges),
		cmocka_unit_test(test_id_alloc_at_around_the_tail),
		cmocka_unit_test(test_id_alloc_at_splits_many),
		cmocka_unit_test(test_id_inline_head),
		cmocka_unit_test(test_id_descending_frees_coalesce),
		cmocka_unit_test(test_id_front_free_fast_path),
		cmocka_unit_test(test_id_front_free_merges),
		cmocka_unit_test(test_id_front_free_not_taken),
		cmocka_unit_test(test_id_front_free_not_on_del_head),
		cmocka_unit_test(test_id_searches_stay_logarithmic),
		cmocka_unit_test(test_id_split_nodes_are_indexed),
		cmocka_unit_test(test_id_differential_against_bitmap),
		cmocka_unit_test(test_id_nomem_leaves_state_unchanged),
		cmocka_unit_test(test_id_random_nomem_and_no_leak),
		cmocka_unit_test(test_id_pool_reuses_bounded_and_drains),
		cmocka_unit_test(test_id_pool_each_height_within_its_cap),
		cmocka_unit_test(test_id_tallest_tower),
		cmocka_unit_test(test_id_unused_spare_is_given_back),
		cmocka_unit_test(test_id_pool_small_range_stays_small),
		cmocka_unit_test(test_id_spare_of_another_key_not_used),
		cmocka_unit_test(test_id_misaligned_hook_refused),
		cmocka_unit_test(test_id_locked_instructions_per_path),
	};

	return cmocka_run_group_tests(tests, vmres_test_group_setup, vmres_test_group_teardown);
}
