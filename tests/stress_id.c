/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The ID allocator under 6 threads (a fixed count, more than the 2 CPUs of
 * the CI machines, so there threads are also preempted mid-operation):
 * random alloc / alloc_at / free with an atomic owner per ID, so an ID
 * handed to two threads at once is caught the moment the second one claims
 * it. After the threads join, the free IDs plus the held ones must make the
 * whole range, and draining with alloc must return every free ID once, in
 * increasing order.
 */
#include "vmres_test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal/id.h"

#define STRESS_THREADS 6

/*
 * The allocator of the round in progress, for teardown_round(): a failed
 * assertion returns from the test at once, and the teardown then destroys
 * what the round left (once its threads are joined), so that no RCU
 * callback of it later calls a memory hook whose context is gone. For the
 * same reason the rounds' hook contexts are static, not on their stack.
 */
static struct vmres_id_allocator *round_ids;
static bool round_joined;

struct stress {
	struct vmres_id_allocator *ids;
	uint32_t first;
	uint32_t size;
	uint32_t *owner; /* 0: nobody; else the holding thread's index + 1 */
	struct vmres_test_gate gate;
	uint64_t seed;
	int errors; /* atomic */
};

struct worker {
	struct stress *s;
	uint32_t index;
	uint32_t *held;
	uint32_t nheld;
	uint64_t ops;
	pthread_t thread;
};

static void stress_error(struct stress *s, const char *what, uint32_t id, int rc)
{
	if (__atomic_fetch_add(&s->errors, 1, __ATOMIC_RELAXED) < 10)
		fprintf(stderr, "stress_id: %s (id %u, rc %s)\n", what, id, vmres_error_name(rc));
}

/* The ID was just handed to worker @w: nobody may own it yet. */
static void claim(struct worker *w, uint32_t id)
{
	uint32_t nobody = 0;
	uint32_t *slot;

	if (id < w->s->first || id - w->s->first >= w->s->size) {
		stress_error(w->s, "ID outside the range", id, 0);
		return;
	}
	slot = &w->s->owner[id - w->s->first];
	/* Relaxed is enough: the allocator's CASes order the hand-overs. */
	if (!__atomic_compare_exchange_n(slot, &nobody, w->index + 1, false, __ATOMIC_RELAXED,
					 __ATOMIC_RELAXED)) {
		stress_error(w->s, "ID handed out twice", id, 0);
		return;
	}
	w->held[w->nheld++] = id;
}

static void do_free(struct worker *w, uint64_t *rng)
{
	uint32_t k = (uint32_t)vmres_test_rand_below(rng, w->nheld);
	uint32_t id = w->held[k];
	int rc;

	w->held[k] = w->held[--w->nheld];
	if (!vmres_id_is_allocated(w->s->ids, id))
		stress_error(w->s, "held ID reported free", id, 0);
	/* Release ownership before the ID can be handed to someone else. */
	__atomic_store_n(&w->s->owner[id - w->s->first], 0, __ATOMIC_RELAXED);
	rc = vmres_id_free(w->s->ids, id);
	if (rc != VMRES_OK)
		stress_error(w->s, "free of a held ID failed", id, rc);
}

static void do_alloc(struct worker *w)
{
	uint32_t id;
	int rc = vmres_id_alloc(w->s->ids, &id);

	if (rc == VMRES_OK)
		claim(w, id);
	else if (rc != VMRES_E_EXHAUSTED)
		stress_error(w->s, "alloc failed", 0, rc);
}

