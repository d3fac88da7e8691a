/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Address allocator: a writer that loses its CAS and then runs out of memory.
 *
 * A writer builds its new tree from the version it read, publishes it with a
 * CAS, and when another writer published first gives back what it built and
 * starts again. If the retry then finds no memory, the call must return
 * VMRES_E_NOMEM with nothing changed and must have given the hook back exactly
 * what it took from it in that call: no block kept, and none freed that the
 * call did not get from the hook (the second is the bug fixed in 9ab3cae,
 * where a pooled spare's leftover nodes went to the hook before the CAS).
 *
 * The interleaving is forced, not hoped for: the test's hook blocks the
 * writer (thread A, the test's main thread) inside its first hook call of
 * the operation, while thread B publishes B_PER_ROUND allocations of its
 * own, so that A's CAS fails if A has not made it yet. Blocked at an
 * allocation, that allocation and the rest of A's attempt still get memory,
 * so A reaches its CAS and loses it; every hook allocation of A fails from
 * the first block A gives back (what the lost attempt built, so its retry
 * finds no memory). Blocked at a free, every allocation of A fails from
 * then on. The hook counts, per thread, blocks got minus blocks given back.
 */
#include "vmres_test.h"

#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal/addr_tree.h"

#define PAGE 0x1000ull
#define A_SLOTS 256ull	      /* thread A's ranges: [k * PAGE, k * PAGE + PAGE - 1] */
#define B_BASE 0x100000000ull /* thread B's ranges start here, far from A's */
#define B_PER_ROUND 64	      /* B's allocations per round: A must lose its CAS */

enum block_at { BLOCK_AT_ALLOC, BLOCK_AT_FREE };

/* Thread A's view of the hook; the other threads' calls pass straight through. */
static _Thread_local bool t_armed;	  /* block at the next call of the armed kind */
static _Thread_local bool t_fail;	  /* fail every allocation */
static _Thread_local int64_t t_net;	  /* blocks got minus blocks given back */
static _Thread_local bool t_fired;	  /* the block happened in this operation */
static _Thread_local bool t_fail_at_free; /* fail allocations once A gives a block back */
static _Thread_local bool t_gave_back;	  /* A gave a block back after its block */

static enum block_at g_block_at;
static atomic_llong g_live; /* blocks out, all threads (callbacks too) */
static sem_t g_go, g_done;  /* A -> B: publish now; B -> A: published */
static atomic_bool g_stop;
static struct vmres_addr_allocator *g_a;
static uint64_t g_next_b = B_BASE; /* written by B; A reads it after g_done */
static int g_b_errors;		   /* B only; read after join */

/*
 * Inside A's operation: let B publish; then fail A's allocations from now on
 * (blocked at a free), or from A's next free on (blocked at an allocation).
 */
static void block_here(void)
{
	t_armed = false;
	t_fired = true;
	assert_int_equal(sem_post(&g_go), 0);
	while (sem_wait(&g_done) != 0)
		; /* EINTR */
	if (g_block_at == BLOCK_AT_FREE)
		t_fail = true;
	else
		t_fail_at_free = true;
}

static void *hook_alloc(void *ctx, size_t size)
{
	(void)ctx;
	if (t_armed && g_block_at == BLOCK_AT_ALLOC)
		block_here();
	if (t_fail)
		return NULL;
	void *p = malloc(size);

	if (p) {
		t_net++;
		atomic_fetch_add(&g_live, 1);
	}
	return p;
}

static void hook_free(void *ctx, void *p, size_t size)
{
	(void)ctx;
	(void)size;
	t_net--;
	atomic_fetch_sub(&g_live, 1);
	free(p);
	if (t_fail_at_free) {
		t_fail_at_free = false;
		t_fail = true;
		t_gave_back = true;
	}
	if (t_armed && g_block_at == BLOCK_AT_FREE)
		block_here();
}

/* Thread B: on each signal, publish B_PER_ROUND exact allocations. */
static void *thread_b(void *arg)
{
	(void)arg;
	vmres_thread_register();
	for (;;) {
		while (sem_wait(&g_go) != 0)
			;
		if (atomic_load(&g_stop))
			break;
		for (int i = 0; i < B_PER_ROUND; i++) {
			struct vmres_addr_request q = { PAGE, PAGE, VMRES_EXACT_MATCH, g_next_b,
							g_next_b };
			struct vmres_range r;

			if (vmres_addr_alloc(g_a, &q, &r) != 0)
				g_b_errors++;
			g_next_b += PAGE;
		}
		sem_post(&g_done);
	}
	vmres_thread_unregister();
	return NULL;
}

static struct vmres_range slot(uint64_t k)
{
	return (struct vmres_range){ k * PAGE, k * PAGE + PAGE - 1 };
}

static int alloc_slot(uint64_t k)
{
	struct vmres_addr_request q = { PAGE, PAGE, VMRES_EXACT_MATCH, k * PAGE, k };
	struct vmres_range r;

	return vmres_addr_alloc(g_a, &q, &r);
}

/*
 * 1 if slot @k is allocated, with its tag, in the current version; 0 if it
 * is free; -1 (with a line on stderr) if the lookup says anything else. No
 * cmocka assertion here: a round runs while B waits, and B must be joined
 * before cmocka sees a failure (see CHECK below).
 */
static int slot_held(uint64_t k)
{
	struct vmres_range r = { 0, 0 };
	uint64_t tag = ~0ull;
	int rc = vmres_addr_lookup(g_a, k * PAGE, &r, &tag);

	if (rc == VMRES_E_NOT_FOUND)
		return 0;
	if (rc == 0 && r.start == k * PAGE && r.end == k * PAGE + PAGE - 1 && tag == k)
		return 1;
	fprintf(stderr,
		"test_addr_race: lookup of slot %" PRIu64 ": rc %d, [%#" PRIx64 ", %#" PRIx64
		"], tag %#" PRIx64 "\n",
		k, rc, r.start, r.end, tag);
	return -1;
}

struct race_result {
	int fired;     /* operations in which A blocked */
	int nomem;     /* ... of which failed with VMRES_E_NOMEM */
	int ok;	       /* ... of which succeeded */
	int gave_back; /* ... in which A gave a block back after blocking */
};

/* Inside a round B is running: on failure, return the line (B is joined before
 * cmocka sees it, so a failure cannot leave B behind to hang the next test). */
#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "test_addr_race.c:%d: check failed: %s\n", __LINE__, \
				#cond);                                                      \
			return __LINE__;                                                     \
		}                                                                            \
	} while (0)

