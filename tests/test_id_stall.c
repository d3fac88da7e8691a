/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The ID allocator with a stalled thread, deterministically: the test puts
 * the list and index in the state a thread leaves when it stops between two
 * steps of a deletion (DEL set; link frozen; unlinked but still indexed;
 * marked in the index), then runs every operation from the one test thread.
 * Lock-freedom says none of them may wait for the stalled one (a wait would
 * hang here), and each must give the sequential answer. The stalled thread
 * then "resumes" where that is its job (vmres__id_node_unlinked), and the
 * allocator must be consistent and leak nothing.
 */
#include "vmres_test.h"

#include <dirent.h>

#include "internal/id.h"
#include "internal/id_list.h"

/* Threads of this process now (Linux: entries of /proc/self/task). */
static int thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/*
 * Runs first in this process, before any call_rcu(): the first call_rcu() of
 * a process makes liburcu's default callback thread under liburcu's mutex
 * (pthread_create, malloc), a blocking step. create must do it, so that no
 * alloc/alloc_at/free/is_allocated ever does: the thread count may change
 * in create, not in the alloc that retires the first node.
 */
static void test_id_first_retirement_starts_no_thread(void **state)
{
	(void)state;
	struct vmres_id_allocator *ids = NULL;
	int before_alloc;
	uint32_t id;

	assert_int_equal(vmres_id_allocator_create(7, 7, &ids), VMRES_OK);
	before_alloc = thread_count();
	assert_int_equal(vmres_id_alloc(ids, &id), VMRES_OK); /* DEL, unlink, call_rcu */
	assert_int_equal(thread_count(), before_alloc);
	vmres_id_allocator_destroy(ids);
}

enum stall {
	STALL_DEL,	/* took the last ID of N: head -> N | DEL */
	STALL_FROZEN,	/* ... and froze N's link */
	STALL_UNLINKED, /* ... and unlinked N, not yet out of the index */
	STALL_MARKED,	/* ... and marked N's index levels, not yet retired */
};

/*
 * [0, 99] with 0..9 held, then free(5) until its node N (the first one,
 * [5, 5], key 5) has index levels, so the stale index entries are exercised
 * (each retry changes the allocator's height salt).
 */
static struct id_node *make_indexed_5(struct vmres_id_allocator *ids)
{
	uint32_t id;

	for (uint32_t i = 0; i < 10; i++) {
		assert_int_equal(vmres_id_alloc(ids, &id), VMRES_OK);
		assert_int_equal(id, i);
	}
	for (int tries = 0; tries < 10000; tries++) {
		struct id_node *n;

		assert_int_equal(vmres_id_free(ids, 5), VMRES_OK);
		n = id_link_node(vmres__pair_load(&ids->head).w0);
		if (n->height > 0)
			return n;
		assert_int_equal(vmres_id_alloc_at(ids, 5), VMRES_OK);
		/* Heights hash key and salt: another salt, another height for 5
		 * (heights are read only when a node is made). */
		ids->height_salt += 0x9e3779b97f4a7c15ull;
	}
	fail_msg("no node with index levels in 10000 tries");
	return NULL;
}

/* Leaves the state a thread that stopped at @stall leaves; it holds 5. */
static void stall_at(struct vmres_id_allocator *ids, struct id_node *n, enum stall stall)
{
	struct vmres__pair head = vmres__pair_load(&ids->head);
	struct vmres__pair del = { head.w0 | ID_LINK_DEL, head.w1 };
	struct vmres__pair link;

	assert_ptr_equal(id_link_node(head.w0), n);
	assert_int_equal(head.w1, id_bounds_make(5, 5));
	assert_true(vmres__pair_cas(&ids->head, head, del)); /* alloc's take */
	if (stall == STALL_DEL)
		return;
	link = vmres__pair_load(&n->link);
	assert_true(vmres__pair_cas(&n->link, link,
				    (struct vmres__pair){ link.w0 | ID_LINK_FROZEN, link.w1 }));
	if (stall == STALL_FROZEN)
		return;
	assert_true(vmres__pair_cas(&ids->head, del, link)); /* the unlink */
	if (stall == STALL_UNLINKED)
		return;
	for (uint32_t l = 0; l < n->height; l++)
		n->up[l] |= ID_UP_MARK; /* quiescent: no other thread runs */
}