static void do_alloc_at(struct worker *w, uint64_t *rng)
{
	uint32_t id = w->s->first + (uint32_t)vmres_test_rand_below(rng, w->s->size);
	int rc = vmres_id_alloc_at(w->s->ids, id);

	if (rc == VMRES_OK)
		claim(w, id);
	else if (rc != VMRES_E_IN_USE)
		stress_error(w->s, "alloc_at failed", id, rc);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t rng = w->s->seed * 31 + w->index;
	/* Each worker aims at its own number of held IDs, so together they
	 * sometimes exhaust the range and sometimes leave much of it free. */
	uint32_t cap = w->s->size;
	uint32_t target = (uint32_t)vmres_test_rand_below(&rng, 2 * cap / STRESS_THREADS + 2);
	double deadline = vmres_test_gate_pass(&w->s->gate);

	vmres_thread_register();
	while (vmres_test_now() < deadline) {
		for (int i = 0; i < 64; i++) {
			uint32_t op = (uint32_t)vmres_test_rand_below(&rng, 100);

			if (w->nheld > 0 && (w->nheld >= cap || op < 40 + (w->nheld > target) * 30))
				do_free(w, &rng);
			else if (op < 85)
				do_alloc(w);
			else
				do_alloc_at(w, &rng);
			w->ops++;
		}
		if (vmres_test_rand_below(&rng, 64) == 0)
			target =
				(uint32_t)vmres_test_rand_below(&rng, 2 * cap / STRESS_THREADS + 2);
	}
	vmres_thread_unregister();
	return NULL;
}

/* After the join: free + held is the range; alloc drains the free IDs in order. */
static void check_after_join(struct stress *s, struct worker *w)
{
	struct vmres__id_stats st;
	uint64_t held = 0, drained = 0;
	int64_t last = -1;
	uint32_t id;

	for (int t = 0; t < STRESS_THREADS; t++)
		held += w[t].nheld;
	assert_int_equal(vmres__id_check(s->ids, &st), 0);
	assert_int_equal(held + st.free_ids, s->size);
	while (vmres_id_alloc(s->ids, &id) == VMRES_OK) {
		assert_true((int64_t)id > last);
		assert_int_equal(s->owner[id - s->first], 0);
		s->owner[id - s->first] = STRESS_THREADS + 1;
		last = id;
		drained++;
	}
	assert_int_equal(drained, st.free_ids);
	for (uint32_t i = 0; i < s->size; i++) {
		assert_int_not_equal(s->owner[i], 0);
		assert_true(vmres_id_is_allocated(s->ids, s->first + i));
	}
}

/*
 * A round's length: 20 ms, or what is left before @end. Its threads count it
 * from the round's start gate, so thread creation does not eat into it.
 */
static double round_seconds(double end)
{
	double left = end - vmres_test_now();

	return left > 0.02 ? 0.02 : left > 0 ? left : 0;
}

/* One round: a fresh allocator, all threads for @seconds, then the checks. */
static uint64_t run_round(uint32_t first, uint32_t size, double seconds, uint64_t seed)
{
	static struct vmres_test_mem mem;
	struct vmres_mem_ops ops;
	struct stress s = { 0 };
	struct worker w[STRESS_THREADS] = { 0 };
	uint64_t total = 0;

	vmres_test_mem_init(&mem);
	ops = vmres_test_mem_ops(&mem);
	assert_int_equal(vmres_id_allocator_create_ex(first, first + (size - 1), &ops, &s.ids),
			 VMRES_OK);
	round_ids = s.ids;
	round_joined = false;
	s.first = first;
	s.size = size;
	s.seed = seed;
	s.owner = calloc(size, sizeof(*s.owner));
	assert_non_null(s.owner);
	vmres_test_gate_init(&s.gate, STRESS_THREADS, seconds);
	for (uint32_t t = 0; t < STRESS_THREADS; t++) {
		w[t] = (struct worker){ .s = &s, .index = t };
		w[t].held = calloc(size, sizeof(uint32_t));
		assert_non_null(w[t].held);
		assert_int_equal(pthread_create(&w[t].thread, NULL, worker_main, &w[t]), 0);
	}
	for (uint32_t t = 0; t < STRESS_THREADS; t++) {
		assert_int_equal(vmres_test_join(w[t].thread), 0);
		total += w[t].ops;
	}
	round_joined = true;
	vmres_test_gate_destroy(&s.gate);
	if (s.errors)
		fprintf(stderr, "stress_id: round [%u, +%u) seed %llu failed\n", first, size,
			(unsigned long long)seed);
	assert_int_equal(s.errors, 0);
	check_after_join(&s, w);
	vmres_id_allocator_destroy(s.ids);
	round_ids = NULL;
	vmres_rcu_barrier();
	assert_int_equal(vmres_test_mem_live_blocks(&mem), 0);
	for (uint32_t t = 0; t < STRESS_THREADS; t++)
		free(w[t].held);
	free(s.owner);
	return total;
}