/*
 * One round on slot @k: A frees it (@do_free) or allocates it again, with the
 * hook armed to block at A's first call of the chosen kind. @held: A's slots
 * allocated before the operation. Checks: the result is 0 or NOMEM; NOMEM
 * changed nothing and left A's hook balance at zero; 0 did exactly what it
 * says. Returns 0, or the line of the failed check.
 */
static int race_round(uint64_t k, bool do_free, uint64_t held, struct race_result *res)
{
	struct vmres_addr_stats after;
	int rc;

	if (!do_free) /* the operation under test allocates slot k again */
		CHECK(vmres_addr_free(g_a, slot(k)) == 0 && held-- > 0);
	t_net = 0;
	t_fired = false;
	t_fail = false;
	t_fail_at_free = false;
	t_gave_back = false;
	t_armed = true;
	rc = do_free ? vmres_addr_free(g_a, slot(k)) : alloc_slot(k);
	t_armed = false;
	t_fail = false;
	t_fail_at_free = false;
	if (!t_fired) { /* no hook call of that kind: no race forced */
		CHECK(rc == 0);
		return 0;
	}
	res->fired++;
	res->gave_back += t_gave_back;
	if (rc == VMRES_E_NOMEM) {
		res->nomem++;
		/* Nothing kept, nothing given back that this call did not get. */
		CHECK(t_net == 0);
		CHECK(slot_held(k) == (int)do_free);
	} else {
		CHECK(rc == 0);
		res->ok++;
		CHECK(slot_held(k) == (int)!do_free);
		held = do_free ? held - 1 : held + 1;
	}
	/* B's round is all in (B wrote g_next_b before its post, which A's wait
	 * ordered), and of A's ranges exactly what the result says. */
	CHECK(vmres_addr_stats(g_a, &after) == 0);
	CHECK(after.ranges == held + (g_next_b - B_BASE) / PAGE);
	CHECK(vmres__addr_check(g_a) == 0);
	/* Leave slot k freed for the next free round, allocated for the next alloc round. */
	if (rc == VMRES_E_NOMEM)
		CHECK((do_free ? vmres_addr_free(g_a, slot(k)) : alloc_slot(k)) == 0);
	return 0;
}

/*
 * Runs race_round() once per slot (the free rounds free slots 0, 1, ... in
 * turn; the alloc rounds free slot k and allocate it again), then joins B,
 * destroys the allocator and checks that every block came back.
 */
static struct race_result race(enum block_at at, bool pool, bool do_free)
{
	struct vmres_mem_ops ops = { hook_alloc, hook_free, NULL };
	struct race_result res = { 0, 0, 0, 0 };
	pthread_t tb;
	int failed = 0;