static void run_stalled(enum stall stall)
{
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_mem_ops ops;
	struct vmres_id_allocator *ids = NULL;
	struct id_node *n;
	uint32_t id;

	vmres_test_mem_init(&mem);
	ops = vmres_test_mem_ops(&mem);
	assert_int_equal(vmres_id_allocator_create_ex(0, 99, &ops, &ids), VMRES_OK);
	n = make_indexed_5(ids);
	stall_at(ids, n, stall);

	/*
	 * Lookups and failing calls: the stalled thread holds 5. The first ones
	 * are for IDs above N's key, so their searches start from the index
	 * while N is still in it, stalled, before any call at or below 5 could
	 * help its deletion along from the head.
	 */
	assert_false(vmres_id_is_allocated(ids, 50));
	assert_int_equal(vmres_id_free(ids, 50), VMRES_E_NEVER_ALLOCATED);
	assert_true(vmres_id_is_allocated(ids, 7));
	assert_true(vmres_id_is_allocated(ids, 5));
	assert_int_equal(vmres_id_alloc_at(ids, 5), VMRES_E_IN_USE);
	/* Changes behind and around N, then N's ID itself given back. */
	assert_int_equal(vmres_id_free(ids, 7), VMRES_OK);
	assert_int_equal(vmres_id_free(ids, 7), VMRES_E_ALREADY_FREED);
	assert_int_equal(vmres_id_free(ids, 6), VMRES_OK); /* merges into [7, 7] */
	assert_int_equal(vmres_id_alloc_at(ids, 30), VMRES_OK);
	assert_int_equal(vmres_id_free(ids, 5), VMRES_OK); /* a new node keyed 5 */
	assert_int_equal(vmres_id_free(ids, 5), VMRES_E_ALREADY_FREED);
	assert_false(vmres_id_is_allocated(ids, 6));
	/* The stalled thread resumes: out of the index, retired. */
	if (stall == STALL_UNLINKED || stall == STALL_MARKED)
		vmres__id_node_unlinked(ids, n);
	assert_int_equal(vmres__id_check(ids, NULL), 0);
	for (uint32_t want = 5; want < 8; want++) {
		assert_int_equal(vmres_id_alloc(ids, &id), VMRES_OK);
		assert_int_equal(id, want);
	}
	assert_int_equal(vmres_id_alloc(ids, &id), VMRES_OK);
	assert_int_equal(id, 10);
	assert_int_equal(vmres_id_free(ids, 30), VMRES_OK);
	assert_int_equal(vmres__id_check(ids, NULL), 0);
	vmres_id_allocator_destroy(ids);
	vmres_rcu_barrier();
	assert_int_equal(vmres_test_mem_live_blocks(&mem), 0);
}

static void test_id_stalled_after_del(void **state)
{
	(void)state;
	run_stalled(STALL_DEL);
}

static void test_id_stalled_after_freeze(void **state)
{
	(void)state;
	run_stalled(STALL_FROZEN);
}

static void test_id_stalled_after_unlink(void **state)
{
	(void)state;
	run_stalled(STALL_UNLINKED);
}

static void test_id_stalled_after_mark(void **state)
{
	(void)state;
	run_stalled(STALL_MARKED);
}

/*
 * A free() that published its node N ([5, 5], with index levels) and stopped
 * before indexing it: N is taken and unlinked meanwhile, so the unlink winner
 * leaves N's retirement to the builder's reference (invariant 10).
 */
static void test_id_stalled_builder(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_mem_ops ops;
	struct vmres_id_allocator *ids = NULL;
	struct vmres__pair head;
	struct id_node *n;
	uint32_t id;

	vmres_test_mem_init(&mem);
	ops = vmres_test_mem_ops(&mem);
	assert_int_equal(vmres_id_allocator_create_ex(0, 99, &ops, &ids), VMRES_OK);
	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(vmres_id_alloc(ids, &id), VMRES_OK);
	/* A node keyed 5 with index levels: heights hash key and salt, so try
	 * other salts (heights are read only when a node is made). */
	while ((n = vmres__id_node_alloc(ids, 5, true)) != NULL && n->height == 0) {
		vmres__id_node_free_now(ids, n);
		ids->height_salt += 0x9e3779b97f4a7c15ull;
	}
	assert_non_null(n);
	head = vmres__pair_load(&ids->head);
	n->link = head;
	assert_true(vmres__pair_cas(
		&ids->head, head,
		(struct vmres__pair){ (uint64_t)(uintptr_t)n, id_bounds_make(5, 5) }));

	assert_false(vmres_id_is_allocated(ids, 5));
	assert_int_equal(vmres_id_free(ids, 5), VMRES_E_ALREADY_FREED);
	assert_int_equal(vmres_id_free(ids, 4), VMRES_OK);     /* merges: [4, 5] */
	assert_int_equal(vmres_id_alloc_at(ids, 5), VMRES_OK); /* hi: N dies, [4, 4] new */
	assert_int_equal(vmres_id_alloc(ids, &id), VMRES_OK);
	assert_int_equal(id, 4);
	assert_int_equal(vmres_id_free(ids, 5), VMRES_OK); /* a new node keyed 5 */
	/* The builder resumes: finds N marked, drops the last reference. */
	vmres__id_index_insert(ids, n);
	assert_int_equal(vmres__id_check(ids, NULL), 0);
	assert_int_equal(vmres_id_alloc(ids, &id), VMRES_OK);
	assert_int_equal(id, 5);
	assert_int_equal(vmres_id_alloc(ids, &id), VMRES_OK);
	assert_int_equal(id, 10);
	vmres_id_allocator_destroy(ids);
	vmres_rcu_barrier();
	assert_int_equal(vmres_test_mem_live_blocks(&mem), 0);
}