/*
 * Short rounds, each on a fresh allocator, so that the never-handed-out tail
 * (advanced, split, emptied) is contended again and again, not only once.
 */
static void run_stress(uint32_t first, const uint32_t *sizes, uint32_t nsizes, double seconds,
		       uint64_t seed)
{
	double end = vmres_test_now() + seconds;
	uint64_t rounds = 0, total = 0;

	do {
		uint32_t size = sizes[rounds % nsizes];
		uint32_t base = first == UINT32_MAX ? UINT32_MAX - (size - 1) : first;
		total += run_round(base, size, round_seconds(end), seed + rounds);
		rounds++;
	} while (vmres_test_now() < end);
	printf("stress_id: %d threads, %.1f s, %llu rounds: %llu ops\n", STRESS_THREADS, seconds,
	       (unsigned long long)rounds, (unsigned long long)total);
}

/* Ranges from 0: constant exhaustion, deletions at the head, splits. */
static void test_id_stress_ranges_from_zero(void **state)
{
	(void)state;
	uint64_t seed = vmres_test_seed("VMRES_TEST_SEED", "test_id_stress_ranges_from_zero");
	static const uint32_t sizes[] = { 8, 48, 300, 2048, 16384 };

	run_stress(0, sizes, 5, vmres_test_stress_seconds(2.5) / 3, seed);
}

/* Ranges ending at UINT32_MAX: the same at the top boundary. */
static void test_id_stress_ranges_at_top(void **state)
{
	(void)state;
	uint64_t seed = vmres_test_seed("VMRES_TEST_SEED", "test_id_stress_ranges_at_top");
	static const uint32_t sizes[] = { 2048, 5, 64, 700 };

	run_stress(UINT32_MAX, sizes, 4, vmres_test_stress_seconds(2.5) / 3, seed);
}

/* ---- alloc sees every free that completed before it started --------------- */

/*
 * One thread frees (in random order) IDs of a fully allocated range and
 * publishes each one after its free returned; another only allocates. Every
 * alloc that starts after it saw free(x) published must return an ID <= x
 * while x is not yet taken: the allocator is the only other actor, so x is
 * free then, and alloc returns the smallest free ID at its linearization
 * point. So a free that completed is never lost to or overtaken by a later
 * alloc, while inserts land all over the list (random order) and the front
 * keeps changing. Two more threads look IDs up, for preemption.
 */
struct order_run {
	struct vmres_id_allocator *ids;
	uint32_t size;
	uint32_t *freed;    /* freed[0 .. published) were freed, in that order */
	uint64_t published; /* atomic */
	int stop;	    /* atomic */
	int errors;	    /* atomic */
	uint64_t seed;
};

static void *order_freer(void *arg)
{
	struct order_run *r = arg;

	vmres_thread_register();
	for (uint32_t i = 0; i < r->size; i++) {
		if (vmres_id_free(r->ids, r->freed[i]) != VMRES_OK)
			__atomic_fetch_add(&r->errors, 1, __ATOMIC_RELAXED);
		/* Release: pairs with the acquire in order_allocator(). */
		__atomic_store_n(&r->published, (uint64_t)i + 1, __ATOMIC_RELEASE);
	}
	vmres_thread_unregister();
	return NULL;
}

struct order_reader_arg {
	struct order_run *r;
	uint32_t index;
};

static void *order_reader(void *arg)
{
	const struct order_reader_arg *a = arg;
	struct order_run *r = a->r;
	/* From the seed and the thread's index only: replayable from VMRES_TEST_SEED. */
	uint64_t rng = r->seed * 0x2545f4914f6cdd1dull + a->index + 1;

	vmres_thread_register();
	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED))
		(void)vmres_id_is_allocated(r->ids, (uint32_t)vmres_test_rand_below(&rng, r->size));
	vmres_thread_unregister();
	return NULL;
}