	g_block_at = at;
	atomic_store(&g_live, 0);
	atomic_store(&g_stop, false);
	g_next_b = B_BASE;
	g_b_errors = 0;
	assert_int_equal(sem_init(&g_go, 0, 0), 0);
	assert_int_equal(sem_init(&g_done, 0, 0), 0);
	assert_int_equal(vmres_addr_allocator_create_ex(0, UINT64_MAX, &ops, &g_a), 0);
	if (!pool)
		vmres__addr_pool_disable(g_a);
	for (uint64_t k = 0; k < A_SLOTS; k++)
		assert_int_equal(alloc_slot(k), 0);
	/* Churn, then let the callbacks run, so that a pool has spares to give. */
	for (uint64_t i = 0; i < 1200; i++) {
		uint64_t k = (i * 7) % A_SLOTS;

		assert_int_equal(vmres_addr_free(g_a, slot(k)), 0);
		assert_int_equal(alloc_slot(k), 0);
	}
	vmres_rcu_barrier();
	assert_int_equal(pthread_create(&tb, NULL, thread_b, NULL), 0);
	for (uint64_t k = 0; k < A_SLOTS && !failed; k++)
		failed = race_round(k, do_free, do_free ? A_SLOTS - k : A_SLOTS, &res);
	atomic_store(&g_stop, true);
	assert_int_equal(sem_post(&g_go), 0);
	assert_int_equal(vmres_test_join(tb), 0);
	assert_int_equal(failed, 0);
	assert_int_equal(g_b_errors, 0);
	vmres_addr_allocator_destroy(g_a);
	g_a = NULL;
	/* Every block any thread took, A's retries included, came back. */
	assert_int_equal(atomic_load(&g_live), 0);
	sem_destroy(&g_go);
	sem_destroy(&g_done);
	return res;
}

/* The free rounds and the alloc rounds of one setting, with one line of counts. */
static void race_both(const char *what, enum block_at at, bool pool, struct race_result *f,
		      struct race_result *a)
{
	*f = race(at, pool, true);
	*a = race(at, pool, false);
	printf("[addr_race] %s: free %d forced (%d NOMEM, %d ok, %d gave back); alloc %d forced "
	       "(%d NOMEM, %d ok, %d gave back)\n",
	       what, f->fired, f->nomem, f->ok, f->gave_back, a->fired, a->nomem, a->ok,
	       a->gave_back);
}

/*
 * Pool off: every node of A's attempt comes from the hook, so A blocks in its
 * first hook allocation, before its CAS. B publishes meanwhile, so A's CAS
 * must fail and A must give back what it built (the first block it gives
 * back makes the hook fail from then on); its retry needs the hook, which
 * now fails: every forced race ends in NOMEM with A's balance at zero, and
 * in every one A gave blocks back, so the lost CAS's clean-up did run.
 */
static void test_addr_lost_race_then_nomem_no_pool(void **state)
{
	(void)state;
	struct race_result f, a;

	race_both("pool off, blocked at alloc", BLOCK_AT_ALLOC, false, &f, &a);
	assert_int_equal(f.fired, (int)A_SLOTS);
	assert_int_equal(f.nomem, f.fired);
	assert_int_equal(f.gave_back, f.fired);
	assert_int_equal(a.fired, (int)A_SLOTS);
	assert_int_equal(a.nomem, a.fired);
	assert_int_equal(a.gave_back, a.fired);
}

/*
 * Pool on, A blocked at its first hook allocation: A has popped a spare and
 * took what it could from it before asking the hook. The lost CAS must put
 * the spare's nodes back into the spare and only the hook's into the hook.
 */
static void test_addr_lost_race_then_nomem_pool_alloc(void **state)
{
	(void)state;
	struct race_result f, a;

	race_both("pool on, blocked at alloc", BLOCK_AT_ALLOC, true, &f, &a);
	/* A blocked because its spare ran short; its retry needs the hook too. */
	assert_true(f.nomem + a.nomem > 0);
}

/*
 * Pool on, A blocked at its first hook free. A spare's leftover nodes may be
 * freed only once A's CAS has published; so the first free A makes comes
 * after its CAS, B's round cannot make A lose, and A succeeds. The code
 * before 9ab3cae freed them before the CAS: A then lost, failed with NOMEM
 * on its retry, and had given the hook a block it never got from it (t_net
 * == -1), which the checks in race() catch.
 */
static void test_addr_lost_race_then_nomem_pool_free(void **state)
{
	(void)state;
	struct race_result f, a;

	race_both("pool on, blocked at free", BLOCK_AT_FREE, true, &f, &a);
	assert_true(f.fired > 0);
	assert_int_equal(f.nomem + a.nomem, 0); /* no hook free before the CAS */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_lost_race_then_nomem_no_pool),
		cmocka_unit_test(test_addr_lost_race_then_nomem_pool_alloc),
		cmocka_unit_test(test_addr_lost_race_then_nomem_pool_free),
	};

	return cmocka_run_group_tests(tests, vmres_test_group_setup, vmres_test_group_teardown);
}