/*
 * Equal keys in different orders on different index levels (invariant 8),
 * from three stalled threads, all for ID 5 (reconstructed step by step):
 *   B, free(5): publishes X = [5, 5] in the list, stops before indexing it;
 *   C, alloc_at(5): takes X (DEL, freeze, unlink), stops before marking X;
 *   D, free(5): publishes N = [5, 5] (same key, same height), links N at
 *      index level 1 (up[0]), stops;
 *   B resumes: X goes in front of N at level 1, alone at the levels above;
 *   D resumes: N goes in front of X at every level above 1;
 *   C resumes: marks X, drops the last reference, runs the final search.
 * That search must take X out of level 1 too, although at level 2 it meets
 * X behind N: going down from N would start level 1 behind X. A node left
 * in the index after its retirement is reused or freed under it.
 */
static void test_id_equal_keys_in_other_orders(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_mem_ops ops;
	struct vmres_id_allocator *ids = NULL;
	struct vmres__pair head;
	struct id_node *x;
	struct id_node *n;
	uint32_t id;

	vmres_test_mem_init(&mem);
	ops = vmres_test_mem_ops(&mem);
	assert_int_equal(vmres_id_allocator_create_ex(0, 99, &ops, &ids), VMRES_OK);
	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(vmres_id_alloc(ids, &id), VMRES_OK);
	/* B: a node keyed 5 with two index levels or more (other salts, as in
	 * test_id_stalled_builder), published in front of [10, 99]. */
	while ((x = vmres__id_node_alloc(ids, 5, true)) != NULL && x->height < 2) {
		vmres__id_node_free_now(ids, x);
		ids->height_salt += 0x9e3779b97f4a7c15ull;
	}
	assert_non_null(x);
	head = vmres__pair_load(&ids->head);
	x->link = head;
	assert_true(vmres__pair_cas(
		&ids->head, head,
		(struct vmres__pair){ (uint64_t)(uintptr_t)x, id_bounds_make(5, 5) }));
	/* C: the take, the freeze and the unlink. */
	stall_at(ids, x, STALL_UNLINKED);
	/* D: N in the list, then at index level 1 only (quiescent stores). */
	n = vmres__id_node_alloc(ids, 5, true);
	assert_non_null(n);
	assert_int_equal(n->height, x->height);
	head = vmres__pair_load(&ids->head);
	n->link = head;
	assert_true(vmres__pair_cas(
		&ids->head, head,
		(struct vmres__pair){ (uint64_t)(uintptr_t)n, id_bounds_make(5, 5) }));
	if (ids->index_top < n->height)
		ids->index_top = n->height;
	n->up[0] = ids->head_up[0];
	ids->head_up[0] = (uintptr_t)n;
	/* B resumes: X in front of N at level 1, first at the levels above. */
	vmres__id_index_insert(ids, x);
	assert_int_equal(ids->head_up[0], (uintptr_t)x);
	assert_int_equal(x->up[0], (uintptr_t)n);
	/* D resumes: N in front of X at every level above 1; its builder's
	 * reference goes. */
	for (uint32_t l = 1; l < n->height; l++) {
		assert_int_equal(ids->head_up[l], (uintptr_t)x);
		n->up[l] = (uintptr_t)x;
		ids->head_up[l] = (uintptr_t)n;
	}
	n->refs--;
	/* C resumes: X out of every level, then retired. */
	vmres__id_node_unlinked(ids, x);
	assert_int_equal(vmres__id_check(ids, NULL), 0);
	for (uint32_t l = 0; l < n->height; l++)
		assert_int_equal(ids->head_up[l], (uintptr_t)n);

	assert_int_equal(vmres_id_alloc(ids, &id), VMRES_OK);
	assert_int_equal(id, 5);
	assert_int_equal(vmres_id_alloc(ids, &id), VMRES_OK);
	assert_int_equal(id, 10);
	assert_int_equal(vmres__id_check(ids, NULL), 0);
	vmres_id_allocator_destroy(ids);
	vmres_rcu_barrier();
	assert_int_equal(vmres_test_mem_live_blocks(&mem), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_first_retirement_starts_no_thread), /* first */
		cmocka_unit_test(test_id_stalled_after_del),
		cmocka_unit_test(test_id_stalled_after_freeze),
		cmocka_unit_test(test_id_stalled_after_unlink),
		cmocka_unit_test(test_id_stalled_after_mark),
		cmocka_unit_test(test_id_stalled_builder),
		cmocka_unit_test(test_id_equal_keys_in_other_orders),
	};

	return cmocka_run_group_tests(tests, vmres_test_group_setup, vmres_test_group_teardown);
}