/* A small binary min-heap of IDs the allocator thread knows to be free. */
struct id_heap {
	uint32_t *v;
	uint32_t n;
};

static void heap_push(struct id_heap *h, uint32_t x)
{
	uint32_t i = h->n++;

	while (i && h->v[(i - 1) / 2] > x) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = x;
}

static void heap_pop(struct id_heap *h)
{
	uint32_t x = h->v[--h->n], i = 0;

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1] < h->v[c])
			c++;
		if (h->v[c] >= x)
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	h->v[i] = x;
}

static void order_allocator(struct order_run *r)
{
	bool *taken = calloc(r->size, sizeof(bool));
	struct id_heap known = { calloc(r->size, sizeof(uint32_t)), 0 };
	uint64_t seen = 0, got = 0;

	assert_non_null(taken);
	assert_non_null(known.v);
	/*
	 * Bounded without a deadline: each pass either takes an ID or finds
	 * nothing free while the freer still has IDs to give back. Once it has
	 * published all of them (it makes r->size calls, then stops), every
	 * pass takes one or ends the loop with an error, so a lost ID fails
	 * here instead of spinning forever.
	 */
	while (got < r->size) {
		/* Acquire: pairs with the release after each free. */
		uint64_t now = __atomic_load_n(&r->published, __ATOMIC_ACQUIRE);
		uint32_t id;
		int rc;

		for (; seen < now; seen++)
			heap_push(&known, r->freed[seen]);
		while (known.n && taken[known.v[0]])
			heap_pop(&known);
		rc = vmres_id_alloc(r->ids, &id);
		if (rc == VMRES_E_EXHAUSTED && known.n == 0 && now < r->size)
			continue; /* nothing freed yet that is not taken */
		if (rc != VMRES_OK) {
			/*
			 * known.v[0] was free for the whole call, and so was
			 * every ID not taken yet once all frees were published.
			 */
			fprintf(stderr,
				"stress_id: alloc said %s after %llu of %u frees, %llu IDs "
				"taken, smallest known free %lld\n",
				vmres_error_name(rc), (unsigned long long)now, r->size,
				(unsigned long long)got, known.n ? (long long)known.v[0] : -1ll);
			__atomic_fetch_add(&r->errors, 1, __ATOMIC_RELAXED);
			break;
		}
		if (id >= r->size || taken[id] || (known.n && id > known.v[0])) {
			fprintf(stderr,
				"stress_id: alloc gave %u while %u was freed before it began\n", id,
				known.n ? known.v[0] : 0);
			__atomic_fetch_add(&r->errors, 1, __ATOMIC_RELAXED);
			break;
		}
		taken[id] = true;
		got++;
	}
	free(known.v);
	free(taken);
}

static void test_id_stress_alloc_sees_completed_frees(void **state)
{
	(void)state;
	uint64_t seed =
		vmres_test_seed("VMRES_TEST_SEED", "test_id_stress_alloc_sees_completed_frees");
	double end = vmres_test_now() + vmres_test_stress_seconds(2.5) / 3;
	uint64_t rounds = 0;

	do {
		struct order_run r = { .size = 4096, .seed = seed + rounds };
		pthread_t freer, readers[2];
		struct order_reader_arg reader_args[2] = { { &r, 0 }, { &r, 1 } };
		uint64_t rng = r.seed;
		uint32_t id;

		assert_int_equal(vmres_id_allocator_create(0, r.size - 1, &r.ids), VMRES_OK);
		round_ids = r.ids;
		round_joined = false;
		r.freed = calloc(r.size, sizeof(uint32_t));
		assert_non_null(r.freed);
		for (uint32_t i = 0; i < r.size; i++) {
			assert_int_equal(vmres_id_alloc(r.ids, &id), VMRES_OK);
			r.freed[i] = i;
		}
		for (uint32_t i = r.size - 1; i > 0; i--) { /* Fisher-Yates */
			uint32_t j = (uint32_t)vmres_test_rand_below(&rng, i + 1), t = r.freed[i];

			r.freed[i] = r.freed[j];
			r.freed[j] = t;
		}
		for (int t = 0; t < 2; t++)
			assert_int_equal(
				pthread_create(&readers[t], NULL, order_reader, &reader_args[t]),
				0);
		assert_int_equal(pthread_create(&freer, NULL, order_freer, &r), 0);
		order_allocator(&r);
		assert_int_equal(vmres_test_join(freer), 0);
		__atomic_store_n(&r.stop, 1, __ATOMIC_RELAXED);
		for (int t = 0; t < 2; t++)
			assert_int_equal(vmres_test_join(readers[t]), 0);
		round_joined = true;
		if (r.errors)
			fprintf(stderr, "stress_id: round seed %llu failed\n",
				(unsigned long long)r.seed);
		assert_int_equal(r.errors, 0);
		assert_int_equal(vmres_id_alloc(r.ids, &id), VMRES_E_EXHAUSTED);
		assert_int_equal(vmres__id_check(r.ids, NULL), 0);
		vmres_id_allocator_destroy(r.ids);
		round_ids = NULL;
		free(r.freed);
		rounds++;
	} while (vmres_test_now() < end);
	printf("stress_id: alloc-after-free order, %llu rounds of 4096\n",
	       (unsigned long long)rounds);
}

/* ---- exact answers under contention --------------------------------------- */

/*
 * Every answer checked, not only ownership. The range is [0, Z + E * K): the
 * "zone" [0, Z) is used only through alloc by ZONE_THREADS threads, which
 * together never hold more than Z - 1 of it (a counter reserved before each
 * alloc, returned after the free), so a zone ID is free at every alloc's
 * linearization point and alloc must return an ID below Z. The rest is dealt
 * round-robin to EXACT_THREADS threads, each the only caller on its IDs: it
 * knows whether each is never handed out, held or freed, so every alloc_at,
 * free and is_allocated answer is known exactly (free after its own free must
 * say ALREADY_FREED, never NEVER_ALLOCATED). Neighbouring IDs belong to other
 * threads, so merges, inserts, splits and deletions race on the same links.
 * Every other round the memory hook fails at random: a call that needed a
 * node may then say NOMEM, and must have changed nothing, and only after a
 * hook call of its own failed. The NOMEM answers are counted: over the run
 * there must be some, or the injection never ran.
 */
#define ZONE_THREADS 3
#define EXACT_THREADS 5
/*
 * Operations each exact thread does per round even past the deadline, so a
 * failing round injects failures however short the round: these
 * alone make about 400-500 hook calls per round (measured with
 * VMRES_STRESS_SECONDS=0.0001), so with a tenth failing a failing round
 * without a NOMEM answer has a chance below 1e-17.
 */
#define EXACT_MIN_OPS 512

enum exact_state { EXACT_NEVER, EXACT_HELD, EXACT_FREED };

struct exact_run {
	struct vmres_id_allocator *ids;
	uint32_t zone;	   /* Z */
	uint32_t per;	   /* K: IDs per exact thread */
	uint32_t zone_res; /* atomic: zone IDs reserved by zone threads */
	uint32_t *owner;   /* atomic, zone IDs only */
	struct vmres_test_gate gate;
	uint64_t seed;
	int errors;		/* atomic */
	uint32_t fail_permille; /* the hook fails this share of allocations */
	int64_t live;		/* atomic: blocks the hook has out */
	uint64_t hook_calls;	/* atomic: allocations asked of the hook */
	uint64_t hook_failed;	/* atomic: of them, failed on purpose */
	uint64_t nomem;		/* atomic: calls that answered VMRES_E_NOMEM */
};

/* What the exact-answer rounds did, summed over the rounds that inject failures. */
struct exact_totals {
	uint64_t rounds;
	uint64_t hook_calls;
	uint64_t hook_failed;
	uint64_t nomem;
};

struct exact_worker {
	struct exact_run *r;
	uint32_t index;
	pthread_t thread;
};

static void exact_error(struct exact_run *r, const char *what, uint32_t id, int rc, int want)
{
	if (__atomic_fetch_add(&r->errors, 1, __ATOMIC_RELAXED) < 10)
		fprintf(stderr, "stress_id: %s (id %u, rc %s, expected %s)\n", what, id,
			vmres_error_name(rc), vmres_error_name(want));
}

/* Per-thread stream for the hook's failures (no shared state to race on). */
static _Thread_local uint64_t flaky_rng;
/* The hook's failures in this thread: a NOMEM answer needs one in its call. */
static _Thread_local uint64_t flaky_failed_here;

static void *flaky_alloc(void *ctx, size_t size)
{
	struct exact_run *r = ctx;
	void *p;

	__atomic_fetch_add(&r->hook_calls, 1, __ATOMIC_RELAXED);
	if (vmres_test_rand_below(&flaky_rng, 1000) < r->fail_permille) {
		__atomic_fetch_add(&r->hook_failed, 1, __ATOMIC_RELAXED);
		flaky_failed_here++;
		return NULL;
	}
	p = malloc(size);
	if (p)
		__atomic_fetch_add(&r->live, 1, __ATOMIC_RELAXED);
	return p;
}

static void flaky_free(void *ctx, void *p, size_t size)
{
	struct exact_run *r = ctx;

	(void)size;
	__atomic_fetch_sub(&r->live, 1, __ATOMIC_RELAXED); /* call_rcu thread too */
	free(p);
}

/* A NOMEM answer from a call that began when flaky_failed_here was @before. */
static void nomem_seen(struct exact_run *r, uint64_t before, uint32_t id)
{
	__atomic_fetch_add(&r->nomem, 1, __ATOMIC_RELAXED);
	/* Allocations happen in the calling thread: one of them must have failed. */
	if (flaky_failed_here == before)
		exact_error(r, "NOMEM with no failed hook call", id, VMRES_E_NOMEM, VMRES_OK);
}

/* Gives @id back; false (still held) if the free ran out of memory. */
static bool zone_free(struct exact_worker *w, uint32_t id)
{
	struct exact_run *r = w->r;
	uint64_t before;
	int rc;

	__atomic_store_n(&r->owner[id], 0, __ATOMIC_RELAXED);
	before = flaky_failed_here;
	rc = vmres_id_free(r->ids, id);
	if (rc == VMRES_E_NOMEM) { /* nothing changed: it is still ours */
		nomem_seen(r, before, id);
		__atomic_store_n(&r->owner[id], w->index + 1, __ATOMIC_RELAXED);
		return false;
	}
	if (rc != VMRES_OK)
		exact_error(r, "free of a held zone ID", id, rc, VMRES_OK);
	/* After the free returned: the ID is free before the slot is. */
	__atomic_fetch_sub(&r->zone_res, 1, __ATOMIC_SEQ_CST);
	return true;
}

static void *exact_zone_main(void *arg)
{
	struct exact_worker *w = arg;
	struct exact_run *r = w->r;
	uint64_t rng = r->seed * 977 + w->index;
	uint32_t held[64], nheld = 0;
	double deadline = vmres_test_gate_pass(&r->gate);

	flaky_rng = rng ^ 0x5bd1e995;
	vmres_thread_register();
	while (vmres_test_now() < deadline) {
		uint32_t res = __atomic_load_n(&r->zone_res, __ATOMIC_RELAXED);
		uint32_t id, nobody = 0;
		int rc;

		if (nheld &&
		    (nheld == 64 || res + 1 >= r->zone || vmres_test_rand_below(&rng, 2))) {
			uint32_t k = (uint32_t)vmres_test_rand_below(&rng, nheld);

			id = held[k];
			if (!vmres_id_is_allocated(r->ids, id))
				exact_error(r, "held zone ID reported free", id, 0, 0);
			if (zone_free(w, id))
				held[k] = held[--nheld];
			continue;
		}
		if (res + 1 >= r->zone ||
		    !__atomic_compare_exchange_n(&r->zone_res, &res, res + 1, false,
						 __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
			continue;
		rc = vmres_id_alloc(r->ids, &id);
		if (rc != VMRES_OK || id >= r->zone) {
			exact_error(r, "alloc passed over a free zone ID", rc ? 0 : id, rc,
				    VMRES_OK);
			__atomic_fetch_sub(&r->zone_res, 1, __ATOMIC_SEQ_CST);
			continue;
		}
		if (!__atomic_compare_exchange_n(&r->owner[id], &nobody, w->index + 1, false,
						 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			exact_error(r, "zone ID handed out twice", id, 0, 0);
		held[nheld++] = id;
	}
	/*
	 * A NOMEM keeps the ID. The hook fails a tenth of the calls at most,
	 * so 1000 failures running mean a free that can never succeed.
	 */
	for (uint32_t nomem = 0; nheld;) {
		if (zone_free(w, held[nheld - 1])) {
			nheld--;
			nomem = 0;
		} else if (++nomem == 1000) {
			exact_error(r, "zone free: NOMEM 1000 times running", held[nheld - 1],
				    VMRES_E_NOMEM, VMRES_OK);
			break;
		}
	}
	vmres_thread_unregister();
	return NULL;
}

static void exact_check(struct exact_run *r, uint32_t id, int rc, int want, const char *what)
{
	if (rc != want)
		exact_error(r, what, id, rc, want);
}

static void *exact_owner_main(void *arg)
{
	struct exact_worker *w = arg;
	struct exact_run *r = w->r;
	uint64_t rng = r->seed * 131 + w->index;
	enum exact_state st[64] = { EXACT_NEVER };
	double deadline = vmres_test_gate_pass(&r->gate);

	flaky_rng = rng ^ 0x5bd1e995;
	vmres_thread_register();
	for (uint32_t ops = 0; ops < EXACT_MIN_OPS || vmres_test_now() < deadline; ops++) {
		uint32_t k = (uint32_t)vmres_test_rand_below(&rng, r->per);
		uint32_t id = r->zone + w->index + k * EXACT_THREADS;
		uint32_t op = (uint32_t)vmres_test_rand_below(&rng, 10);
		bool held = st[k] == EXACT_HELD;
		uint64_t before = flaky_failed_here;

		if (op < 4) {
			int rc = vmres_id_alloc_at(r->ids, id);

			/* Only a take that needs a node may run out of memory. */
			if (rc == VMRES_E_NOMEM && !held) {
				nomem_seen(r, before, id);
				continue; /* nothing changed; is_allocated checks later */
			}
			exact_check(r, id, rc, held ? VMRES_E_IN_USE : VMRES_OK, "alloc_at");
			st[k] = EXACT_HELD;
		} else if (op < 8) {
			int want = st[k] == EXACT_NEVER	  ? VMRES_E_NEVER_ALLOCATED
				   : st[k] == EXACT_FREED ? VMRES_E_ALREADY_FREED
							  : VMRES_OK;
			int rc = vmres_id_free(r->ids, id);

			if (rc == VMRES_E_NOMEM && held) {
				nomem_seen(r, before, id);
				continue; /* nothing changed: still held */
			}
			exact_check(r, id, rc, want, "free");
			if (held)
				st[k] = EXACT_FREED;
		} else if (vmres_id_is_allocated(r->ids, id) != held) {
			exact_error(r,
				    held ? "is_allocated: held ID reported free"
					 : "is_allocated: free ID reported held",
				    id, 0, 0);
		}
	}
	vmres_thread_unregister();
	return NULL;
}

static void exact_round(uint32_t zone, uint32_t per, uint32_t fail_permille, double seconds,
			uint64_t seed, struct exact_totals *tot)
{
	struct exact_worker w[ZONE_THREADS + EXACT_THREADS];
	uint32_t size = zone + EXACT_THREADS * per;
	static struct exact_run r; /* the hook's context: see round_ids */
	struct vmres_mem_ops ops = { flaky_alloc, flaky_free, &r };
	uint32_t id;

	r = (struct exact_run){ .zone = zone, .per = per, .seed = seed };
	assert_int_equal(vmres_id_allocator_create_ex(0, size - 1, &ops, &r.ids), VMRES_OK);
	round_ids = r.ids;
	round_joined = false;
	r.fail_permille = fail_permille; /* published by pthread_create */
	r.owner = calloc(zone, sizeof(*r.owner));
	assert_non_null(r.owner);
	vmres_test_gate_init(&r.gate, ZONE_THREADS + EXACT_THREADS, seconds);
	for (uint32_t t = 0; t < ZONE_THREADS + EXACT_THREADS; t++) {
		w[t] = (struct exact_worker){ .r = &r,
					      .index = t < ZONE_THREADS ? t : t - ZONE_THREADS };
		assert_int_equal(
			pthread_create(&w[t].thread, NULL,
				       t < ZONE_THREADS ? exact_zone_main : exact_owner_main,
				       &w[t]),
			0);
	}
	for (uint32_t t = 0; t < ZONE_THREADS + EXACT_THREADS; t++)
		assert_int_equal(vmres_test_join(w[t].thread), 0);
	round_joined = true;
	vmres_test_gate_destroy(&r.gate);
	if (r.errors)
		fprintf(stderr, "stress_id: exact round zone %u per %u seed %llu failed\n", zone,
			per, (unsigned long long)seed);
	assert_int_equal(r.errors, 0);
	if (fail_permille) {
		tot->rounds++;
		tot->hook_calls += r.hook_calls;
		tot->hook_failed += r.hook_failed;
		tot->nomem += r.nomem;
	} else {
		assert_int_equal(r.nomem, 0); /* the hook never failed */
	}
	assert_int_equal(vmres__id_check(r.ids, NULL), 0);
	for (uint32_t i = 0; i < zone; i++) /* the zone threads gave everything back */
		assert_int_equal(vmres_id_alloc(r.ids, &id) == VMRES_OK ? id : UINT32_MAX, i);
	vmres_id_allocator_destroy(r.ids);
	round_ids = NULL;
	vmres_rcu_barrier();
	assert_int_equal(__atomic_load_n(&r.live, __ATOMIC_RELAXED), 0);
	free(r.owner);
}

static void test_id_stress_exact_answers(void **state)
{
	(void)state;
	uint64_t seed = vmres_test_seed("VMRES_TEST_SEED", "test_id_stress_exact_answers");
	double end = vmres_test_now() + vmres_test_stress_seconds(2.5) / 3;
	uint64_t rounds = 0;
	struct exact_totals tot = { 0 };

	do {
		/* Every other round the hook fails a tenth of the allocations. */
		exact_round(2 + (uint32_t)(rounds % 7), 1 + (uint32_t)(rounds % 5),
			    rounds % 2 ? 100 : 0, round_seconds(end), seed + rounds, &tot);
		rounds++;
	} while (vmres_test_now() < end || rounds < 2); /* round 1 is the first failing one */
	printf("stress_id: exact answers, %llu rounds; in the %llu failing ones the hook failed "
	       "%llu of %llu allocations, %llu calls answered NOMEM\n",
	       (unsigned long long)rounds, (unsigned long long)tot.rounds,
	       (unsigned long long)tot.hook_failed, (unsigned long long)tot.hook_calls,
	       (unsigned long long)tot.nomem);
	/* The injection reached the callers: some answers were NOMEM. */
	assert_true(tot.nomem > 0);
}

/*
 * After a failed assertion: destroys the allocator the round left, then
 * waits for its callbacks. Not while the round's threads may still use it
 * (a failed pthread_create or join); that allocator is left as it is.
 */
static int teardown_round(void **state)
{
	(void)state;
	if (round_ids && round_joined) {
		vmres_id_allocator_destroy(round_ids);
		vmres_rcu_barrier();
	}
	round_ids = NULL;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_id_stress_ranges_from_zero, teardown_round),
		cmocka_unit_test_teardown(test_id_stress_ranges_at_top, teardown_round),
		cmocka_unit_test_teardown(test_id_stress_alloc_sees_completed_frees,
					  teardown_round),
		cmocka_unit_test_teardown(test_id_stress_exact_answers, teardown_round),
	};

	return cmocka_run_group_tests(tests, vmres_test_group_setup, vmres_test_group_teardown);
}
